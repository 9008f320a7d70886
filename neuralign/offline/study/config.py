"""``STUDY.toml``: the configuration of a many-subjects x many-models study.

Example::

    [study]
    name = "THINGS-EEG2 x 3 models"
    out = "study_out"              # relative paths are relative to this file
    channels = "intersect"         # or "strict": refuse subjects with different channels

    [analysis]                     # engine settings (as `neuralign analyze`)
    n_folds = 5
    window = [0.1, 0.3]            # seconds, for "mean r in the window"

    [stats]
    alpha = 0.05
    n_permutations = 1024          # group sign flips
    subject_permutations = 0       # label permutations per (subject, model) (0 = off)
    n_boot = 1000

    [[subjects]]
    name = "sub-01"
    dataset = "things-eeg2:data/sub-01"
    options = { metadata = "data/image_metadata.npy" }

    [[models]]
    name = "clip-b32"
    features = "features/clip-b32.npz"
    family = "CLIP"
    params = 8.8e7
    encoder = "ViT-B/32"
    downstream = 0.63

    [[variance_partitioning]]
    a = "clip-b32"                 # model name
    b = "dino-s14"
    layer_a = "peak"               # "peak" (the group peak layer), a layer name or an index
    layer_b = "peak"
    n_permutations = 500           # tests of the unique parts (n_boot: [stats] n_boot)

    [units]                        # unit-level encoding of every (subject, model), optional
    layers = ["peak"]              # "peak" (each subject's peak layer), "all", names, indices
    top_units = 10

    [readouts]                     # factorised and PCA-then-ridge readouts vs ridge, optional
    layers = ["peak"]
    ranks = [1, 2]
    pca = [16, 64]
    n_boot = 500

Unknown keys are refused with the list of valid ones.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...errors import NeuralignError
from ...io.config_files import read_toml

SECTIONS = ("study", "analysis", "stats", "subjects", "models", "variance_partitioning", "scale",
            "units", "readouts")
UNITS_KEYS = ("layers", "top_units")
READOUTS_KEYS = ("layers", "ranks", "pca", "n_boot")
STUDY_KEYS = ("name", "out", "cache", "channels", "title")
ANALYSIS_KEYS = ("alphas", "n_folds", "backend", "dtype", "standardize", "max_rsa_stimuli",
                 "window")
STATS_KEYS = ("alpha", "n_permutations", "p_threshold", "correction", "n_boot", "ci", "seed",
              "subject_permutations", "tail")
SUBJECT_KEYS = ("name", "dataset", "options")
MODEL_KEYS = ("name", "features", "family", "params", "encoder", "downstream", "depth")
VARPART_KEYS = ("a", "b", "layer_a", "layer_b", "alphas", "n_boot", "n_permutations")
SCALE_KEYS = ("scheduler", "workers", "processes", "threads_per_worker", "blas_threads")
DESCRIPTORS = ("family", "params", "encoder", "downstream")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _check_keys(table: dict, valid: tuple[str, ...], where: str, path: Path) -> None:
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise NeuralignError(
            f"unknown key(s) {', '.join(unknown)} in {where}; valid keys: {', '.join(valid)}",
            path=path,
        )


@dataclass
class SubjectSpec:
    """One ``[[subjects]]`` entry.

    Parameters
    ----------
    name : str
        The subject's name in the outputs.
    dataset : str
        Its dataset as ``KIND:PATH`` (absolute path).
    options : dict
        Options of the dataset loader (paths made absolute).
    """

    name: str
    dataset: str
    options: dict = field(default_factory=dict)


@dataclass
class StudyModel:
    """One ``[[models]]`` entry: a model's features file and what describes the model.

    This is the study's view of a model (where its features are, how it is described in the
    descriptor regression), not the model itself: an exported network is described by
    :class:`neuralign.models.spec.ModelSpec` (``neuralign_model.json``).

    Parameters
    ----------
    name : str
        The model's name in the outputs.
    features : str
        Its features file (absolute path).
    descriptors : dict
        ``family``, ``params``, ``encoder``, ``downstream`` (those given).
    depth : int | None
        The model's depth, when given.
    """

    name: str
    features: str
    descriptors: dict = field(default_factory=dict)
    depth: int | None = None


@dataclass
class VarPartSpec:
    """One ``[[variance_partitioning]]`` entry.

    Parameters
    ----------
    a, b : str
        Model names.
    layer_a, layer_b : str | int
        ``"peak"`` (the group peak layer), a layer name or an index.
    alphas : list of float | None
        Ridge penalties (default: the engine's).
    n_boot : int
        Bootstrap resamples of the intervals (default: ``[stats] n_boot``).
    n_permutations : int
        Permutations of the tests of the unique parts (default 500).
    """

    a: str
    b: str
    layer_a: str | int = "peak"
    layer_b: str | int = "peak"
    alphas: list[float] | None = None
    n_boot: int = 1000
    n_permutations: int = 500


@dataclass
class StudyConfig:
    """A validated ``STUDY.toml`` (see the module docstring); paths are absolute.

    Parameters
    ----------
    path : Path
        The config file.
    name : str
        The study's name.
    out, cache : Path
        Output folder and task cache.
    channels : {"intersect", "strict"}
        What to do when subjects have different channels.
    subjects : list of SubjectSpec
        The subjects.
    models : list of StudyModel
        The models.
    analysis, stats, scale : dict
        The ``[analysis]``, ``[stats]`` (with defaults) and ``[scale]`` tables.
    varpart : list of VarPartSpec
        The variance partitionings.
    title : str | None
        The report's title.
    unit_options : dict
        The ``[units]`` and ``[readouts]`` tables as
        :func:`neuralign.offline.unit_analysis.plan_unit_analyses` takes them (empty: off).
    """

    path: Path
    name: str
    out: Path
    cache: Path
    channels: str
    subjects: list[SubjectSpec]
    models: list[StudyModel]
    analysis: dict
    stats: dict
    varpart: list[VarPartSpec]
    scale: dict
    title: str | None = None
    unit_options: dict = field(default_factory=dict)

    def engine_kwargs(self) -> dict:
        """The ``[analysis]`` settings the engine takes (``window`` is the study's own)."""
        a = self.analysis
        kw = {k: a[k] for k in ("alphas", "n_folds", "backend", "dtype", "standardize",
                                "max_rsa_stimuli") if k in a}
        return kw

    @property
    def blas_threads(self) -> int | None:
        """BLAS threads per task ([scale] blas_threads; default 1 so every mode is identical;
        0 = no limit)."""
        n = int(self.scale.get("blas_threads", 1))
        return None if n <= 0 else n

    @property
    def window(self) -> tuple[float, float]:
        """The window (seconds) of the "mean r in the window" score."""
        w = self.analysis.get("window", [0.1, 0.3])
        return float(w[0]), float(w[1])

    def settings_hash(self) -> str:
        """Hash of everything a (subject, model) result depends on besides its inputs."""
        blob = json.dumps({"engine": self.engine_kwargs(),
                           "subject_permutations": self.stats["subject_permutations"],
                           "seed": self.stats["seed"], "p_threshold": self.stats["p_threshold"],
                           "tail": self.stats["tail"], "units": self.unit_options},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The config as plain data (names, subjects, models, settings)."""
        return {
            "name": self.name, "channels": self.channels,
            "subjects": [asdict(s) for s in self.subjects],
            "models": [asdict(m) for m in self.models],
            "analysis": self.analysis, "stats": self.stats,
            "variance_partitioning": [asdict(v) for v in self.varpart],
            "units_readouts": self.unit_options,
        }


def _resolve_spec(spec: str, base: Path, kinds: Collection[str] | None, path: Path) -> str:
    kind, sep, p = spec.partition(":")
    if not sep or not p or (kinds is not None and kind not in kinds):
        known = f" with KIND one of {', '.join(kinds)}" if kinds is not None else ""
        raise NeuralignError(f"dataset {spec!r}: expected KIND:PATH{known}", path=path)
    pp = Path(p).expanduser()
    return f"{kind}:{pp if pp.is_absolute() else (base / pp).resolve()}"


def _resolve_opts(opts: dict, base: Path) -> dict:
    out = {}
    for k, v in opts.items():
        if isinstance(v, str) and k in ("metadata", "mapping", "events"):
            pv = Path(v).expanduser()
            v = str(pv if pv.is_absolute() else (base / pv).resolve())
        out[k] = v
    return out


def load_study_config(path: str | Path, *,
                      dataset_kinds: Collection[str] | None = None) -> StudyConfig:
    """Read and validate ``STUDY.toml`` (every error names the file and the problem).

    Parameters
    ----------
    path : str | Path
        The config file.
    dataset_kinds : collection of str | None
        The dataset kinds the caller can load (the registry's); a subject of another kind is
        refused here, before anything runs. ``None`` accepts any ``KIND:PATH``.

    Returns
    -------
    StudyConfig
        With every path made absolute (relative ones resolve against the file's folder).
    """
    path = Path(path)
    cfg = read_toml(path, what="study config")
    _check_keys(cfg, SECTIONS, "the top level", path)
    base = path.resolve().parent
    study = cfg.get("study", {})
    _check_keys(study, STUDY_KEYS, "[study]", path)
    analysis = dict(cfg.get("analysis", {}))
    _check_keys(analysis, ANALYSIS_KEYS, "[analysis]", path)
    stats = dict(cfg.get("stats", {}))
    _check_keys(stats, STATS_KEYS, "[stats]", path)
    scale = dict(cfg.get("scale", {}))
    _check_keys(scale, SCALE_KEYS, "[scale]", path)
    stats = {"alpha": 0.05, "n_permutations": 1024, "p_threshold": 0.05, "correction": "fdr",
             "n_boot": 1000, "ci": 0.95, "seed": 0, "subject_permutations": 0, "tail": 1,
             **stats}
    if "window" in analysis:
        w = analysis["window"]
        if not (isinstance(w, list) and len(w) == 2 and float(w[0]) < float(w[1])):
            raise NeuralignError("[analysis] window must be [start_s, end_s] with start < end",
                                 path=path)
    channels = study.get("channels", "intersect")
    if channels not in ("intersect", "strict"):
        raise NeuralignError(f"[study] channels must be 'intersect' or 'strict', got {channels!r}",
                             path=path)

    subjects: list[SubjectSpec] = []
    raw_subjects = cfg.get("subjects", [])
    if not isinstance(raw_subjects, list) or not raw_subjects:
        raise NeuralignError("no [[subjects]] (each with name and dataset = 'KIND:PATH')", path=path)
    for i, s in enumerate(raw_subjects):
        if isinstance(s, str):
            s = {"dataset": s}
        _check_keys(s, SUBJECT_KEYS, f"[[subjects]] #{i + 1}", path)
        if "dataset" not in s:
            raise NeuralignError(f"[[subjects]] #{i + 1} has no dataset = 'KIND:PATH'", path=path)
        spec = _resolve_spec(str(s["dataset"]), base, dataset_kinds, path)
        name = str(s.get("name") or Path(spec.partition(":")[2]).name)
        subjects.append(SubjectSpec(name, spec, _resolve_opts(dict(s.get("options", {})), base)))

    models: list[StudyModel] = []
    raw_models = cfg.get("models", [])
    if not isinstance(raw_models, list) or not raw_models:
        raise NeuralignError("no [[models]] (each with name and features = FILE)", path=path)
    for i, m in enumerate(raw_models):
        _check_keys(m, MODEL_KEYS, f"[[models]] #{i + 1}", path)
        if "features" not in m:
            raise NeuralignError(f"[[models]] #{i + 1} has no features = FILE", path=path)
        fp = Path(str(m["features"])).expanduser()
        fp = fp if fp.is_absolute() else (base / fp).resolve()
        if not fp.exists():
            raise NeuralignError(f"[[models]] #{i + 1}: features file not found", path=fp)
        name = str(m.get("name") or fp.stem)
        desc = {k: m[k] for k in DESCRIPTORS if k in m}
        models.append(StudyModel(name, str(fp), desc, m.get("depth")))

    for what, items in (("subject", subjects), ("model", models)):
        names = [x.name for x in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise NeuralignError(f"duplicate {what} name(s): {', '.join(dup)}", path=path)
        bad = [n for n in names if not _NAME.match(n)]
        if bad:
            raise NeuralignError(
                f"{what} name(s) {', '.join(map(repr, bad))}: use letters, digits, . _ + -",
                path=path)

    varpart: list[VarPartSpec] = []
    for i, v in enumerate(cfg.get("variance_partitioning", [])):
        _check_keys(v, VARPART_KEYS, f"[[variance_partitioning]] #{i + 1}", path)
        for k in ("a", "b"):
            if v.get(k) not in [m.name for m in models]:
                raise NeuralignError(
                    f"[[variance_partitioning]] #{i + 1}: {k} = {v.get(k)!r} is not a model name "
                    f"({', '.join(m.name for m in models)})", path=path)
        nb, nperm = int(v.get("n_boot", stats["n_boot"])), int(v.get("n_permutations", 500))
        if nb < 10 or nperm < 10:
            raise NeuralignError(f"[[variance_partitioning]] #{i + 1}: n_boot and "
                                 "n_permutations must be at least 10", path=path)
        varpart.append(VarPartSpec(v["a"], v["b"], v.get("layer_a", "peak"),
                                   v.get("layer_b", "peak"), v.get("alphas"), nb, nperm))

    unit_options = _unit_options(cfg, path)
    out = Path(study.get("out", "study_out")).expanduser()
    out = out if out.is_absolute() else base / out
    cache = Path(study["cache"]).expanduser() if "cache" in study else out / "cache"
    cache = cache if cache.is_absolute() else base / cache
    return StudyConfig(path=path.resolve(), name=str(study.get("name", path.stem)), out=out,
                       cache=cache, channels=channels, subjects=subjects, models=models,
                       analysis=analysis, stats=stats, varpart=varpart, scale=scale,
                       title=study.get("title"), unit_options=unit_options)


def _unit_options(cfg: dict, path: Path) -> dict:
    """``[units]`` and ``[readouts]`` -> options of the unit-level analyses (checked types)."""
    units, readouts = cfg.get("units"), cfg.get("readouts")
    if units is None and readouts is None:
        return {}
    opts: dict = {}
    for name, sec, keys in (("units", units, UNITS_KEYS), ("readouts", readouts, READOUTS_KEYS)):
        if sec is None:
            continue
        _check_keys(sec, keys, f"[{name}]", path)
        layers = sec.get("layers", ["peak"])
        layers = [layers] if isinstance(layers, str | int) else layers
        if not isinstance(layers, list) or not layers:
            raise NeuralignError(f"[{name}] layers must be a list of layer names, indices, "
                                 "'peak' or 'all'", path=path)
        opts[name] = [str(x) for x in layers]
    try:
        for key, src, tgt in (("top_units", units, "top_k"), ("n_boot", readouts, "n_boot")):
            if src and key in src:
                opts[tgt] = int(src[key])
        for key in ("ranks", "pca"):
            if readouts and key in readouts:
                opts[key] = [int(x) for x in readouts[key]]
    except (TypeError, ValueError) as e:
        raise NeuralignError(f"[units]/[readouts]: numbers expected ({e})", path=path) from e
    return opts
