"""RSVP stimulus presentation with PsychoPy and LSL markers (``neuralign present``).

The design side (:mod:`.config`, :mod:`.sources`, :mod:`.design`, :mod:`.timing`) needs no
PsychoPy; :mod:`.presenter` imports PsychoPy only when a run starts.
"""

from __future__ import annotations

from .config import RESERVED_MARKERS, SessionConfig, load_config
from .design import SessionDesign, Trial, build_design, load_design_file
from .sources import Stimulus, resolve_source

__all__ = [
    "RESERVED_MARKERS",
    "SessionConfig",
    "SessionDesign",
    "Stimulus",
    "Trial",
    "build_design",
    "load_config",
    "load_design_file",
    "resolve_source",
]
