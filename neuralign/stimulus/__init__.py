"""RSVP stimulus presentation with PsychoPy and LSL markers (``neuralign present``).

The presenter speaks only LSL: it sends every stimulus id as a marker on the flip that shows
it and writes the session design (:class:`neuralign.base.SessionDesign`). The plan side
(:mod:`.config`, :mod:`.sources`, :mod:`.plan`, :mod:`.timing`) needs no PsychoPy;
:mod:`.presenter` imports PsychoPy only when a run starts.
"""

from __future__ import annotations

from .config import RESERVED_MARKERS, SessionConfig, load_config
from .plan import PresentationPlan, Trial, build_plan
from .sources import resolve_source

__all__ = [
    "RESERVED_MARKERS",
    "PresentationPlan",
    "SessionConfig",
    "Trial",
    "build_plan",
    "load_config",
    "resolve_source",
]
