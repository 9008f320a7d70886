"""Figures and reports of a result.

- :mod:`neuralign.report.figures`: one function per figure, each returning a
  :class:`matplotlib.figure.Figure` (``plot_encoding``, ``plot_rsa``, ``plot_peaks``,
  ``plot_noise_ceiling``);
- :mod:`neuralign.report.sections`: the registry of what a report holds, in order
  (:data:`~neuralign.report.sections.SECTIONS`); add a section there to have it in the CLI's
  PNG files, ``report.html`` and :meth:`neuralign.report.AlignmentResult.add_to_report`;
- :mod:`neuralign.report.builder`: :func:`write_outputs` (results, PNG figures and an
  :class:`mne.Report` as ``report.html``) and :func:`add_to_report`;
- :mod:`neuralign.report.results`: :class:`AlignmentResult`, the engine's result with these
  figures, tables and report sections as methods (what :func:`neuralign.analyze` returns).

Nothing heavy is imported here: matplotlib and MNE load when a figure or report is made.
"""

from __future__ import annotations

from .builder import add_to_report, build_report, write_outputs, write_session
from .figures import plot_encoding, plot_noise_ceiling, plot_peaks, plot_rsa
from .results import AlignmentResult
from .sections import SECTIONS, FigureSection, HtmlSection, layer_table

__all__ = [
    "SECTIONS",
    "AlignmentResult",
    "FigureSection",
    "HtmlSection",
    "add_to_report",
    "build_report",
    "layer_table",
    "plot_encoding",
    "plot_noise_ceiling",
    "plot_peaks",
    "plot_rsa",
    "write_outputs",
    "write_session",
]
