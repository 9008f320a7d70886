"""Figures of the single-subject statistics (matplotlib Figures; the caller saves them).

The per-layer statistics come as the ``statistics`` record ``neuralign analyze`` writes into
``results.json`` (:meth:`neuralign.offline.analysis.LayerStatistics.to_dict`), so a report can
be made from a run's files alone.

- :func:`mask_figure`: the channel-mean encoding map with the family-wise significant cells
  outlined;
- :func:`peak_ci_figure`: per layer, peak latency and peak r with their bootstrap intervals
  (significant layers filled, the others hollow);
- :func:`ranking_figure`: feature sets ranked by their best layer's peak r with intervals;
- :func:`partition_figure`: unique and shared held-out R^2 over time with intervals, where
  each unique part is significant marked;
- :func:`statistics_html`: the statements and the per-layer intervals as HTML;
- :func:`write_comparison_report`: the page of several feature sets (an :class:`mne.Report`).
"""

from __future__ import annotations

import warnings

import numpy as np

from .figures import new_figure


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _mask(stats: dict) -> np.ndarray | None:
    m = stats.get("mask")
    return None if not m or m.get("cells") is None else np.asarray(m["cells"], bool)


def mask_figure(result, stats: dict):
    """Encoding r (channel mean, layer x time) with the significant cells outlined.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    stats : dict
        Their ``statistics`` record (without ``mask``: no outline).

    Returns
    -------
    matplotlib.figure.Figure
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = result.encoding_map()
    t = np.asarray(result.times) * 1000
    L = len(result.layers)
    fig = new_figure((9, 1.4 + 0.32 * L))
    ax = fig.subplots()
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    finite = m[np.isfinite(m)]
    vmax = float(np.abs(finite).max()) if finite.size else 1.0
    im = ax.imshow(m, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax or 1e-6,
                   extent=[t[0] - dt / 2, t[-1] + dt / 2, L - 0.5, -0.5],
                   interpolation="nearest")
    o = stats["options"]
    mask = _mask(stats)
    alpha, n_perm = o["alpha"], o["n_permutations"]
    if mask is not None and mask.any():
        # outline cell edges: contour of the mask upsampled k x k (staircase on the cells)
        k = 8
        up = np.kron(mask.astype(float), np.ones((k, k)))
        xs = t[0] - dt / 2 + (np.arange(up.shape[1]) + 0.5) * dt / k
        ys = -0.5 + (np.arange(up.shape[0]) + 0.5) / k
        ax.contour(xs, ys, up, levels=[0.5], colors="black", linewidths=1.2)
        title = (f"Encoding r; outlined: significant (family-wise alpha {alpha}, "
                 f"{n_perm} permutations, max statistic over layers x times)")
    elif mask is not None:
        title = (f"Encoding r; NO cell significant (family-wise alpha {alpha}, {n_perm} "
                 "permutations): not distinguishable from chance")
    else:
        title = "Encoding r (no permutation test)"
    ax.set_yticks(range(L))
    ax.set_yticklabels(result.layers, fontsize=8)
    ax.set_xlabel("time after stimulus onset (ms)")
    ax.set_ylabel("layer (depth order)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, pad=0.01).set_label("held-out r")
    fig.tight_layout()
    return fig


def peak_ci_figure(stats: dict, planted_ms=None):
    """Peak latency and peak r per layer with 95% bootstrap intervals.

    Parameters
    ----------
    stats : dict
        The ``statistics`` record.
    planted_ms : array-like | None
        Planted latencies of a simulation (ms), overlaid.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = stats["layers"]
    L = len(rows)
    x = np.arange(L)
    sig = (np.array([bool(r["significant"]) for r in rows]) if "mask" in stats else None)
    fig = new_figure((max(8.0, 0.7 * L + 4), 4))
    a1, a2 = fig.subplots(1, 2)
    for ax, key, scale, lab in ((a1, "peak_latency_s", 1000.0, "peak latency (ms)"),
                                (a2, "peak_r", 1.0, "peak r")):
        v = np.array([_num(r[key]) for r in rows]) * scale
        ci_key = {"peak_latency_s": "peak_latency_ci", "peak_r": "peak_r_ci"}[key]
        c = np.array([[_num(u) for u in r[ci_key]] for r in rows]).reshape(L, 2) * scale
        err = np.abs(np.stack([v - c[:, 0], c[:, 1] - v]))
        err = np.where(np.isfinite(err), err, 0)
        ax.errorbar(x, v, yerr=err, fmt="none", ecolor="gray", capsize=3)
        filled = np.ones(L, bool) if sig is None else sig
        ax.plot(x[filled], v[filled], "o", color="C0", label="significant"
                if sig is not None else "peak")
        if sig is not None and (~filled).any():
            ax.plot(x[~filled], v[~filled], "o", mfc="white", color="C0",
                    label="not significant")
        if planted_ms is not None and scale == 1000.0:
            ax.plot(x, np.asarray(planted_ms, float), "k*", ms=9, label="planted")
        ax.set_xticks(x)
        ax.set_xticklabels([r["layer"] for r in rows], rotation=60, ha="right", fontsize=8)
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    h = stats["hierarchy"]
    head = "peaks with 95% bootstrap intervals"
    if np.isfinite(_num(h.get("rho"))):
        head += f"; hierarchy rho = {_num(h['rho']):.2f}, p = {_num(h['p']):.3g}"
    elif h.get("note"):
        head += "; no hierarchy test (fewer than 3 significant layers)"
    fig.suptitle(head, fontsize=9)
    fig.tight_layout()
    return fig


