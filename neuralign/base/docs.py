"""Shared parameter documentation: :data:`docdict` and :func:`fill_doc` (as in mne-lsl).

A parameter that several public functions take is documented once here and inserted into
their docstrings with ``%(name)s``::

    @fill_doc
    def load_dataset(spec: str, **options) -> EpochData:
        '''Load a dataset.

        Parameters
        ----------
        %(dataset_spec)s
        '''

Each entry is the numpydoc text of one parameter (name line, then its description indented by
four spaces). :func:`fill_doc` re-indents it to the indentation of the placeholder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

#: Parameter name -> its numpydoc text (first line unindented, description indented by 4).
docdict: dict[str, str] = {}

docdict["dataset_spec"] = """spec : str
    A dataset as ``KIND:PATH``, e.g. ``things-eeg2:/data/sub-01``; the kinds are listed by
    ``neuralign analyze --help``."""

docdict["epoch_data"] = """data : EpochData
    Epochs tagged with stimulus ids (:class:`neuralign.base.EpochData`)."""

docdict["features"] = """features : FeatureSet
    Per-layer model features of the stimuli (:class:`neuralign.base.FeatureSet`)."""

docdict["out_dir"] = """out_dir : str | Path
    The output folder (created if needed)."""

docdict["stream_spec"] = """eeg_stream, marker_stream : str
    LSL stream specs: ``NAME`` (a name or a source id), ``name:X``, ``type:X`` or
    ``source_id:X``."""

docdict["progress"] = """progress : bool
    Show a progress bar on stderr."""

docdict["title"] = """title : str
    The report's title."""

docdict["extra"] = """extra : dict | None
    Anything else worth recording next to the results (dataset, command line...)."""

docdict["snapshot_source"] = """source : SnapshotSource | None
    What the window paints: an object with ``latest()``, ``start()`` and ``stop()``
    (:class:`neuralign.realtime.source.SnapshotSource`)."""

docdict["engine_kw"] = """**engine_kw
    Passed to :class:`neuralign.align.AlignmentEngine` (``alphas``, ``n_folds``,
    ``backend``, ``dtype``...)."""


def _indent(text: str, prefix: str) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0], *[prefix + line if line else line for line in lines[1:]]])


def fill_doc(f: F) -> F:
    """Fill the ``%(name)s`` placeholders of ``f.__doc__`` from :data:`docdict`.

    Parameters
    ----------
    f : callable
        A function or class whose docstring holds placeholders.

    Returns
    -------
    callable
        ``f`` itself, with its docstring filled in.

    Raises
    ------
    RuntimeError
        When a placeholder names no entry of :data:`docdict` (a typo in the source, caught at
        import time).
    """
    doc = f.__doc__
    if not doc:
        return f
    filled: dict[str, str] = {}
    for line in doc.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("%(") and stripped.endswith(")s"):
            key = stripped[2:-2]
            if key not in docdict:
                raise RuntimeError(f"{f.__qualname__}: no docdict entry {key!r}")
            filled[key] = _indent(docdict[key], line[: len(line) - len(stripped)])
    for key, text in filled.items():
        doc = doc.replace(f"%({key})s", text)
    f.__doc__ = doc
    return f
