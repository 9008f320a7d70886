"""The figures of a result, each a :class:`matplotlib.figure.Figure` (no pyplot, no backend).

Every function takes an :class:`~neuralign.align.AlignmentResult` and returns a new figure;
nothing is shown or saved here. The figures are built without :mod:`matplotlib.pyplot`, so
they need no GUI backend, change no global state and may be made in a worker thread (the
window's export does). A notebook shows a figure returned as a cell's value; a script saves it
with ``fig.savefig(path)``. ``neuralign analyze`` writes these same figures as PNG files and
into ``report.html`` (:mod:`neuralign.report.sections` lists them).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..base.truth import planted_latencies

#: Labels of the noise ceilings :func:`plot_noise_ceiling` draws, in drawing order.
CEILING_LABELS = {
    "r_ceiling": "r ceiling (scored means)",
    "spearman_brown": "split-half, Spearman-Brown",
    "things_lower": "THINGS-EEG2 lower bound",
    "things_upper": "THINGS-EEG2 upper bound",
}


def new_figure(figsize: tuple[float, float], *, dpi: int = 100):
    """A figure outside pyplot's registry (thread-safe, closed by garbage collection).

    Parameters
    ----------
    figsize : tuple of float
        Width and height in inches.
    dpi : int
        Dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
        An empty figure.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi)


def plot_layer_map(m: np.ndarray, result, *, title: str, label: str,
                   diverging: bool = False):
    """A layer x latency heat map with each layer's peak marked.

    Parameters
    ----------
    m : ndarray, shape (n_layers, n_times)
        The map (NaN where undefined).
    result : AlignmentResult
        Gives the layer names and the time axis.
    title : str
        The figure's title.
    label : str
        The colour bar's label.
    diverging : bool
        A symmetric diverging colour map (for signed values such as rho).

    Returns
    -------
    matplotlib.figure.Figure
        The heat map.
    """
    m = np.asarray(m, dtype=float)
    times_ms = np.asarray(result.times) * 1000.0
    n_layers = len(result.layers)
    fig = new_figure((9, 1.2 + 0.32 * n_layers))
    ax = fig.add_subplot()
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
    return fig


def plot_encoding(result, *, normalized: bool = False):
    """Encoding r (held-out, mean over channels), layer x latency.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    normalized : bool
        Divide by the noise ceiling first (``encoding_r_normalized.png``).

    Returns
    -------
    matplotlib.figure.Figure
        The heat map ``neuralign analyze`` writes as ``encoding_r.png`` (or
        ``encoding_r_normalized.png``).
    """
    with warnings.catch_warnings():  # all-NaN slices (no ceiling >= 0.1) are expected
        warnings.simplefilter("ignore", RuntimeWarning)
        m = result.encoding_map(normalized=normalized)
    if normalized:
        return plot_layer_map(m, result, title="Encoding r / noise ceiling",
                              label="r / r ceiling")
    return plot_layer_map(m, result, title="Encoding r", label="held-out r")


def plot_rsa(result, *, kind: str = "rsa"):
    """RSA Spearman rho between the layer's and the EEG's RDMs, layer x latency.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    kind : str
        ``"rsa"`` (correlation-distance EEG RDM, ``rsa_rho.png``) or ``"rsa_cv"``
        (cross-validated Euclidean EEG RDM).

    Returns
    -------
    matplotlib.figure.Figure
        The heat map.
    """
    title = "RSA (Spearman)" if kind == "rsa" else "RSA, cross-validated RDM (Spearman)"
    return plot_layer_map(result.rsa_map(kind), result, title=title, label="rho",
                          diverging=True)


def plot_peaks(result, *, planted: dict | None = None):
    """Peak latency per layer of the encoding and RSA maps.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    planted : dict | None
        A simulation's planted truth (:mod:`neuralign.base.truth`), overlaid when given.

    Returns
    -------
    matplotlib.figure.Figure
        The figure ``neuralign analyze`` writes as ``peak_latency.png``.
    """
    n = len(result.layers)
    x = np.arange(n)
    fig = new_figure((max(5.0, 0.45 * n + 2), 4))
    ax = fig.add_subplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        enc_lat, _ = result.peaks("encoding")
        rsa_lat, _ = result.peaks("rsa")
    ax.plot(x, enc_lat * 1000, "o-", label="encoding r peak")
    ax.plot(x, rsa_lat * 1000, "s--", label="RSA rho peak", alpha=0.8)
    truth = planted_latencies(planted, result.layers)
    if truth is not None:
        ax.plot(x, truth * 1000, "k*:", ms=10, label="planted (simulation truth)")
    ax.set_xticks(x)
    ax.set_xticklabels(result.layers, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("peak latency (ms)")
    ax.set_xlabel("layer (depth order)")
    ax.set_title("Peak latency per layer", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_noise_ceiling(result):
    """Noise ceilings over time (mean over channels) and the best layer's encoding r.

    Parameters
    ----------
    result : AlignmentResult
        The maps.

    Returns
    -------
    matplotlib.figure.Figure
        The figure ``neuralign analyze`` writes as ``noise_ceiling.png``.
    """
    t = np.asarray(result.times) * 1000
    fig = new_figure((7, 3.5))
    ax = fig.add_subplot()
    any_line = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for key, lab in CEILING_LABELS.items():
            if key in result.noise_ceiling:
                y = result.noise_ceiling_time(key)
                if np.isfinite(y).any():
                    ax.plot(t, y, label=lab)
                    any_line = True
        enc = result.encoding_map()
        if np.isfinite(enc).any():
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
    return fig
