"""
.. _ex-compare-models:

Comparing two models on the same EEG
====================================

Two feature sets of the same images, analysed on the same epochs with the same settings:
here the model whose layers the simulated brain was built from, and an unrelated model (a
hierarchy drawn with another seed). :func:`neuralign.compare` fits both (one epoching, one
engine group), gives each its statistics, and ranks their best layers with a paired test over
the same held-out images, as ``neuralign analyze --features A --features B`` does; one
:class:`mne.Report` holds it all.
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mne
import numpy as np

import neuralign
from neuralign.sim.dataset import write_things_eeg2
from neuralign.sim.features import hierarchical_features

root = Path(tempfile.mkdtemp(prefix="neuralign-example-"))
write_things_eeg2(root, n_train=100, n_test=20, train_reps=2, test_reps=6, n_layers=4, dim=8,
                  seed=2, brain_kw={"snr": 1.0})
data = neuralign.load_dataset(f"sim:{root}")

models = {
    "planted": neuralign.load_features(root / "features.npz"),
    "unrelated": hierarchical_features(data.unique_ids(), n_layers=4, dim=8, seed=99),
}

# %%
# The same epochs and settings for both; 200 permutations and resamples keep it quick.
comparison = neuralign.compare(data, models, n_folds=3, permutations=200, bootstrap=200,
                               progress=False)
print(comparison)

# %%
# The ranking of the best layers, and the paired comparison over the same held-out images.
summary = comparison.to_dataframe()
print(summary[["best_layer", "peak_r", "peak_r_ci_low", "peak_r_ci_high"]].to_string())
print(comparison.to_dataframe(kind="pairs").to_string(index=False))
fig = comparison.plot_ranking()

# %%
# Encoding r over time of each model's best layer (means over channels), from the tables:
# any plot of your own starts from ``to_dataframe(kind="maps")``.
fig_time, ax = plt.subplots(figsize=(7, 3.5))
for name, res in comparison.results.items():
    maps = res.to_dataframe(kind="maps")["encoding_r"].unstack("time")
    best = maps.max(axis=1).idxmax()
    ax.plot(np.asarray(maps.columns) * 1000, maps.loc[best], label=f"{name} ({best})")
ax.set(xlabel="time after image onset (ms)", ylabel="held-out r", title="Best layer per model")
ax.legend()

# %%
# Everything in one report: the ranking, then a section per model.
report = mne.Report(title="Two models, one subject", verbose=False)
comparison.add_to_report(report)
report.save(root / "models.html", open_browser=False, overwrite=True, verbose=False)
