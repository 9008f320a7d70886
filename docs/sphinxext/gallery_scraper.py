"""A sphinx-gallery image scraper for the figures neuralign returns.

neuralign's figures are :class:`matplotlib.figure.Figure` objects made without pyplot (so
they are thread-safe and change no global state); the gallery's matplotlib scraper only sees
pyplot's figures. This one saves every figure an example's code block bound to a name (or
that sits in a list or dict bound to one) the first time it appears.
"""

from __future__ import annotations

#: Figures already shown, per example file (kept alive so that ids are not reused).
SEEN: dict[str, list] = {}


def _figures(value):
    """The pyplot-free figures in ``value`` (pyplot's own are the matplotlib scraper's)."""
    from matplotlib.figure import Figure

    def ours(v):
        return isinstance(v, Figure) and getattr(v.canvas, "manager", None) is None

    if isinstance(value, list | tuple):
        return [v for v in value if ours(v)]
    if isinstance(value, dict):
        return [v for v in value.values() if ours(v)]
    return [value] if ours(value) else []


def neuralign_figures(block, block_vars, gallery_conf):
    """Save the new figures of a code block and return their reST."""
    from sphinx_gallery.scrapers import figure_rst

    seen = SEEN.setdefault(str(block_vars["src_file"]), [])
    new = []
    for name, value in block_vars["example_globals"].items():
        if name.startswith("_"):
            continue
        for fig in _figures(value):
            if not any(fig is s for s in seen) and not any(fig is n for n in new):
                new.append(fig)
    paths = []
    for fig, path in zip(new, block_vars["image_path_iterator"]):
        fig.savefig(path, dpi=100)
        paths.append(path)
        seen.append(fig)
    return figure_rst(paths, gallery_conf["src_dir"])
