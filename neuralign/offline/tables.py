"""Small helpers shared by the offline loaders: reading CSV/TSV event tables, truthy columns."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import NeuralignError

_TRUE = {"1", "1.0", "true", "yes", "y", "t"}


def read_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV or TSV file with a header (delimiter from the extension, else sniffed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise NeuralignError(f"cannot read ({e.strerror})", path=path) from None
    if not text.strip():
        raise NeuralignError("empty table", path=path)
    if path.suffix.lower() == ".tsv":
        delim = "\t"
    elif path.suffix.lower() == ".csv":
        delim = ","
    else:
        delim = "\t" if text.split("\n", 1)[0].count("\t") else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delim))
    if not rows:
        raise NeuralignError("table has a header but no rows", path=path)
    return [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in rows]


def truthy(value: str) -> bool:
    """Whether a table cell means yes (``1``, ``true``, ``yes``...)."""
    return str(value).strip().lower() in _TRUE


def missing_value(value: str) -> bool:
    """Whether a table cell means missing (empty, ``n/a``, ``nan``, ``none``, ``null``)."""
    return str(value).strip().lower() in ("", "n/a", "nan", "none", "null")
