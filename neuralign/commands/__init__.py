"""Sub-commands of the ``neuralign`` CLI, one module each (see :mod:`neuralign.cli`).

Besides the commands, this package holds what sits above every part: the dataset registry
(:mod:`.datasets`) and the orchestration of a simulated session (:mod:`.orchestrate`). Options
shared by several commands are declared here once, so they read the same everywhere: LSL
streams are always ``--eeg-stream`` / ``--marker-stream``, the map refresh interval is always
``--refresh-every SECONDS``. Renamed options keep their old name as a hidden alias for one
release (:func:`add_alias`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def neuralign_command(*argv: str) -> list[str]:
    """The command line that runs ``neuralign ARGV...`` in a child process.

    Parameters
    ----------
    *argv : str
        The sub-command and its options.

    Returns
    -------
    list of str
        ``[python, "-m", "neuralign", *argv]`` with this interpreter.
    """
    return [sys.executable, "-m", "neuralign", *argv]


def add_alias(p: argparse.ArgumentParser, old: str, *, dest: str, convert=None,
              nargs=None) -> None:
    """Accept ``old`` as a hidden alias of a renamed option (kept for one release).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    old : str
        The old option string (e.g. ``"--eeg"``).
    dest : str
        The ``dest`` of the new option it stands for.
    convert : callable | None
        Converts the old value to the new option's meaning (e.g. Hz to seconds).
    nargs : int | str | None
        As the new option's.
    """
    p.add_argument(old, dest=dest, type=convert, nargs=nargs, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)


def add_window_args(p: argparse.ArgumentParser) -> None:
    """``--screenshot FILE.png --exit-after SECONDS``: shared by gui, replay and session.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    """
    p.add_argument("--screenshot", type=Path, default=None, metavar="FILE.png",
                   help="save the window as PNG before exiting (renders offscreen)")
    p.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (exit status 0)")


def add_stream_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    """``--eeg-stream`` and ``--marker-stream``: the LSL streams a live session reads.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    required : bool
        Whether both are required.
    """
    p.add_argument("--eeg-stream", required=required, default=None, metavar="SPEC",
                   help="EEG stream: NAME (name or source id), name:X, type:X or source_id:X")
    p.add_argument("--marker-stream", required=required, default=None, metavar="SPEC",
                   help="marker stream (strings or int codes), same forms")


def hz_to_seconds(value: str) -> float:
    """Parse a rate in Hz given to an old ``--refresh-hz`` option as seconds between refreshes.

    Parameters
    ----------
    value : str
        The rate, in Hz (> 0).

    Returns
    -------
    float
        ``1 / value``.
    """
    hz = float(value)
    if hz <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 Hz, got {value}")
    return 1.0 / hz


def add_model_args(p: argparse.ArgumentParser, *, required: bool = True,
                   seed_flag: str = "--seed") -> None:
    """``--features [LABEL=]PATH`` (repeatable) and the statistics options.

    Several ``--features`` compare models in one session: the epochs are cut once and every
    model gets its maps, intervals and mask; the models are ranked. ``--stop-when RULE`` ends
    the session when the rule holds (see :mod:`neuralign.align.stopping`).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    required : bool
        Whether ``--features`` is required.
    seed_flag : str
        The option naming the statistics' seed (``--seed``, or another name where ``--seed``
        means something else).
    """
    p.add_argument("--features", required=required, action="append", default=None,
                   metavar="[LABEL=]PATH",
                   help="layer features (.npz / cache); repeat to compare several models "
                        "(labelled LABEL, or by the file stem)")
    p.add_argument("--stop-when", default=None, metavar="RULE",
                   help="end the session when RULE holds, e.g. 'latency-ci<=20ms', "
                        "'ranking p<0.01', 'epochs>=2000', joined by 'and'")
    p.add_argument("--stats-every", type=int, default=1, metavar="N",
                   help="evaluate intervals, masks, ranking and the rule every N map "
                        "refreshes (1)")
    p.add_argument("--n-boot", type=int, default=500,
                   help="bootstrap resamples of the scored stimuli (500; 0 = no intervals)")
    p.add_argument("--n-perm", type=int, default=200,
                   help="permutations of the significance mask (200; 0 = no mask)")
    p.add_argument(seed_flag, dest="stats_seed", type=int, default=0,
                   help="seed of bootstrap and permutations (0)")


def feature_specs(values) -> dict[str, Path]:
    """Label -> path of ``--features [LABEL=]PATH`` values (labels unique, paths exist).

    Parameters
    ----------
    values : list of str | str | Path | None
        The option's values.

    Returns
    -------
    dict of str to Path
    """
    from ..errors import NeuralignError

    if values is None:
        return {}
    if isinstance(values, str | Path):
        values = [values]
    out: dict[str, Path] = {}
    for v in values:
        text = str(v)
        label, sep, path = text.partition("=")
        if not sep or not label or "/" in label:
            label, path = Path(text).stem, text
        if not path:
            raise NeuralignError(f"--features {text!r}: no path after the label")
        if label in out:
            raise NeuralignError(f"--features: two models labelled {label!r} (name them: "
                                 "--features LABEL=PATH)")
        if not Path(path).exists():
            raise NeuralignError("--features: no such file", path=path)
        out[label] = Path(path)
    return out


def load_models(values):
    """The feature sets of ``--features`` values (one: a FeatureSet; several: label -> set).

    Parameters
    ----------
    values : list of str | str | Path
        The option's values.

    Returns
    -------
    FeatureSet | dict of str to FeatureSet
    """
    from ..io.features import load_features

    specs = feature_specs(values)
    sets = {k: load_features(p) for k, p in specs.items()}
    if len(sets) > 1:
        first = next(iter(sets.values()))
        for k, fs in sets.items():
            if set(fs.stimulus_ids.tolist()) != set(first.stimulus_ids.tolist()):
                from ..errors import NeuralignError

                raise NeuralignError(f"--features: model {k!r} lists other stimuli than "
                                     f"{next(iter(sets))!r}; compared models need the same "
                                     "stimuli", path=specs[k])
        return sets
    return next(iter(sets.values()))


def make_monitor(args: argparse.Namespace):
    """The statistics monitor of the parsed options (the rule is checked here, first).

    Parameters
    ----------
    args : argparse.Namespace
        ``stop_when``, ``n_boot``, ``n_perm``, ``stats_seed``, ``stats_every``.

    Returns
    -------
    StatisticsMonitor
    """
    from ..align.monitor import StatisticsMonitor
    from ..align.stopping import StoppingRule
    from ..errors import NeuralignError

    rule = None if args.stop_when is None else StoppingRule.parse(args.stop_when)
    for opt, v in (("--n-boot", args.n_boot), ("--n-perm", args.n_perm)):
        if v < 0:
            raise NeuralignError(f"{opt} must be >= 0, got {v}")
    if args.stats_every < 1:
        raise NeuralignError(f"--stats-every must be >= 1, got {args.stats_every}")
    if rule is not None and any(c.kind in ("latency", "significant") for c in rule.conditions) \
            and (args.n_boot == 0 or args.n_perm == 0):
        raise NeuralignError("--stop-when on latency intervals needs --n-boot and --n-perm > 0")
    n_models = len(args.features) if isinstance(args.features, list | tuple) else 1
    if rule is not None and n_models < 2 and any(c.kind == "ranking" for c in rule.conditions):
        raise NeuralignError("--stop-when 'ranking p<...' compares models: give two --features "
                             "or more")
    return StatisticsMonitor(rule=rule, n_boot=args.n_boot, n_perm=args.n_perm,
                             seed=args.stats_seed)
