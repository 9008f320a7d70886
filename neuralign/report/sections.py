"""What a report holds, in order: one registry of sections for ``report.html`` and
:meth:`neuralign.report.AlignmentResult.add_to_report`.

:data:`SECTIONS` lists every section: a :class:`FigureSection` (a figure, also written as
``<name>.png`` by :func:`neuralign.report.write_outputs`) or an :class:`HtmlSection` (a
table or text). Each has a ``make(result, extra)`` that returns the figure / HTML, or
``None`` where the result lacks what the section shows (a report without statistics simply
has no statistics figures). To add figures (statistics, partitions, units...), write the
figure function in :mod:`neuralign.report.figures` (or a module of its own beside it) and add
a section here; the CLI's PNG files, ``report.html`` and the Python API then all have it.
What a section needs beyond the result's own fields travels in ``extra`` (the dict every
command hands to :func:`neuralign.report.write_outputs` and that ends up in ``extra.json``).
"""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..align.data import jsonable
from ..base.truth import planted_latencies
from . import figures, session, stat_figures, unit_sections


@dataclass(frozen=True)
class FigureSection:
    """A figure of the report.

    Parameters
    ----------
    name : str
        Key and file stem: ``write_outputs`` writes ``<name>.png`` and returns its path
        under this key.
    title : str
        The section's title in the report.
    caption : str
        The figure's caption.
    make : callable
        ``make(result, extra)`` -> :class:`matplotlib.figure.Figure`, or ``None`` when
        the result has nothing to show here.
    group : str
        The ``mne.Report`` section it belongs to.
    """

    name: str
    title: str
    caption: str
    make: Callable
    group: str = "Maps"


@dataclass(frozen=True)
class HtmlSection:
    """A piece of HTML in the report (tables, notes, settings).

    Parameters
    ----------
    name : str
        Key of the section.
    title : str
        The section's title in the report.
    make : callable
        ``make(result, extra)`` -> str (HTML), or ``None`` when there is nothing to show.
    group : str
        The ``mne.Report`` section it belongs to.
    """

    name: str
    title: str
    make: Callable
    group: str = "Summary"


def layer_table(result) -> list[dict]:
    """Per-layer summary rows: peak latency (ms) and peak value of encoding and RSA.

    Parameters
    ----------
    result : AlignmentResult
        The maps.

    Returns
    -------
    list of dict
        One row per layer: ``layer``, ``enc_peak_ms``, ``enc_peak_r``, ``enc_norm_peak_ms``,
        ``enc_norm_peak``, ``rsa_peak_ms``, ``rsa_peak_rho``.
    """
    with warnings.catch_warnings():  # layers/times without a usable ceiling are NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        lat, val = result.peaks("encoding")
        nlat, nval = result.peaks("encoding", normalized=True)
        rlat, rval = result.peaks("rsa")
    rows = []
    for i, name in enumerate(result.layers):
        rows.append({
            "layer": name,
            "enc_peak_ms": lat[i] * 1000,
            "enc_peak_r": val[i],
            "enc_norm_peak_ms": nlat[i] * 1000,
            "enc_norm_peak": nval[i],
            "rsa_peak_ms": rlat[i] * 1000,
            "rsa_peak_rho": rval[i],
        })
    return rows


def fmt(x, nd: int = 3) -> str:
    """A number for an HTML table: ``nd`` decimals, ``-`` for None/NaN, escaped text else.

    Parameters
    ----------
    x : object
        The value.
    nd : int
        Decimals (0: an integer).

    Returns
    -------
    str
        The cell text.
    """
    if x is None:
        return "-"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return html.escape(str(x))
    if not np.isfinite(xf):
        return "-"
    return f"{xf:.0f}" if nd == 0 else f"{xf:.{nd}f}"


