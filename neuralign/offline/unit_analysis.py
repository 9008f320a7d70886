"""Unit-level encoding and readouts of chosen layers, as ``analyze`` and ``study`` run them.

:func:`plan_unit_analyses` checks the options against the dataset and the features before
anything runs; :func:`run_unit_analyses` feeds the epochs to one engine holding only the
chosen layers (same folds, alphas and alpha selection as the main analysis), then

- **units** (:func:`neuralign.align.units.unit_encoding`): ``units.csv`` (every unit of
  every chosen layer: best channel and time, held-out r there, polarity, peak latency of the
  channel-mean r), ``units_maps.npz`` (best units per channel x time with r and polarity,
  channel-mean r of every unit over time, latency overlap, and the full unit x channel x time
  r map in float16 when it is small enough), ``redundancy.json`` and one figure per layer;
- **readouts** (:func:`neuralign.align.readouts.compare_readouts`): ``readouts.json`` (held-out
  r of full ridge, factorised and PCA-then-ridge readouts, each against ridge with a paired
  bootstrap over the same held-out stimuli) and one figure per layer.

The summaries go into ``results.json`` under ``analyses`` (``units``, ``readouts``). A layer
choice is ``peak`` (the layer with the highest encoding peak r), ``all``, layer names or
indices. On a unit-driven simulated brain (:mod:`neuralign.sim.units`) the planted units are
scored: found (the best units by peak r are the planted ones), polarity and latency.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..align.data import jsonable
from ..base import FeatureSet
from ..errors import NeuralignError
from .unit_figures import readout_figure, unit_figure
from .unit_summary import score_planted, summary_lines

#: Largest unit x channel x time map written in full to ``units_maps.npz`` (float16 entries).
MAX_FULL_MAP = 32_000_000


@dataclass
class UnitPlan:
    """Validated choices of the unit-level and readout analyses.

    Parameters
    ----------
    units, readouts : list of str | None
        Layer names, or ``["peak"]``; ``None``: the analysis is not asked for.
    top_k : int
        Best units kept per channel x time.
    ranks : tuple of int
        Ranks of the factorised readouts.
    pca : tuple of int
        Components of the PCA-then-ridge readouts.
    n_boot : int
        Bootstrap resamples of the paired readout tests.
    seed : int
        Seed of the resampling.
    settings : dict
        The choices as ``results.json`` records them.
    """

    units: list[str] | None = None
    readouts: list[str] | None = None
    top_k: int = 10
    ranks: tuple = (1, 2)
    pca: tuple = (16, 64)
    n_boot: int = 500
    seed: int = 0
    settings: dict = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether any of the analyses is asked for."""
        return self.units is not None or self.readouts is not None


def _layers(values, layers: list[str], option: str) -> list[str] | None:
    """Resolve a layer choice (``[]`` = peak, ``all``, names, indices)."""
    if values is None:
        return None
    vals = [str(v) for v in values] or ["peak"]
    if vals == ["all"]:
        return list(layers)
    out = []
    for v in vals:
        if v == "peak":
            out.append("peak")
        elif v in layers:
            out.append(v)
        elif v.lstrip("-").isdigit() and -len(layers) <= int(v) < len(layers):
            out.append(layers[int(v)])
        else:
            shown = ", ".join(layers[:6]) + (", ..." if len(layers) > 6 else "")
            raise NeuralignError(f"{option}: {v!r} is not a layer ({shown}), an index, "
                                 "'peak' or 'all'")
    return list(dict.fromkeys(out))


def plan_unit_analyses(*, features: FeatureSet, n_channels: int, units=None, readouts=None,
                       top_k: int = 10, ranks=(1, 2), pca=(16, 64), n_boot: int = 500,
                       seed: int = 0, option_names: dict | None = None) -> UnitPlan:
    """Check the options of the unit-level and readout analyses before anything runs.

    Parameters
    ----------
    features : FeatureSet
        The features (their layer names).
    n_channels : int
        Channels of the EEG (a factorised readout's rank must be below it).
    units, readouts : list of str | None
        Layer choices (``[]``: the peak layer; ``["all"]``; names or indices); ``None``: off.
    top_k : int
        Best units kept per channel x time.
    ranks : sequence of int
        Ranks of the factorised readouts.
    pca : sequence of int
        Components of the PCA-then-ridge readouts.
    n_boot : int
        Bootstrap resamples of the paired tests.
    seed : int
        Seed of the resampling.
    option_names : dict | None
        How the caller names the options in errors (``units``, ``readouts``, ``top_k``,
        ``ranks``, ``pca``, ``n_boot``); default: the command line's.

    Returns
    -------
    UnitPlan
    """
    name = {"units": "--units", "readouts": "--readouts", "top_k": "--top-units",
            "ranks": "--readout-ranks", "pca": "--readout-pca", "n_boot": "--readout-boot",
            **(option_names or {})}
    layers = list(features.layers)
    plan = UnitPlan(_layers(units, layers, name["units"]),
                    _layers(readouts, layers, name["readouts"]), int(top_k),
                    tuple(int(r) for r in ranks), tuple(int(k) for k in pca), int(n_boot),
                    int(seed))
    if plan.top_k < 1:
        raise NeuralignError(f"{name['top_k']} must be at least 1, got {top_k}")
    bad = [r for r in plan.ranks if not 1 <= r < n_channels]
    if bad:
        raise NeuralignError(f"{name['ranks']}: ranks must be between 1 and the number of "
                             f"channels - 1 ({n_channels - 1}), got {bad}")
    if any(k < 1 for k in plan.pca):
        raise NeuralignError(f"{name['pca']}: components must be at least 1, got {list(pca)}")
    if plan.n_boot < 10:
        raise NeuralignError(f"{name['n_boot']} must be at least 10, got {n_boot}")
    plan.settings = {"units": plan.units, "readouts": plan.readouts, "top_k": plan.top_k,
                     "ranks": list(plan.ranks), "pca": list(plan.pca), "n_boot": plan.n_boot,
                     "seed": plan.seed}
    return plan