def ranking_figure(ranking):
    """Feature sets ranked by their best layer's peak r (95% intervals).

    Parameters
    ----------
    ranking : Ranking
        :func:`~neuralign.align.ranking.rank_models`' result.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = ranking.rows
    fig = new_figure((max(4.0, 1.2 * len(rows) + 2), 3.5))
    ax = fig.subplots()
    x = np.arange(len(rows))
    v = np.array([r.peak_r for r in rows])
    ci = np.array([r.peak_r_ci for r in rows], float).reshape(-1, 2)
    e = np.abs(np.stack([v - ci[:, 0], ci[:, 1] - v])) if len(rows) else np.zeros((2, 0))
    err = np.where(np.isfinite(e), e, 0.0)
    ax.bar(x, v, yerr=err, capsize=4, color="C0", alpha=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r.label}\n({r.best_layer})" for r in rows], fontsize=8)
    ax.set_ylabel("peak r of the best layer")
    ps = [f"{a}>{b}: p={v['p']:.3g}" for (a, b), v in ranking.pairs.items()]
    ax.set_title("ranking (paired bootstrap over the same held-out stimuli)\n"
                 + "; ".join(ps[:3]), fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def partition_figure(res, *, alpha: float = 0.05):
    """Unique and shared held-out R^2 (channel mean) over time with 95% intervals.

    Parameters
    ----------
    res : PartitionResult
        The partition.
    alpha : float
        Level at which a time point's unique part is marked significant (any channel).

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = np.asarray(res.times, float) * 1000
    fig = new_figure((8, 4))
    ax = fig.subplots()
    y0 = 0.0
    for i, part in enumerate(res.parts):
        tc = res.time_course(part)
        lo, hi = res.ci_time[part]
        ax.plot(t, tc, color=f"C{i}", label=part)
        ax.fill_between(t, lo, hi, color=f"C{i}", alpha=0.2)
        y0 = min(y0, float(np.nanmin(lo)) if np.isfinite(lo).any() else 0.0)
    for i, part in enumerate(res.parts):
        if part in res.p_unique:
            sig = (np.asarray(res.p_unique[part]).reshape(res.n_channels, -1) <= alpha).any(0)
            ax.plot(t[sig], np.full(sig.sum(), y0 - 0.01 * (i + 1)), "|", color=f"C{i}",
                    ms=8)
    ax.axhline(0, color="gray", lw=0.8)
    neg = {k: v for k, v in res.negative.items() if v}
    title = "variance partition (held-out R^2, channel mean, 95% bootstrap intervals)"
    title += "\nticks: channel x time targets with a significant unique part (max statistic)"
    if neg:
        title += "\nnegative parts kept as is: " + ", ".join(f"{k} ({v} targets)"
                                                           for k, v in neg.items())
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("time after stimulus onset (ms)")
    ax.set_ylabel("R^2")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def statistics_html(stats: dict) -> str:
    """The statements and a table of per-layer peaks with intervals and significance.

    Parameters
    ----------
    stats : dict
        The ``statistics`` record.

    Returns
    -------
    str
        HTML.
    """
    import html

    def f(x, nd=3):
        x = _num(x)
        return "-" if not np.isfinite(x) else (f"{x:.0f}" if nd == 0 else f"{x:.{nd}f}")

    notes = "".join(f'<p class="alert alert-info">{html.escape(s)}</p>'
                    for s in stats.get("statements", []))
    head = ["layer", "peak (ms)", "95% CI (ms)", "peak r", "95% CI", "significant", "min p"]
    body = []
    for r in stats["layers"]:
        lat, (llo, lhi) = _num(r["peak_latency_s"]) * 1000, r["peak_latency_ci"]
        body.append([html.escape(r["layer"]), f(lat, 0),
                     f"{f(_num(llo) * 1000, 0)} to {f(_num(lhi) * 1000, 0)}", f(r["peak_r"]),
                     f"{f(r['peak_r_ci'][0])} to {f(r['peak_r_ci'][1])}",
                     {True: "yes", False: "no"}.get(r.get("significant"), "-"),
                     f(r.get("min_p"), 4)])
    table = ('<table class="table table-sm"><thead><tr>'
             + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                       for row in body) + "</tbody></table>")
    return notes + table


def write_comparison_report(out_dir, *, title: str, figures: dict, notes: list[str],
                            record: dict):
    """``report.html`` of several feature sets: statements, figures and the record.

    Parameters
    ----------
    out_dir : str | Path
        Folder of ``report.html`` and of the figures' PNG files.
    title : str
        Report title.
    figures : dict
        ``name -> (matplotlib Figure, caption)``; each also saved as ``name.png``.
    notes : list of str
        Statements, shown first.
    record : dict
        Shown as JSON at the end (what ``results.json`` holds).

    Returns
    -------
    dict of str to Path
        ``report`` and one PNG per figure.
    """
    import html
    import json
    from pathlib import Path

    import mne

    from ..align.data import jsonable

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = mne.Report(title=title, image_format="png", verbose=False)
    report.add_html("".join(f'<p class="alert alert-info">{html.escape(n)}</p>' for n in notes),
                    "Statements", section="Summary")
    paths = {}
    for name, (fig, caption) in figures.items():
        paths[name] = out / f"{name}.png"
        fig.savefig(paths[name])
        report.add_figure(fig, caption, caption=caption, section="Comparison")
    text = html.escape(json.dumps(jsonable(record), indent=1, default=str))
    report.add_html(f"<pre>{text}</pre>", "Record", section="Record")
    paths["report"] = out / "report.html"
    tmp = out / "report.tmp.html"
    report.save(tmp, open_browser=False, overwrite=True, verbose=False)
    tmp.replace(paths["report"])
    return paths
