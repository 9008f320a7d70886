"""The top-level CLI: every sub-command registers, --help is cheap, errors are one line."""

from __future__ import annotations

import subprocess
import sys

from neuralign.cli import COMMANDS, main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "neuralign.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from neuralign.cli import build_parser; build_parser(['analyze']); "
            "heavy = [m for m in ('torch', 'transformers', 'PySide6', 'pyqtgraph', 'psychopy', "
            "'pylsl', 'onnxruntime') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_user_error_is_one_line(tmp_path, capsys):
    rc = main(["analyze", "--dataset", f"things-eeg2:{tmp_path}/nope", "--features",
               str(tmp_path / "f.npz"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1
    assert err[0].startswith("neuralign: error:")
    assert "Traceback" not in err[0]


def test_unknown_dataset_kind(tmp_path, capsys):
    rc = main(["analyze", "--dataset", "bogus:x", "--features", "f.npz", "--out", str(tmp_path)])
    assert rc == 2
    assert "things-eeg2" in capsys.readouterr().err
