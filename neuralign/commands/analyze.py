"""``neuralign analyze``: offline layer x latency alignment of a dataset with model features."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from ..base import fill_doc
from ..base.truth import planted_latencies, planted_record
from ..errors import NeuralignError, few


def register(subparsers) -> None:
    """Add the ``analyze`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "analyze",
        help="offline layer x latency alignment of a dataset",
        description=(
            "Ridge encoding (held-out r per layer x channel x time), RSA and noise ceilings of "
            "an EEG dataset against per-layer model features. Writes results.json, maps.npz, "
            "PNG figures and report.html into --out."
        ),
    )
    add_analysis_args(p)
    p.set_defaults(func=run)


def add_analysis_args(p: argparse.ArgumentParser) -> None:
    """The options of ``analyze`` (dataset, features, output, engine settings).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    """
    p.add_argument("--dataset", required=True, metavar="KIND:PATH",
                   help="e.g. things-eeg2:/data/sub-01 (kinds: things-eeg2, sim, ...)")
    p.add_argument("--features", required=True, action="append", metavar="[LABEL=]FEATURES",
                   help="features (.npz: stimulus_ids + one (N, D) array per layer); repeat "
                        "to compare several models (labelled LABEL, or by the file stem)")
    p.add_argument("--n-boot", type=int, default=500,
                   help="bootstrap resamples for the 95%% intervals (500; 0 = none)")
    p.add_argument("--n-perm", type=int, default=200,
                   help="permutations of the significance mask (200; 0 = none)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of bootstrap and permutations (a live session's --seed gives "
                        "its intervals)")
    p.add_argument("--out", required=True, type=Path, metavar="OUT_DIR")
    p.add_argument("--metadata", type=Path, default=None,
                   help="image_metadata.npy (default: in the subject folder's parent)")
    p.add_argument("--alphas", type=float, nargs="+", default=None,
                   help="ridge alphas (default: 8 values, logspace(-1, 6))")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch", "torch_cuda"])
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--alpha-selection", default="gcv", choices=["gcv", "kfold"],
                   help="per-target alpha from training data only: generalised CV (default, "
                        "fast) or K-fold CV over the training folds")
    p.add_argument("--max-rsa-stimuli", type=int, default=200,
                   help="cap on the stimuli in the RDMs (default 200; 0 = no cap)")
    p.add_argument("--memory", default=None, metavar="SIZE",
                   help="memory budget, e.g. 3GB (default: 80%% of the memory available); "
                        "layers are solved one at a time or in parallel within it")
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")


def _check_inputs(data, features, n_folds: int, features_path: Path) -> None:
    ids = np.unique(data.stimulus_ids)
    missing = [s for s in ids.tolist() if s not in features]
    if missing:
        raise NeuralignError(
            f"{len(missing)} of {ids.size} EEG stimulus ids are not in the features: "
            f"{few(missing)}",
            path=features_path,
        )
    if n_folds < 2:
        raise NeuralignError(f"--folds must be at least 2, got {n_folds}")
    test = set(data.test_ids or [])
    n_train = int(sum(1 for s in ids.tolist() if s not in test))
    if n_train < n_folds:
        what = "training stimuli" if test else "stimuli"
        raise NeuralignError(
            f"{n_train} {what} with EEG is fewer than --folds {n_folds}"
        )
    if test:
        n_test = len(test & set(ids.tolist()))
        if n_test < 3:
            raise NeuralignError(f"only {n_test} test stimuli with EEG; need at least 3")


@fill_doc
def analyze(data, features, *, alphas=None, n_folds: int = 5, backend: str = "numpy",
            dtype: str = "float64", quiet: bool = False, chunk: int = 2000,
            alpha_selection: str = "gcv", max_rsa_stimuli: int | None = 200,
            memory: int | None = None, monitor=None):
    """Run the engine on ``data`` with progress bars (epochs, then layers).

    All the features' stimuli are given to the engine, as a live session does: feature
    standardisation then does not depend on which stimuli happened to be shown (live = offline).

    Parameters
    ----------
    %(epoch_data)s
    %(features)s
    alphas : sequence of float | None
        Ridge penalties (default: the engine's).
    n_folds : int
        Cross-validation folds.
    backend : str
        ``numpy``, ``torch`` or ``torch_cuda``.
    dtype : str
        ``float64`` or ``float32``.
    quiet : bool
        No progress bar and no message.
    chunk : int
        Epochs per accumulation step.
    alpha_selection : str
        ``gcv`` or ``kfold``.
    max_rsa_stimuli : int | None
        Cap on the stimuli in the RDMs (``None``: no cap).
    memory : int | None
        Memory budget in bytes (default: the engine's, 80% of the memory available).
    monitor : StatisticsMonitor | None
        Intervals, masks and ranking of the final maps.

    Returns
    -------
    AlignmentResult | tuple
        The maps; with several models (``features`` a dict) or a ``monitor``,
        ``(label -> maps, statistics)`` (:func:`~neuralign.align.batch.analyze_models`).
    """
    from tqdm import tqdm

    from ..align.batch import analyze_epochs, analyze_models

    if not quiet:
        print(f"accumulating epochs, then solving {features.n_layers} layers (ridge, RSA, "
              "noise ceilings)...", file=sys.stderr)
    bars = {}

    def progress(n: int, *, what: str = "epochs") -> None:
        if what not in bars:
            for b in bars.values():
                b.close()
            n_layers = (sum(f.n_layers for f in features.values())
                        if isinstance(features, dict) else features.n_layers)
            total = data.epochs.shape[0] if what == "epochs" else n_layers
            bars[what] = tqdm(total=total, desc="accumulating epochs" if what == "epochs"
                              else "solving layers", unit="epoch" if what == "epochs"
                              else "layer", disable=quiet, file=sys.stderr, leave=False)
        bars[what].update(n)

    kw = {"alphas": alphas, "n_folds": n_folds, "backend": backend, "dtype": dtype,
          "alpha_selection": alpha_selection, "max_rsa_stimuli": max_rsa_stimuli or None,
          "memory": memory}
    try:
        if monitor is None and not isinstance(features, dict):
            return analyze_epochs(data, features, chunk=chunk, progress=progress, **kw)
        return analyze_models(data, features, monitor=monitor, chunk=chunk, progress=progress,
                              **kw)
    finally:
        for b in bars.values():
            b.close()


def summary_lines(result, planted: dict | None = None) -> list[str]:
    """A short per-layer table and, for simulated data, how well the truth was recovered.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    planted : dict | None
        The planted truth of simulated data (:mod:`neuralign.base.truth`).

    Returns
    -------
    list of str
        Peak latency (ms), peak r and RSA peak per layer, then the recovery line.
    """
    from ..report import layer_table
    from ..sim.truth import RECOVERY_CRITERION, recovery

    rows = layer_table(result)
    width = max(8, *(len(r["layer"]) for r in rows))
    planted_lat = planted_latencies(planted, result.layers)
    head = f"{'layer':<{width}}  enc peak ms  peak r  RSA peak ms  peak rho"
    if planted_lat is not None:
        head += "  planted ms"
    lines = [head]
    for i, r in enumerate(rows):
        line = (f"{r['layer']:<{width}}  {_n(r['enc_peak_ms'], 0):>11}  {_n(r['enc_peak_r']):>6}"
                f"  {_n(r['rsa_peak_ms'], 0):>11}  {_n(r['rsa_peak_rho']):>8}")
        if planted_lat is not None:
            line += f"  {_n(planted_lat[i] * 1000, 0):>10}"
        lines.append(line)
    if planted_lat is not None:
        rec = recovery(result, planted_lat)
        lines.append(
            f"planted hierarchy: Spearman(peak latency, planted) = {rec['spearman']:.3f}, "
            f"mean |error| = {rec['mae_ms']:.1f} ms -> "
            + ("RECOVERED" if rec["recovered"] else "NOT recovered")
            + f" (criterion: {RECOVERY_CRITERION})"
        )
    return lines


def solver_line(result) -> str:
    """One line: which form solved how many layers, the memory budget and the peak."""
    from collections import Counter

    forms = Counter(result.counts.get("solver_forms", []))
    plan = result.settings.get("memory_plan", {})
    peak = result.counts.get("peak_rss_gb")
    parts = [f"{n} layer(s) {f}" for f, n in sorted(forms.items())]
    return (f"solver: {', '.join(parts) or '-'}; memory budget {plan.get('budget_gb', '-')} GB, "
            f"{plan.get('layers_in_parallel', '-')} layer(s) at a time"
            + (f", peak RSS {peak:.2f} GB" if peak is not None else ""))


def _n(x, nd: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else (f"{x:.0f}" if nd == 0 else f"{x:.{nd}f}")


def run(args: argparse.Namespace) -> int:
    """Load the dataset and the features, run the engine, write the results and report."""
    from ..align.memory import parse_memory
    from ..align.monitor import StatisticsMonitor
    from ..report import write_session
    from ..sim.truth import recovery
    from . import feature_specs, load_models
    from .datasets import load_dataset, parse_spec

    kind, path = parse_spec(args.dataset)
    memory = None if args.memory is None else parse_memory(args.memory)
    options = {}
    if args.metadata is not None:
        options["metadata"] = args.metadata
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(args.dataset, **options)
    for w in caught:  # one line each, no source excerpt
        print(f"neuralign: warning: {w.message}", file=sys.stderr)
    for opt, v in (("--n-boot", args.n_boot), ("--n-perm", args.n_perm)):
        if v < 0:
            raise NeuralignError(f"{opt} must be >= 0, got {v}")
    specs = feature_specs(args.features)
    models = load_models(args.features)
    if not isinstance(models, dict):
        models = {next(iter(specs)): models}
    for label, fs in models.items():
        _check_inputs(data, fs, args.folds, specs[label])
    features = next(iter(models.values()))
    if not args.quiet:
        print(f"{data.epochs.shape[0]} epochs of {np.unique(data.stimulus_ids).size} stimuli, "
              f"{len(data.ch_names)} channels x {data.times.size} times; "
              f"{features.n_layers} layers" + (f", {len(models)} models" if len(models) > 1
                                               else ""), file=sys.stderr)
    monitor = StatisticsMonitor(n_boot=args.n_boot, n_perm=args.n_perm, seed=args.seed)
    results, stats = analyze(data, models, alphas=args.alphas, n_folds=args.folds,
                             backend=args.backend, dtype=args.dtype, quiet=args.quiet,
                             alpha_selection=args.alpha_selection,
                             max_rsa_stimuli=args.max_rsa_stimuli, memory=memory,
                             monitor=monitor)
    result = next(iter(results.values()))
    planted = (data.info or {}).get("planted") or _planted_from(kind, path)
    extra: dict = {
        "command": "neuralign analyze",
        "options": {k: (str(v) if isinstance(v, Path) else v)
                    for k, v in vars(args).items() if k not in ("func", "command")},
        "dataset": args.dataset,
        "features": {k: str(v) for k, v in specs.items()},
    }
    if planted:
        extra["planted"] = planted_record(planted)
        extra["simulated"] = True
        pl = planted_latencies(planted, result.layers)
        if pl is not None:
            extra["recovery"] = recovery(result, pl)
    title = args.title or f"neuralign analyze: {args.dataset}"
    paths = write_session(result, args.out, title=title, extra=extra,
                          results=results if len(results) > 1 else None, stats=stats)
    if not args.quiet:
        for line in summary_lines(result, planted):
            print(line)
        print(solver_line(result), file=sys.stderr)
        print(f"results: {paths['results']}  report: {paths['report']}")
    return 0


def _planted_from(kind: str, path: str) -> dict | None:
    """The planted truth of a simulated subject, if ``path`` is one."""
    if kind not in ("things-eeg2", "sim"):
        return None
    from ..sim.truth import read_planted

    p = read_planted(path)
    return p if p and p.get("simulated") else None
