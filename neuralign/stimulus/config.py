"""Session configuration for the RSVP presenter: a TOML file plus command-line overrides.

Every setting has a default, so an empty file (or no file) is a valid session: the built-in
images, 100 ms on / 100 ms off at 60 Hz, one block. Unknown sections or keys are refused (a typo
must never silently fall back to a default).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from ..errors import NeuralignError
from ..io.config_files import read_toml

#: Marker strings the presenter sends besides stimulus ids. Stimulus ids may not use them.
RESERVED_MARKERS = ("block_start", "break", "target", "response", "end", "end_abort")


@dataclass
class StimuliConfig:
    """Which images are shown, which of them score (``test``), and how often.

    ``source``: ``builtin``, ``folder:PATH`` (or a bare folder path), ``things:PATH`` (a
    THINGS image folder with ``image_metadata.npy``) or ``features:PATH`` (the stimuli of a
    feature file; the images are looked up in ``images``, a folder, by file stem, or in the
    built-in set).
    """

    source: str = "builtin"
    images: str = ""  # image folder for source = features:PATH
    test_ids: list[str] = field(default_factory=list)  # explicit test stimuli
    n_test: int = -1  # -1: all test stimuli the source defines (THINGS), else none / 0
    n_train: int = -1  # -1: all remaining stimuli
    train_reps: int = 4
    test_reps: int = 20


@dataclass
class TimingConfig:
    """Durations in milliseconds, converted to whole frames at ``monitor.refresh_hz``.

    ``on_frames`` / ``off_frames`` (> 0) override the millisecond values.
    """

    on_ms: float = 100.0
    off_ms: float = 100.0
    on_frames: int = 0
    off_frames: int = 0
    sequence_length: int = 20  # images per RSVP sequence (targets come on top)
    sequence_gap_ms: float = 500.0  # fixation-only interval before each sequence
    lead_in_ms: float = 500.0  # fixation before the first sequence of a block


@dataclass
class TaskConfig:
    """Catch (target) trials that keep the participant attentive."""

    target_fraction: float = 0.0  # fraction of sequences that contain one target image
    target_image: str = ""  # image file for the target; empty: a generated target picture
    response_key: str = "space"
    response_window_ms: float = 1000.0


@dataclass
class BlocksConfig:
    """Blocks with breaks between them."""

    n_blocks: int = 1
    break_mode: str = "self-paced"  # self-paced | timed | none
    break_s: float = 10.0  # timed breaks (and the minimum of a self-paced one: 0)
    continue_key: str = "space"


@dataclass
class DisplayConfig:
    """What the screen looks like."""

    background: list[float] = field(default_factory=lambda: [128, 128, 128])  # RGB 0-255
    fixation: bool = True
    fixation_color: list[float] = field(default_factory=lambda: [255, 0, 0])
    fixation_size_pix: float = 12.0
    image_size: float = 8.0
    image_units: str = "deg"  # deg | pix
    photodiode: bool = False
    photodiode_size_pix: float = 60.0
    photodiode_corner: str = "bottom-left"  # top-left | top-right | bottom-left | bottom-right


@dataclass
class MonitorConfig:
    """The physical display. ``refresh_hz`` sets the frame durations."""

    name: str = "neuralign"
    refresh_hz: float = 60.0
    width_cm: float = 53.0
    distance_cm: float = 60.0
    resolution: list[int] = field(default_factory=lambda: [1024, 768])
    fullscreen: bool = False
    screen: int = 0
    check_refresh: str = "warn"  # measured vs configured refresh: error | warn | off
    pace: str = "auto"  # software frame pacing when there is no vsync: auto | on | off


@dataclass
class MarkersConfig:
    """The LSL marker outlet."""

    stream_name: str = "neuralign-markers"
    source_id: str = ""  # default: derived from the stream name
    wait_for_consumer_s: float = 30.0  # 0: do not wait (markers before a consumer are lost)
    settle_s: float = 0.5  # pause after a consumer connects, before the first marker


@dataclass
class ClosedLoopConfig:
    """The back channel of ``order = "closed-loop"`` (:mod:`neuralign.stimulus.order`)."""

    timeout_s: float = 2.0  # a due sequence waits this long for its block, then falls back
    connect_s: float = 10.0  # wait this long for the back channel before the run


@dataclass
class SessionConfig:
    """A whole presenter session. ``seed`` makes the trial list reproducible.

    ``order``: ``random`` (the plan's pre-shuffled order) or ``closed-loop`` (each sequence
    shows the block a live session chose; :mod:`neuralign.stimulus.order`).
    """

    stimuli: StimuliConfig = field(default_factory=StimuliConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    blocks: BlocksConfig = field(default_factory=BlocksConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    markers: MarkersConfig = field(default_factory=MarkersConfig)
    closed_loop: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)
    seed: int = 0
    order: str = "random"
    base_dir: str = ""  # relative paths in the config resolve against this (the file's folder)

    # -- conversion ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/TOML-serialisable)."""
        return asdict(self)

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        if not p.is_absolute() and self.base_dir:
            p = Path(self.base_dir) / p
        return p

    def validate(self, *, path: str | Path | None = None) -> None:
        """Refuse impossible values with a :class:`NeuralignError` naming the setting."""
        checks = [
            (self.stimuli.train_reps >= 1, "stimuli.train_reps must be >= 1"),
            (self.stimuli.test_reps >= 1, "stimuli.test_reps must be >= 1"),
            (self.timing.on_ms > 0 or self.timing.on_frames > 0, "timing.on_ms must be > 0"),
            (self.timing.off_ms >= 0 and self.timing.off_frames >= 0, "timing.off_ms must be >= 0"),
            (self.timing.sequence_length >= 1, "timing.sequence_length must be >= 1"),
            (self.timing.sequence_gap_ms >= 0, "timing.sequence_gap_ms must be >= 0"),
            (0.0 <= self.task.target_fraction <= 1.0, "task.target_fraction must be in [0, 1]"),
            (self.task.response_window_ms > 0, "task.response_window_ms must be > 0"),
            (self.blocks.n_blocks >= 1, "blocks.n_blocks must be >= 1"),
            (
                self.blocks.break_mode in ("self-paced", "timed", "none"),
                "blocks.break_mode must be self-paced, timed or none",
            ),
            (self.display.image_units in ("deg", "pix"), "display.image_units must be deg or pix"),
            (self.display.image_size > 0, "display.image_size must be > 0"),
            (
                self.display.photodiode_corner
                in ("top-left", "top-right", "bottom-left", "bottom-right"),
                "display.photodiode_corner must be top-left, top-right, bottom-left or bottom-right",
            ),
            (self.monitor.refresh_hz > 0, "monitor.refresh_hz must be > 0"),
            (len(self.monitor.resolution) == 2, "monitor.resolution must be [width, height]"),
            (
                self.monitor.check_refresh in ("error", "warn", "off"),
                "monitor.check_refresh must be error, warn or off",
            ),
            (self.monitor.pace in ("auto", "on", "off"), "monitor.pace must be auto, on or off"),
            (self.markers.stream_name.strip() != "", "markers.stream_name must not be empty"),
            (self.markers.wait_for_consumer_s >= 0, "markers.wait_for_consumer_s must be >= 0"),
            (self.order in ("random", "closed-loop"), "order must be random or closed-loop"),
            (self.closed_loop.timeout_s >= 0, "closed_loop.timeout_s must be >= 0"),
            (self.closed_loop.connect_s >= 0, "closed_loop.connect_s must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise NeuralignError(message, path=path)
        for name in ("background", "fixation_color"):
            value = getattr(self.display, name)
            if len(value) != 3 or not all(0 <= v <= 255 for v in value):
                raise NeuralignError(f"display.{name} must be three values in 0-255", path=path)


def _build(cls, data: dict[str, Any], *, where: str, path: str | Path | None):
    """Instantiate dataclass ``cls`` from ``data``, refusing unknown keys and wrong types."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise NeuralignError(
            f"unknown setting(s) {', '.join(where + k for k in unknown)}; known: "
            f"{', '.join(where + k for k in known)}",
            path=path,
        )
    kwargs = {}
    default = cls()
    for key, value in data.items():
        current = getattr(default, key)
        if is_dataclass(current):
            if not isinstance(value, dict):
                raise NeuralignError(f"[{key}] must be a table", path=path)
            kwargs[key] = _build(type(current), value, where=f"{key}.", path=path)
            continue
        kwargs[key] = _coerce(value, current, name=where + key, path=path)
    return cls(**kwargs)


def _coerce(value: Any, current: Any, *, name: str, path: str | Path | None) -> Any:
    """Check ``value`` against the type of the default ``current`` (ints widen to floats)."""
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(current, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(current, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(current, str):
        if isinstance(value, str):
            return value
    elif isinstance(current, list):
        if isinstance(value, list):
            return list(value)
    else:  # pragma: no cover - every field has one of the types above
        return value
    raise NeuralignError(
        f"setting {name} must be {type(current).__name__}, got {value!r}", path=path
    )


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["timing.on_ms=50", "seed=3"]`` -> nested dict; values are parsed as TOML values."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise NeuralignError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = (s.strip() for s in item.split("=", 1))
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: a string
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def merge_settings(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge nested setting dicts; values of ``extra`` win.

    Parameters
    ----------
    base, extra : dict
        Nested dicts of settings (same nesting as the TOML file).

    Returns
    -------
    dict
        A new dict; tables are merged key by key.
    """
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_settings(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> SessionConfig:
    """Read a session config (TOML) and apply ``overrides`` (nested dict, e.g. from ``--set``).

    Parameters
    ----------
    path : path-like or None
        The TOML file; ``None`` starts from the defaults.
    overrides : dict, optional
        Values that replace the file's, same nesting as the file.

    Returns
    -------
    SessionConfig
        Validated configuration; relative paths resolve against the file's folder.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data = read_toml(path)
    data = merge_settings(data, overrides or {})
    if path is not None and "base_dir" not in data:
        data["base_dir"] = str(Path(path).resolve().parent)
    config = _build(SessionConfig, data, where="", path=path)
    config.validate(path=path)
    return config


def dump_toml(config: SessionConfig) -> str:
    """Serialise ``config`` as TOML (round-trips through :func:`load_config`)."""
    data = config.to_dict()
    lines = []
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
