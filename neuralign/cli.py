"""The ``neuralign`` command.

Each sub-command lives in its own module under :mod:`neuralign.commands` and exposes
``register(subparsers)`` (adds its parser, with ``set_defaults(func=run)``) and ``run(args) -> int``.
Modules are imported lazily per sub-command, so ``neuralign --help`` never imports torch or Qt.
User errors (:class:`~neuralign.errors.NeuralignError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from . import __version__
from .errors import NeuralignError, NeuralignWarning

# sub-command -> (module, one-line help). Order is the order shown in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("neuralign.commands.demo", "run the embedded demo end to end"),
    "analyze": ("neuralign.commands.analyze", "offline layer x latency alignment of a dataset"),
    "simulate": ("neuralign.commands.simulate", "write a simulated subject with a planted answer"),
    "models": ("neuralign.commands.models", "list or export models (ONNX with every layer)"),
    "features": ("neuralign.commands.features", "extract/cache layer features with ONNX Runtime"),
    "live": ("neuralign.commands.live", "headless live session from LSL streams"),
    "simulate-amp": ("neuralign.commands.simulate_amp", "simulated EEG amplifier on LSL"),
    "present": ("neuralign.commands.present", "PsychoPy RSVP presenter with LSL markers"),
    "session": ("neuralign.commands.session", "presenter + amplifier + live engine together"),
    "gui": ("neuralign.commands.gui", "the live Qt window"),
    "replay": ("neuralign.commands.replay", "replay a recording or dataset through the engine"),
    "study": ("neuralign.commands.study", "many subjects x many models, with statistics"),
    "verify-recording": ("neuralign.commands.verify", "check a recording's integrity"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``neuralign`` parser, importing only the sub-command ``argv`` asks for.

    Parameters
    ----------
    argv : list of str | None
        The command line (without the program); ``None`` registers every sub-command.

    Returns
    -------
    argparse.ArgumentParser
        With one sub-parser per command (the others are help-only stubs).
    """
    parser = argparse.ArgumentParser(
        prog="neuralign",
        description="Live and offline layer-by-latency alignment of vision(-language) models with EEG.",
    )
    parser.add_argument("--version", action="version", version=f"neuralign {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None
    if argv:
        wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_) in COMMANDS.items():
        if wanted is not None and wanted in COMMANDS and name != wanted:
            sub.add_parser(name, help=help_)
            continue
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``neuralign`` command.

    Parameters
    ----------
    argv : list of str | None
        The command line (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0, 2 for a user error (one line on stderr), 130 on Ctrl-C.
    """
    from .commands.console import console_gone, say, watch_parent

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if not argv else 2
    watch_parent()  # a child of `neuralign session` ends with its parent, however it ends
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            return int(args.func(args) or 0)
    except NeuralignError as e:
        say(f"neuralign: error: {e}")
        return 2
    except KeyboardInterrupt:
        say("neuralign: interrupted")
        return 130
    except BrokenPipeError:  # the reader of our output went away: no traceback
        console_gone()
        return 141


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, NeuralignWarning):
        from .commands.console import say

        say(f"neuralign: warning: {message}")
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
