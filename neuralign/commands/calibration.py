"""Calibration of ``neuralign analyze``'s statistics on simulated subjects (planted answers).

Each run simulates a small subject (:mod:`neuralign.sim.calibration`), analyses it with the
very code ``analyze`` runs (:func:`~neuralign.align.batch.analyze_models`,
:func:`~neuralign.offline.analysis.layer_statistics`,
:func:`~neuralign.offline.comparison.partition_sets`) and scores the answer:

- :func:`null_run`: random features (independent of the brain): is any cell of the layer x
  time map significant? Over runs, the family-wise false-positive rate (should be <= alpha);
- :func:`planted_run`: the brain's own features: which planted layers are significant?
- :func:`partition_run`: a planted pair (A early, B late, shared dimensions), or A against
  random features: where is each unique part, and is it above chance?

:func:`calibrate` runs them over seeds and returns rates with binomial errors;
``bench/bench_calibration.py`` runs the full version, the tests a short one.
"""

from __future__ import annotations

import numpy as np

#: Sizes of a calibration subject (small: a run takes about a second on two cores).
SIZES = {"n_train": 200, "n_test": 50, "train_reps": 2, "test_reps": 8, "n_channels": 4}


def _analyse(data, sets: dict, *, n_perm: int, n_boot: int, seed: int, alpha: float):
    from ..align.batch import analyze_models
    from ..offline.analysis import StatOptions, layer_statistics

    group, results = analyze_models(data, sets, n_folds=5, max_rsa_stimuli=None,
                                    n_jobs=1)
    opts = StatOptions(n_perm=n_perm, n_boot=n_boot, seed=seed, alpha=alpha)
    stats = {k: layer_statistics(group.engines[k].held_out, results[k], label=k, options=opts)
             for k in sets}
    return group, results, stats


def null_run(seed: int, *, n_perm: int = 200, alpha: float = 0.05, snr: float = 0.3,
             sizes: dict | None = None) -> dict:
    """One subject analysed with random features; any significant cell is a false positive.

    Parameters
    ----------
    seed : int
        Seed of the subject, the features and the permutations.
    n_perm : int
        Permutations.
    alpha : float
        Family-wise level.
    snr : float
        The brain's signal (driven by other features than those analysed).
    sizes : dict | None
        Overrides of :data:`SIZES`.

    Returns
    -------
    dict
        ``false_positive`` (bool), ``n_cells`` significant, ``min_p``.
    """
    from ..sim.calibration import random_features, simulated_subject, stimulus_ids
    from ..sim.features import hierarchical_features

    sz = {**SIZES, **(sizes or {})}
    tr, te = stimulus_ids(sz["n_train"], sz["n_test"])
    brain_fs = hierarchical_features(tr + te, n_layers=4, dim=16, seed=seed)
    data = simulated_subject(brain_fs, snr=snr, seed=seed, **sz)
    rand = random_features(tr + te, seed=seed)
    _, _, stats = _analyse(data, {"random": rand}, n_perm=n_perm, n_boot=0, seed=seed,
                           alpha=alpha)
    st = stats["random"]
    return {"false_positive": bool(st.mask.any()), "n_cells": int(st.mask.sum()),
            "min_p": float(np.nanmin(st.p)),
            "hierarchy_p": st.hierarchy.get("p"), "statements": st.statements()}


def planted_run(seed: int, *, n_perm: int = 200, alpha: float = 0.05, snr: float = 0.5,
                sizes: dict | None = None) -> dict:
    """One subject analysed with the features that drive it: planted layers significant?

    Parameters
    ----------
    seed : int
        Seed.
    n_perm : int
        Permutations.
    alpha : float
        Family-wise level.
    snr : float
        Signal of each layer.
    sizes : dict | None
        Overrides of :data:`SIZES`.

    Returns
    -------
    dict
        ``significant`` (per layer), ``all_significant``, ``hierarchy_rho``, ``hierarchy_p``.
    """
    from ..sim.calibration import simulated_subject, stimulus_ids
    from ..sim.features import hierarchical_features

    sz = {**SIZES, **(sizes or {})}
    tr, te = stimulus_ids(sz["n_train"], sz["n_test"])
    fs = hierarchical_features(tr + te, n_layers=4, dim=16, seed=seed)
    data = simulated_subject(fs, snr=snr, seed=seed, **sz)
    _, _, stats = _analyse(data, {"planted": fs}, n_perm=n_perm, n_boot=0, seed=seed,
                           alpha=alpha)
    st = stats["planted"]
    sig = st.significant
    return {"significant": sig.tolist(), "all_significant": bool(sig.all()),
            "hierarchy_rho": st.hierarchy.get("rho"), "hierarchy_p": st.hierarchy.get("p")}


