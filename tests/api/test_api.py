"""The top-level API: light import, documented names, MNE in and out, results that show
themselves as the CLI's figures."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

import neuralign
from neuralign.align import analyze_epochs
from neuralign.base import EpochData
from neuralign.cli import main
from neuralign.errors import NeuralignError

MAP_FIELDS = ("encoding_r", "encoding_alpha", "rsa_spearman", "rsa_pearson", "rsa_cv_spearman")


def test_import_is_light_and_the_api_keeps_torch_out():
    code = (
        "import sys, neuralign\n"
        "light = sorted(m for m in ('numpy', 'mne', 'matplotlib', 'torch') if m in sys.modules)\n"
        "for name in neuralign.__all__:\n"
        "    getattr(neuralign, name)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'matplotlib', 'PySide6')\n"
        "               if m in sys.modules)\n"
        "print(light, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[] []"


def test_every_public_name_is_documented():
    assert sorted(neuralign.__all__) == sorted(set(neuralign.__all__))
    for name in neuralign.__all__:
        obj = getattr(neuralign, name)
        doc = inspect.getdoc(obj) or ""
        assert len(doc.splitlines()) >= 3, f"neuralign.{name} has no real docstring"
        if inspect.isfunction(obj):
            assert "Parameters\n----------" in doc, name
            assert "Returns\n-------" in doc, name
    assert "analyze" in dir(neuralign)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        neuralign.nope  # noqa: B018


def _epochs(seed=0, n_stim=12, reps=3, c=4, t=20):
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"img{i:02d}" for i in range(n_stim)], reps)
    return EpochData(rng.standard_normal((ids.size, c, t)).astype(np.float32), ids,
                     np.linspace(-0.1, 0.28, t), [f"E{i}" for i in range(c)],
                     test_ids=["img00", "img01", "img02"])


def test_epoch_data_to_mne_and_back():
    data = _epochs()
    ep = data.to_mne()
    assert len(ep) == data.n_epochs
    assert list(ep.metadata["stimulus_id"]) == data.stimulus_ids.tolist()
    assert ep.metadata["is_test"].sum() == 9
    np.testing.assert_allclose(ep.times, data.times, atol=1e-9)
    back = EpochData.from_mne(ep)
    np.testing.assert_array_equal(back.epochs, data.epochs)
    assert back.stimulus_ids.tolist() == data.stimulus_ids.tolist()
    assert back.test_ids == data.test_ids
    assert back.ch_names == data.ch_names
    # without metadata, the event names are the ids; explicit ids and a named column
    ep.metadata = None
    assert EpochData.from_mne(ep).stimulus_ids.tolist() == data.stimulus_ids.tolist()
    assert EpochData.from_mne(ep).test_ids is None
    ids = [f"x{i}" for i in range(len(ep))]
    assert EpochData.from_mne(ep, stimulus_ids=ids).stimulus_ids.tolist() == ids
    with pytest.raises(NeuralignError, match="no column 'image'"):
        EpochData.from_mne(data.to_mne(), stimulus_ids="image")
    with pytest.raises(NeuralignError, match="3 stimulus ids for 36 epochs"):
        EpochData.from_mne(data.to_mne(), stimulus_ids=["a", "b", "c"])


def test_bad_channels_are_left_out():
    ep = _epochs().to_mne()
    ep.info["bads"] = ["E1"]
    assert EpochData.from_mne(ep).ch_names == ["E0", "E2", "E3"]


def test_analyze_takes_mne_arrays_and_epoch_data_alike(sim_subject):
    data = neuralign.load_dataset(f"things-eeg2:{sim_subject / 'sub-01'}")
    features = neuralign.load_features(sim_subject / "features.npz")
    opts = dict(n_folds=3, alphas=[1.0, 100.0, 1e4], progress=False)
    ref = analyze_epochs(data, features, n_folds=3, alphas=[1.0, 100.0, 1e4],
                         max_rsa_stimuli=200)
    res_ed = neuralign.analyze(data, features, **opts)
    res_arr = neuralign.analyze(data.epochs, sim_subject / "features.npz",
                                stimulus_ids=data.stimulus_ids, times=data.times,
                                ch_names=data.ch_names, test_ids=data.test_ids, **opts)
    res_mne = neuralign.analyze(data.to_mne(), features, **opts)
    assert isinstance(res_mne, neuralign.AlignmentResult)
    for res in (res_ed, res_arr, res_mne):
        for f in MAP_FIELDS:
            np.testing.assert_allclose(getattr(res, f), getattr(ref, f), rtol=0, atol=1e-12)
    assert res_ed.settings["n_folds"] == 3
    # bad input: one clear error
    with pytest.raises(NeuralignError, match="needs stimulus_ids"):
        neuralign.analyze(data.epochs, features)
    with pytest.raises(NeuralignError, match="fewer than --folds 50"):
        neuralign.analyze(data, features, n_folds=50, progress=False)
    with pytest.raises(NeuralignError, match="not in the features"):
        neuralign.analyze(data, features, stimulus_ids=["nope"] * data.n_epochs)
    with pytest.raises(NeuralignError, match="two or more feature sets"):
        neuralign.compare(data, {"a": features})
    with pytest.raises(NeuralignError, match="label 'a b' must be letters"):
        neuralign.compare(data, {"a b": features, "c": features})
    with pytest.raises(NeuralignError, match="unknown option 'fold'"):
        neuralign.analyze(data, features, fold=3)
    with pytest.raises(NeuralignError, match="--partition is not available from Python"):
        neuralign.analyze(data, features, partition=True)
    with pytest.raises(NeuralignError, match="--permutations 10 cannot reach --alpha"):
        neuralign.analyze(data, features, permutations=10)
    # statistics: off on request, and a clear error when asked for
    assert res_ed.statistics["mask"]["n_significant_layers"] >= 1
    bare = neuralign.analyze(data, features, permutations=0, bootstrap=0, **opts)
    assert "mask" not in bare.statistics
    with pytest.raises(NeuralignError, match="analyze with permutations"):
        neuralign.AlignmentResult.from_result(ref).plot_significance()


@pytest.fixture(scope="module")
def cli_run(sim_subject, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "res"
    rc = main(["analyze", "--dataset", f"sim:{sim_subject}", "--features",
               str(sim_subject / "features.npz"), "--out", str(out), "--folds", "3", "--quiet"])
    assert rc == 0
    return out


def test_results_read_back_and_plot_the_figures_the_cli_writes(cli_run, tmp_path):
    res = neuralign.read_results(cli_run)
    assert isinstance(res, neuralign.AlignmentResult)
    assert "3 layers x 17 channels x 100 times" in repr(res)
    assert "<table" in res._repr_html_()
    assert all(layer in res._repr_html_() for layer in res.layers)
    extra = json.loads((cli_run / "extra.json").read_text())
    figs = {"encoding_r": res.plot_encoding(),
            "encoding_r_normalized": res.plot_encoding(normalized=True),
            "rsa_rho": res.plot_rsa(),
            "peak_latency": res.plot_peaks(planted=extra["planted"]),
            "noise_ceiling": res.plot_noise_ceiling(),
            "encoding_r_significance": res.plot_significance(),
            "peak_intervals": res.plot_peak_intervals()}
    for name, fig in figs.items():
        assert type(fig).__name__ == "Figure"
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes() == (cli_run / f"{name}.png").read_bytes(), \
            name


def test_read_results_of_several_feature_sets(sim_subject, tmp_path):
    out = tmp_path / "two"
    f = str(sim_subject / "features.npz")
    assert main(["analyze", "--dataset", f"sim:{sim_subject}", "--features", f"a={f}",
                 "--features", f"b={f}", "--out", str(out), "--folds", "3", "--quiet",
                 "--permutations", "0", "--bootstrap", "0"]) == 0
    with pytest.raises(NeuralignError, match="compares 2 feature sets.*a, b"):
        neuralign.read_results(out)
    res = neuralign.read_results(out / "b")
    assert res.statistics is not None
    assert res.layers == ["layer00", "layer01", "layer02"]


def test_tables(cli_run):
    res = neuralign.read_results(cli_run)
    peaks = res.to_dataframe()
    lat, val = res.peaks("encoding")
    assert list(peaks.index) == res.layers
    np.testing.assert_allclose(peaks["enc_peak_ms"], lat * 1000)
    np.testing.assert_allclose(peaks["enc_peak_r"], val)
    rows = {r["layer"]: r for r in res.statistics["layers"]}
    for layer in res.layers:  # the intervals and tests of results.json, per layer
        lo, hi = rows[layer]["peak_r_ci"]
        assert peaks.loc[layer, "enc_peak_r_ci_low"] == pytest.approx(lo, nan_ok=True)
        assert peaks.loc[layer, "enc_peak_r_ci_high"] == pytest.approx(hi, nan_ok=True)
        assert peaks.loc[layer, "significant"] == rows[layer]["significant"]
    maps = res.to_dataframe(kind="maps")
    assert maps.shape == (3 * 100, 4)
    np.testing.assert_allclose(maps.loc["layer01"]["rsa_rho"].to_numpy(), res.rsa_spearman[1])
    np.testing.assert_allclose(maps["encoding_r"].to_numpy().reshape(3, 100),
                               np.nanmean(res.encoding_r, axis=1))
    with pytest.raises(ValueError, match="'peaks' or 'maps'"):
        res.to_dataframe(kind="x")


def test_to_xarray(cli_run):
    pytest.importorskip("xarray")
    res = neuralign.read_results(cli_run)
    ds = res.to_xarray()
    assert ds["encoding_r"].dims == ("layer", "channel", "time")
    sel = ds["encoding_r"].sel(layer="layer02", channel=res.ch_names[5])
    np.testing.assert_array_equal(sel.to_numpy(), res.encoding_r[2, 5])
    assert ds["rsa_spearman"].dims == ("layer", "time")
    np.testing.assert_array_equal(ds["noise_ceiling_r_ceiling"].to_numpy(),
                                  res.noise_ceiling["r_ceiling"])
    np.testing.assert_array_equal(ds["time"].to_numpy(), res.times)


def test_add_to_report_and_the_cli_report(cli_run, tmp_path):
    import mne

    res = neuralign.read_results(cli_run)
    report = mne.Report(title="mine", verbose=False)
    report.add_html("<p>my own section</p>", "Mine")
    res.add_to_report(report, section="model A")
    res.add_to_report(report, section="model B")
    report.save(tmp_path / "r.html", open_browser=False, verbose=False)
    text = (tmp_path / "r.html").read_text()
    assert "my own section" in text
    for model in ("model A", "model B"):
        for title in ("Per-layer peaks", "Encoding r", "RSA", "Peak latency", "Settings"):
            assert f"{model}: {title}" in text
    cli = (cli_run / "report.html").read_text()
    assert "The EEG in this report is simulated" in cli
    assert cli.count("data:image/png;base64,") >= 5
    assert "Per-layer peaks" in cli
    assert "n_folds" in cli
