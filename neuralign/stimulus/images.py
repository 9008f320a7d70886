"""The presenter's images: decoded and resized before the run, or just ahead of it.

:class:`ImageFeeder` hands out the image of each trial in trial order, at the size
:func:`image_size_pix` computes from the display settings (degrees of visual angle or pixels).
"""

from __future__ import annotations

import queue
import threading

import numpy as np

from ..base import fill_doc
from .plan import PresentationPlan, Trial


def image_size_pix(plan: PresentationPlan) -> int:
    """Longest image side in pixels (degrees converted with the monitor geometry)."""
    d, m = plan.config.display, plan.config.monitor
    if d.image_units == "pix":
        return max(1, int(round(d.image_size)))
    # pixels per cm from the monitor's width; size = 2 d tan(theta / 2)
    cm = 2.0 * m.distance_cm * np.tan(np.deg2rad(d.image_size) / 2.0)
    return max(1, int(round(cm * m.resolution[0] / m.width_cm)))


@fill_doc
class ImageFeeder:
    """Decoded, resized images in trial order.

    Everything is decoded before the run when it fits ``budget_mb``; otherwise a background
    thread decodes ``lookahead`` trials ahead of the presentation.

    Parameters
    ----------
    plan : PresentationPlan
        The plan (its stimuli and catch-trial image).
    trials : list of Trial
        The trials, in presentation order.
    size_pix : int
        Longest image side in pixels.
    budget_mb : float
        Memory for decoding everything up front.
    lookahead : int
        Trials decoded ahead when the budget is exceeded.
    %(progress)s
    random_access : bool
        The trials may come in another order (closed loop): beyond the budget, images are
        decoded when asked for instead of ahead.
    """

    def __init__(self, plan: PresentationPlan, trials: list[Trial], size_pix: int, *,
                 budget_mb: float = 1024.0, lookahead: int = 64, progress: bool = True,
                 random_access: bool = False) -> None:
        self.size = size_pix
        self.sources = dict(plan.stimuli)
        if plan.target is not None:
            self.sources[plan.target.id] = plan.target
        self.order = [t.stimulus_id for t in trials]
        unique = list(dict.fromkeys(self.order))
        self.cache: dict[str, object] = {}
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self.random_access = bool(random_access)
        if len(unique) * size_pix * size_pix * 3 / 1e6 <= budget_mb:
            from tqdm import tqdm

            for sid in tqdm(unique, desc="loading images", unit="img", disable=not progress,
                            leave=False):
                self.cache[sid] = self._load(sid)
        elif not self.random_access:
            self._queue = queue.Queue(maxsize=lookahead)
            self._thread = threading.Thread(target=self._work, daemon=True)
            self._thread.start()

    def _load(self, sid: str):
        from PIL import Image

        im = self.sources[sid].open()
        scale = self.size / max(im.width, im.height)
        w, h = max(1, round(im.width * scale)), max(1, round(im.height * scale))
        if (w, h) != im.size:
            im = im.resize((w, h), Image.LANCZOS)
        return im

    def _work(self) -> None:
        for sid in self.order:
            if self._stop.is_set():
                return
            item = (sid, self._load(sid))
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def next(self, sid: str):
        """The image of the next trial (must be ``sid``)."""
        if self._queue is None:
            got = self.cache.get(sid)
            return got if got is not None else self._load(sid)
        got, im = self._queue.get()
        if got != sid:  # pragma: no cover - the feeder follows the trial order
            raise RuntimeError(f"image feeder out of order: {got} != {sid}")
        return im

    def close(self) -> None:
        """Stop the look-ahead thread."""
        self._stop.set()