def html_table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table of already formatted cells (the header is escaped here).

    Parameters
    ----------
    head : list of str
        Column titles.
    rows : list of list of str
        Cells (HTML).

    Returns
    -------
    str
        ``<table>...</table>``.
    """
    return ('<table class="table table-sm table-striped"><thead><tr>'
            + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def summary_html(result, extra: dict) -> str:
    """What the maps are (axes, measures), a note when the EEG is simulated, the peaks table.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    extra : dict
        ``extra["simulated"]`` adds the note; ``extra["planted"]`` a planted-latency column.

    Returns
    -------
    str
        HTML.
    """
    planted = planted_latencies(extra.get("planted"), result.layers)
    head = ["layer", "encoding peak (ms)", "peak r", "normalised peak (ms)", "peak r / ceiling",
            "RSA peak (ms)", "peak rho"]
    if planted is not None:
        head.append("planted (ms)")
    rows = []
    for i, row in enumerate(layer_table(result)):
        cells = [html.escape(row["layer"]), fmt(row["enc_peak_ms"], 0), fmt(row["enc_peak_r"]),
                 fmt(row["enc_norm_peak_ms"], 0), fmt(row["enc_norm_peak"]),
                 fmt(row["rsa_peak_ms"], 0), fmt(row["rsa_peak_rho"])]
        if planted is not None:
            cells.append(fmt(planted[i] * 1000, 0))
        rows.append(cells)
    note = ""
    if extra.get("simulated"):
        note = ('<p class="alert alert-warning"><b>The EEG in this report is simulated</b> by '
                "neuralign's synthetic brain with a planted layer-latency hierarchy; it is not "
                "recorded data.</p>")
    t = np.asarray(result.times)
    return (f"{note}<p>{len(result.layers)} layers, {len(result.ch_names)} channels, "
            f"{t.size} time points ({fmt(t[0] * 1000, 0)} to {fmt(t[-1] * 1000, 0)} ms). "
            "Encoding r is the held-out Pearson r of a ridge model per layer, channel and time, "
            "averaged over channels; RSA rho is the Spearman correlation between the layer's "
            "and the EEG's RDMs.</p>" + html_table(head, rows))


def settings_html(result, extra: dict) -> str:
    """Every setting, count and extra record of the run, as JSON blocks.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    extra : dict
        What the caller recorded besides the result (command, options, planted truth...).

    Returns
    -------
    str
        HTML.
    """
    out = []
    for name, obj in (("settings", result.settings), ("counts", result.counts),
                      ("extra", extra)):
        text = json.dumps(jsonable(obj), indent=1, default=str)
        out.append(f"<h4>{html.escape(name)}</h4><pre>{html.escape(text)}</pre>")
    return "".join(out)


def analyses_html(result, extra: dict) -> str | None:
    """The figures of further analyses (units, readouts) that were written beside the report.

    ``result.analyses[name]["figures"]`` names PNG files in ``extra["figure_dir"]`` (set by
    :func:`neuralign.report.add_to_report` when it writes figures); they are embedded.
    """
    import base64

    folder = extra.get("figure_dir")
    if not folder or not result.analyses:
        return None
    from pathlib import Path

    parts = []
    for name, a in result.analyses.items():
        for f in (a.get("figures") or []) if isinstance(a, dict) else []:
            p = Path(folder) / str(f)
            if p.is_file():
                data = base64.b64encode(p.read_bytes()).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(str(f))}" style="max-width:100%" '
                             f'src="data:image/png;base64,{data}"><figcaption>'
                             f"{html.escape(name)}: {html.escape(str(f))}</figcaption></figure>")
    return "".join(parts) or None


def _planted_ms(result, extra: dict):
    pl = planted_latencies(extra.get("planted"), result.layers)
    return None if pl is None else pl * 1000


#: Every section of a report, in order (see the module docstring to add one).
SECTIONS: tuple[FigureSection | HtmlSection, ...] = (
    HtmlSection("summary", "Per-layer peaks", summary_html),
    FigureSection("encoding_r", "Encoding r",
                  "Encoding r (held-out, mean over channels), layer x latency",
                  lambda result, extra: figures.plot_encoding(result)),
    FigureSection("encoding_r_normalized", "Encoding r / noise ceiling",
                  "Encoding r divided by the noise ceiling, layer x latency",
                  lambda result, extra: figures.plot_encoding(result, normalized=True)),
    FigureSection("rsa_rho", "RSA", "RSA Spearman rho, layer x latency",
                  lambda result, extra: figures.plot_rsa(result)),
    FigureSection("peak_latency", "Peak latency", "Peak latency per layer",
                  lambda result, extra: figures.plot_peaks(result, planted=extra.get("planted"))),
    FigureSection("noise_ceiling", "Noise ceiling", "Noise ceiling over time",
                  lambda result, extra: figures.plot_noise_ceiling(result)),
    HtmlSection("statistics", "Statistics",
                lambda result, extra: (stat_figures.statistics_html(extra["statistics"])
                                       if extra.get("statistics") else None),
                group="Statistics"),
    FigureSection("encoding_r_significance", "Significance",
                  "Encoding r with the family-wise significant cells outlined",
                  lambda result, extra: (stat_figures.mask_figure(result, extra["statistics"])
                                         if extra.get("statistics") else None),
                  group="Statistics"),
    FigureSection("peak_intervals", "Peak intervals",
                  "Peak latency and peak r per layer, 95% bootstrap intervals (hollow: not "
                  "significant)",
                  lambda result, extra: (stat_figures.peak_ci_figure(
                      extra["statistics"], _planted_ms(result, extra))
                      if extra.get("statistics") else None),
                  group="Statistics"),
    HtmlSection("live_statistics", "Confidence, ranking and stopping",
                lambda result, extra: (session.statistics_html(extra[session.STATS_KEY])
                                       if extra.get(session.STATS_KEY) is not None else None),
                group="Statistics"),
    FigureSection("peak_latency_ci", "Peak latency intervals",
                  "Peak latency per layer of every model, 95% intervals (* = significant)",
                  lambda result, extra: (session.peak_latency_ci_figure(extra[session.STATS_KEY])
                                         if extra.get(session.STATS_KEY) is not None else None),
                  group="Statistics"),
    FigureSection("stopping_history", "Stopping rule",
                  "Widest significant peak-latency interval and the ranking's p vs epochs",
                  lambda result, extra: (session.stopping_figure(extra[session.STATS_KEY])
                                         if extra.get(session.STATS_KEY) is not None else None),
                  group="Statistics"),
    HtmlSection("units", "Unit-level encoding", unit_sections.units_html, group="Analyses"),
    HtmlSection("readouts", "Readouts", unit_sections.readouts_html, group="Analyses"),
    HtmlSection("analyses", "Further analyses", analyses_html, group="Analyses"),
    HtmlSection("settings", "Settings", settings_html, group="Settings"),
)
