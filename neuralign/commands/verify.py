"""``neuralign verify-recording DIR``: read a recording through and print its integrity.

Exit status: 0 when every byte parsed, 1 when damage was skipped but EEG remains (the lines
say what was lost: time span, samples, markers), 2 when nothing usable remains or DIR holds
no recording.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``verify-recording`` sub-command.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The CLI's sub-parsers.
    """
    p = sub.add_parser("verify-recording", help="check a recording's integrity",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", type=Path, metavar="DIR",
                   help="the session's --out folder, its recording/ folder or the .xdf")
    p.add_argument("--json", action="store_true", help="print the integrity as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the recording and print its integrity.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.

    Returns
    -------
    int
        0 intact, 1 damaged but usable (2: an error, raised).
    """
    from ..errors import NeuralignError
    from ..realtime.integrity import check_recording
    from ..realtime.recording import find_xdf, read_meta, stream_hints

    xp = find_xdf(args.path)
    try:
        hints = stream_hints(read_meta(xp))
    except NeuralignError:
        hints = None  # no session.json and no readable settings log: the headers alone
    try:
        integ = check_recording(xp, hints=hints)
    except ValueError as e:
        raise NeuralignError(f"not a readable recording ({e})", path=xp) from e
    if args.json:
        print(json.dumps(integ.to_dict(), indent=1))
    else:
        print("\n".join(integ.lines()))
    if not integ.usable:
        raise NeuralignError(f"nothing usable in the recording ({integ.summary()})", path=xp)
    return 0 if integ.intact else 1
