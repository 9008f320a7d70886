"""What a live session writes at its end: every model's maps and the live statistics.

:func:`neuralign.report.write_session` writes the first model's results and report (as
:func:`~neuralign.report.write_outputs`), each model under ``models/LABEL/`` when there are
several, and the statistics of :class:`~neuralign.align.monitor.StatisticsMonitor`
(intervals, masks, ranking, comparisons, the stopping history) into ``results.json``,
``maps.npz`` and the report (sections ``live_statistics``, ``peak_latency_ci`` and
``stopping_history`` of :data:`~neuralign.report.sections.SECTIONS`).
"""

from __future__ import annotations

import html

import numpy as np

from .figures import new_figure

#: Key of ``extra`` that carries the live statistics to the report sections (not written to
#: ``extra.json``: :func:`neuralign.report.write_session` writes them into ``results.json``).
STATS_KEY = "_live_statistics"


def _fmt(x, nd: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def peak_latency_ci_figure(stats):
    """Peak latency of every layer of every model with its 95% interval (* = significant).

    Parameters
    ----------
    stats : Statistics
        A :class:`~neuralign.align.monitor.StatisticsMonitor` evaluation.

    Returns
    -------
    matplotlib.figure.Figure | None
        ``None`` when no model has intervals.
    """
    models = [(k, m) for k, m in stats.models.items() if m.peaks is not None]
    if not models:
        return None
    fig = new_figure((7, 4))
    ax = fig.add_subplot()
    for k, (label, m) in enumerate(models):
        x = np.arange(len(m.layers)) + 0.12 * k
        lat, ci = np.asarray(m.peaks.latency_s) * 1000, np.asarray(m.peaks.latency_ci) * 1000
        ax.errorbar(x, lat, yerr=np.abs(np.stack([lat - ci[:, 0], ci[:, 1] - lat])), fmt="o",
                    capsize=3, label=label, alpha=0.9)
        sig = m.significant
        if sig is not None and np.any(sig):
            ax.plot(x[sig], lat[sig], "k*", ms=8)
    ax.set_xlabel("layer (depth order)")
    ax.set_ylabel("peak latency (ms), 95% CI")
    ax.set_title("Peak latency per layer with 95% intervals (* = significant peak)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def stopping_figure(stats):
    """The widest significant peak-latency interval and the ranking's p against epochs.

    Parameters
    ----------
    stats : Statistics
        A :class:`~neuralign.align.monitor.StatisticsMonitor` evaluation.

    Returns
    -------
    matplotlib.figure.Figure | None
        ``None`` without a history.
    """
    hist = [h for h in stats.history if h.get("n_epochs")]
    if not hist:
        return None
    fig = new_figure((7, 3.5))
    ax = fig.add_subplot()
    n = np.array([h["n_epochs"] for h in hist], float)
    w = np.array([np.nan if h.get("widest_latency_ci_s") is None
                  else 1000 * h["widest_latency_ci_s"] for h in hist])
    ax.plot(n, w, "o-", label="widest significant peak-latency CI (ms)")
    ax.set_xlabel("epochs")
    ax.set_ylabel("CI width (ms)")
    p = np.array([np.nan if h.get("top_p") is None else h["top_p"] for h in hist])
    if np.isfinite(p).any():
        ax2 = ax.twinx()
        ax2.semilogy(n, p, "s--", color="C1", label="ranking: top model's p")
        ax2.set_ylabel("p (top model vs others)")
    ax.set_title(f"Stopping rule: {stats.settings.get('rule')}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def statistics_html(stats) -> str:
    """The ranking table, the paired comparisons and the stopping state, as HTML.

    Parameters
    ----------
    stats : Statistics
        A :class:`~neuralign.align.monitor.StatisticsMonitor` evaluation.

    Returns
    -------
    str
    """
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{html.escape(r.label)}</td><td>{html.escape(r.best_layer)}"
        f"</td><td>{_fmt(r.peak_r)} [{_fmt(r.peak_r_ci[0])}, {_fmt(r.peak_r_ci[1])}]</td>"
        f"<td>{_fmt(r.peak_latency_s * 1000, 0)} [{_fmt(r.peak_latency_ci[0] * 1000, 0)}, "
        f"{_fmt(r.peak_latency_ci[1] * 1000, 0)}]</td></tr>"
        for i, r in enumerate(stats.ranking.rows if stats.ranking else []))
    comp = "".join(
        f"<li>{html.escape(a)} - {html.escape(b)}: diff r {_fmt(v['diff'])} "
        f"[{_fmt(v['ci'][0])}, {_fmt(v['ci'][1])}], p = {v['p']:.3g} "
        f"({v['n_stimuli']} stimuli)</li>"
        for (a, b), v in (stats.ranking.pairs.items() if stats.ranking else []))
    stop = "" if stats.stopping is None else (
        f"<p>{html.escape(stats.stopping.line())} "
        f"({html.escape(str(stats.settings.get('rule')))})</p>")
    return (f"<p>{stats.n_epochs} epochs; {html.escape(str(stats.settings.get('interval')))}, "
            f"seed {stats.seed}.</p>"
            + (f"<table><tr><th>rank</th><th>model</th><th>best layer</th><th>peak r [95% CI]"
               f"</th><th>peak latency ms [95% CI]</th></tr>{rows}</table><ul>{comp}</ul>"
               if rows else "") + stop)
