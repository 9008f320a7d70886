""":class:`AlignmentResult`: the engine's maps with their figures, tables and report sections.

The engine (:mod:`neuralign.align`) produces :class:`neuralign.align.AlignmentResult`, which
knows no figures; this subclass adds what a notebook needs: ``plot_*`` methods returning the
figures ``neuralign analyze`` writes, tables (:meth:`AlignmentResult.to_dataframe`,
:meth:`AlignmentResult.to_xarray`) and :meth:`AlignmentResult.add_to_report` for an
:class:`mne.Report`. :func:`neuralign.analyze`, :func:`neuralign.read_results` and
:class:`neuralign.LiveSession` return it; :meth:`AlignmentResult.from_result` wraps any
engine result without copying its arrays.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np

from ..align import data
from ..align.data import jsonable
from ..base.truth import planted_latencies
from ..errors import NeuralignError
from . import builder, figures, stat_figures
from .sections import layer_table


@dataclasses.dataclass(repr=False, eq=False)
class AlignmentResult(data.AlignmentResult):
    """The layer x channel x time maps of an analysis, that show themselves.

    The engine's :class:`neuralign.align.AlignmentResult` (every attribute and method of it)
    plus figures, tables and report sections. Make one with :func:`neuralign.analyze`,
    :func:`neuralign.read_results` or :meth:`from_result`; its fields are those of
    :class:`neuralign.align.AlignmentResult`, plus :attr:`statistics`.
    """

    #: The single-subject statistics (the ``statistics`` record of ``results.json``:
    #: bootstrap intervals of every layer's peak, the family-wise significance mask, the
    #: latency-hierarchy test, statements), ``None`` when they were not computed.
    statistics: dict | None = None

    @classmethod
    def load(cls, out_dir: str | Path) -> AlignmentResult:
        """Read back the maps (and the statistics) an output folder holds.

        Parameters
        ----------
        out_dir : str | Path
            A folder ``neuralign analyze`` (one feature set), ``live`` or :meth:`write`
            wrote.

        Returns
        -------
        AlignmentResult
            The maps; :attr:`statistics` from ``results.json`` when it has them.
        """
        res = super().load(out_dir)
        meta = json.loads((Path(out_dir) / "results.json").read_text())
        res.statistics = meta.get("statistics")
        return res

    @classmethod
    def from_result(cls, result: data.AlignmentResult) -> AlignmentResult:
        """This class around an engine result (the arrays are shared, not copied).

        Parameters
        ----------
        result : neuralign.align.AlignmentResult
            An engine result.

        Returns
        -------
        AlignmentResult
            ``result`` itself when it is one already.
        """
        if isinstance(result, cls):
            return result
        return cls(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})

    def __repr__(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lat, val = self.peaks("encoding")
        best = ""
        if np.isfinite(val).any():
            i = int(np.nanargmax(val))
            best = f", best layer {self.layers[i]} (r={val[i]:.3f} at {lat[i] * 1000:.0f} ms)"
        n = self.counts.get("n_epochs")
        return (f"<AlignmentResult | {len(self.layers)} layers x {len(self.ch_names)} channels x "
                f"{len(self.times)} times" + (f", {n} epochs" if n is not None else "")
                + best + ">")

    def _repr_html_(self) -> str:  # a notebook shows the per-layer table
        from .sections import summary_html

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return summary_html(self, self.report_extra())

    # ---------------------------------------------------------------- figures
    def plot_encoding(self, *, normalized: bool = False):
        """Encoding r (held-out, mean over channels), layer x latency.

        Parameters
        ----------
        normalized : bool
            Divide by the noise ceiling first.

        Returns
        -------
        matplotlib.figure.Figure
            The figure ``neuralign analyze`` writes as ``encoding_r.png``
            (``encoding_r_normalized.png``).
        """
        return figures.plot_encoding(self, normalized=normalized)

    def plot_rsa(self, *, kind: str = "rsa"):
        """RSA Spearman rho, layer x latency.

        Parameters
        ----------
        kind : str
            ``"rsa"`` (``rsa_rho.png``) or ``"rsa_cv"`` (cross-validated EEG RDM).

        Returns
        -------
        matplotlib.figure.Figure
            The heat map.
        """
        return figures.plot_rsa(self, kind=kind)

    def plot_peaks(self, *, planted: dict | None = None):
        """Peak latency per layer (encoding and RSA).

        Parameters
        ----------
        planted : dict | None
            A simulation's planted truth to overlay; default: the one the result carries
            (``settings["dataset"]["planted"]``), if any.

        Returns
        -------
        matplotlib.figure.Figure
            The figure ``neuralign analyze`` writes as ``peak_latency.png``.
        """
        return figures.plot_peaks(self, planted=planted or self.planted())

    def plot_significance(self):
        """Encoding r with the family-wise significant cells outlined.

        Returns
        -------
        matplotlib.figure.Figure
            The figure ``neuralign analyze`` writes as ``encoding_r_significance.png``.
        """
        return stat_figures.mask_figure(self, self.require_statistics())

    def plot_peak_intervals(self):
        """Peak latency and peak r per layer with their 95% bootstrap intervals.

        Returns
        -------
        matplotlib.figure.Figure
            The figure ``neuralign analyze`` writes as ``peak_intervals.png`` (significant
            layers filled, the others hollow; planted latencies of a simulation overlaid).
        """
        planted = planted_latencies(self.planted(), self.layers)
        return stat_figures.peak_ci_figure(self.require_statistics(),
                                           None if planted is None else planted * 1000)

    def require_statistics(self) -> dict:
        """:attr:`statistics`, or a clear error when the maps come without them.

        Returns
        -------
        dict
            The statistics record.
        """
        if not self.statistics:
            raise NeuralignError("these maps have no statistics: analyze with permutations "
                                 "and/or bootstrap above 0")
        return self.statistics

    def plot_noise_ceiling(self):
        """Noise ceilings over time and the best layer's encoding r.

        Returns
        -------
        matplotlib.figure.Figure
            The figure ``neuralign analyze`` writes as ``noise_ceiling.png``.
        """
        return figures.plot_noise_ceiling(self)

    def planted(self) -> dict | None:
        """The planted truth of simulated data the maps were computed on, if any.

        Returns
        -------
        dict | None
            ``settings["dataset"]["planted"]`` (see :mod:`neuralign.base.truth`).
        """
        return ((self.settings or {}).get("dataset") or {}).get("planted")

    # ---------------------------------------------------------------- tables
    def to_dataframe(self, *, kind: str = "peaks"):
        """The result as a :class:`pandas.DataFrame`.

        Parameters
        ----------
        kind : str
            ``"peaks"``: one row per layer (index ``layer``): peak latency (ms) and peak
            value of encoding r, normalised encoding r and RSA rho (the report's table);
            with :attr:`statistics`, their 95% intervals (``*_ci_low``/``*_ci_high``),
            ``significant`` and ``min_p``.
            ``"maps"``: one row per layer x time: ``encoding_r`` and ``encoding_r_normalized``
            (means over channels), ``rsa_rho``, ``rsa_cv_rho``.

        Returns
        -------
        pandas.DataFrame
            The table.
        """
        import pandas as pd

        if kind == "peaks":
            table = pd.DataFrame(layer_table(self)).set_index("layer")
            for row in (self.statistics or {}).get("layers", []):
                lo, hi = row["peak_latency_ci"]
                rlo, rhi = row["peak_r_ci"]
                for col, v in (("enc_peak_ms_ci_low", lo), ("enc_peak_ms_ci_high", hi)):
                    table.loc[row["layer"], col] = np.nan if v is None else 1000 * v
                for col, v in (("enc_peak_r_ci_low", rlo), ("enc_peak_r_ci_high", rhi)):
                    table.loc[row["layer"], col] = np.nan if v is None else v
                if "significant" in row:
                    table.loc[row["layer"], "significant"] = bool(row["significant"])
                    table.loc[row["layer"], "min_p"] = row["min_p"]
            return table
        if kind != "maps":
            raise ValueError(f"kind must be 'peaks' or 'maps', got {kind!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            cols = {"encoding_r": self.encoding_map(),
                    "encoding_r_normalized": self.encoding_map(normalized=True),
                    "rsa_rho": self.rsa_map("rsa"), "rsa_cv_rho": self.rsa_map("rsa_cv")}
        n_l, n_t = len(self.layers), len(self.times)
        index = pd.MultiIndex.from_product([list(self.layers), np.asarray(self.times)],
                                           names=["layer", "time"])
        return pd.DataFrame({k: np.asarray(v, dtype=float).reshape(n_l * n_t)
                             for k, v in cols.items()}, index=index)

    def to_xarray(self):
        """The full maps as an :class:`xarray.Dataset` with labelled axes.

        Returns
        -------
        xarray.Dataset
            ``encoding_r`` and ``encoding_alpha`` (layer x channel x time), ``rsa_spearman``,
            ``rsa_pearson``, ``rsa_cv_spearman`` (layer x time), ``noise_ceiling_<kind>``
            (channel x time); coordinates ``layer``, ``channel``, ``time`` (s); the counts and
            settings are not included (see :meth:`to_dict`).
        """
        import xarray as xr

        lct, lt, ct = ("layer", "channel", "time"), ("layer", "time"), ("channel", "time")
        variables = {"encoding_r": (lct, self.encoding_r),
                     "encoding_alpha": (lct, self.encoding_alpha),
                     "rsa_spearman": (lt, np.asarray(self.rsa_spearman, dtype=float)),
                     "rsa_pearson": (lt, np.asarray(self.rsa_pearson, dtype=float)),
                     "rsa_cv_spearman": (lt, np.asarray(self.rsa_cv_spearman, dtype=float))}
        for k, v in self.noise_ceiling.items():
            if np.shape(v) == (len(self.ch_names), len(self.times)):
                variables[f"noise_ceiling_{k}"] = (ct, v)
        return xr.Dataset(variables, coords={"layer": list(self.layers),
                                             "channel": list(self.ch_names),
                                             "time": np.asarray(self.times, dtype=float)})

    # ---------------------------------------------------------------- reports
    def add_to_report(self, report, *, section: str | None = None, extra: dict | None = None,
                      image_format: str | None = None):
        """Add the per-layer table, every figure and the settings to an :class:`mne.Report`.

        Parameters
        ----------
        report : mne.Report
            Your report (changed in place).
        section : str | None
            Put every item under this section (e.g. the model's name, when one report holds
            several results); ``None``: Summary, Maps and Settings.
        extra : dict | None
            Anything to record with the settings; a simulation's ``planted`` truth is taken
            from the result when not given.
        image_format : str | None
            ``png``, ``svg``, ``webp``...; ``None``: the report's own.

        Returns
        -------
        mne.Report
            ``report``.
        """
        extra = self.report_extra(extra)
        builder.add_to_report(self, report, extra=extra, section=section,
                              image_format=image_format)
        return report

    def write(self, out_dir: str | Path, *, title: str = "neuralign",
              extra: dict | None = None) -> dict[str, Path]:
        """Write what ``neuralign analyze`` writes: results, PNG figures, ``report.html``.

        Parameters
        ----------
        out_dir : str | Path
            The folder (made if missing).
        title : str
            The report's title.
        extra : dict | None
            Anything to record besides the result (``extra.json``).

        Returns
        -------
        dict of str -> Path
            See :func:`neuralign.report.write_outputs`.
        """
        return builder.write_outputs(self, out_dir, title=title, extra=self.report_extra(extra))

    def report_extra(self, extra: dict | None = None) -> dict:
        """What the report sections read besides the maps: the statistics, the planted truth.

        Parameters
        ----------
        extra : dict | None
            The caller's own record (kept; it wins over the result's).

        Returns
        -------
        dict
            ``extra`` with ``statistics`` and ``planted`` (when the result has them).
        """
        out = dict(extra or {})
        if self.statistics and "statistics" not in out:
            out["statistics"] = jsonable(self.statistics)
        if self.planted() and "planted" not in out:
            out["planted"] = self.planted()
        return out
