"""Write an :class:`~neuralign.align.data.AlignmentResult` to disk: data, figures, HTML report.

``write_outputs`` produces, in ``out_dir``:

- ``results.json`` and ``maps.npz`` (:meth:`AlignmentResult.save`);
- ``encoding_r.png``, ``encoding_r_normalized.png``, ``rsa_rho.png``: layer x latency heat maps;
- ``peak_latency.png``: peak latency per layer (planted latencies overlaid when known);
- ``noise_ceiling.png``: noise ceilings over time (mean over channels);
- ``report.html``: a self-contained page (figures embedded as base64) with a per-layer table
  and every setting.
"""

from __future__ import annotations

import base64
import html
import json
import warnings
from pathlib import Path

import numpy as np

from .align.data import AlignmentResult, jsonable
from .base import fill_doc
from .base.truth import planted_latencies


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _heatmap(path: Path, m: np.ndarray, result: AlignmentResult, *, title: str, label: str,
             diverging: bool = False) -> Path:
    plt = _plt()
    times_ms = np.asarray(result.times) * 1000.0
    n_layers = len(result.layers)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * n_layers), dpi=100)
    dt = float(np.median(np.diff(times_ms))) if times_ms.size > 1 else 1.0
    extent = [times_ms[0] - dt / 2, times_ms[-1] + dt / 2, n_layers - 0.5, -0.5]
    finite = m[np.isfinite(m)]
    if diverging:
        vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
        vmin, cmap = -vmax, "RdBu_r"
    else:
        vmin = float(min(0.0, finite.min())) if finite.size else 0.0
        vmax = float(finite.max()) if finite.size else 1.0
        cmap = "viridis"
    if vmax <= vmin:
        vmax = vmin + 1e-6
    im = ax.imshow(m, aspect="auto", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, row in enumerate(m):
            if np.isfinite(row).any():
                j = int(np.nanargmax(row))
                ax.plot(times_ms[j], i, marker="o", ms=5, mfc="white", mec="black", mew=0.8)
    ax.set_yticks(range(n_layers))
    ax.set_yticklabels(result.layers, fontsize=8)
    ax.set_xlabel("time after stimulus onset (ms)")
    ax.set_ylabel("layer (depth order)")
    ax.axvline(0, color="gray" if diverging else "white", lw=0.8, ls="--")
    ax.set_title(title + "  (o = peak per layer)", fontsize=10)
    cb = fig.colorbar(im, ax=ax, pad=0.01)
    cb.set_label(label)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _peak_plot(path: Path, result: AlignmentResult, extra: dict) -> Path:
    plt = _plt()
    n = len(result.layers)
    x = np.arange(n)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * n + 2), 4), dpi=100)
    enc_lat, _ = result.peaks("encoding")
    rsa_lat, _ = result.peaks("rsa")
    ax.plot(x, enc_lat * 1000, "o-", label="encoding r peak")
    ax.plot(x, rsa_lat * 1000, "s--", label="RSA rho peak", alpha=0.8)
    planted = planted_latencies((extra or {}).get("planted"), result.layers)
    if planted is not None:
        ax.plot(x, planted * 1000, "k*:", ms=10, label="planted (simulation truth)")
    ax.set_xticks(x)
    ax.set_xticklabels(result.layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("peak latency (ms)")
    ax.set_xlabel("layer (depth order)")
    ax.set_title("Peak latency per layer", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _noise_plot(path: Path, result: AlignmentResult) -> Path:
    plt = _plt()
    t = np.asarray(result.times) * 1000
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    labels = {
        "r_ceiling": "r ceiling (scored means)",
        "spearman_brown": "split-half, Spearman-Brown",
        "things_lower": "THINGS-EEG2 lower bound",
        "things_upper": "THINGS-EEG2 upper bound",
    }
    any_line = False
    for key, lab in labels.items():
        if key in result.noise_ceiling:
            y = result.noise_ceiling_time(key)
            if np.isfinite(y).any():
                ax.plot(t, y, label=lab)
                any_line = True
    enc = result.encoding_map()
    if np.isfinite(enc).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ax.plot(t, np.nanmax(enc, axis=0), "k--", lw=1, label="best layer's encoding r")
        any_line = True
    if not any_line:
        ax.text(0.5, 0.5, "no repetitions: no noise ceiling", ha="center", transform=ax.transAxes)
    ax.set_xlabel("time after stimulus onset (ms)")
    ax.set_ylabel("r (mean over channels)")
    ax.set_title("Noise ceiling over time", fontsize=10)
    ax.grid(alpha=0.3)
    if any_line:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def layer_table(result: AlignmentResult) -> list[dict]:
    """Per-layer summary rows: peak latency (ms) and peak value of encoding and RSA."""
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


def _fmt(x, nd: int = 3) -> str:
    if x is None:
        return "-"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return html.escape(str(x))
    if not np.isfinite(xf):
        return "-"
    return f"{xf:.0f}" if nd == 0 else f"{xf:.{nd}f}"


def _html(out: Path, result: AlignmentResult, figures: dict[str, Path], *, title: str,
          extra: dict) -> Path:
    def img(key: str, caption: str) -> str:
        data = base64.b64encode(figures[key].read_bytes()).decode("ascii")
        return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    planted = planted_latencies((extra or {}).get("planted"), result.layers)
    head = ["layer", "encoding peak (ms)", "peak r", "normalised peak (ms)", "peak r / ceiling",
            "RSA peak (ms)", "peak rho"]
    if planted is not None:
        head.append("planted (ms)")
    rows = []
    for i, row in enumerate(layer_table(result)):
        cells = [html.escape(row["layer"]), _fmt(row["enc_peak_ms"], 0), _fmt(row["enc_peak_r"]),
                 _fmt(row["enc_norm_peak_ms"], 0), _fmt(row["enc_norm_peak"]),
                 _fmt(row["rsa_peak_ms"], 0), _fmt(row["rsa_peak_rho"])]
        if planted is not None:
            cells.append(_fmt(planted[i] * 1000, 0))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = ("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
             + "".join(rows) + "</table>")

    def block(name: str, obj) -> str:
        text = json.dumps(jsonable(obj), indent=1, default=str)
        return f"<h3>{html.escape(name)}</h3><pre>{html.escape(text)}</pre>"

    notes = ""
    if (extra or {}).get("simulated"):
        notes = ('<p class="note"><b>The EEG in this report is simulated</b> by neuralign\'s '
                 "synthetic brain with a planted layer-latency hierarchy; it is not recorded "
                 "data.</p>")
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
img {{ max-width: 100%; }} figure {{ margin: 1em 0; }} figcaption {{ color: #555; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px;
text-align: right; }} pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}
.note {{ background: #fff4d6; padding: 0.5em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{notes}
<p>{len(result.layers)} layers, {len(result.ch_names)} channels, {len(result.times)} time points
({_fmt(result.times[0] * 1000, 0)} to {_fmt(result.times[-1] * 1000, 0)} ms).
Encoding r is the held-out Pearson r of a ridge model per layer, channel and time, averaged over
channels; RSA rho is the Spearman correlation between the layer's and the EEG's RDMs.</p>
<h2>Per-layer peaks</h2>
{table}
<h2>Figures</h2>
{img("encoding_r", "Encoding r (held-out, mean over channels), layer x latency")}
{img("encoding_r_normalized", "Encoding r divided by the noise ceiling, layer x latency")}
{img("rsa_rho", "RSA Spearman rho, layer x latency")}
{img("peak_latency", "Peak latency per layer")}
{img("noise_ceiling", "Noise ceiling over time")}
<h2>Settings</h2>
{block("settings", result.settings)}
{block("counts", result.counts)}
{block("extra", extra or {})}
</body></html>
"""
    path = out / "report.html"
    path.write_text(body, encoding="utf-8")
    return path


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
        ``results``, ``maps``, ``encoding_r``, ``encoding_r_normalized``, ``rsa_rho``,
        ``peak_latency``, ``noise_ceiling``, ``report``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = dict(extra or {})
    with warnings.catch_warnings():  # all-NaN slices (e.g. no ceiling >= 0.1) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        paths = dict(result.save(out))
        enc = result.encoding_map()
        enc_n = result.encoding_map(normalized=True)
    figs = {
        "encoding_r": _heatmap(out / "encoding_r.png", enc, result,
                               title="Encoding r", label="held-out r"),
        "encoding_r_normalized": _heatmap(out / "encoding_r_normalized.png", enc_n, result,
                                          title="Encoding r / noise ceiling",
                                          label="r / r ceiling"),
        "rsa_rho": _heatmap(out / "rsa_rho.png", np.asarray(result.rsa_spearman, dtype=float),
                            result, title="RSA (Spearman)", label="rho", diverging=True),
        "peak_latency": _peak_plot(out / "peak_latency.png", result, extra),
        "noise_ceiling": _noise_plot(out / "noise_ceiling.png", result),
    }
    paths.update(figs)
    paths["report"] = _html(out, result, figs, title=title, extra=extra)
    if extra:
        ej = out / "extra.json"
        ej.write_text(json.dumps(jsonable(extra), indent=1, default=str))
        paths["extra"] = ej
    return paths


def _stats_figures(out: Path, stats) -> dict[str, Path]:
    """Peak latency with 95% intervals of every model, and CI width / top p vs epochs."""
    plt = _plt()
    figs = {}
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for k, (label, m) in enumerate(stats.models.items()):
        if m.peaks is None:
            continue
        x = np.arange(len(m.layers)) + 0.12 * k
        lat, ci = np.asarray(m.peaks.latency_s) * 1000, np.asarray(m.peaks.latency_ci) * 1000
        sig = m.significant
        ax.errorbar(x, lat, yerr=np.abs(np.stack([lat - ci[:, 0], ci[:, 1] - lat])), fmt="o",
                    capsize=3, label=label, alpha=0.9)
        if sig is not None and sig.any():
            ax.plot(x[sig], lat[sig], "k*", ms=8)
    ax.set_xlabel("layer (depth order)")
    ax.set_ylabel("peak latency (ms), 95% CI")
    ax.set_title("Peak latency per layer with 95% intervals (* = significant peak)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    figs["peak_latency_ci"] = out / "peak_latency_ci.png"
    fig.savefig(figs["peak_latency_ci"])
    plt.close(fig)
    hist = [h for h in stats.history if h.get("n_epochs")]
    if hist:
        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
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
        figs["stopping"] = out / "stopping_history.png"
        fig.savefig(figs["stopping"])
        plt.close(fig)
    return figs


def write_statistics(stats, out_dir: str | Path) -> dict[str, Path]:
    """Add intervals, masks, ranking and the stopping history to written results.

    ``results.json`` gets a ``statistics`` entry, ``maps.npz`` the masks and intervals
    (``mask_LABEL``, ``latency_ci_LABEL``, ``peak_r_ci_LABEL``), and ``report.html`` a section
    with the ranking table and the figures ``peak_latency_ci.png`` and
    ``stopping_history.png`` (CI width and the ranking's p vs epochs).

    Parameters
    ----------
    stats : Statistics
        The final evaluation (:class:`~neuralign.align.monitor.Statistics`).
    out_dir : str | Path
        A folder :func:`write_outputs` wrote.

    Returns
    -------
    dict of str -> Path
        The figures written.
    """
    out = Path(out_dir)
    rj = out / "results.json"
    meta = json.loads(rj.read_text())
    meta["statistics"] = jsonable(stats.to_dict())
    rj.write_text(json.dumps(meta, indent=1))
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        figs = _stats_figures(out, stats)
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
    imgs = "".join(
        f'<figure><img alt="{k}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode("ascii")}"></figure>' for k, p in figs.items())
    stop = "" if stats.stopping is None else f"<p>{html.escape(stats.stopping.line())} " \
        f"({html.escape(str(stats.settings.get('rule')))})</p>"
    section = (f"<h2>Confidence, ranking and stopping</h2><p>{stats.n_epochs} epochs; "
               f"{html.escape(str(stats.settings.get('interval')))}, seed {stats.seed}.</p>"
               + (f"<table><tr><th>rank</th><th>model</th><th>best layer</th><th>peak r [95% CI]"
                  f"</th><th>peak latency ms [95% CI]</th></tr>{rows}</table><ul>{comp}</ul>"
                  if rows else "") + stop + imgs)
    rep = out / "report.html"
    if rep.exists():
        text = rep.read_text(encoding="utf-8")
        rep.write_text(text.replace("<h2>Settings</h2>", section + "\n<h2>Settings</h2>", 1),
                       encoding="utf-8")
    return figs


def write_session(result: AlignmentResult, out_dir: str | Path, *, title: str,
                  extra: dict | None = None, results: dict | None = None,
                  stats=None) -> dict[str, Path]:
    """:func:`write_outputs` of the first model, each model under ``models/LABEL/``, and the
    statistics (:func:`write_statistics`).

    Parameters
    ----------
    result : AlignmentResult
        The (first model's) maps.
    out_dir : str | Path
        The output folder.
    title : str
        Report title.
    extra : dict | None
        As :func:`write_outputs`'.
    results : dict of str to AlignmentResult | None
        Several models' maps (label -> maps).
    stats : Statistics | None
        The final statistics.

    Returns
    -------
    dict of str -> Path
    """
    out = Path(out_dir)
    extra = dict(extra or {})
    if results and len(results) > 1:
        extra["models"] = list(results)
    paths = write_outputs(result, out, title=title, extra=extra)
    for label, res in (results or {}).items() if results and len(results) > 1 else ():
        sub = write_outputs(res, out / "models" / label, title=f"{title} [{label}]",
                            extra=extra)
        paths[f"report_{label}"] = sub["report"]
    if stats is not None:
        paths.update(write_statistics(stats, out))
    return paths
