"""
.. _ex-compare-models:

Comparing two models on the same EEG
====================================

Two feature sets of the same images, analysed on the same epochs with the same settings:
here the model whose layers the simulated brain was built from, and an unrelated model (a
hierarchy drawn with another seed). The tables and the figures say which one explains the
EEG, at which layer and latency; one :class:`mne.Report` holds both.
"""

# %%
import tempfile
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import neuralign
from neuralign.sim.dataset import write_things_eeg2
from neuralign.sim.features import hierarchical_features

root = Path(tempfile.mkdtemp(prefix="neuralign-example-"))
write_things_eeg2(root, n_train=100, n_test=20, train_reps=2, test_reps=6, n_layers=4, dim=8,
                  seed=2, brain_kw={"snr": 1.0})
data = neuralign.load_dataset(f"sim:{root}")

models = {
    "planted model": neuralign.load_features(root / "features.npz"),
    "unrelated model": hierarchical_features(data.unique_ids(), n_layers=4, dim=8, seed=99),
}

# %%
# The same epochs and settings for both.
results = {name: neuralign.analyze(data, features, n_folds=3, progress=False)
           for name, features in models.items()}

# %%
# Best layer of each model: peak encoding r and its latency.
rows = []
for name, res in results.items():
    table = res.to_dataframe()
    best = table["enc_peak_r"].idxmax()
    rows.append({"model": name, "best layer": best,
                 "peak r": table.loc[best, "enc_peak_r"],
                 "peak latency (ms)": table.loc[best, "enc_peak_ms"]})
summary = pd.DataFrame(rows).set_index("model")
print(summary)

# %%
# Encoding r over time of each model's best layer (means over channels), from the tables.
fig = Figure(figsize=(7, 3.5))
ax = fig.add_subplot()
for name, res in results.items():
    maps = res.to_dataframe(kind="maps")["encoding_r"].unstack("time")
    best = maps.max(axis=1).idxmax()
    ax.plot(np.asarray(maps.columns) * 1000, maps.loc[best], label=f"{name} ({best})")
ax.set(xlabel="time after image onset (ms)", ylabel="held-out r", title="Best layer per model")
ax.legend()

# %%
# Both in one report, a section per model.
report = mne.Report(title="Two models, one subject", verbose=False)
for name, res in results.items():
    res.add_to_report(report, section=name)
report.save(root / "models.html", open_browser=False, overwrite=True, verbose=False)
