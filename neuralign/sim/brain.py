"""A synthetic brain with a known, planted layer x latency answer.

Every layer ``l`` of a :class:`~neuralign.base.FeatureSet` drives the EEG through

    s_l(stimulus) x pattern_l(channel) x profile_l(time)

where ``s_l`` is the stimulus's z-scored layer features projected on a random unit direction
(standardised over stimuli), ``pattern_l`` a random spatially smooth topography over the
channels (Gaussian-process smooth over standard 10-05 montage positions) and ``profile_l`` a
Gaussian bump peaking at the layer's planted latency. Deeper layers peak later by default.

The background is continuous and stateful (so it can feed a simulated amplifier): 1/f (pink)
noise and alpha (~10 Hz, occipital) mixed over channels by smooth spatial maps, 50 Hz line
noise and white sensor noise, all sampled directly at the requested rate (components above
Nyquist alias as plain sampling would). Each trial also scales the evoked response by a
random gain (trial-to-trial variability).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from ..base import FeatureSet
from ..errors import NeuralignError, few
from ..io.things import THINGS_EEG2_CHANNELS

#: Default variance shares of the background (sum to 1: the background has unit variance).
NOISE_MIX: dict[str, float] = {"pink": 0.55, "alpha": 0.25, "line": 0.05, "white": 0.15}

# Paul Kellet's "economy" 1/f filter (pole/zero approximation of pink noise).
_PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786])
_PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400])


def channel_positions(ch_names: Sequence[str]) -> np.ndarray:
    """3-D head positions (m) of standard 10-05 channel names (case-insensitive)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = mne.channels.get_builtin_montages()
        kind = "colin27_1005" if "colin27_1005" in names else "standard_1005"
        pos = mne.channels.make_standard_montage(kind).get_positions()["ch_pos"]
    lower = {k.lower(): v for k, v in pos.items()}
    missing = [c for c in ch_names if c.lower() not in lower]
    if missing:
        raise NeuralignError(f"channel name(s) not in the standard 10-05 system: {few(missing)}")
    return np.array([lower[c.lower()] for c in ch_names], dtype=float)


def smooth_fields(pos: np.ndarray, n: int, rng: np.random.Generator, *, length: float = 0.05):
    """``n`` random spatially smooth maps over channel positions, unit RMS each, (n, C)."""
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * length**2)) + 1e-6 * np.eye(len(pos))
    chol = np.linalg.cholesky(k)
    maps = rng.standard_normal((n, len(pos))) @ chol.T
    maps /= np.sqrt((maps**2).mean(axis=1, keepdims=True)) + 1e-12
    return maps


def _filter_gain(b: np.ndarray, a: np.ndarray, n: int = 20000) -> float:
    """Standard deviation of the filter's output for unit white input."""
    imp = np.zeros(n)
    imp[0] = 1.0
    h = sps.lfilter(b, a, imp)
    return float(np.sqrt((h**2).sum()))


@dataclass
class _Background:
    """Mixing maps and variances of the background (shared by all noise streams)."""

    pink_mix: np.ndarray  # (C, C) smooth mixing of pink sources
    alpha_map: np.ndarray  # (C,) occipital alpha topography
    line_amp: np.ndarray  # (C,) line noise amplitude per channel
    line_phase: np.ndarray  # (C,)
    mix: dict[str, float]
    alpha_freq: float
    line_freq: float


