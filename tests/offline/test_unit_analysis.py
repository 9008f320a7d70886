"""``neuralign analyze --units / --readouts`` on planted unit-driven brains (neuralign.sim.units):
the planted units and their polarities are recovered through the command line; a rank-one
spatial brain favours the factorised readout (significant paired test), a full-rank one does
not."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.sim.units import write_unit_brain

UNITS = {3: (+1, 0.10), 11: (-1, 0.17), 20: (+1, 0.26), 27: (-1, 0.26)}


@pytest.fixture(scope="module")
def rank_one(tmp_path_factory):
    root = tmp_path_factory.mktemp("units_rank1")
    write_unit_brain(root, n_train=160, n_test=50, train_reps=2, test_reps=4, noise=1.0,
                     units=UNITS, dim=32, n_channels=8, spatial="shared", seed=3)
    return root


@pytest.fixture(scope="module")
def full_rank(tmp_path_factory):
    root = tmp_path_factory.mktemp("units_full")
    rng = np.random.default_rng(0)
    units = {int(u): (int(rng.choice([-1, 1])), 0.2) for u in range(16)}
    write_unit_brain(root, n_train=160, n_test=50, train_reps=2, test_reps=4, noise=1.0,
                     units=units, dim=32, n_channels=8, spatial="distinct", seed=4)
    return root


def _analyze(root, out, *extra):
    return main(["analyze", "--dataset", f"sim:{root}", "--features",
                 str(root / "features.npz"), "--out", str(out), "--quiet", "--folds", "3",
                 *extra])


def test_planted_units_and_polarities_are_recovered_through_the_cli(rank_one, tmp_path):
    out = tmp_path / "res"
    rc = _analyze(rank_one, out, "--units", "layer01", "--readouts", "layer01",
                  "--readout-ranks", "1", "--readout-pca", "8", "--readout-boot", "200")
    assert rc == 0
    with open(out / "units.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 32  # every unit of the layer
    by_peak = sorted(rows, key=lambda r: -float(r["peak_r_channel_mean"]))
    assert {int(r["unit"]) for r in by_peak[:4]} == set(UNITS)
    for r in by_peak[:4]:
        sign, lat = UNITS[int(r["unit"])]
        assert int(r["polarity_at_peak"]) == sign
        assert int(r["polarity"]) == sign  # at the unit's best channel x time
        assert abs(float(r["peak_latency_s"]) - lat) <= 0.02 + 1e-9
    res = json.loads((out / "results.json").read_text())
    units = res["analyses"]["units"]
    assert units["planted"]["recovered"] is True
    assert units["planted"]["polarity_correct"] == 4
    z = np.load(out / "units_maps.npz", allow_pickle=False)
    top = z["layer01/top_units"]  # (C, T, k)
    t = int(np.argmin(np.abs(z["times"] - 0.10)))
    assert (top[:, t, 0] == 3).all()  # unit 3 is the best one at 100 ms on every channel
    assert (z["layer01/top_polarity"][:, t, 0] == 1).all()
    t = int(np.argmin(np.abs(z["times"] - 0.17)))
    assert (top[:, t, 0] == 11).all()
    assert (z["layer01/top_polarity"][:, t, 0] == -1).all()
    red = json.loads((out / "redundancy.json").read_text())["layer01"]
    assert red["n_units_90"] is not None
    assert red["n_units_90"] <= 4
    # readouts: the rank-one brain is read out at least as well by a rank-1 factorisation
    ro = json.loads((out / "readouts.json").read_text())["layer01"]
    v = ro["vs_ridge"]["factorised rank 1"]
    assert v["diff"] >= 0
    assert v["p"] < 0.05
    assert set(ro["readouts"]) == {"ridge", "factorised rank 1", "PCA 8 then ridge"}
    for name in ("units_layer01.png", "readouts_layer01.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert res["analyses"]["readouts"]["layers"]["layer01"]["vs_ridge"]["factorised rank 1"]


def test_full_rank_brain_is_not_better_read_by_a_rank_one_readout(full_rank, tmp_path):
    out = tmp_path / "res"
    assert _analyze(full_rank, out, "--readouts", "--readout-ranks", "1",
                    "--readout-pca", "8", "--readout-boot", "200") == 0
    ro = json.loads((out / "readouts.json").read_text())
    assert list(ro) == ["layer01"]  # alone, --readouts takes the peak layer
    v = ro["layer01"]["vs_ridge"]["factorised rank 1"]
    assert v["diff"] < 0
    assert v["ci"][1] < 0
    assert v["p"] < 0.05
    assert not (out / "units.csv").exists()


@pytest.mark.parametrize(("extra", "text"), [
    (["--units", "nosuch"], "--units: 'nosuch' is not a layer"),
    (["--readouts", "--readout-ranks", "8"], "--readout-ranks: ranks must be between 1"),
    (["--units", "--top-units", "0"], "--top-units must be at least 1"),
])
def test_bad_unit_options_are_one_line_errors(rank_one, tmp_path, capsys, extra, text):
    out = tmp_path / "res"
    assert _analyze(rank_one, out, *extra) == 2
    err = capsys.readouterr().err
    assert text in err
    assert "Traceback" not in err
    assert not out.exists()  # refused before anything ran
