"""Figures of the unit-level and readout analyses (:mod:`neuralign.offline.unit_analysis`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def unit_figure(path: Path, res, times, ch_names, *, title: str, n_lines: int = 5) -> Path:
    """Best-unit r map with polarity, best units over time, redundancy curve, latency overlap.

    Parameters
    ----------
    path : Path
        The PNG to write.
    res : UnitResult
        :func:`neuralign.align.units.unit_encoding`'s result.
    times : array of float
        Epoch time points (s).
    ch_names : list of str
        Channel names.
    title : str
        Figure title.
    n_lines : int
        Units drawn over time.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    times = np.asarray(times, dtype=float)
    C, T = len(ch_names), times.size
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    signed = (res.top_r[:, 0] * res.top_polarity[:, 0]).reshape(C, T)
    lim = float(np.nanmax(np.abs(signed))) or 1.0
    im = ax[0, 0].imshow(signed, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-lim,
                         vmax=lim, extent=(times[0], times[-1], -0.5, C - 0.5))
    ax[0, 0].set_yticks(range(C), ch_names, fontsize=6)
    ax[0, 0].set_xlabel("time (s)")
    ax[0, 0].set_title("best unit per channel x time: held-out r x polarity", fontsize=9)
    fig.colorbar(im, ax=ax[0, 0], label="r (sign: polarity)")
    top = res.top_units[:, 0].reshape(C, T)
    for u in np.unique(top)[:12]:  # label where each frequent best unit wins
        cc, tt = np.nonzero(top == u)
        if cc.size >= max(2, C * T // 50):
            j = int(np.argmax(np.abs(signed[cc, tt])))
            ax[0, 0].text(times[tt[j]], cc[j], str(int(u)), fontsize=7, ha="center",
                          va="center")
    lat, peak, pol = res.unit_peaks(times)
    per_t = res.unit_r.reshape(res.unit_r.shape[0], C, T).mean(1)
    for u in np.argsort(-peak)[:n_lines]:
        ax[0, 1].plot(times, per_t[u], "-" if pol[u] > 0 else "--",
                      label=f"unit {int(u)} ({'+' if pol[u] > 0 else '-'})")
    ax[0, 1].axhline(0, color="grey", lw=0.5)
    ax[0, 1].set_xlabel("time (s)")
    ax[0, 1].set_ylabel("held-out r (mean over channels)")
    ax[0, 1].set_title("best units (dashed: negative polarity)", fontsize=9)
    ax[0, 1].legend(fontsize=7)
    red = res.redundancy
    frac = red.get("fraction_by_units") or {}
    if frac:
        ks = np.array([int(k) for k in frac])
        ax[1, 0].plot(ks, [frac[str(k)] for k in ks], marker="o")
        ax[1, 0].set_xscale("log", base=2)
        ax[1, 0].axhline(0.9, color="k", ls=":", lw=0.8)
        ax[1, 0].set_xlabel("best units kept (ranked on training data)")
        ax[1, 0].set_ylabel("fraction of the layer's held-out r²")
        ax[1, 0].set_title(f"redundancy: {red.get('n_units_90')} unit(s) reach 90% "
                           f"(around {red.get('peak_latency_s', float('nan')) * 1000:.0f} ms)",
                           fontsize=9)
    im = ax[1, 1].imshow(res.overlap, origin="lower", cmap="viridis", vmin=0, vmax=1,
                         extent=(times[0], times[-1], times[0], times[-1]))
    ax[1, 1].set_xlabel("time (s)")
    ax[1, 1].set_ylabel("time (s)")
    ax[1, 1].set_title("overlap of the best units across latencies (Jaccard)", fontsize=9)
    fig.colorbar(im, ax=ax[1, 1])
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def readout_figure(path: Path, res: dict, times, *, title: str) -> Path:
    """Held-out r over time of every readout, and each one's difference from ridge.

    Parameters
    ----------
    path : Path
        The PNG to write.
    res : dict
        :func:`neuralign.align.readouts.compare_readouts`'s result.
    times : array of float
        Epoch time points (s).
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, v in res["readouts"].items():
        ax[0].plot(times, v["r_time"], lw=2 if name == "ridge" else 1,
                   color="k" if name == "ridge" else None, label=name)
    ax[0].axhline(0, color="grey", lw=0.5)
    ax[0].set_xlabel("time (s)")
    ax[0].set_ylabel("held-out r (mean over channels)")
    ax[0].legend(fontsize=7)
    names = list(res["vs_ridge"])
    d = np.array([res["vs_ridge"][n]["diff"] for n in names])
    ci = np.array([res["vs_ridge"][n]["ci"] for n in names]).reshape(-1, 2)
    ax[1].barh(range(len(names)), d, xerr=np.abs(ci.T - d), color="tab:blue", alpha=0.7)
    ax[1].set_yticks(range(len(names)),
                     [f"{n}\np={res['vs_ridge'][n]['p']:.3f}" for n in names], fontsize=8)
    ax[1].axvline(0, color="k", lw=0.8)
    ax[1].set_xlabel("mean r minus ridge's (95% paired bootstrap interval)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
