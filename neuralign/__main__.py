"""``python -m neuralign``: the ``neuralign`` command (how commands start child commands)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
