"""A killed extraction resumes where it stopped and ends with the same features."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.io.cache_reader import cache_progress, load_cache_dir
from neuralign.models.extract import extract_features
from neuralign.models.prompts import Prompt
from neuralign.models.runtime import LayerRunner


class Killed(Exception):
    pass


def _kill_after(k: int):
    calls = []

    def on_batch(rows_done: int) -> None:
        calls.append(rows_done)
        if len(calls) == k:
            raise Killed(f"killed after {rows_done} rows")

    return on_batch


def _count_images(monkeypatch) -> list[int]:
    seen: list[int] = []
    orig = LayerRunner.outputs_many

    def counting(self, images, contexts):
        seen.append(0 if images is None else images.shape[0])
        return orig(self, images, contexts)

    monkeypatch.setattr(LayerRunner, "outputs_many", counting)
    return seen


def test_interrupted_extraction_resumes_to_identical_features(hf_export, image_folder,
                                                               tmp_path, monkeypatch, capsys):
    _, spec = hf_export("dinov2")
    full = extract_features(spec, str(image_folder), tmp_path / "full", batch_size=3,
                            progress=False)[0]
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        extract_features(spec, str(image_folder), out, batch_size=3, progress=False,
                         on_batch=_kill_after(2))
    assert cache_progress(out)["rows_done"] == 6
    seen = _count_images(monkeypatch)
    [r] = extract_features(spec, str(image_folder), out, batch_size=3, progress=False)
    assert "resuming" in capsys.readouterr().err
    assert r.resumed_from == 6
    assert not r.reused
    assert seen == [2]  # only the last two images were computed again
    a, b = load_cache_dir(full.path), load_cache_dir(out)
    assert a.stimulus_ids.tolist() == b.stimulus_ids.tolist()
    for x, y in zip(a.arrays, b.arrays):
        np.testing.assert_array_equal(x, y)


def test_two_prompt_extraction_resumes(hf_export, image_folder, tmp_path, monkeypatch):
    _, spec = hf_export("internvl")
    prompts = [Prompt("a", "Describe the image"), Prompt("b", "What is shown here ?")]
    full = extract_features(spec, str(image_folder), tmp_path / "full", prompts=prompts,
                            batch_size=2, progress=False)
    with pytest.raises(Killed):
        extract_features(spec, str(image_folder), tmp_path / "part", prompts=prompts,
                         batch_size=2, progress=False, on_batch=_kill_after(1))
    seen = _count_images(monkeypatch)
    res = extract_features(spec, str(image_folder), tmp_path / "part", prompts=prompts,
                           batch_size=2, progress=False)
    assert [r.resumed_from for r in res] == [2, 2]
    assert sum(seen) == 6
    for f, r in zip(full, res):
        a, b = load_cache_dir(f.path), load_cache_dir(r.path)
        for x, y in zip(a.arrays, b.arrays):
            np.testing.assert_array_equal(x, y)


def test_sigkilled_extraction_resumes(hf_export, image_folder, tmp_path):
    """A process killed with SIGKILL (no cleanup at all) leaves a cache that resumes."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    _, spec = hf_export("vit")
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from neuralign.models.extract import extract_features

        def on_batch(rows):
            if rows >= 4:
                os.kill(os.getpid(), signal.SIGKILL)

        extract_features({str(spec.root)!r}, {str(image_folder)!r}, {str(out)!r},
                         batch_size=2, progress=False, on_batch=on_batch)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert cache_progress(out)["rows_done"] == 4
    [r] = extract_features(spec, str(image_folder), out, batch_size=2, progress=False)
    assert r.resumed_from == 4
    [ref] = extract_features(spec, str(image_folder), tmp_path / "ref", batch_size=2,
                             progress=False)
    for x, y in zip(load_cache_dir(ref.path).arrays, load_cache_dir(out).arrays):
        np.testing.assert_array_equal(x, y)
