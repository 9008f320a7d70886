"""``neuralign analyze``: offline layer x latency alignment of a dataset with model features."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..base import fill_doc
from .analyze_common import check_inputs, planted_from, solver_line, summary_lines

__all__ = ["add_analysis_args", "analyze", "check_inputs", "planted_from", "register", "run",
           "solver_line", "summary_lines"]


def register(subparsers) -> None:
    """Add the ``analyze`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "analyze",
        help="offline layer x latency alignment of a dataset",
        description=(
            "Ridge encoding (held-out r per layer x channel x time), RSA and noise ceilings of "
            "an EEG dataset against per-layer model features, with single-subject statistics "
            "(bootstrap intervals of every layer's peak, a family-wise permutation mask over "
            "layer x time, the latency-hierarchy test). Several --features are each analysed "
            "and ranked; --partition splits their variance into unique and shared parts. "
            "Writes results.json, maps.npz, significance.npz, PNG figures and report.html "
            "into --out."
        ),
    )
    add_analysis_args(p)
    add_unit_args(p)
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
                        "for several feature sets (label: LABEL= or the file stem)")
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
    add_statistics_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")


def add_statistics_args(p: argparse.ArgumentParser) -> None:
    """The statistics options of ``analyze`` (permutations, bootstrap, cache, partition).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    """
    g = p.add_argument_group("statistics")
    g.add_argument("--permutations", "--n-perm", dest="permutations", type=int, default=1000,
                   metavar="N",
                   help="stimulus-label permutations of the family-wise significance mask and "
                        "of the partition tests (default 1000; 0: no tests); --n-perm as in "
                        "live")
    g.add_argument("--bootstrap", "--n-boot", dest="bootstrap", type=int, default=1000,
                   metavar="N",
                   help="bootstrap resamples of the scored stimuli for intervals and "
                        "rankings (default 1000; 0: no intervals); --n-boot as in live")
    g.add_argument("--seed", type=int, default=0, help="seed of permutations and resamples")
    g.add_argument("--alpha", type=float, default=0.05,
                   help="family-wise error rate (default 0.05)")
    g.add_argument("--partition", action="store_true",
                   help="variance partitioning of 2 or 3 --features (unique and shared "
                        "held-out R^2 per channel x time, intervals, permutation tests)")
    g.add_argument("--partition-layer", action="append", default=[], metavar="LABEL=LAYER",
                   help="the layer of a feature set that enters the partition (default: its "
                        "layer with the highest peak r)")
    g.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="statistics cache (default $NEURALIGN_CACHE/analyze or "
                        "~/.cache/neuralign/analyze): a re-run with the same data, features "
                        "and options reuses the permutation nulls")
    g.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")


def add_unit_args(p: argparse.ArgumentParser) -> None:
    """The options of the unit-level and readout analyses (:mod:`neuralign.offline.unit_analysis`).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    """
    g = p.add_argument_group("units and readouts")
    g.add_argument("--units", nargs="*", default=None, metavar="LAYER",
                   help="unit-level encoding of these layers (names, indices, 'all'; alone: "
                        "the peak layer): units.csv, units_maps.npz, redundancy.json, figures")
    g.add_argument("--readouts", nargs="*", default=None, metavar="LAYER",
                   help="factorised (spatial x feature) and PCA-then-ridge readouts against "
                        "ridge on the same held-out stimuli (paired test): readouts.json")
    g.add_argument("--top-units", type=int, default=10, metavar="K",
                   help="best units kept per channel x time (default 10)")
    g.add_argument("--readout-ranks", type=int, nargs="+", default=[1, 2], metavar="R",
                   help="ranks of the factorised readouts (default 1 2)")
    g.add_argument("--readout-pca", type=int, nargs="+", default=[16, 64], metavar="K",
                   help="components of the PCA-then-ridge readouts (default 16 64)")
    g.add_argument("--readout-boot", type=int, default=500, metavar="N",
                   help="bootstrap resamples of the paired readout tests (default 500)")


@fill_doc
def analyze(data, features, *, alphas=None, n_folds: int = 5, backend: str = "numpy",
            dtype: str = "float64", quiet: bool = False, chunk: int = 2000,
            alpha_selection: str = "gcv", max_rsa_stimuli: int | None = 200,
            memory: int | None = None):
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

    Returns
    -------
    AlignmentResult
        The maps.
    """
    from tqdm import tqdm

    from ..align.batch import analyze_epochs

    if not quiet:
        print(f"accumulating epochs, then solving {features.n_layers} layers (ridge, RSA, "
              "noise ceilings)...", file=sys.stderr)
    bars = {}

    def progress(n: int, *, what: str = "epochs") -> None:
        if what not in bars:
            for b in bars.values():
                b.close()
            total = data.epochs.shape[0] if what == "epochs" else features.n_layers
            bars[what] = tqdm(total=total, desc="accumulating epochs" if what == "epochs"
                              else "solving layers", unit="epoch" if what == "epochs"
                              else "layer", disable=quiet, file=sys.stderr, leave=False)
        bars[what].update(n)

    try:
        return analyze_epochs(
            data, features, chunk=chunk, progress=progress, alphas=alphas, n_folds=n_folds,
            backend=backend, dtype=dtype, alpha_selection=alpha_selection,
            max_rsa_stimuli=max_rsa_stimuli or None, memory=memory,
        )
    finally:
        for b in bars.values():
            b.close()


def run(args: argparse.Namespace) -> int:
    """Load the dataset and the features, run the engine and the statistics, write the
    results and report (:func:`neuralign.commands.analyze_run.run_analysis`)."""
    from .analyze_run import run_analysis

    return run_analysis(args)
