"""The gallery's examples run (each a few seconds), and the ``mne.Epochs`` example gives the
maps of ``neuralign analyze`` on the same file to 1e-12."""

from __future__ import annotations

import importlib.util
import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralign.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NEEDS_EXPORT = {"plot_05_export_lvlm.py"}


def run_example(name: str) -> dict:
    """Run one example as sphinx-gallery does (as ``__main__``); return its globals."""
    return runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def examples() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("plot_*.py"))


def test_every_example_is_listed():
    assert len(examples()) >= 4
    for name in examples():
        text = (EXAMPLES / name).read_text()
        assert text.startswith('"""\n.. _ex-'), f"{name}: sphinx-gallery header"


@pytest.mark.parametrize("name", [n for n in examples()
                                  if n not in ("plot_02_mne_epochs_report.py",
                                               "plot_03_live_session.py")])
def test_example_runs(name):
    if name in NEEDS_EXPORT and not all(importlib.util.find_spec(m)
                                        for m in ("torch", "transformers")):
        pytest.skip("needs torch and transformers (the export extra)")
    if name == "plot_03_live_session.py":
        pytest.importorskip("pylsl")
    g = run_example(name)
    if "result" in g:
        assert type(g["result"]).__name__ == "AlignmentResult"
        assert np.isfinite(g["result"].encoding_r).any()
    if name == "plot_01_simulated_subject.py":  # the planted hierarchy comes back
        assert np.all(np.diff(g["peaks"]["enc_peak_ms"].to_numpy()) >= 0)
        assert np.abs(g["peaks"]["enc_peak_ms"].to_numpy() - np.array(g["planted_ms"])).max() \
            <= 30
        assert g["peaks"]["significant"].all()
    if name == "plot_05_export_lvlm.py":  # every stage's layers, one row per built-in image
        fs = g["features"]
        assert fs.layers == ("vision.00", "vision.01", "projector", "llm.00", "llm.01")
        assert all(np.isfinite(fs.layer(i)).all() for i in range(fs.n_layers))
        assert fs.layer(0).shape[0] == len(fs.stimulus_ids) > 50
    if name == "plot_04_compare_models.py":  # the planted model first, better by the test
        assert list(g["summary"].index) == ["planted", "unrelated"]
        assert g["summary"].loc["planted", "peak_r_ci_low"] > \
            g["summary"].loc["unrelated", "peak_r_ci_high"]
        pairs = g["comparison"].to_dataframe(kind="pairs")
        assert pairs.iloc[0]["better"] == "planted"
        assert pairs.iloc[0]["p"] < 0.05


def assert_same(a, b, path="statistics"):
    """Equal JSON records (floats to 1e-12, None for NaN)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float | int):
        assert abs(a - b) <= 1e-12, path
    else:
        assert a == b, path


def test_live_example_runs_without_torch():
    """The live session from Python, in a fresh interpreter: every scheduled epoch arrives,
    and neither torch nor transformers is ever imported on the live path."""
    pytest.importorskip("pylsl")
    code = (
        "import json, runpy, sys\n"
        f"g = runpy.run_path({str(EXAMPLES / 'plot_03_live_session.py')!r}, "
        "run_name='__main__')\n"
        "print(json.dumps({'n_epochs': g['result'].counts['n_epochs'], 'n_shown': g['n_shown'],"
        " 'rec': g['live'].session.recorder.dir.is_dir(),"
        " 'report': g['paths']['report'].is_file(),"
        " 'heavy': [m for m in ('torch', 'transformers') if m in sys.modules],"
        " 'counts': {k: v for k, v in g['result'].counts.items() if k != 'refresh_s'},"
        " 'amp_log': (g['root'] / 'amp.log').read_text()[-1500:]}))\n"
    )
    for _ in range(2):  # a second try only when LSL discovery missed the amplifier
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=240)
        if proc.returncode == 0 or "no LSL EEG stream matching" not in proc.stderr:
            break
        # machine-scope discovery is shared by every process on the machine; under many
        # concurrent sessions (7 people's test suites) a resolve was seen to miss a stream
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # every presentation becomes an epoch; if not, the amplifier's log says whether markers
    # went out before the session listened, and the counts say where the rest went
    assert out["n_epochs"] == out["n_shown"] == 96, (out["counts"], out["amp_log"])
    assert out["rec"]
    assert out["report"]
    assert out["heavy"] == []


def test_mne_epochs_example_equals_the_command(tmp_path):
    g = run_example("plot_02_mne_epochs_report.py")
    out = tmp_path / "cli"
    rc = main(["analyze", "--dataset", f"mne-epochs:{g['fif']}", "--features",
               str(g["features_file"]), "--out", str(out), "--folds", "3", "--quiet"])
    assert rc == 0
    res = g["result"]
    z = np.load(out / "maps.npz", allow_pickle=False)
    assert z["layers"].tolist() == res.layers
    assert z["ch_names"].tolist() == res.ch_names
    np.testing.assert_array_equal(z["times"], res.times)
    for key in ("encoding_r", "encoding_alpha", "rsa_spearman", "rsa_pearson",
                "rsa_cv_spearman", "noise_ceiling_r_ceiling"):
        ours = res.noise_ceiling["r_ceiling"] if key.startswith("noise") else getattr(res, key)
        assert z[key].shape == np.shape(ours)
        assert np.isfinite(z[key]).any()
        np.testing.assert_allclose(ours, z[key], rtol=0, atol=1e-12, err_msg=key)
    # the statistics too (same seed, same permutations): results.json's record
    cli_stats = json.loads((out / "results.json").read_text())["statistics"]
    assert_same(res.statistics, cli_stats)
    sig = np.load(out / "significance.npz", allow_pickle=False)
    np.testing.assert_array_equal(np.asarray(res.statistics["mask"]["cells"]), sig["mask"])
    html = Path(g["report_file"]).read_text()
    assert "Per-layer peaks" in html
    assert html.count("data:image/") >= 5
