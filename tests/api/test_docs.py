"""The documentation builds without a warning: every page, the API reference of every name in
``neuralign.__all__`` and the gallery's pages (``make docs`` also runs the examples; here
they are rendered without running, since ``test_examples.py`` runs them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import neuralign

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_api_reference_lists_every_public_name():
    text = (DOCS / "api.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", text, re.M))
    assert listed == set(neuralign.__all__)


@pytest.mark.timeout(300)
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("myst_parser")
    pytest.importorskip("pydata_sphinx_theme")
    # a copy of the sources, so that generated pages never land in the checkout
    import shutil

    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build", "generated",
                                                             "auto_examples"))
    shutil.copytree(DOCS.parent / "examples", tmp_path / "examples")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         "-D", "plot_gallery=0", str(src), str(tmp_path / "html")],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    page = (tmp_path / "html" / "generated" / "neuralign.AlignmentResult.html").read_text()
    for method in ("plot_encoding", "plot_rsa", "plot_peaks", "plot_noise_ceiling",
                   "to_dataframe", "to_xarray", "add_to_report", "encoding_map"):
        assert method in page, method
    for name in neuralign.__all__:
        assert (tmp_path / "html" / "generated" / f"neuralign.{name}.html").is_file(), name
    gallery = (tmp_path / "html" / "auto_examples" / "index.html").read_text()
    assert "mne.Report" in gallery
