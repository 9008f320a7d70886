""":class:`LiveSession`: a live LSL session from Python (a notebook can run one and plot as
it goes).

The same session ``neuralign live`` runs (:class:`neuralign.realtime.session.LiveSession`:
acquisition thread, causal epoching, XDF recording, refresh worker), with keyword options in
the names of the command's, :meth:`LiveSession.latest` snapshots that never block, and results
that plot themselves. Nothing here imports torch or transformers: only the features'
arrays and the engine run live.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path

from ..base import FeatureSet, SessionDesign, load_design
from ..errors import NeuralignError
from ..report.results import AlignmentResult


class LiveSession:
    """A live session on an EEG and a marker LSL stream; use it as a context manager.

    Parameters
    ----------
    features : FeatureSet | str | Path | dict
        Features of the stimuli that may be shown (or the file to read them from); several
        models as ``{label: features}`` (the epochs are cut once and fed to every model).
    eeg_stream, marker_stream : str
        Stream specs: a name or source id, ``name:X``, ``type:X`` or ``source_id:X``. LSL
        looks for them with neuralign's machine-scope configuration (this machine only).
    out_dir : str | Path
        The recording goes to ``out_dir/recording/``.
    design : SessionDesign | str | Path | None
        The session design (its test stimuli score; else nested cross-validation).
    codes : dict | None
        Integer marker code -> stimulus id.
    tmin, tmax : float
        Epoch window (s) around each stimulus marker.
    sfreq : float
        Analysis rate (Hz) the epochs are resampled to.
    baseline : tuple | None
        Baseline interval (s); ``None`` ends mean tmin / 0; ``None`` alone: no baseline.
    l_freq, h_freq : float | None
        Causal band-pass edges (Hz).
    reject_ptp : float | None
        Reject epochs whose peak-to-peak exceeds this on any channel.
    refresh_every : float
        Seconds between map refreshes (at least).
    connect_timeout : float
        Seconds to wait for each stream.
    **engine_options
        Options of :class:`~neuralign.align.AlignmentEngine` (``backend``, ``dtype``,
        ``alphas``, ``n_folds``, ``memory``...).

    Examples
    --------
    >>> with neuralign.LiveSession(features, eeg_stream="amp", marker_stream="markers",
    ...                            out_dir="session") as live:  # doctest: +SKIP
    ...     while live.latest() is None or live.latest().epochs_accepted < 100:
    ...         time.sleep(1)
    ...     live.result().plot_encoding()
    """

    def __init__(self, features, *, eeg_stream: str, marker_stream: str,
                 out_dir: str | Path, design=None, codes: dict | None = None,
                 tmin: float = -0.2, tmax: float = 0.8, sfreq: float = 100.0,
                 baseline: tuple | None = (None, 0.0), l_freq: float | None = None,
                 h_freq: float | None = None, reject_ptp: float | None = None,
                 refresh_every: float = 1.0, connect_timeout: float = 10.0,
                 **engine_options) -> None:
        from ..base.resources import parse_memory
        from ..io.features import load_features
        from ..realtime.session import LiveSession as Session
        from ..realtime.settings import EpochSettings

        def read(f):
            return f if isinstance(f, FeatureSet) else load_features(f)

        features = ({str(k): read(v) for k, v in features.items()}
                    if isinstance(features, Mapping) else read(features))
        if design is not None and not isinstance(design, SessionDesign):
            design = load_design(design)
        if engine_options.get("memory") is not None:
            engine_options["memory"] = parse_memory(engine_options["memory"])
        settings = EpochSettings(tmin=tmin, tmax=tmax, sfreq=sfreq, baseline=baseline,
                                 l_freq=l_freq, h_freq=h_freq, reject_ptp=reject_ptp)
        #: The session that runs (:class:`neuralign.realtime.session.LiveSession`).
        self.session = Session(features, eeg_stream=eeg_stream, marker_stream=marker_stream,
                               out_dir=out_dir, settings=settings, design=design, codes=codes,
                               refresh_every=refresh_every, connect_timeout=connect_timeout,
                               engine_kw=engine_options)
        self.final: AlignmentResult | None = None

    def start(self) -> LiveSession:
        """Connect to both streams, open the recording and start acquiring.

        Returns
        -------
        LiveSession
            ``self``.
        """
        self.session.connect()
        self.session.start()
        return self

    def latest(self):
        """The newest snapshot, at once (never blocks; ``None`` before the first).

        Returns
        -------
        Snapshot | None
            Counts, stream health, running ERP, raw scope, and ``.result`` (the maps of the
            last refresh as an :class:`~neuralign.report.AlignmentResult` that plots itself,
            ``None`` before the first); see :class:`neuralign.realtime.snapshot.Snapshot`.
        """
        snap = self.session.snapshot
        if snap is None or snap.result is None or isinstance(snap.result, AlignmentResult):
            return snap
        wrap = AlignmentResult.from_result
        return dataclasses.replace(
            snap, result=wrap(snap.result),
            results=None if snap.results is None else {k: wrap(v)
                                                       for k, v in snap.results.items()})

    def result(self) -> AlignmentResult | None:
        """The maps of the last refresh (the final maps once stopped).

        Returns
        -------
        AlignmentResult | None
            ``None`` before the first refresh.
        """
        if self.final is not None:
            return self.final
        res = self.session.result
        return None if res is None else AlignmentResult.from_result(res)

    def results(self) -> dict[str, AlignmentResult]:
        """Every model's maps of the last refresh (label -> maps; ``"model"`` for one).

        Returns
        -------
        dict of str to AlignmentResult
            Empty before the first refresh.
        """
        snap = self.latest()
        return {} if snap is None else snap.models

    def statistics(self):
        """The live statistics of the last evaluation (intervals, masks, ranking, stopping).

        Returns
        -------
        Statistics | None
            :class:`neuralign.align.monitor.Statistics` (``status_fragment()``,
            ``to_dict()``...), ``None`` before the first evaluation.
        """
        return self.session.stats

    def write(self, out_dir: str | Path, *, title: str = "neuralign live") -> dict[str, Path]:
        """Write what ``neuralign live`` writes at its end (maps, figures, statistics, report).

        Parameters
        ----------
        out_dir : str | Path
            The folder (e.g. the session's ``out_dir``).
        title : str
            The report's title.

        Returns
        -------
        dict of str -> Path
            See :func:`neuralign.report.write_session`.
        """
        from ..report import write_session

        result = self.result()
        if result is None:
            raise NeuralignError("no maps yet: nothing to write")
        return write_session(result, out_dir, title=title,
                             extra={"recording": str(self.session.recorder.dir)},
                             results=self.session.results, stats=self.session.stats)

    def wait(self, *, epochs: int, timeout: float = 60.0, poll: float = 0.25) -> bool:
        """Wait until at least ``epochs`` epochs were accepted and the maps refreshed after.

        Parameters
        ----------
        epochs : int
            Epochs to wait for.
        timeout : float
            Seconds to wait at most.
        poll : float
            Seconds between looks.

        Returns
        -------
        bool
            Whether it happened before the timeout (or the session stopped).
        """
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.session.running:
            snap = self.latest()
            if (snap is not None and snap.result is not None
                    and snap.result.counts.get("n_epochs", 0) >= epochs):
                return True
            time.sleep(poll)
        return False

    def status(self) -> str:
        """One status line (time, epochs, rejections, latency, refresh cost).

        Returns
        -------
        str
            ``"connecting..."`` before the first snapshot.
        """
        return self.session.status_line()

    def stop(self) -> AlignmentResult:
        """Stop, let pending epochs complete, close the recording, refresh the maps once more.

        Returns
        -------
        AlignmentResult
            The final maps (as ``neuralign analyze`` of the recording gives them).
        """
        if self.final is None:
            self.final = AlignmentResult.from_result(self.session.stop())
        return self.final

    def __enter__(self) -> LiveSession:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.final is None and self.session.connected:
            self.stop()
