"""The work of ``neuralign analyze``: options checked, engines run, statistics (cached),
ranking and partition computed, outputs written. The options live in :mod:`.analyze`."""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from ..errors import NeuralignError

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def feature_specs(values: list[str]) -> dict[str, Path]:
    """``--features`` values -> label -> path (``LABEL=PATH`` or the file stem).

    Parameters
    ----------
    values : list of str
        The option's values.

    Returns
    -------
    dict of str to Path
        In the order given.
    """
    out: dict[str, Path] = {}
    for v in values:
        label, sep, rest = v.partition("=")
        if sep and label and "/" not in label and "\\" not in label:
            path = Path(rest)
        else:
            path = Path(v)
            label = path.stem if path.suffix else path.name
        if not _LABEL.match(label):
            raise NeuralignError(f"--features {v}: label {label!r} must be letters, digits, "
                                 "'_', '.' or '-' (it names an output folder)")
        if label in out:
            raise NeuralignError(f"--features: label {label!r} given twice; name them "
                                 "LABEL=PATH")
        out[label] = path
    return out


def check_options(args: argparse.Namespace):
    """Validate every option before anything is loaded; return (specs, StatOptions, layers).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    """
    from ..offline.analysis import StatOptions

    specs = feature_specs(args.features)
    opts = StatOptions(n_perm=args.permutations, n_boot=args.bootstrap, seed=args.seed,
                       alpha=args.alpha)
    opts.check()
    chosen = {}
    for v in args.partition_layer:
        label, sep, layer = v.partition("=")
        if not sep or not label or not layer:
            raise NeuralignError(f"--partition-layer {v!r}: expected LABEL=LAYER")
        chosen[label] = layer
    if args.partition and len(specs) not in (2, 3):
        raise NeuralignError(f"--partition needs 2 or 3 --features, got {len(specs)}")
    if chosen and not args.partition:
        raise NeuralignError("--partition-layer is only used with --partition")
    if args.partition and (args.permutations == 0 or args.bootstrap == 0):
        raise NeuralignError("--partition needs --permutations and --bootstrap above 0 (its "
                             "unique parts are tested and given intervals)")
    return specs, opts, chosen


def check_partition_memory(n_stimuli: int, n_sets: int, memory: int | None) -> None:
    """Refuse ``--partition`` up front when its Gram matrices cannot fit the budget.

    The banded ridge works in the dual: one ``N x N`` Gram matrix per feature set plus the
    kernel sums and a Cholesky factor of the training block (about ``n_sets + 3`` such
    matrices in float64).

    Parameters
    ----------
    n_stimuli : int
        Stimuli of the features (``N``).
    n_sets : int
        Feature sets partitioned.
    memory : int | None
        ``--memory`` in bytes (default: 80% of the memory available).
    """
    from ..base.resources import available_memory

    budget = memory if memory is not None else int(0.8 * available_memory())
    need = (n_sets + 3) * float(n_stimuli) ** 2 * 8
    if need > budget:
        raise NeuralignError(
            f"--partition of {n_sets} feature sets over {n_stimuli} stimuli needs about "
            f"{_size(need)} (dual banded ridge, N x N matrices); the memory budget is "
            f"{_size(budget)} (--memory)")


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def common_features(sets: dict) -> tuple[dict, list[str]]:
    """Feature sets restricted to the stimuli they all list, in one order (with a note).

    Parameters
    ----------
    sets : dict of str to FeatureSet
        The loaded feature sets.
    """
    ids = [set(fs.stimulus_ids.tolist()) for fs in sets.values()]
    first = next(iter(sets.values()))
    same = all(np.array_equal(fs.stimulus_ids, first.stimulus_ids) for fs in sets.values())
    if same:
        return sets, []
    common = set.intersection(*ids)
    order = [s for s in first.stimulus_ids.tolist() if s in common]
    return ({k: fs.subset(order) for k, fs in sets.items()},
            [f"the feature sets list different stimuli; all were restricted to the "
             f"{len(order)} they share"])


