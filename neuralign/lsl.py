"""Machine-scope LSL configuration.

Default LSL discovery sends multicast/broadcast packets off the machine. neuralign always points
liblsl at the configuration shipped in the package (``neuralign/lsl_api.cfg``: IPv6 off,
``ResolveScope = machine``, ``KnownPeers = {127.0.0.1}``) unless the user already set
``LSLAPICFG``. Call :func:`configure_lsl` before importing ``pylsl`` or ``mne_lsl``.
"""

from __future__ import annotations

import os
from pathlib import Path

LSL_CONFIG = Path(__file__).with_name("lsl_api.cfg")


def configure_lsl() -> Path:
    """Set ``LSLAPICFG`` to the machine-scope config (if unset) and return the path in force."""
    os.environ.setdefault("LSLAPICFG", str(LSL_CONFIG))
    return Path(os.environ["LSLAPICFG"])
