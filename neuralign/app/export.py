"""Writing results from the window or a headless replay (no Qt here)."""

from __future__ import annotations

from pathlib import Path


def write_results(result, out_dir: str | Path, *, title: str, extra: dict | None = None) -> dict:
    """Write ``results.json``, ``maps.npz``, figures and ``report.html`` into ``out_dir``.

    Uses :func:`neuralign.report.write_outputs`; where that module is not installed, falls back
    to :meth:`AlignmentResult.save` (``results.json`` + ``maps.npz`` only).
    """
    try:
        from ..report import write_outputs
    except ImportError:
        return result.save(out_dir)
    return write_outputs(result, out_dir, title=title, extra=extra)
