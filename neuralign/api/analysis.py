"""Offline analysis from Python: features in, epochs in (MNE, NumPy or :class:`EpochData`),
maps out as an :class:`~neuralign.report.AlignmentResult` that plots itself.

:func:`analyze` (one feature set) and :func:`compare` (several, ranked) run what
``neuralign analyze`` runs, with the command's own pieces (:func:`run_models`): its parser's
defaults and option checks (:func:`command_options`), its input checks,
:func:`neuralign.align.batch.analyze_models` and its statistics runner, so the maps and the
statistics are the command's. ``--partition`` and the other options of the command not in
:data:`OPTIONS` are the command's only.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..align.data import jsonable
from ..base import EpochData, FeatureSet
from ..errors import NeuralignError
from ..report.comparison import Comparison
from ..report.results import AlignmentResult


def load_features(path: str | Path) -> FeatureSet:
    """Read per-layer model features.

    Parameters
    ----------
    path : str | Path
        A ``.npz`` (``stimulus_ids`` + one ``(N, D)`` array per layer, in depth order) or a
        feature cache folder written by ``neuralign features`` (read one layer at a time).

    Returns
    -------
    FeatureSet
        The features; layers in depth order.
    """
    from ..io.features import load_features as load

    return load(path)


def load_dataset(spec: str, **options) -> EpochData:
    """Load a dataset as ``neuralign analyze --dataset KIND:PATH`` does.

    Parameters
    ----------
    spec : str
        ``KIND:PATH``, e.g. ``things-eeg2:/data/sub-01``, ``mne-epochs:sub-01-epo.fif`` or
        ``sim:/tmp/sim`` (a simulated subject, with its planted truth).
    **options
        Passed to the kind's loader (e.g. ``metadata=`` for THINGS-EEG2).

    Returns
    -------
    EpochData
        The epochs tagged with their stimulus ids, and the dataset's test set.
    """
    from ..commands.datasets import load_dataset as load

    return load(spec, **options)


def as_epoch_data(epochs, *, stimulus_ids=None, test_ids=None, times=None,
                  ch_names=None) -> EpochData:
    """Epochs of any accepted kind as :class:`~neuralign.base.EpochData`.

    Parameters
    ----------
    epochs : mne.Epochs | ndarray | EpochData
        ``mne.Epochs`` (see :meth:`EpochData.from_mne`), an array of shape
        ``(n_epochs, n_channels, n_times)`` or an ``EpochData``.
    stimulus_ids : str | array of str | None
        For ``mne.Epochs``: a metadata column or one id per epoch (default: the metadata's
        ``stimulus_id`` column, else the event names). For an array: one id per epoch
        (required). For ``EpochData``: replaces its ids when given.
    test_ids : list of str | None
        Stimuli that score (the rest train); ``None``: the epochs' own test set, or nested
        cross-validation over all stimuli.
    times : array of float | None
        For an array: the time axis in seconds (required).
    ch_names : list of str | None
        For an array: channel names (default ``ch000``, ``ch001``...).

    Returns
    -------
    EpochData
        The epochs tagged with their stimulus ids.
    """
    if isinstance(epochs, EpochData):
        data = epochs
        if stimulus_ids is not None or test_ids is not None:
            data = EpochData(data.epochs, data.stimulus_ids if stimulus_ids is None
                             else stimulus_ids, data.times, list(data.ch_names),
                             test_ids=data.test_ids if test_ids is None else list(test_ids),
                             info=dict(data.info))
        return data
    if isinstance(epochs, np.ndarray):
        if stimulus_ids is None or times is None:
            raise NeuralignError("an epochs array needs stimulus_ids= (one per epoch) and "
                                 "times= (seconds)")
        arr = np.asarray(epochs)
        if arr.ndim != 3:
            raise NeuralignError(f"epochs must be (n_epochs, channels, times), got {arr.shape}")
        names = list(ch_names) if ch_names is not None else [
            f"ch{i:03d}" for i in range(arr.shape[1])]
        return EpochData(arr, np.asarray(stimulus_ids), np.asarray(times, dtype=float), names,
                         test_ids=None if test_ids is None else list(test_ids),
                         info={"source": "array"})
    if hasattr(epochs, "get_data") and hasattr(epochs, "events"):  # any mne Epochs kind
        return EpochData.from_mne(epochs, stimulus_ids=stimulus_ids, test_ids=test_ids)
    raise NeuralignError(f"epochs must be mne.Epochs, a NumPy array or EpochData, "
                         f"got {type(epochs).__name__}")


#: The options of ``neuralign analyze`` that :func:`analyze` takes (argparse names).
OPTIONS = ("alphas", "folds", "backend", "dtype", "alpha_selection", "max_rsa_stimuli",
           "memory", "permutations", "bootstrap", "seed", "alpha", "cache", "no_cache")
#: Python spellings accepted besides the command's.
ALIASES = {"n_folds": "folds", "n_permutations": "permutations", "n_bootstrap": "bootstrap"}


def command_options(options: dict, *, features: list[str], cache: bool) -> argparse.Namespace:
    """The options of ``neuralign analyze`` as its parser makes them: its defaults, ``options``
    set over them.

    Parameters
    ----------
    options : dict
        Option name (the command's, without ``--``, ``_`` for ``-``; or an alias such as
        ``n_folds``) -> value.
    features : list of str
        The ``--features`` values (``LABEL=PATH``).
    cache : bool
        Whether the statistics cache may be used (features read from a file).

    Returns
    -------
    argparse.Namespace
        What the command's code reads.
    """
    from ..commands.analyze import add_analysis_args

    parser = argparse.ArgumentParser(add_help=False)
    add_analysis_args(parser)
    argv = ["--dataset", "python:epochs", "--out", "."]
    for value in features:
        argv += ["--features", value]
    args = parser.parse_args(argv)
    args.no_cache = not cache
    for key, value in options.items():
        name = ALIASES.get(key, key)
        if name not in OPTIONS:
            if hasattr(args, name):
                raise NeuralignError(f"neuralign analyze --{name.replace('_', '-')} is not "
                                     "available from Python yet; use the command")
            raise NeuralignError(f"unknown option {key!r}; options: {', '.join(OPTIONS)}")
        setattr(args, name, value)
    return args


def analyze(epochs, features, *, stimulus_ids=None, test_ids=None, times=None, ch_names=None,
            progress: bool = True, **options) -> AlignmentResult:
    """Layer x latency alignment of epochs with model features (``neuralign analyze``).

    Parameters
    ----------
    epochs : mne.Epochs | ndarray | EpochData
        The EEG epochs (see :func:`as_epoch_data` for how stimulus ids are found).
    features : FeatureSet | str | Path
        Per-layer features (or the file / cache folder to read them from) of at least every
        stimulus in the epochs.
    stimulus_ids : str | array of str | None
        A metadata column of ``mne.Epochs`` or one id per epoch (see :func:`as_epoch_data`).
    test_ids : list of str | None
        Stimuli that score; ``None``: the epochs' own test set (``is_test`` metadata), else
        nested cross-validation.
    times : array of float | None
        Time axis (s) when ``epochs`` is an array.
    ch_names : list of str | None
        Channel names when ``epochs`` is an array.
    progress : bool
        Progress bars and messages on stderr.
    **options
        The options of ``neuralign analyze``, named as the command names them (``-`` as
        ``_``), with its defaults: ``alphas``, ``folds`` (or ``n_folds``; 5), ``backend``,
        ``dtype``, ``alpha_selection``, ``max_rsa_stimuli`` (200), ``memory`` (bytes or
        ``"3GB"``), and the statistics: ``permutations`` (1000; 0: no significance mask),
        ``bootstrap`` (1000; 0: no intervals), ``seed``, ``alpha`` (0.05), ``cache`` /
        ``no_cache`` (the permutation cache, used when the features come from a file).

    Returns
    -------
    AlignmentResult
        The maps and their :attr:`~neuralign.report.AlignmentResult.statistics`;
        ``.plot_encoding()``, ``.plot_significance()``, ``.to_dataframe()``,
        ``.add_to_report(report)``...
    """
    data = as_epoch_data(epochs, stimulus_ids=stimulus_ids, test_ids=test_ids, times=times,
                         ch_names=ch_names)
    _, results, _ = run_models(data, {"features": features}, progress=progress,
                               options=options)
    return results["features"]


def compare(epochs, features, *, stimulus_ids=None, test_ids=None, times=None, ch_names=None,
            progress: bool = True, **options) -> Comparison:
    """Several models (feature sets) on the same epochs, ranked (``neuralign analyze
    --features A --features B``).

    Parameters
    ----------
    epochs : mne.Epochs | ndarray | EpochData
        The EEG epochs (see :func:`as_epoch_data`).
    features : dict of str to FeatureSet | str | Path
        Label (letters, digits, ``_``, ``.``, ``-``) -> features (or their file), two or
        more; restricted to the stimuli they all list.
    stimulus_ids : str | array of str | None
        See :func:`analyze`.
    test_ids : list of str | None
        See :func:`analyze`.
    times : array of float | None
        See :func:`analyze`.
    ch_names : list of str | None
        See :func:`analyze`.
    progress : bool
        Progress bars and messages on stderr.
    **options
        The options of :func:`analyze`.

    Returns
    -------
    Comparison
        Every model's maps with statistics (``.results``), the ranking of their best layers
        with paired comparisons over the same held-out stimuli (``.ranking``);
        ``.to_dataframe()``, ``.plot_ranking()``, ``.add_to_report(report)``.
    """
    if not isinstance(features, Mapping) or len(features) < 2:
        raise NeuralignError("compare needs two or more feature sets as {label: features}")
    data = as_epoch_data(epochs, stimulus_ids=stimulus_ids, test_ids=test_ids, times=times,
                         ch_names=ch_names)
    group, results, stat_options = run_models(data, dict(features), progress=progress,
                                              options=options)
    ranking = group.ranking(n_boot=max(stat_options.n_boot, 200), seed=stat_options.seed)
    return Comparison(results=results, ranking=ranking)


def run_models(data: EpochData, features: dict, *, progress: bool, options: dict):
    """What ``neuralign analyze`` computes before it writes: engines, maps, statistics.

    Parameters
    ----------
    data : EpochData
        The epochs.
    features : dict of str to FeatureSet | str | Path
        Label -> features (or the file to read them from).
    progress : bool
        Progress bars and messages on stderr.
    options : dict
        The command's options (see :func:`command_options`).

    Returns
    -------
    group : ModelGroup
        The refreshed engines.
    results : dict of str to AlignmentResult
        Every model's maps and statistics.
    stat_options : StatOptions
        The statistics settings applied.
    """
    from ..base.resources import parse_memory
    from ..commands.analyze_common import Bars, check_inputs
    from ..commands.analyze_run import check_options, common_features, solve_models
    from ..commands.analyze_stats import StatsRunner

    paths = {label: Path(f) if isinstance(f, str | Path) else None
             for label, f in features.items()}
    args = command_options(options, features=[f"{label}={path or 'memory'}"
                                              for label, path in paths.items()],
                           cache=all(p is not None for p in paths.values()))
    specs, stat_options, _ = check_options(args)
    sets = {label: f if isinstance(f, FeatureSet) else load_features(f)
            for label, f in features.items()}
    memory = None if args.memory is None else parse_memory(args.memory)
    for label, fs in sets.items():
        check_inputs(data, fs, args.folds, paths[label] or Path(label))
    sets, _ = common_features(sets)
    bars = Bars({"epochs": data.n_epochs, "layers": sum(fs.n_layers for fs in sets.values())},
                quiet=not progress)
    group, results = solve_models(args, data, sets, memory=memory, bars=bars)
    stats = StatsRunner(args, data, specs, stat_options,
                        quiet=not progress).layer_statistics(group, results)
    out = {}
    for label, res in results.items():
        out[label] = AlignmentResult.from_result(res)
        out[label].statistics = jsonable(stats[label].to_dict())
    return group, out, stat_options


def read_results(path: str | Path) -> AlignmentResult:
    """Read the maps an analysis or a session wrote (``results.json`` + ``maps.npz``).

    Parameters
    ----------
    path : str | Path
        The output folder of ``neuralign analyze``/``live``/``replay`` or of
        :meth:`AlignmentResult.write`.

    Returns
    -------
    AlignmentResult
        The maps, with their figures and tables.
    """
    import json

    meta_file = Path(path) / "results.json"
    if meta_file.is_file() and not (Path(path) / "maps.npz").exists():
        try:
            sets = json.loads(meta_file.read_text()).get("feature_sets")
        except ValueError:
            sets = None
        if sets:
            raise NeuralignError(f"this folder compares {len(sets)} feature sets; read one "
                                 f"with read_results(folder / LABEL), LABEL one of "
                                 f"{', '.join(sets)}", path=Path(path))
    return AlignmentResult.load(path)