def peak_layer(result) -> str:
    """The layer with the highest encoding peak r (channel-mean map)."""
    _, val = result.peaks("encoding")
    if not np.isfinite(val).any():
        return result.layers[-1]
    return result.layers[int(np.nanargmax(val))]


def run_unit_analyses(plan: UnitPlan, data, features: FeatureSet, result, *, out,
                      engine_kw: dict | None = None, planted: dict | None = None,
                      quiet: bool = False) -> dict:
    """Run the planned analyses, write their files into ``out`` and record them in ``result``.

    Parameters
    ----------
    plan : UnitPlan
        From :func:`plan_unit_analyses`.
    data : EpochData
        The epochs the main analysis used.
    features : FeatureSet
        Its features.
    result : AlignmentResult
        The main analysis (its peak layer; ``result.analyses`` receives the summaries).
    out : str | Path
        Output folder.
    engine_kw : dict | None
        The engine settings of the main analysis (``alphas``, ``n_folds``, ``dtype``,
        ``alpha_selection``, ``memory``).
    planted : dict | None
        A simulation's planted truth (its ``units`` entry is scored).
    quiet : bool
        No progress bar and no summary lines.

    Returns
    -------
    dict
        ``units`` and/or ``readouts``: the summaries written into ``results.json``.
    """
    from tqdm import tqdm

    from ..align import AlignmentEngine

    if not plan.active:
        return {}
    peak = peak_layer(result)

    def resolve(v):
        return None if v is None else list(dict.fromkeys(peak if x == "peak" else x for x in v))

    u_layers, r_layers = resolve(plan.units), resolve(plan.readouts)
    chosen = list(dict.fromkeys((u_layers or []) + (r_layers or [])))
    idx = [features.layers.index(n) for n in chosen]
    fs = FeatureSet(features.stimulus_ids, tuple(chosen),
                    tuple(features.arrays[i] for i in idx), dict(features.provenance))
    kw = {k: v for k, v in (engine_kw or {}).items() if v is not None}
    kw.update(backend="numpy", incremental=False, max_rsa_stimuli=20)  # RSA is not used here
    eng = AlignmentEngine(fs, times=data.times, ch_names=data.ch_names,
                          test_ids=data.test_ids, **kw)
    steps = len(u_layers or []) + len(r_layers or []) + 1
    bar = tqdm(total=steps, desc="units and readouts", unit="step", disable=quiet, leave=False)
    try:
        for start in range(0, data.epochs.shape[0], 2000):  # as analyze_epochs: bounded copies
            eng.add_epochs(data.stimulus_ids[start:start + 2000], data.epochs[start:start + 2000])
        eng.refresh()
        bar.update(1)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        summary: dict = {}
        if u_layers is not None:
            summary["units"] = _units(eng, u_layers, plan, out, planted, bar)
        if r_layers is not None:
            summary["readouts"] = _readouts(eng, r_layers, plan, out, bar)
    finally:
        bar.close()
    result.analyses.update(jsonable(summary))
    if not quiet:
        for line in summary_lines(summary):
            print(line)
    return summary