def partition_run(seed: int, *, random_b: bool = False, n_perm: int = 200, n_boot: int = 200,
                  alpha: float = 0.05, snr: float = 0.5, sizes: dict | None = None) -> dict:
    """A planted pair partitioned (A drives early, B late, shared dimensions), or A against
    random features.

    Parameters
    ----------
    seed : int
        Seed.
    random_b : bool
        Replace B by random features of the same width (its unique part is then null).
    n_perm, n_boot : int
        Permutations and bootstrap resamples.
    alpha : float
        Level.
    snr : float
        Signal of each of A and B.
    sizes : dict | None
        Overrides of :data:`SIZES`.

    Returns
    -------
    dict
        ``p_unique`` (channel x time mean, per unique part), ``any_target`` (a target
        significant after max-statistic correction), ``peak_ms`` (peak of each unique time
        course), ``where_ms`` (times with a significant target, per unique part),
        ``recovered`` (each unique part has significant targets, all of them nearer its own
        planted latency than the other's), ``negative`` counts.
    """
    from ..align.group import ModelGroup
    from ..offline.comparison import partition_sets
    from ..sim.calibration import planted_pair, simulated_subject, stimulus_ids

    sz = {**SIZES, **(sizes or {})}
    tr, te = stimulus_ids(sz["n_train"], sz["n_test"])
    a, b, drive = planted_pair(tr + te, seed=seed)
    lat = (0.1, 0.3)
    data = simulated_subject(drive, snr=snr, seed=seed, peak_latencies=lat, **sz)
    if random_b:
        rng = np.random.default_rng([seed, 11])
        b = type(b)(b.stimulus_ids, ("B",), (rng.standard_normal(b.arrays[0].shape)
                                              .astype(np.float32),), {"random": True})
    group = ModelGroup({"A": a, "B": b}, times=data.times, ch_names=data.ch_names,
                       test_ids=data.test_ids, incremental=False, max_rsa_stimuli=None,
                       n_jobs=1)
    group.add_epochs(data.stimulus_ids, data.epochs)
    group.refresh()
    res = partition_sets(group, {"A": 0, "B": 0}, n_boot=n_boot, n_perm=n_perm, seed=seed)
    t = np.asarray(res.times)
    ua, ub = res.time_course("unique A"), res.time_course("unique B")
    p = dict(res.p_unique_mean)
    where = {k: t[(np.asarray(v).reshape(res.n_channels, -1) <= alpha).any(0)]
             for k, v in res.p_unique.items()}
    wa, wb = where["unique A"], where["unique B"]
    recovered = bool(wa.size and wb.size and (abs(wa - lat[0]) < abs(wa - lat[1])).all()
                     and (abs(wb - lat[1]) < abs(wb - lat[0])).all())
    return {"p_unique": p, "where_ms": {k: (v * 1000).round().tolist() for k, v in where.items()},
            "any_target": {k: bool((v <= alpha).any()) for k, v in res.p_unique.items()},
            "peak_ms": {"unique A": float(t[np.nanargmax(ua)] * 1000),
                        "unique B": float(t[np.nanargmax(ub)] * 1000)},
            "mean": {k: float(np.nanmean(v)) for k, v in res.parts.items()},
            "recovered": recovered, "negative": dict(res.negative)}


def rate(k: int, n: int) -> dict:
    """A rate with its binomial standard error and 95% Clopper-Pearson interval.

    Parameters
    ----------
    k, n : int
        Successes and trials.

    Returns
    -------
    dict
        ``k``, ``n``, ``rate``, ``se``, ``ci``.
    """
    from scipy.stats import beta

    r = k / n if n else float("nan")
    lo = float(beta.ppf(0.025, k, n - k + 1)) if k > 0 else 0.0
    hi = float(beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return {"k": int(k), "n": int(n), "rate": r, "se": float(np.sqrt(r * (1 - r) / n)),
            "ci": [lo, hi]}


def calibrate(n_runs: int, *, n_perm: int = 200, alpha: float = 0.05, seed0: int = 0,
              what: tuple[str, ...] = ("null", "planted", "partition", "partition_null"),
              progress=None) -> dict:
    """Rates over ``n_runs`` seeds of every check in ``what``.

    Parameters
    ----------
    n_runs : int
        Runs per check.
    n_perm : int
        Permutations per run.
    alpha : float
        Level.
    seed0 : int
        First seed.
    what : tuple of str
        Checks: ``null``, ``planted``, ``partition``, ``partition_null``.
    progress : callable, optional
        Called with 1 after each run.

    Returns
    -------
    dict
        Per check: its rate (:func:`rate`) and the runs.
    """
    out: dict = {"n_runs": n_runs, "n_perm": n_perm, "alpha": alpha, "sizes": SIZES}
    seeds = range(seed0, seed0 + n_runs)

    def tick():
        if progress is not None:
            progress(1)

    if "null" in what:
        runs = []
        for s in seeds:
            runs.append(null_run(s, n_perm=n_perm, alpha=alpha))
            tick()
        out["null"] = {"fwer": rate(sum(r["false_positive"] for r in runs), n_runs),
                       "runs": [{k: v for k, v in r.items() if k != "statements"}
                                for r in runs]}
    if "planted" in what:
        runs = []
        for s in seeds:
            runs.append(planted_run(s, n_perm=n_perm, alpha=alpha))
            tick()
        out["planted"] = {"all_layers_significant": rate(sum(r["all_significant"]
                                                             for r in runs), n_runs),
                          "layer_rate": np.mean([r["significant"] for r in runs], 0).tolist(),
                          "runs": runs}
    for key, rb in (("partition", False), ("partition_null", True)):
        if key not in what:
            continue
        runs = []
        for s in seeds:
            runs.append(partition_run(s, random_b=rb, n_perm=n_perm, alpha=alpha))
            tick()
        entry = {"runs": runs,
                 "unique_B_significant": rate(sum(r["p_unique"]["unique B"] <= alpha
                                                  for r in runs), n_runs),
                 "unique_B_any_target": rate(sum(r["any_target"]["unique B"] for r in runs),
                                             n_runs)}
        if not rb:
            entry["recovered"] = rate(sum(r["recovered"] for r in runs), n_runs)
        out[key] = entry
    return out