def solve_models(args: argparse.Namespace, data, sets: dict, *, memory: int | None, bars):
    """The engines of ``analyze`` (command and Python API): every feature set on ``data``.

    Parameters
    ----------
    args : argparse.Namespace
        The command's options (``alphas``, ``folds``, ``backend``, ``dtype``,
        ``alpha_selection``, ``max_rsa_stimuli``).
    data : EpochData
        The epochs.
    sets : dict of str to FeatureSet
        Label -> features (the same stimuli in every set).
    memory : int | None
        Memory budget in bytes.
    bars : Bars
        Progress bars (closed here).

    Returns
    -------
    group : ModelGroup
    results : dict of str to AlignmentResult
    """
    from ..align.batch import analyze_models

    try:
        return analyze_models(
            data, sets, progress=bars, alphas=args.alphas, n_folds=args.folds,
            backend=args.backend, dtype=args.dtype, alpha_selection=args.alpha_selection,
            max_rsa_stimuli=args.max_rsa_stimuli or None, memory=memory)
    finally:
        bars.close()


def run_analysis(args: argparse.Namespace) -> int:
    """``neuralign analyze``: see :mod:`neuralign.commands.analyze`.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    """
    from ..align.memory import parse_memory
    from ..io.features import load_features
    from ..offline.analysis import rsa_notes
    from ..offline.comparison import check_partition_layers
    from ..offline.unit_analysis import plans_from_args, run_planned
    from .analyze_common import Bars, check_inputs, planted_from
    from .analyze_output import write_all
    from .analyze_stats import StatsRunner
    from .datasets import load_dataset, parse_spec

    specs, opts, chosen = check_options(args)
    kind, path = parse_spec(args.dataset)
    if args.out.exists() and not args.out.is_dir():
        raise NeuralignError("--out names an existing file; give a folder", path=args.out)
    memory = None if args.memory is None else parse_memory(args.memory)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(args.dataset, **({"metadata": args.metadata}
                                             if args.metadata is not None else {}))
    for w in caught:  # one line each, no source excerpt
        print(f"neuralign: warning: {w.message}", file=sys.stderr)
    sets = {label: load_features(p) for label, p in specs.items()}
    for label, fs in sets.items():
        check_inputs(data, fs, args.folds, specs[label])
    check_partition_layers({k: list(fs.layers) for k, fs in sets.items()}, chosen)
    sets, notes = common_features(sets)
    if args.partition:
        check_partition_memory(next(iter(sets.values())).n_stimuli, len(sets), memory)
    unit_plans = plans_from_args(args, sets, n_channels=len(data.ch_names))
    for label, fs in sets.items():
        notes += [f"{label}: {n}" if len(sets) > 1 else n for n in rsa_notes(fs)]
    quiet = args.quiet
    n_layers = sum(fs.n_layers for fs in sets.values())
    if not quiet:
        print(f"{data.epochs.shape[0]} epochs of {np.unique(data.stimulus_ids).size} stimuli, "
              f"{len(data.ch_names)} channels x {data.times.size} times; "
              + ", ".join(f"{k}: {fs.n_layers} layers" for k, fs in sets.items()),
              file=sys.stderr)
    bars = Bars({"epochs": data.epochs.shape[0], "layers": n_layers,
                 "statistics": 0}, quiet=quiet)
    group, results = solve_models(args, data, sets, memory=memory, bars=bars)
    runner = StatsRunner(args, data, specs, opts, quiet=quiet)
    stats = runner.layer_statistics(group, results)
    ranking = group.ranking(n_boot=opts.n_boot or 200, seed=opts.seed) \
        if len(sets) > 1 else None
    partition = runner.partition(group, stats, chosen) if args.partition else None
    run_planned(unit_plans, args, data, sets, results, memory=memory,
                planted=(data.info or {}).get("planted") or planted_from(kind, path))
    return write_all(args, kind=kind, path=path, data=data, specs=specs, results=results,
                     stats=stats, ranking=ranking, partition=partition, notes=notes,
                     cache_info=runner.info)
