"""
.. _ex-mne-epochs:

From ``mne.Epochs`` to an ``mne.Report``
========================================

The MNE way in: epochs with the image shown in each epoch in their metadata (a
``stimulus_id`` column), analysed against a feature file, the figures added to an
:class:`mne.Report` of your own. The maps are those of
``neuralign analyze --dataset mne-epochs:FILE --features FILE`` (the test suite checks
they agree to 1e-12).
"""

# %%
import tempfile
from pathlib import Path

import mne

import neuralign
from neuralign.sim.dataset import write_things_eeg2

# A small simulated subject, saved as an MNE epochs file with the image ids in its metadata.
root = Path(tempfile.mkdtemp(prefix="neuralign-example-"))
write_things_eeg2(root, n_train=60, n_test=12, train_reps=2, test_reps=6, n_layers=3, dim=8,
                  seed=1, brain_kw={"snr": 0.5})
fif = root / "sub-01-epo.fif"
neuralign.load_dataset(f"things-eeg2:{root / 'sub-01'}").to_mne().save(fif, overwrite=True)
features_file = root / "features.npz"

# %%
# Read the epochs as you would your own. ``stimulus_id`` says which image each epoch shows
# (the ids of the feature file); ``is_test`` marks the images that score.
epochs = mne.read_epochs(fif, verbose=False)
print(epochs)
print(epochs.metadata.head())

# %%
# Analyse them. ``stimulus_ids`` names the metadata column (``"stimulus_id"`` is the default);
# without one, the event names are the ids.
result = neuralign.analyze(epochs, features_file, stimulus_ids="stimulus_id", n_folds=3,
                           progress=False)
print(result)

# %%
# Add the table, the figures and the settings to a report, as with any MNE object.
report = mne.Report(title="neuralign: model layers x EEG latency", verbose=False)
result.add_to_report(report)
report_file = root / "report.html"
report.save(report_file, open_browser=False, overwrite=True, verbose=False)
print(report_file)

# %%
# RSA of each layer with the EEG over time.
fig = result.plot_rsa()
