"""Several feature sets on one subject: ranked, and their variance partitioned.

- :func:`partition_sets` runs :func:`~neuralign.align.partition.variance_partition` on one
  layer of each of two or three feature sets (their best layer by default) and
  :func:`partition_arrays` / :func:`partition_from_saved` write and read it back (the stat
  cache and ``partition.npz``);
- :func:`partition_statements` says in words which unique parts are above chance, where, and
  which are negative.
"""

from __future__ import annotations

import numpy as np

from ..align.partition import PartitionResult, variance_partition
from ..errors import NeuralignError

#: Kinds of per-target arrays a partition keeps (name -> attribute).
_KINDS = ("r2", "parts", "ci", "ci_time", "p_unique")


def check_partition_layers(layers: dict[str, list[str]], chosen: dict[str, str]) -> dict[str, int]:
    """Resolve ``--partition-layer`` choices before anything is computed.

    Parameters
    ----------
    layers : dict of str to list of str
        Label -> its layer names (depth order).
    chosen : dict of str to str
        Label -> layer name or index given by the user.

    Returns
    -------
    dict of str to int
        Label -> layer index, for the labels in ``chosen``.
    """
    unknown = sorted(set(chosen) - set(layers))
    if unknown:
        raise NeuralignError(f"--partition-layer names unknown feature set(s): {unknown}; "
                             f"the sets are {', '.join(layers)}")
    out = {}
    for label, name in chosen.items():
        names = list(layers[label])
        if name in names:
            out[label] = names.index(name)
        elif name.lstrip("-").isdigit() and -len(names) <= int(name) < len(names):
            out[label] = int(name) % len(names)
        else:
            raise NeuralignError(f"--partition-layer {label}={name}: no such layer in "
                                 f"{label!r} (layers: {', '.join(names[:6])}"
                                 f"{'...' if len(names) > 6 else ''})")
    return out


def partition_layers(group, stats: dict, chosen: dict[str, str]) -> dict[str, int]:
    """The layer of each feature set that enters the partition.

    Parameters
    ----------
    group : ModelGroup
        The refreshed engines.
    stats : dict of str to LayerStatistics
        Each set's statistics (the default layer is the one with the highest peak r).
    chosen : dict of str to str
        Label -> layer name or index given by the user (``--partition-layer``).

    Returns
    -------
    dict of str to int
        Label -> layer index.
    """
    fixed = check_partition_layers({k: list(e.features.layers)
                                    for k, e in group.engines.items()}, chosen)
    out = {}
    for label in group.labels:
        if label in fixed:
            out[label] = fixed[label]
        else:
            pk = np.asarray(stats[label].peak_r, float)
            out[label] = (int(np.nanargmax(pk)) if np.isfinite(pk).any()
                          else len(group.engines[label].features.layers) - 1)
    return out


def partition_sets(group, layers: dict[str, int], *, n_boot: int, n_perm: int,
                   seed: int, progress=None) -> PartitionResult:
    """Variance partition of the group's feature sets (2 or 3) on the given layers.

    Parameters
    ----------
    group : ModelGroup
        The refreshed engines (same epochs).
    layers : dict of str to int
        Label -> layer index.
    n_boot, n_perm : int
        Bootstrap resamples and permutations.
    seed : int
        Seed.
    progress : callable, optional
        Called with 1 after each subset's fit and each unique part's test.

    Returns
    -------
    PartitionResult
    """
    return variance_partition(dict(group.engines), layers, n_boot=n_boot, n_perm=n_perm,
                              seed=seed, progress=progress)


