"""Reports on :class:`mne.Report`: the CLI's ``report.html`` and sections for a user's report.

:func:`write_outputs` is what every command calls once the maps are final; it writes

- ``results.json`` and ``maps.npz`` (:meth:`AlignmentResult.save`);
- one PNG per figure section (``encoding_r.png``, ``encoding_r_normalized.png``,
  ``rsa_rho.png``, ``peak_latency.png``, ``noise_ceiling.png``, and any section added to
  :data:`neuralign.report.sections.SECTIONS`);
- ``report.html``: an :class:`mne.Report` (figures embedded) with the per-layer table and
  every setting, the page MNE users already read;
- ``extra.json`` when the caller recorded anything besides the result.

:func:`add_to_report` adds the same sections to a report of the user's own.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ..align.data import AlignmentResult, jsonable
from ..base import fill_doc
from .sections import SECTIONS, FigureSection
from .session import STATS_KEY


def add_to_report(result: AlignmentResult, report, *, extra: dict | None = None,
                  section: str | None = None, image_format: str | None = None,
                  figure_dir: str | Path | None = None) -> dict[str, Path]:
    """Add every section of :data:`~neuralign.report.sections.SECTIONS` to ``report``.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    report : mne.Report
        The report to add to (changed in place).
    extra : dict | None
        What the caller recorded besides the result (``planted``, ``simulated``...).
    section : str | None
        Put every item under this section of the report (e.g. a model's name when one report
        holds several results); ``None``: the sections' own groups (Summary, Maps, Settings).
    image_format : str | None
        ``png``, ``svg``, ``webp``...; ``None``: the report's own format.
    figure_dir : str | Path | None
        Also save each figure there as ``<name>.png``.

    Returns
    -------
    dict of str -> Path
        The PNG files written into ``figure_dir`` (empty without one).
    """
    extra = dict(extra or {})
    if figure_dir is not None:
        extra.setdefault("figure_dir", str(figure_dir))
    paths: dict[str, Path] = {}
    with warnings.catch_warnings():  # all-NaN slices (no ceiling >= 0.1) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        for sec in SECTIONS:
            made = sec.make(result, extra)
            if made is None:
                continue
            where = section or sec.group
            tags = ("neuralign", sec.name)
            title = sec.title if section is None else f"{section}: {sec.title}"
            if isinstance(sec, FigureSection):
                if figure_dir is not None:
                    paths[sec.name] = Path(figure_dir) / f"{sec.name}.png"
                    made.savefig(paths[sec.name])
                report.add_figure(made, title, caption=sec.caption, image_format=image_format,
                                  tags=tags, section=where)
            else:
                report.add_html(made, title, tags=tags, section=where)
    return paths


@fill_doc
def build_report(result: AlignmentResult, *, title: str, extra: dict | None = None,
                 figure_dir: str | Path | None = None):
    """A new :class:`mne.Report` holding every section of the result.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    %(title)s
    %(extra)s
    figure_dir : str | Path | None
        Also save each figure there as ``<name>.png``.

    Returns
    -------
    report : mne.Report
        The report (PNG figures embedded).
    paths : dict of str -> Path
        The PNG files written into ``figure_dir``.
    """
    import mne

    report = mne.Report(title=title, image_format="png", verbose=False)
    paths = add_to_report(result, report, extra=extra, figure_dir=figure_dir)
    return report, paths


@fill_doc
def write_outputs(result: AlignmentResult, out_dir: str | Path, *, title: str,
                  extra: dict | None = None) -> dict[str, Path]:
    """Write results, figures and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    %(out_dir)s
    %(title)s
    %(extra)s
        ``extra["planted"]`` (:mod:`neuralign.base.truth`) overlays a simulation's truth on
        the peak plot; ``extra["simulated"] = True`` labels the report as simulated data.

    Returns
    -------
    dict of str -> Path
        ``results``, ``maps``, one key per figure section (``encoding_r``,
        ``encoding_r_normalized``, ``rsa_rho``, ``peak_latency``, ``noise_ceiling``...),
        ``report``, and ``extra`` when ``extra`` is not empty.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = dict(extra or {})
    with warnings.catch_warnings():  # all-NaN slices (e.g. no ceiling >= 0.1) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        paths = dict(result.save(out))
    report, figs = build_report(result, title=title, extra=extra, figure_dir=out)
    paths.update(figs)
    paths["report"] = out / "report.html"
    tmp = out / "report.tmp.html"
    report.save(tmp, open_browser=False, overwrite=True, verbose=False)
    tmp.replace(paths["report"])
    extra = {k: v for k, v in extra.items() if not k.startswith("_")}  # "_": objects
    if extra:
        ej = out / "extra.json"
        ej.write_text(json.dumps(jsonable(extra), indent=1, default=str))
        paths["extra"] = ej
    return paths


def write_session(result, out_dir: str | Path, *, title: str, extra: dict | None = None,
                  results: dict | None = None, stats=None) -> dict[str, Path]:
    """Write a live session's results: first model, every model, and the statistics.

    Parameters
    ----------
    result : AlignmentResult
        The (first model's) maps.
    out_dir : str | Path
        The output folder.
    title : str
        Report title.
    extra : dict | None
        As :func:`~neuralign.report.write_outputs`'.
    results : dict of str to AlignmentResult | None
        Several models' maps (label -> maps); each is also written under ``models/LABEL/``.
    stats : Statistics | None
        The final statistics: into ``results.json`` (``statistics``), ``maps.npz``
        (``mask_LABEL``, ``latency_ci_LABEL``, ``peak_r_ci_LABEL``) and the report.

    Returns
    -------
    dict of str -> Path
        As :func:`~neuralign.report.write_outputs`, plus ``report_LABEL`` per model.
    """
    out = Path(out_dir)
    extra = dict(extra or {})
    several = bool(results) and len(results) > 1
    if several:
        extra["models"] = list(results)
    paths = write_outputs(result, out, title=title,
                          extra={**extra, STATS_KEY: stats} if stats is not None else extra)
    for label, res in results.items() if several else ():
        sub = write_outputs(res, out / "models" / label, title=f"{title} [{label}]",
                            extra=extra)
        paths[f"report_{label}"] = sub["report"]
    if stats is not None:
        rj = out / "results.json"
        meta = json.loads(rj.read_text())
        meta["statistics"] = jsonable(stats.to_dict())
        tmp = out / "results.tmp.json"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(rj)
        with np.load(out / "maps.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for label, m in stats.models.items():
            if m.mask is not None:
                arrays[f"mask_{label}"] = m.mask.mask
            if m.peaks is not None:
                arrays[f"latency_ci_{label}"] = m.peaks.latency_ci
                arrays[f"peak_r_ci_{label}"] = m.peaks.peak_r_ci
        np.savez_compressed(out / "maps.tmp.npz", **arrays)
        (out / "maps.tmp.npz").replace(out / "maps.npz")
    return paths
