"""
.. _ex-simulated-subject:

Offline analysis of a simulated THINGS-EEG2 subject
===================================================

A subject is simulated in the THINGS-EEG2 layout (``image_metadata.npy`` and
``sub-01/preprocessed_eeg_{training,test}.npy``) with a *planted* answer: each model layer
drives the EEG at a known latency, deeper layers later. We analyse it as
``neuralign analyze --dataset sim:DIR --features features.npz`` would, then look at the maps
and check that the planted hierarchy comes back.
"""

# %%
import tempfile
from pathlib import Path

import neuralign
from neuralign.sim.dataset import write_things_eeg2

root = Path(tempfile.mkdtemp(prefix="neuralign-example-"))
write_things_eeg2(root, n_train=150, n_test=20, train_reps=2, test_reps=8, n_layers=5, dim=8,
                  seed=0, brain_kw={"snr": 2.0})

# %%
# Load the subject (``sim:`` is the THINGS-EEG2 loader plus the planted truth) and the
# features (one ``(n_images, n_features)`` array per layer, in depth order).
data = neuralign.load_dataset(f"sim:{root}")
features = neuralign.load_features(root / "features.npz")
print(f"{data.n_epochs} epochs, {len(data.ch_names)} channels, {data.times.size} times; "
      f"{features.n_layers} layers")

# %%
# Analyse: ridge encoding (held-out r per layer, channel and time), RSA, noise ceilings and
# single-subject statistics (bootstrap intervals of every layer's peak, a family-wise
# permutation test over layer x time). The keyword options are those of ``neuralign analyze``
# (``n_folds``, ``alphas``, ``permutations``...). In a notebook, a figure returned as a cell's
# value is shown.
result = neuralign.analyze(data, features, n_folds=3, progress=False)

# %%
# Encoding r, layer x latency; the white dots mark each layer's peak.
fig = result.plot_encoding()

# %%
# Peak latency per layer, with the planted latencies (stars) the simulation hid in the EEG.
fig = result.plot_peaks()

# %%
# The cells that are above chance (family-wise alpha 0.05) outlined.
fig = result.plot_significance()

# %%
# The per-layer table as a :class:`pandas.DataFrame`, with 95% intervals and the tests.
peaks = result.to_dataframe()
print(peaks[["enc_peak_ms", "enc_peak_ms_ci_low", "enc_peak_ms_ci_high", "enc_peak_r",
             "significant"]].to_string())
for line in result.statistics["statements"]:
    print(line)

# %%
# Deeper layers peak later, as planted.
planted_ms = [1000 * t for t in result.planted()["peak_latencies_s"]]
print("planted (ms):", [round(t) for t in planted_ms])
print("found   (ms):", [round(t) for t in peaks["enc_peak_ms"]])