def partition_arrays(res: PartitionResult) -> dict[str, np.ndarray]:
    """Every array of a partition, channel x time where per target (``kind/part`` keys).

    Parameters
    ----------
    res : PartitionResult
        The partition.

    Returns
    -------
    dict of str to ndarray
        ``parts/unique A`` (C, T), ``ci/unique A`` (2, C, T), ``p_unique/unique A`` (C, T),
        ``r2/A+B`` (C, T), ``ci_time/...`` (2, T), plus ``times``.
    """
    C = res.n_channels
    out = {"times": np.asarray(res.times, float)}
    for kind in _KINDS:
        for k, v in getattr(res, kind).items():
            v = np.asarray(v, float)
            if kind != "ci_time":
                v = v.reshape(v.shape[:-1] + (C, -1))
            out[f"{kind}/{k}"] = v
    return out


def partition_meta(res: PartitionResult, layers: dict[str, str]) -> dict:
    """JSON content of a partition (``results.json``'s ``partition``).

    Parameters
    ----------
    res : PartitionResult
        The partition.
    layers : dict of str to str
        Label -> the layer name that entered.

    Returns
    -------
    dict
    """
    d = res.to_dict()
    d.update(layers=layers, n_channels=res.n_channels, n_targets=int(res.n_channels
                                                                     * np.size(res.times)),
             p_unique_min={k: float(np.nanmin(v)) for k, v in res.p_unique.items()},
             negative_note="held-out R^2 parts can be negative (a set that adds only noise "
                           "lowers the joint model's held-out R^2); they are kept as they are "
                           "and counted in negative_targets", file="partition.npz")
    return d


def partition_from_saved(meta: dict, arrays) -> PartitionResult:
    """Rebuild a partition from :func:`partition_meta` and :func:`partition_arrays`.

    Parameters
    ----------
    meta : dict
        :func:`partition_meta`'s content.
    arrays : mapping of str to ndarray
        :func:`partition_arrays`' content.

    Returns
    -------
    PartitionResult
    """
    C = int(meta["n_channels"])
    kinds: dict[str, dict] = {k: {} for k in _KINDS}
    for key, v in arrays.items():
        kind, _, name = key.partition("/")
        if kind in kinds:
            v = np.asarray(v)
            kinds[kind][name] = v if kind == "ci_time" else v.reshape(v.shape[:-2] + (-1,))
    return PartitionResult(list(meta["labels"]), C, np.asarray(arrays["times"]), kinds["r2"],
                           kinds["parts"], kinds["ci"], kinds["ci_time"], kinds["p_unique"],
                           {k: float(v) for k, v in meta["p_unique_mean"].items()},
                           int(meta["n_boot"]), int(meta["n_perm"]),
                           {k: int(v) for k, v in meta["negative_targets"].items()})


def partition_statements(res: PartitionResult, *, alpha: float) -> list[str]:
    """What the partition allows one to say (one line each).

    Parameters
    ----------
    res : PartitionResult
        The partition.
    alpha : float
        Significance level.

    Returns
    -------
    list of str
    """
    times_ms = np.asarray(res.times, float) * 1000
    M = res.n_channels * times_ms.size
    lines = []
    for part in res.parts:
        tc = res.time_course(part)
        mean = float(np.nanmean(res.parts[part]))
        text = f"partition: {part}: mean R^2 {mean:+.4f}"
        if np.isfinite(tc).any():
            j = int(np.nanargmax(tc))
            lo, hi = res.ci_time[part][:, j]
            text += (f", largest at {times_ms[j]:.0f} ms ({tc[j]:+.4f}, 95% CI "
                     f"{lo:+.4f} to {hi:+.4f})")
        if part in res.p_unique:
            p = res.p_unique_mean[part]
            k = int((res.p_unique[part] <= alpha).sum())
            text += (f"; permutation p (channel x time mean) = {p:.3g}, {k} of {M} channel x "
                     "time targets significant (max-statistic corrected)")
            if p <= alpha:
                text += " -> above chance"
            elif k:
                text += (" -> not above chance on the channel x time mean (the per-target "
                         "test is slightly liberal: docs/offline-analyze.md)")
            else:
                text += " -> not above chance"
        neg = res.negative.get(part, 0)
        if neg:
            text += f"; NEGATIVE in {neg} of {M} targets (kept as is)"
        lines.append(text)
    return lines
