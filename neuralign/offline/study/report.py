"""A study's outputs: ``study.json``, ``group_maps.npz``, ``models.csv``, figures, report.

:func:`write_study_outputs` writes the tables; :func:`write_report` the figures (group maps,
time courses, scores, variance partitioning) and ``report.html``.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import numpy as np


def _fmt(x, nd: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{nd}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return html.escape(str(x))


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _fig_group_maps(summary, arrays, path: Path) -> Path:
    plt = _plt()
    models = summary["models"]
    times = np.asarray(summary["times"])
    n = len(models)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6), squeeze=False)
    vmax = max(float(np.nanmax(np.abs(arrays[f"{m}/encoding_r"]))) for m in models) or 1.0
    for ax, m in zip(axes[0], models):
        g = arrays[f"{m}/encoding_r"]
        im = ax.imshow(g, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                       extent=[times[0], times[-1], -0.5, g.shape[0] - 0.5], interpolation="nearest")
        mask = arrays.get(f"{m}/plane_mask")
        if mask is not None and mask.any():
            ax.contour(times, np.arange(g.shape[0]), mask.astype(float), levels=[0.5],
                       colors="k", linewidths=1.0)
        ax.set_title(m)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("layer")
        layers = summary["per_model"][m]["layers"]
        step = max(1, len(layers) // 12)
        ax.set_yticks(range(0, len(layers), step), layers[::step], fontsize=7)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="group mean encoding r")
    fig.suptitle("Group layer x time maps (contour: significant cluster)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fig_time_courses(summary, arrays, path: Path) -> Path:
    plt = _plt()
    times = np.asarray(summary["times"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    floor = min(float(np.nanmin(np.nanmean(np.nanmean(arrays[f"{m}/subject_encoding_r"], 1), 0)))
                for m in summary["models"])
    for k, m in enumerate(summary["models"]):
        subj = arrays[f"{m}/subject_encoding_r"]  # (S, L, T)
        lm = np.nanmean(subj, axis=1)
        mean = np.nanmean(lm, axis=0)
        (line,) = ax.plot(times, mean, label=m)
        if lm.shape[0] > 1:
            se = np.nanstd(lm, axis=0, ddof=1) / np.sqrt(lm.shape[0])
            ax.fill_between(times, mean - se, mean + se, color=line.get_color(), alpha=0.2)
        mask = arrays.get(f"{m}/time_mask")
        if mask is not None and mask.any():
            y = np.full(times.size, np.nan)
            y[mask] = floor - 0.01 * (k + 1)
            ax.plot(times, y, lw=3, color=line.get_color())
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("encoding r (mean over layers)")
    ax.legend(fontsize=8)
    ax.set_title("Layer-mean time courses (± SE over subjects; bars: significant clusters)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fig_scores(summary, path: Path) -> Path:
    plt = _plt()
    models = summary["models"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    peak = [summary["per_model"][m]["group"]["peak_r"] for m in models]
    axes[0].bar(range(len(models)), peak, color="tab:blue", alpha=0.7)
    for i, m in enumerate(models):
        ci = (summary["per_model"][m].get("stats") or {}).get("peak_r_ci")
        if ci and None not in ci:
            axes[0].plot([i, i], ci, color="k")
        vals = [summary["per_subject"][m][s]["peak_r"] for s in summary["subjects"]]
        axes[0].scatter(np.full(len(vals), i), vals, color="k", s=8, zorder=3)
    axes[0].set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
    axes[0].set_ylabel("peak r (group map; dots: subjects)")
    for m in models:
        e = summary["per_model"][m]
        n = e["n_layers"]
        depth = (np.arange(n) + 1) / n
        (line,) = axes[1].plot(depth, e["peak_latency_per_layer_s"], marker="o", ms=3, label=m)
        ci = (e.get("stats") or {}).get("peak_latency_ci_s")
        if ci and ci.get("lo") is not None:
            axes[1].fill_between(depth, np.asarray(ci["lo"], dtype=float),
                                 np.asarray(ci["hi"], dtype=float), color=line.get_color(),
                                 alpha=0.15)
    axes[1].set_xlabel("relative layer depth")
    axes[1].set_ylabel("peak latency (s; band: bootstrap CI)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fig_varpart(vp: dict, times, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    tc = vp["time_courses"]
    ax.plot(times, tc["unique_a"], label=f"unique {vp['a']}.{vp['layer_a']}")
    ax.plot(times, tc["unique_b"], label=f"unique {vp['b']}.{vp['layer_b']}")
    ax.plot(times, tc["shared"], label="shared")
    ax.plot(times, tc["r2_ab"], "k--", lw=0.8, label="joint R²")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("held-out R² (mean over channels)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _units_html(ur: dict) -> str:
    """Units recurring over subjects and readouts against ridge, as HTML (empty when off)."""
    if not ur:
        return ""
    rows = []
    for m, d in ur.items():
        for layer, e in (d.get("units") or {}).items():
            rec = ", ".join(f"{u['unit']} ({u['subjects']})" for u in e["recurring_units"][:10])
            rows.append(f"<tr><td>{html.escape(m)}</td><td>{html.escape(layer)}</td>"
                        f"<td>units</td><td>{html.escape(rec or '–')}</td></tr>")
        for layer, e in (d.get("readouts") or {}).items():
            txt = "; ".join(f"{k}: {_fmt(g['mean_diff'])} (better in {g['n_better']}, worse in "
                            f"{g['n_worse']} of {g['n_subjects']}, sign-flip p "
                            f"{_fmt(g['p_sign_flip'])})" for k, g in e["group"].items())
            rows.append(f"<tr><td>{html.escape(m)}</td><td>{html.escape(layer)}</td>"
                        f"<td>readouts</td><td>{html.escape(txt)}</td></tr>")
    return ("<h2>Units and readouts</h2><p>Units: those among the best ten of at least half of "
            "the subjects (number of subjects). Readouts: mean r minus ridge's over subjects; "
            "per-subject files are in the cache folder of each subject x model.</p><table><tr>"
            "<th>model</th><th>layer</th><th>analysis</th><th>result</th></tr>"
            + "".join(rows) + "</table>")


def _varpart_tests(vp: dict) -> str:
    """Per-subject tests of the unique parts and the negative-part flags, as HTML."""
    per = vp.get("per_subject") or {}
    if not per:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(s)}</td><td>{_fmt(d['window_mean']['unique_a'])}</td>"
        f"<td>{_fmt(d['p_unique_mean']['unique_a'])}</td>"
        f"<td>{_fmt(d['window_mean']['unique_b'])}</td>"
        f"<td>{_fmt(d['p_unique_mean']['unique_b'])}</td>"
        f"<td>{_fmt(d['window_mean']['shared'])}</td>"
        f"<td>{sum(d['negative_targets'].values())}</td></tr>" for s, d in per.items())
    flags = "".join(f"<p class='note'>{html.escape(f)}</p>" for f in vp.get("flags", []))
    return ("<table><tr><th>subject</th><th>unique A (window)</th><th>p</th>"
            "<th>unique B (window)</th><th>p</th><th>shared (window)</th>"
            "<th>negative targets (all parts)</th></tr>" + rows + "</table>" + flags)


def write_report(cfg, summary: dict, arrays: dict) -> dict[str, Path]:
    """Write the study's figures and ``report.html`` into ``cfg.out``.

    Parameters
    ----------
    cfg : StudyConfig
        The study.
    summary : dict
        The ``study.json`` content.
    arrays : dict of str to ndarray
        The group arrays, keyed ``<model>/<name>``.

    Returns
    -------
    dict of str to Path
        ``report`` and one entry per figure.
    """
    out = Path(cfg.out)
    figs = {
        "fig_group_maps": _fig_group_maps(summary, arrays, out / "group_maps.png"),
        "fig_time_courses": _fig_time_courses(summary, arrays, out / "time_courses.png"),
        "fig_scores": _fig_scores(summary, out / "scores.png"),
    }
    for i, vp in enumerate(summary.get("variance_partitioning") or []):
        figs[f"fig_varpart_{i}"] = _fig_varpart(vp, np.asarray(summary["times"]),
                                                out / f"varpart_{i}.png")
    title = html.escape(cfg.title or f"neuralign study: {summary['study']}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
             "padding:3px 6px;text-align:right}th{background:#eee}.note{color:#a40}</style>",
             f"</head><body><h1>{title}</h1>",
             f"<p>{len(summary['subjects'])} subjects x {len(summary['models'])} models; "
             f"{len(summary['channels'])} channels; {len(summary['times'])} time points "
             f"({summary['times'][0]:.3f}..{summary['times'][-1]:.3f} s); "
             f"window {summary['window_s'][0]}..{summary['window_s'][1]} s.</p>"]
    for n in summary.get("notes", []):
        parts.append(f"<p class='note'>Note: {html.escape(n)}</p>")
    parts.append("<h2>Models</h2><table><tr><th>model</th><th>layers</th><th>peak r</th>"
                 "<th>95% CI</th><th>peak layer</th><th>rel. depth</th><th>latency (s)</th>"
                 "<th>mean r in window</th><th>peak r / ceiling</th><th>RSA peak ρ</th>"
                 "<th>plane cluster p</th><th>descriptors</th></tr>")
    for m, e in summary["per_model"].items():
        g = e["group"]
        s = e.get("stats") or {}
        ci = s.get("peak_r_ci")
        cp = (s.get("plane_cluster_test") or {}).get("cluster_p") or []
        parts.append(
            f"<tr><td>{html.escape(m)}</td><td>{e['n_layers']}</td><td>{_fmt(g['peak_r'])}</td>"
            f"<td>{_fmt(ci[0]) + '..' + _fmt(ci[1]) if ci else '–'}</td>"
            f"<td>{html.escape(e['layers'][g['peak_layer']]) if g['peak_layer'] is not None else '–'}</td>"
            f"<td>{_fmt(g['relative_depth'])}</td><td>{_fmt(g['peak_latency_s'])}</td>"
            f"<td>{_fmt(g['window_r'])}</td><td>{_fmt(g.get('peak_r_normalized'))}</td>"
            f"<td>{_fmt(g.get('rsa_peak_rho'))}</td><td>{_fmt(min(cp)) if cp else '–'}</td>"
            f"<td>{html.escape(json.dumps(e.get('descriptors') or {}))}</td></tr>")
    parts.append("</table>")
    parts.append("<h2>Subjects</h2><table><tr><th>model</th>"
                 + "".join(f"<th>{html.escape(s)} peak r</th>" for s in summary["subjects"])
                 + "</tr>")
    for m in summary["models"]:
        parts.append(f"<tr><td>{html.escape(m)}</td>" + "".join(
            f"<td>{_fmt(summary['per_subject'][m][s]['peak_r'])}</td>"
            for s in summary["subjects"]) + "</tr>")
    parts.append("</table>")
    if summary.get("comparisons"):
        parts.append("<h2>Model comparisons (paired over subjects)</h2><table><tr><th>A</th>"
                     "<th>B</th><th>Δ peak r</th><th>p (sign flip)</th><th>p corrected</th>"
                     "<th>Δ window r</th><th>p corrected</th></tr>")
        for c in summary["comparisons"]:
            parts.append(
                f"<tr><td>{html.escape(c['a'])}</td><td>{html.escape(c['b'])}</td>"
                f"<td>{_fmt(c['peak_r']['mean_diff'])}</td><td>{_fmt(c['peak_r']['p_perm'])}</td>"
                f"<td>{_fmt(c['peak_r'].get('p_perm_corrected'))}</td>"
                f"<td>{_fmt(c['window_r']['mean_diff'])}</td>"
                f"<td>{_fmt(c['window_r'].get('p_perm_corrected'))}</td></tr>")
        parts.append("</table>")
    reg = summary.get("descriptor_regression")
    if reg:
        parts.append(f"<h2>Alignment ({html.escape(reg.get('score', ''))}) vs model descriptors"
                     f"</h2><p>R² = {_fmt(reg.get('r2_full'))}, adjusted "
                     f"{_fmt(reg.get('adj_r2_full'))}, {reg['n_models']} models.</p>")
        if reg.get("warning"):
            parts.append(f"<p class='note'>{html.escape(reg['warning'])}</p>")
        parts.append("<table><tr><th>descriptor</th><th>kind</th><th>R² alone</th>"
                     "<th>unique R²</th><th>Shapley R²</th><th>share</th></tr>")
        for k, v in reg["descriptors"].items():
            parts.append(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v.get('kind')))}</td>"
                         f"<td>{_fmt(v.get('r2_alone'))}</td><td>{_fmt(v.get('r2_unique'))}</td>"
                         f"<td>{_fmt(v.get('shapley_r2'))}</td><td>{_fmt(v.get('share'))}</td></tr>")
        parts.append("</table>")
        if reg.get("family_over_params") is not None and not reg.get("warning"):
            parts.append(f"<p>Architecture family explains {_fmt(reg['family_over_params'])}x "
                         "the variance that parameter count explains (Shapley R²).</p>")
    for i, vp in enumerate(summary.get("variance_partitioning") or []):
        wm = vp["window_mean"]
        parts.append(f"<h2>Variance partitioning: {html.escape(vp['a'])}.{html.escape(vp['layer_a'])}"
                     f" vs {html.escape(vp['b'])}.{html.escape(vp['layer_b'])}</h2>"
                     f"<p>Mean over the window: unique A {_fmt(wm['unique_a'])}, unique B "
                     f"{_fmt(wm['unique_b'])}, shared {_fmt(wm['shared'])}, joint R² "
                     f"{_fmt(wm['r2_ab'])}.</p>" + _varpart_tests(vp)
                     + f"<img src='varpart_{i}.png'>")
    parts.append(_units_html(summary.get("units_readouts") or {}))
    parts.append("<h2>Figures</h2><img src='group_maps.png'><br><img src='time_courses.png'>"
                 "<br><img src='scores.png'>")
    parts.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(summary["settings"], indent=1))
                 + "</pre></body></html>")
    rep = out / "report.html"
    rep.write_text("\n".join(parts), encoding="utf-8")
    return {"report": rep, **figs}


def write_study_outputs(cfg, summary: dict, arrays: dict, *,
                        report: bool = True) -> dict[str, Path]:
    """Write the study's outputs into ``cfg.out``.

    Parameters
    ----------
    cfg : StudyConfig
        The study.
    summary : dict
        The ``study.json`` content (:func:`~neuralign.offline.study.aggregate.aggregate`).
    arrays : dict of str to ndarray
        The group arrays, keyed ``<model>/<name>``.
    report : bool
        Also write figures and ``report.html``.

    Returns
    -------
    dict of str to Path
        ``study``, ``maps``, ``table`` and, with ``report``, the report and its figures.
    """
    out = cfg.out
    paths: dict[str, Path] = {}
    p = out / "study.json"
    p.write_text(json.dumps(summary, indent=1))
    paths["study"] = p
    z = out / "group_maps.npz"
    np.savez_compressed(z, **{k.replace("/", "__"): v for k, v in arrays.items()})
    paths["maps"] = z
    t = out / "models.csv"
    with open(t, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "n_layers", "peak_r", "peak_r_ci_lo", "peak_r_ci_hi", "peak_layer",
                    "relative_depth", "peak_latency_s", "window_r", "peak_r_normalized",
                    "rsa_peak_rho", "family", "params", "encoder", "downstream"])
        for m, e in summary["per_model"].items():
            g = e["group"]
            ci = (e.get("stats") or {}).get("peak_r_ci") or [None, None]
            d = e.get("descriptors") or {}
            w.writerow([m, e["n_layers"], g["peak_r"], ci[0], ci[1],
                        e["layers"][g["peak_layer"]] if g["peak_layer"] is not None else None,
                        g["relative_depth"], g["peak_latency_s"], g["window_r"],
                        g.get("peak_r_normalized"), g.get("rsa_peak_rho"), d.get("family"),
                        d.get("params"), d.get("encoder"), d.get("downstream")])
    paths["table"] = t
    if report:
        paths.update(write_report(cfg, summary, arrays))
    return paths