class NoiseStream:
    """Continuous, stateful background noise: successive ``read`` calls continue the signal.

    Parameters
    ----------
    bg : _Background
        Spatial structure shared with the brain.
    sfreq : float
        Sampling rate (Hz).
    scale : float
        Overall standard deviation of the background.
    seed : int or sequence of int
        Seed of this stream.
    """

    def __init__(
        self, bg: _Background, *, sfreq: float, scale: float, seed: int | Sequence[int]
    ) -> None:
        self._bg = bg
        self.sfreq = float(sfreq)
        self.scale = float(scale)
        self._rng = np.random.default_rng(seed)
        n_ch = bg.pink_mix.shape[0]
        self.n_channels = n_ch
        self._pink_gain = _filter_gain(_PINK_B, _PINK_A)
        self._pink_zi = np.zeros((n_ch, len(_PINK_A) - 1))
        # alpha: a 2-pole resonator (bandwidth ~2 Hz) driven by white noise, one source
        rad = np.exp(-np.pi * 2.0 / self.sfreq)
        w = 2 * np.pi * bg.alpha_freq / self.sfreq
        self._alpha_a = np.array([1.0, -2 * rad * np.cos(w), rad**2])
        self._alpha_b = np.array([1.0])
        self._alpha_gain = _filter_gain(self._alpha_b, self._alpha_a)
        self._alpha_zi = np.zeros(2)
        # warm the filters up so the stream starts in its stationary state
        self._n = 0
        self.read(int(2 * self.sfreq))
        self._n = 0

    def read(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` of background, ``(channels, n_samples)`` float64."""
        n = int(n_samples)
        bg, mix, rng = self._bg, self._bg.mix, self._rng
        c = self.n_channels
        out = np.zeros((c, n))
        if n == 0:
            return out
        white_src = rng.standard_normal((c, n))
        pink, self._pink_zi = sps.lfilter(_PINK_B, _PINK_A, white_src, axis=1, zi=self._pink_zi)
        pink = bg.pink_mix @ (pink / self._pink_gain)
        out += np.sqrt(mix["pink"]) * pink
        drive = rng.standard_normal(n)
        alpha, self._alpha_zi = sps.lfilter(
            self._alpha_b, self._alpha_a, drive, zi=self._alpha_zi
        )
        out += np.sqrt(mix["alpha"]) * bg.alpha_map[:, None] * (alpha / self._alpha_gain)[None]
        t = (self._n + np.arange(n)) / self.sfreq
        line = np.sin(2 * np.pi * bg.line_freq * t[None, :] + bg.line_phase[:, None])
        out += np.sqrt(mix["line"]) * bg.line_amp[:, None] * line * np.sqrt(2)
        out += np.sqrt(mix["white"]) * rng.standard_normal((c, n))
        self._n += n
        out *= self.scale
        return out


class SyntheticBrain:
    """Simulated EEG whose layer x latency alignment is known.

    Parameters
    ----------
    features : FeatureSet
        Layer features of the stimuli it can see.
    ch_names : sequence of str, optional
        Standard 10-10/10-05 names; default the 17 THINGS-EEG2 occipito-parietal channels.
    peak_latencies : sequence of float, optional
        Planted peak latency per layer (s); default ``linspace(0.08, 0.30, L)``.
    width_s : float or sequence of float
        Full width at half maximum of each layer's Gaussian temporal profile (s).
    snr : float
        Amplitude of each layer's evoked contribution at its peak (RMS over stimuli and
        channels) relative to the single-trial background RMS (``noise_scale``). The default
        0.09 gives a held-out encoding r of about 0.5 at the peaks with the full THINGS-EEG2
        design (16540 train images x 4 reps, 200 test x 80); smaller designs need more.
    noise_scale : float
        Standard deviation of the background (arbitrary units, ~µV).
    trial_gain_sd : float
        Standard deviation of the per-trial gain of the evoked response.
    noise_mix : dict, optional
        Variance shares of ``pink``, ``alpha``, ``line`` and ``white`` background.
    line_freq, alpha_freq : float
        Hz.
    seed : int
        Seed of directions, patterns and the background's spatial structure.
    """

    def __init__(
        self,
        features: FeatureSet,
        *,
        ch_names: Sequence[str] | None = None,
        peak_latencies: Sequence[float] | None = None,
        width_s: float | Sequence[float] = 0.04,
        snr: float = 0.09,
        noise_scale: float = 1.0,
        trial_gain_sd: float = 0.2,
        noise_mix: dict[str, float] | None = None,
        line_freq: float = 50.0,
        alpha_freq: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.ch_names = list(ch_names) if ch_names is not None else list(THINGS_EEG2_CHANNELS)
        n_layers = features.n_layers
        if peak_latencies is None:
            lat = np.linspace(0.08, 0.30, n_layers) if n_layers > 1 else np.array([0.15])
        else:
            lat = np.asarray(peak_latencies, dtype=float)
            if lat.shape != (n_layers,):
                raise NeuralignError(
                    f"{lat.size} peak latencies for {n_layers} layers"
                )
        self.peak_latencies = lat
        self.width_s = np.broadcast_to(np.asarray(width_s, dtype=float), (n_layers,)).copy()
        self.snr = float(snr)
        self.noise_scale = float(noise_scale)
        self.trial_gain_sd = float(trial_gain_sd)
        mix = dict(NOISE_MIX if noise_mix is None else noise_mix)
        if set(mix) != set(NOISE_MIX) or any(v < 0 for v in mix.values()):
            raise NeuralignError(f"noise_mix needs non-negative {sorted(NOISE_MIX)}")
        total = sum(mix.values()) or 1.0
        self.noise_mix = {k: v / total for k, v in mix.items()}
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 1])
        pos = channel_positions(self.ch_names)
        self.positions = pos
        self.patterns = smooth_fields(pos, n_layers, rng)  # (L, C)
        # stimulus signal per layer: z-scored features on a random unit direction
        sig = []
        self.directions = []
        for a in features.arrays:
            a = np.asarray(a, dtype=np.float64)
            z = (a - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), 1.0)
            u = rng.standard_normal(a.shape[1])
            u /= np.linalg.norm(u)
            s = z @ u
            s = (s - s.mean()) / (s.std() if s.std() > 0 else 1.0)
            sig.append(s)
            self.directions.append(u)
        self._signal = np.stack(sig, axis=1)  # (N, L)
        # background spatial structure
        c = len(self.ch_names)
        pink_maps = smooth_fields(pos, c, rng, length=0.06)
        pink_mix = 0.7 * pink_maps.T / np.sqrt(c) + np.sqrt(1 - 0.49) * np.eye(c)
        pink_mix /= np.sqrt((pink_mix**2).sum(axis=1, keepdims=True))
        occ = np.exp(-((pos[:, 1] - pos[:, 1].min()) / 0.06) ** 2)  # strongest posterior
        alpha_map = 0.5 + occ
        alpha_map /= np.sqrt((alpha_map**2).mean())
        line_amp = 0.5 + rng.random(c)
        line_amp /= np.sqrt((line_amp**2).mean())
        self._bg = _Background(
            pink_mix=pink_mix,
            alpha_map=alpha_map,
            line_amp=line_amp,
            line_phase=rng.uniform(0, 2 * np.pi, c),
            mix=self.noise_mix,
            alpha_freq=float(alpha_freq),
            line_freq=float(line_freq),
        )

    # ------------------------------------------------------------------ truth
    @property
    def layers(self) -> list[str]:
        """The layer names of the features, in depth order."""
        return list(self.features.layers)

    @property
    def planted(self) -> dict:
        """The planted answer and every setting (arrays as numpy)."""
        return {
            "layers": self.layers,
            "peak_latencies_s": self.peak_latencies.copy(),
            "width_s": self.width_s.copy(),
            "patterns": self.patterns.copy(),
            "ch_names": list(self.ch_names),
            "settings": {
                "snr": self.snr,
                "noise_scale": self.noise_scale,
                "trial_gain_sd": self.trial_gain_sd,
                "noise_mix": dict(self.noise_mix),
                "line_freq": self._bg.line_freq,
                "alpha_freq": self._bg.alpha_freq,
                "seed": self.seed,
                "profile": "gaussian (width_s = FWHM)",
                "signal": "z-scored layer features on a random unit direction, standardised",
                "features": dict(self.features.provenance),
            },
        }

    def planted_json(self) -> dict:
        """:attr:`planted` as plain JSON types."""
        return json.loads(json.dumps(self.planted, default=_tolist))

    # ------------------------------------------------------------------ signal
    def profiles(self, times: np.ndarray) -> np.ndarray:
        """Temporal profile per layer at ``times`` (s), ``(L, T)``, peak 1."""
        t = np.asarray(times, dtype=float)
        sigma = self.width_s / (2 * np.sqrt(2 * np.log(2)))
        return np.exp(-0.5 * ((t[None, :] - self.peak_latencies[:, None]) / sigma[:, None]) ** 2)

    def evoked(self, stimulus_ids: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Noise-free evoked responses ``(n_stimuli, C, T)`` at ``times`` (s)."""
        idx = self.features.index_of(list(stimulus_ids), source="the simulated stimuli")
        amp = self.snr * self.noise_scale
        s = self._signal[idx] * amp  # (n, L)
        prof = self.profiles(times)  # (L, T)
        return np.einsum("nl,lc,lt->nct", s, self.patterns, prof, optimize=True)

    def response(self, stimulus_id: str, *, sfreq: float, tmax: float = 0.8) -> np.ndarray:
        """The evoked response from onset, ``(C, round(tmax * sfreq))``."""
        n = int(round(tmax * sfreq))
        return self.evoked([stimulus_id], np.arange(n) / float(sfreq))[0]

    def noise_stream(self, *, sfreq: float, seed: int = 0) -> NoiseStream:
        """A continuous background generator; ``.read(n)`` returns ``(C, n)``."""
        return NoiseStream(self._bg, sfreq=sfreq, scale=self.noise_scale, seed=[self.seed, 2, seed])

    def epochs(
        self,
        stimulus_ids: Sequence[str],
        n_reps: int,
        *,
        times: np.ndarray,
        seed: int = 0,
        chunk: int = 2048,
    ) -> np.ndarray:
        """Single trials ``(n_stimuli, n_reps, C, T)`` float32: signal x trial gain + noise.

        The noise is the continuous background (one stream, sampled at the rate of ``times``)
        cut into consecutive epochs presented in a random order, so slow noise does not pile
        up on the repetitions of one stimulus.
        """
        times = np.asarray(times, dtype=float)
        if times.ndim != 1 or times.size < 2:
            raise NeuralignError("times must be a 1-D array of at least 2 time points")
        sfreq = 1.0 / float(np.median(np.diff(times)))
        ids = list(stimulus_ids)
        n_stim, n_t, n_ch = len(ids), times.size, len(self.ch_names)
        rng = np.random.default_rng([self.seed, 3, seed])
        out = np.empty((n_stim, n_reps, n_ch, n_t), dtype=np.float32)
        ev = self.evoked(ids, times).astype(np.float32)  # (n, C, T)
        stream = self.noise_stream(sfreq=sfreq, seed=seed)
        order = rng.permutation(n_stim * n_reps)
        gains = 1.0 + self.trial_gain_sd * rng.standard_normal(n_stim * n_reps)
        flat = out.reshape(n_stim * n_reps, n_ch, n_t)
        for start in range(0, order.size, chunk):
            sel = order[start:start + chunk]
            noise = stream.read(sel.size * n_t).reshape(n_ch, sel.size, n_t).transpose(1, 0, 2)
            stim = sel // n_reps
            flat[sel] = noise + gains[sel, None, None] * ev[stim]
        return out


def _tolist(x):
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")
