"""Offline analysis from Python: features in, epochs in (MNE, NumPy or :class:`EpochData`),
maps out as an :class:`~neuralign.report.AlignmentResult` that plots itself.

:func:`analyze` runs exactly what ``neuralign analyze`` runs (the same input checks and the
same :func:`neuralign.commands.analyze.analyze`, hence the same engine settings and defaults);
options are passed through, so an option the command gains reaches this function too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import EpochData, FeatureSet
from ..errors import NeuralignError
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
        The engine options of ``neuralign analyze``, with the names of
        :func:`neuralign.commands.analyze.analyze`: ``alphas``, ``n_folds`` (5),
        ``backend`` (``"numpy"``), ``dtype`` (``"float64"``), ``alpha_selection``
        (``"gcv"``), ``max_rsa_stimuli`` (200), ``memory`` (bytes or ``"3GB"``), ...

    Returns
    -------
    AlignmentResult
        The maps; ``.plot_encoding()``, ``.to_dataframe()``, ``.add_to_report(report)``...
    """
    from ..base.resources import parse_memory
    from ..commands import analyze as command

    data = as_epoch_data(epochs, stimulus_ids=stimulus_ids, test_ids=test_ids, times=times,
                         ch_names=ch_names)
    source = Path(features) if isinstance(features, str | Path) else Path("features")
    if not isinstance(features, FeatureSet):
        features = load_features(features)
    if options.get("memory") is not None:
        options["memory"] = parse_memory(options["memory"])
    command.check_inputs(data, features, options.get("n_folds", 5), source)
    result = command.analyze(data, features, quiet=not progress, **options)
    return AlignmentResult.from_result(result)


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
    return AlignmentResult.load(path)