def _units(eng, layers, plan, out, planted, bar) -> dict:
    from ..align.units import unit_encoding

    times, ch = eng.times, eng.ch_names
    rows, maps, red, per_layer = [], {}, {}, {}
    for name in layers:
        li = list(eng.features.layers).index(name)
        res = unit_encoding(eng, li, top_k=plan.top_k)
        C, T = eng.n_channels, eng.n_times
        D = res.unit_r.shape[0]
        best = np.argmax(res.unit_r, axis=1)
        lat, peak_r, pol_peak = res.unit_peaks(times)
        order = np.argsort(-res.unit_r[np.arange(D), best])
        for rank, u in enumerate(order):
            m = best[u]
            rows.append([name, int(u), rank + 1, ch[m // T], f"{times[m % T]:.4f}",
                         f"{res.unit_r[u, m]:.5f}", int(res.polarity[u, m]), f"{lat[u]:.4f}",
                         f"{peak_r[u]:.5f}", int(pol_peak[u])])
        maps[f"{name}/top_units"] = res.top_units.reshape(C, T, -1)
        maps[f"{name}/top_r"] = res.top_r.reshape(C, T, -1)
        maps[f"{name}/top_polarity"] = res.top_polarity.reshape(C, T, -1)
        maps[f"{name}/unit_r_time"] = res.unit_r.reshape(D, C, T).mean(1)
        maps[f"{name}/overlap"] = res.overlap
        if res.unit_r.size <= MAX_FULL_MAP:
            maps[f"{name}/unit_r"] = res.unit_r.reshape(D, C, T).astype(np.float16)
            maps[f"{name}/polarity"] = res.polarity.reshape(D, C, T)
        red[name] = res.redundancy
        fig = out / f"units_{name}.png"
        unit_figure(fig, res, times, ch, title=f"{name}: unit-level encoding")
        d = res.to_dict(times, n_units=min(20, D))
        d["figure"] = fig.name
        d["n_units"] = int(D)
        d["mean_overlap_adjacent"] = float(np.mean(np.diag(res.overlap, 1))) if T > 1 else None
        per_layer[name] = d
        bar.update(1)
    with open(out / "units.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer", "unit", "rank", "best_channel", "best_time_s", "r", "polarity",
                    "peak_latency_s", "peak_r_channel_mean", "polarity_at_peak"])
        w.writerows(rows)
    np.savez_compressed(out / "units_maps.npz", times=np.asarray(times),
                        ch_names=np.asarray(ch, dtype=str), **maps)
    (out / "redundancy.json").write_text(json.dumps(jsonable(red), indent=1))
    summary = {"layers": per_layer, "files": ["units.csv", "units_maps.npz", "redundancy.json"],
               "figures": [per_layer[n]["figure"] for n in per_layer],
               "method": "univariate ridge per unit x target (held-out r, sign of the training "
                         "relation), best units per channel x time, redundancy curve"}
    truth = (planted or {}).get("units")
    if truth and truth.get("layer") in per_layer:
        summary["planted"] = score_planted(truth, rows)
    return summary


def _readouts(eng, layers, plan, out, bar) -> dict:
    from ..align.readouts import compare_readouts

    per_layer = {}
    for name in layers:
        li = list(eng.features.layers).index(name)
        res = compare_readouts(eng, li, ranks=plan.ranks, pca_components=plan.pca,
                               n_boot=plan.n_boot, seed=plan.seed)
        fig = out / f"readouts_{name}.png"
        readout_figure(fig, res, eng.times, title=f"{name}: readouts on the same held-out stimuli")
        res["figure"] = fig.name
        per_layer[name] = res
        bar.update(1)
    (out / "readouts.json").write_text(json.dumps(jsonable(per_layer), indent=1))
    return {"layers": {n: {"mean_r": {k: v["mean_r"] for k, v in r["readouts"].items()},
                           "vs_ridge": r["vs_ridge"], "figure": r["figure"]}
                       for n, r in per_layer.items()},
            "files": ["readouts.json"], "figures": [r["figure"] for r in per_layer.values()],
            "test": "paired bootstrap over held-out stimuli of the mean r over targets",
            "n_boot": plan.n_boot}


def plans_from_args(args, sets: dict, *, n_channels: int) -> dict[str, UnitPlan]:
    """The plans of ``neuralign analyze`` (``--units``, ``--readouts``...) for every feature set.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    sets : dict of str to FeatureSet
        The feature sets (a layer named in an option must be in every one of them).
    n_channels : int
        Channels of the EEG.

    Returns
    -------
    dict of str to UnitPlan
    """
    return {label: plan_unit_analyses(
        features=fs, n_channels=n_channels, units=args.units, readouts=args.readouts,
        top_k=args.top_units, ranks=args.readout_ranks, pca=args.readout_pca,
        n_boot=args.readout_boot, seed=getattr(args, "seed", 0)) for label, fs in sets.items()}


def run_planned(plans: dict, args, data, sets: dict, results: dict, *, memory=None,
                planted: dict | None = None) -> None:
    """Run ``neuralign analyze``'s unit-level and readout analyses of every feature set.

    Their files go into ``--out`` (one feature set) or ``--out/LABEL``; their summaries into
    each result's ``analyses`` (so into its ``results.json``).

    Parameters
    ----------
    plans : dict of str to UnitPlan
        From :func:`plans_from_args`.
    args : argparse.Namespace
        The parsed command line (engine settings, ``--out``, ``--quiet``).
    data : EpochData
        The epochs.
    sets : dict of str to FeatureSet
        The feature sets.
    results : dict of str to AlignmentResult
        Their maps.
    memory : int | None
        Memory budget in bytes.
    planted : dict | None
        A simulation's planted truth.
    """
    out = Path(args.out)
    kw = {"alphas": args.alphas, "n_folds": args.folds, "dtype": args.dtype,
          "alpha_selection": args.alpha_selection, "memory": memory}
    for label, plan in plans.items():
        if plan.active:
            run_unit_analyses(plan, data, sets[label], results[label],
                              out=out / label if len(sets) > 1 else out, engine_kw=kw,
                              planted=planted, quiet=args.quiet)
