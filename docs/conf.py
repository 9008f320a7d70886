"""Sphinx configuration of the neuralign documentation (``make docs``).

The API reference is generated from the numpydoc docstrings of every name in
``neuralign.__all__`` (docs/api.rst); the Markdown pages are read with MyST; the examples in
``examples/`` are run and rendered by sphinx-gallery (``-D plot_gallery=0`` renders them
without running, as the test suite's docs check does: the suite runs the examples itself).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "sphinxext"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("LSLAPICFG", str(HERE.parent / "neuralign" / "lsl_api.cfg"))

import neuralign  # noqa: E402

project = "neuralign"
author = "the neuralign developers"
copyright = "2026, the neuralign developers"  # noqa: A001
version = release = neuralign.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.codeobj.json",
                    "auto_examples/*.md5", "sg_execution_times.rst"]
templates_path = ["_templates"]

# API reference: one page per public name, members of classes listed by the template
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

myst_heading_anchors = 3
suppress_warnings = ["myst.header"]

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "mne": ("https://mne.tools/stable", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
}
# no network on the build machines: no inventories, no warnings about them
intersphinx_disabled_reftypes = ["*"]
intersphinx_timeout = 1
if os.environ.get("NEURALIGN_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

# the gallery: every example runs (a few seconds each); the LVLM export needs torch
have_export = all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_" if have_export else r"/plot_0[1-4]",
    "image_scrapers": ("matplotlib", "gallery_scraper.neuralign_figures"),
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"neuralign {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []
html_show_sourcelink = False
