"""The top-level CLI: every sub-command registers, --help is cheap, errors are one line."""

from __future__ import annotations

import subprocess
import sys

from neuralign.cli import COMMANDS, main


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "neuralign", "--help"],
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


OLD_FLAGS = [  # (command line with a renamed option, dest, value it must give)
    (["gui", "--eeg", "amp", "--markers", "mk"], "eeg_stream", "amp"),
    (["gui", "--eeg", "amp", "--markers", "mk"], "marker_stream", "mk"),
    (["simulate-amp", "--name", "amp"], "eeg_stream", "amp"),
    (["simulate-amp", "--marker-name", "mk"], "marker_stream", "mk"),
    (["simulate-amp", "--wait-consumers", "3"], "wait_consumer", 3.0),
    (["replay", "--dataset", "sim:x", "--lsl", "--lsl-name", "rp"], "eeg_stream", "rp"),
    (["replay", "--dataset", "sim:x", "--refresh", "0.5"], "refresh_every", 0.5),
    (["live", "--eeg-stream", "e", "--marker-stream", "m", "--features", "f", "--out", "o",
      "--refresh-hz", "4"], "refresh_every", 0.25),
    (["present", "--refresh-hz", "144"], "monitor_hz", 144.0),
    (["session", "--simulate", "--refresh-hz", "144"], "monitor_hz", 144.0),
]


def test_old_flag_names_are_hidden_aliases():
    """Renamed options still work for one release, and --help shows only the new names."""
    from neuralign.cli import build_parser

    for argv, dest, value in OLD_FLAGS:
        assert getattr(build_parser(argv).parse_args(argv), dest) == value, argv
    for cmd, old in (("gui", "--markers"), ("simulate-amp", "--marker-name"),
                     ("replay", "--lsl-name"), ("live", "--refresh-hz")):
        out = subprocess.run([sys.executable, "-m", "neuralign", cmd, "--help"],
                             capture_output=True, text=True, check=True).stdout
        assert old not in out
        assert "--marker-stream" in out or "--eeg-stream" in out or "--refresh-every" in out
