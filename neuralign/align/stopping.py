"""When to stop a session: a rule set by the user, progress toward it, epochs still needed.

A rule is one or more conditions joined by ``and`` (all must hold):

- ``latency-ci<=20ms``: every layer with a significant peak has a 95% peak-latency interval at
  most 20 ms wide (and at least one layer is significant);
- ``ranking p<0.01``: the top model beats every other model with p below 0.01 (paired bootstrap
  over the same held-out stimuli; needs two models or more);
- ``epochs>=N``: at least ``N`` epochs.

Epochs still needed are extrapolated from how the quantity shrank so far: interval widths as
``c / n^b`` (``b`` fitted on the history, 0.5 until there is enough), and the ranking's z-score
(from its p) as ``c sqrt(n)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from ..errors import NeuralignError

_COND = re.compile(
    r"^\s*(?:(?P<lat>latency-ci)\s*<=\s*(?P<lat_v>[0-9.]+)\s*(?P<lat_u>ms|s)"
    r"|(?P<rank>ranking\s+p)\s*<\s*(?P<rank_v>[0-9.eE-]+)"
    r"|(?P<ep>epochs)\s*>=\s*(?P<ep_v>[0-9]+))\s*$")


@dataclass(frozen=True)
class Condition:
    """One condition of a stopping rule."""

    kind: str  # "latency" | "ranking" | "epochs"
    target: float  # seconds, p or epochs

    def describe(self) -> str:
        """The condition as the user writes it."""
        if self.kind == "latency":
            return f"latency-ci<={self.target * 1000:g}ms"
        if self.kind == "ranking":
            return f"ranking p<{self.target:g}"
        return f"epochs>={int(self.target)}"


def parse_rule(text: str) -> list[Condition]:
    """Conditions of a rule such as ``"latency-ci<=20ms and ranking p<0.01"``.

    Raises
    ------
    NeuralignError
        One line naming ``--stop-when`` and the part that is not understood.
    """
    parts = [p for p in re.split(r"\s+and\s+", str(text).strip()) if p]
    if not parts:
        raise NeuralignError("--stop-when: empty rule")
    out = []
    for part in parts:
        m = _COND.match(part)
        if not m:
            raise NeuralignError(
                f"--stop-when: cannot read {part!r} (use e.g. 'latency-ci<=20ms', "
                "'ranking p<0.01', 'epochs>=2000', joined by 'and')")
        if m["lat"]:
            v = float(m["lat_v"]) / (1000.0 if m["lat_u"] == "ms" else 1.0)
            if v <= 0:
                raise NeuralignError(f"--stop-when: the latency interval must be > 0: {part!r}")
            out.append(Condition("latency", v))
        elif m["rank"]:
            v = float(m["rank_v"])
            if not 0 < v < 1:
                raise NeuralignError(f"--stop-when: p must be in (0, 1): {part!r}")
            out.append(Condition("ranking", v))
        else:
            out.append(Condition("epochs", float(int(m["ep_v"]))))
    return out


@dataclass
class Status:
    """Where a session stands against its rule."""

    satisfied: bool
    progress: float  # 0..1, the least advanced condition
    epochs_needed: float | None  # more epochs estimated, None when unknown
    detail: dict

    def line(self) -> str:
        """A short status-line fragment."""
        need = "" if self.epochs_needed is None else f", ~{self.epochs_needed:.0f} more epochs"
        return ("stop rule MET" if self.satisfied
                else f"stop rule {self.progress * 100:.0f}%{need}")


@dataclass
class StoppingRule:
    """A parsed rule and its history (one entry per evaluation)."""

    conditions: list[Condition]
    history: list[dict] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> StoppingRule:
        """A rule from its text (see the module docstring)."""
        return cls(parse_rule(text))

    @property
    def text(self) -> str:
        """The rule as written."""
        return " and ".join(c.describe() for c in self.conditions)

    def evaluate(self, *, n_epochs: int, latency_ci: np.ndarray | None = None,
                 significant: np.ndarray | None = None, top_p: float | None = None) -> Status:
        """Check the rule now and record the state.

        Parameters
        ----------
        n_epochs : int
            Epochs so far.
        latency_ci : ndarray (L, 2), optional
            Peak-latency intervals of every layer (of the model the rule watches).
        significant : ndarray of bool (L,), optional
            Layers with a significant peak.
        top_p : float, optional
            p of the top model against every other (ranking).
        """
        width = None
        if latency_ci is not None:
            w = np.diff(np.asarray(latency_ci, float), axis=1)[:, 0]
            sig = np.ones(w.size, bool) if significant is None else np.asarray(significant, bool)
            w = w[sig & np.isfinite(w)]
            width = float(w.max()) if w.size else None
        entry = {"n_epochs": int(n_epochs), "widest_latency_ci_s": width,
                 "top_p": None if top_p is None or not np.isfinite(top_p) else float(top_p)}
        self.history.append(entry)
        met, progress, needed = [], [], []
        for c in self.conditions:
            ok, prog, need = self._one(c, n_epochs, width, entry["top_p"])
            met.append(ok)
            progress.append(prog)
            needed.append(need)
        entry["satisfied"] = all(met)
        known = [x for x in needed if x is not None]
        return Status(all(met), float(min(progress)) if progress else 1.0,
                      max(known) if known and not all(met) else (0.0 if all(met) else None),
                      {"rule": self.text, **entry})

    def _one(self, c: Condition, n: int, width: float | None, p: float | None):
        if c.kind == "epochs":
            return n >= c.target, min(1.0, n / c.target), max(0.0, c.target - n)
        if c.kind == "latency":
            if width is None:
                return False, 0.0, None
            ok = width <= c.target + 1e-12
            prog = min(1.0, c.target / width) if width > 0 else 1.0
            return ok, prog, 0.0 if ok else self._extrapolate("widest_latency_ci_s", n,
                                                                 width, c.target)
        if p is None:
            return False, 0.0, None
        ok = p < c.target
        z_now, z_need = norm.isf(max(p, 1e-300) / 2), norm.isf(c.target / 2)
        prog = min(1.0, z_now / z_need) if z_now > 0 else 0.0
        need = 0.0 if ok else (n * ((z_need / z_now) ** 2 - 1) if z_now > 0 else None)
        return ok, prog, need

    def _extrapolate(self, key: str, n: int, now: float, target: float) -> float | None:
        """Epochs more until ``key`` shrinks to ``target``, from width ~ c / n^b."""
        pts = [(h["n_epochs"], h[key]) for h in self.history
               if h.get(key) and h["n_epochs"] > 0 and h[key] > 0]
        b = 0.5
        if len(pts) >= 4 and pts[-1][0] > 1.5 * pts[0][0]:
            x = np.log([q[0] for q in pts])
            y = np.log([q[1] for q in pts])
            slope = float(np.polyfit(x, y, 1)[0])
            if slope < -0.05:
                b = -slope
        if n <= 0 or now <= 0:
            return None
        total = n * (now / target) ** (1.0 / b)
        return float(max(0.0, total - n)) if math.isfinite(total) else None

    def to_dict(self) -> dict:
        """JSON-ready rule and history."""
        return {"rule": self.text, "history": list(self.history)}
