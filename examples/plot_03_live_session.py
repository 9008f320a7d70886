"""
.. _ex-live-session:

A live session against the simulated amplifier
==============================================

``neuralign simulate-amp`` plays an EEG amplifier on LSL: it shows (schedules) the images of
a feature file as stimulus markers and plants layer-specific responses in the EEG. A
:class:`neuralign.LiveSession` connects to both streams, epochs every marker, records the
session and refreshes the layer x latency maps while it runs; :meth:`~neuralign.LiveSession.latest`
hands out the newest snapshot at once, so a notebook can watch and plot as it goes.

LSL is used with neuralign's machine-scope configuration: the streams never leave this
machine.
"""

# %%
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import neuralign
from neuralign.base import load_design
from neuralign.io.features import save_features
from neuralign.lsl import configure_lsl
from neuralign.sim.features import hierarchical_features

configure_lsl()  # machine-scope LSL (sets LSLAPICFG unless it is set), before any stream
root = Path(tempfile.mkdtemp(prefix="neuralign-example-"))
ids = [f"stim_{i:03d}" for i in range(40)]
save_features(root / "features.npz", hierarchical_features(ids, n_layers=4, dim=12, seed=1))

# %%
# Start the simulated amplifier in its own process, as a real one would be. It writes the
# session design (which images are train and test) before it streams, and waits (up to
# ``--wait-consumer`` s) until we listen to both streams before it shows the first image;
# it streams on (``--duration``) until we stop it.
name = f"example-amp-{uuid.uuid4().hex[:8]}"
design = root / "design.json"
amp = subprocess.Popen(
    [sys.executable, "-m", "neuralign", "simulate-amp", "--eeg-stream", name,
     "--features", str(root / "features.npz"), "--schedule", "--design-out", str(design),
     "--n-test", "8", "--train-reps", "2", "--test-reps", "4", "--soa", "0.1",
     "--sfreq", "250", "--snr", "1.0", "--duration", "180",
     "--wait-consumer", "120"],
    env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=open(root / "amp.log", "w"))
for _ in range(600):  # up to a minute on a busy machine
    if design.exists() or amp.poll() is not None:
        break
    time.sleep(0.1)

# %%
# Run the session: ``with`` starts it and stops it at the end of the block, whatever
# happens (stopping flushes the recording and refreshes the maps once more). ``latest()``
# never blocks; its ``result`` holds the maps of the last refresh, which plot themselves.
live = neuralign.LiveSession(root / "features.npz", eeg_stream=name,
                             marker_stream=f"{name}-markers", design=design,
                             out_dir=root / "session", refresh_every=1.0,
                             connect_timeout=60.0)
n_shown = sum(load_design(design).reps.values())  # presentations scheduled
try:
    with live:
        live.wait(epochs=40, timeout=120)
        print(live.status())
        fig = live.latest().result.plot_encoding()  # the maps so far
        while live.latest().epochs_accepted < n_shown and amp.poll() is None:
            time.sleep(1.0)
            snap = live.latest()
            print(f"{snap.epochs_accepted} of {n_shown} epochs, {snap.n_refreshes} refreshes")
finally:
    amp.terminate()
    amp.wait()
result = live.result()  # the final maps

# %%
# The final maps (the session is recorded in ``session/recording/session.xdf``; replaying
# it with ``neuralign analyze --dataset recording:DIR`` gives the same maps), and the live
# statistics: every layer's peak with its interval, whether it is significant.
print(result)
print(live.statistics().status_fragment())
fig = result.plot_encoding()

# %%
# Write what ``neuralign live`` writes: results, figures, statistics and ``report.html``.
paths = live.write(root / "session")
print(paths["report"])
