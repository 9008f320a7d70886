""":class:`Comparison`: several models analysed on the same epochs, ranked.

What :func:`neuralign.compare` returns: every model's maps (each an
:class:`~neuralign.report.AlignmentResult` with its statistics) and the ranking of their best
layers with paired comparisons over the same held-out stimuli
(:class:`neuralign.align.ranking.Ranking`, as ``neuralign analyze --features A --features B``
ranks them).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import stat_figures
from .results import AlignmentResult


@dataclass
class Comparison:
    """Several models on the same epochs: their maps and their ranking.

    Parameters
    ----------
    results : dict of str to AlignmentResult
        Label -> maps and statistics, in the order given.
    ranking : Ranking | None
        Best layers ranked by peak r with paired comparisons (``None`` with fewer than two
        models that have held-out predictions).
    """

    results: dict[str, AlignmentResult]
    ranking: object = None

    def __repr__(self) -> str:
        order = [] if self.ranking is None else [r.label for r in self.ranking.rows]
        return (f"<Comparison | {len(self.results)} models"
                + (f", ranked {' > '.join(order)}" if order else "") + ">")

    def to_dataframe(self, *, kind: str = "ranking"):
        """The ranking or the paired comparisons as a :class:`pandas.DataFrame`.

        Parameters
        ----------
        kind : str
            ``"ranking"``: one row per model (index ``model``, best first): best layer, its
            peak r and peak latency (ms) with 95% intervals. ``"pairs"``: one row per
            comparison: ``better``, ``worse``, difference in r with its interval, ``p``,
            ``n_stimuli``.

        Returns
        -------
        pandas.DataFrame
            The table.
        """
        import pandas as pd

        if kind not in ("ranking", "pairs"):
            raise ValueError(f"kind must be 'ranking' or 'pairs', got {kind!r}")
        if kind == "pairs":
            rows = [{"better": a, "worse": b, "diff_r": v["diff"], "diff_r_ci_low": v["ci"][0],
                     "diff_r_ci_high": v["ci"][1], "p": v["p"], "n_stimuli": v["n_stimuli"]}
                    for (a, b), v in (self.ranking.pairs.items() if self.ranking else [])]
            return pd.DataFrame(rows)
        rows = [{"model": r.label, "best_layer": r.best_layer, "peak_r": r.peak_r,
                 "peak_r_ci_low": r.peak_r_ci[0], "peak_r_ci_high": r.peak_r_ci[1],
                 "peak_ms": 1000 * r.peak_latency_s,
                 "peak_ms_ci_low": 1000 * r.peak_latency_ci[0],
                 "peak_ms_ci_high": 1000 * r.peak_latency_ci[1]}
                for r in (self.ranking.rows if self.ranking else [])]
        return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame(rows)

    def plot_ranking(self):
        """The models' best layers ranked by peak r, with 95% intervals and paired p.

        Returns
        -------
        matplotlib.figure.Figure
            The figure ``neuralign analyze`` writes for several feature sets.
        """
        if self.ranking is None:
            from ..errors import NeuralignError

            raise NeuralignError("no ranking: it needs two or more models with held-out "
                                 "predictions")
        return stat_figures.ranking_figure(self.ranking)

    def add_to_report(self, report, *, image_format: str | None = None):
        """Add the ranking and every model (a section each) to an :class:`mne.Report`.

        Parameters
        ----------
        report : mne.Report
            Your report (changed in place).
        image_format : str | None
            ``png``, ``svg``...; ``None``: the report's own.

        Returns
        -------
        mne.Report
            ``report``.
        """
        if self.ranking is not None:
            table = self.to_dataframe(kind="pairs").to_html(
                index=False, float_format=lambda x: f"{x:.3g}", classes="table table-sm")
            report.add_figure(self.plot_ranking(), "Ranking", image_format=image_format,
                              caption="best layer of every model, peak r with 95% intervals "
                                      "(paired bootstrap over the same held-out stimuli)",
                              tags=("neuralign", "ranking"), section="Comparison")
            report.add_html(table, "Paired comparisons", tags=("neuralign", "ranking"),
                            section="Comparison")
        for label, res in self.results.items():
            res.add_to_report(report, section=label, image_format=image_format)
        return report
