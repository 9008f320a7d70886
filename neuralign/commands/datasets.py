"""The dataset registry: ``KIND:PATH`` -> :class:`~neuralign.base.EpochData`.

Each loader lives in its own module and is imported only when its kind is asked for, so
reading a THINGS-EEG2 folder never imports MNE's BrainVision reader, LSL or Qt. The registry
names modules of several parts (offline loaders, the live recording, the simulator), so it
lives here, with the commands, above all of them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..base import EpochData, fill_doc
from ..errors import NeuralignError

#: kind -> "module:function". Each function takes ``(path: str, **options)`` -> EpochData.
LOADERS: dict[str, str] = {
    "things-eeg2": "neuralign.offline.things_eeg2:load_things_eeg2",
    "things-eeg2-raw": "neuralign.offline.things_eeg2_raw:load_things_eeg2_raw",
    "things-eeg1": "neuralign.offline.things_eeg1:load_things_eeg1",
    "mne-epochs": "neuralign.offline.mne_epochs:load_mne_epochs",
    "recording": "neuralign.realtime.recording:load_recording",
    "sim": "neuralign.commands.datasets:load_sim",
}


@fill_doc
def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``KIND:PATH``; a clear error lists the known kinds.

    Parameters
    ----------
    %(dataset_spec)s

    Returns
    -------
    kind, path : str
        The two halves.
    """
    kind, sep, path = spec.partition(":")
    if not sep or not path or kind not in LOADERS:
        raise NeuralignError(
            f"dataset {spec!r}: expected KIND:PATH with KIND one of {', '.join(LOADERS)}"
        )
    return kind, path


@fill_doc
def load_dataset(spec: str, **options) -> EpochData:
    """Load ``KIND:PATH`` (e.g. ``things-eeg2:/data/sub-01``) into :class:`EpochData`.

    Parameters
    ----------
    %(dataset_spec)s
    **options
        Passed to the kind's loader (e.g. ``metadata=`` for THINGS-EEG2).

    Returns
    -------
    EpochData
        The epochs of the dataset.
    """
    kind, path = parse_spec(spec)
    module, func = LOADERS[kind].split(":")
    return getattr(importlib.import_module(module), func)(path, **options)


def load_sim(path: str | Path, **options) -> EpochData:
    """A simulated subject: its THINGS-EEG2 files plus the planted truth in ``info``.

    Parameters
    ----------
    path : str | Path
        The folder :func:`neuralign.sim.dataset.write_things_eeg2` wrote, or its subject
        folder.
    **options
        Passed to :func:`neuralign.offline.things_eeg2.load_things_eeg2`.

    Returns
    -------
    EpochData
        With ``info["simulated"] = True`` and ``info["planted"]``.
    """
    from ..offline.things_eeg2 import load_things_eeg2
    from ..sim.dataset import subject_folder
    from ..sim.truth import annotate

    sdir = subject_folder(path)
    return annotate(load_things_eeg2(sdir, **options), sdir)
