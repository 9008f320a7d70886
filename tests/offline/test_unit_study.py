"""``[units]`` and ``[readouts]`` in a study: every (subject, model) task writes the unit maps and
readout tests beside its maps, study.json summarises them over subjects, bad layers are refused
before anything runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.offline.unit_study import sign_flip_p
from neuralign.sim.study import write_simulated_study


@pytest.fixture(scope="module")
def unit_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("unit_study")
    cfg = write_simulated_study(root, n_subjects=2, layers=(3, 2), dim=12, n_train=60,
                                n_test=20, snr=0.8, varpart=False)
    return root, cfg


def _with(cfg, text):
    p = cfg.with_name("STUDY_units.toml")
    p.write_text(cfg.read_text() + "\n" + text)
    return p


def test_study_runs_units_and_readouts_per_subject(unit_study):
    root, cfg = unit_study
    cfg2 = _with(cfg, '[units]\nlayers = ["peak"]\ntop_units = 5\n\n'
                      '[readouts]\nlayers = ["layer01"]\nranks = [1]\npca = [4]\nn_boot = 50\n')
    out = root / "out_units"
    assert main(["study", "--config", str(cfg2), "--out", str(out), "--quiet",
                 "--scheduler", "none"]) == 0
    s = json.loads((out / "study.json").read_text())
    ur = s["units_readouts"]
    assert set(ur) == {"model0", "model1"}
    ro = ur["model0"]["readouts"]["layer01"]
    assert set(ro["per_subject"]) == {"sub-01", "sub-02"}
    assert set(ro["group"]) == {"factorised rank 1", "PCA 4 then ridge"}
    for m in ("model0", "model1"):
        units = ur[m]["units"]
        assert sum(len(e["per_subject"]) for e in units.values()) == 2  # each subject's peak
        for e in units.values():
            for d in e["per_subject"].values():
                assert len(d["best_units"]) == 10
    task = out / "cache" / "sub-01__model0"
    for f in ("units.csv", "units_maps.npz", "redundancy.json", "readouts.json"):
        assert (task / f).is_file(), f
    res = json.loads((task / "results.json").read_text())
    assert "units" in res["analyses"]
    assert "Units and readouts" in (out / "report.html").read_text()


def test_study_refuses_unknown_unit_layers_before_running(unit_study, capsys):
    root, cfg = unit_study
    cfg2 = _with(cfg, '[units]\nlayers = ["nosuch"]\n')
    out = root / "out_bad"
    assert main(["study", "--config", str(cfg2), "--out", str(out), "--quiet",
                 "--scheduler", "none"]) == 2
    err = capsys.readouterr().err
    assert "[units] layers: 'nosuch' is not a layer" in err
    assert not (out / "cache").exists() or not any((out / "cache").iterdir())


def test_sign_flip_p_is_exact():
    assert sign_flip_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(2 / 8)
    assert sign_flip_p(np.array([1.0, -1.0])) == pytest.approx(1.0)
    assert np.isnan(sign_flip_p(np.array([1.0])))
