"""The model description (``neuralign_model.json``) that goes with every exported model.

An exported model is a folder holding one or more graphs and ``neuralign_model.json``::

    {
      "format": "neuralign.model/1",
      "name": "llava_tiny", "family": "llava",
      "graphs": [{"file": "vision.onnx", "sha256": "...", "part": "vision", "runtime": "onnx",
                  "inputs": {"pixel_values": "@image"}},
                 {"file": "llm.onnx", "sha256": "...", "part": "llm", "runtime": "onnx",
                  "inputs": {"input_ids": "@input_ids", "image_embeds": "image_embeds"}}],
      "layers": [{"name": "vision.00", "stage": "vision", "inputs": ["image"],
                  "outputs": {"cls": "vision.00/cls", "mean": "vision.00/mean"}}, ...],
      "default_pooling": "last",
      "preprocessing": {"resize": 336, "resize_mode": "shorter", "crop": 336, ...},
      "info": {"prompt": {...}, "tokenizer": "tokenizer.json", ...},
      "notes": "...", "verification": {"max_abs_diff": 1e-6, ...}
    }

Graphs run in order. A graph input maps to a source: ``@image`` (preprocessed images, NCHW
float32, or ``(B, tiles, 3, H, W)`` for tiled models), ``@input_ids`` (the token ids of the
prompt with the image placeholders, or of a caption), ``@position_ids`` (Qwen-VL's 3-D
positions, computed from the ids), or the name of an output of an earlier graph (how the
language model receives the projected image tokens). A graph with ``"runtime": "torch"``
(where ONNX Runtime cannot run the part; ``reason`` says why) is rebuilt from the Hugging Face
folder ``info["source"]`` and run with torch. Every layer output is already pooled per input:
``(batch, D)``; ``outputs`` maps a pooling name to a graph output, the layer's default first;
``inputs`` says whether a layer is computed for images, for texts (captions), or both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import NeuralignError
from ..io.hashing import file_sha256

SPEC_FILE = "neuralign_model.json"
FORMAT = "neuralign.model/1"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
POOLINGS = ("cls", "mean", "last", "all")


@dataclass
class ModelSpec:
    """An exported model: its graphs, layers, preprocessing and provenance.

    Parameters
    ----------
    name, family : str
        Model name (folder name) and family (see ``neuralign models list``).
    graphs : list of dict
        Graphs in run order (see the module docstring).
    layers : list of dict
        Layer records in depth order: ``name``, ``stage``, ``inputs``, ``outputs``.
    preprocessing : dict
        Image preprocessing (:func:`neuralign.models.preprocess.preprocess`).
    default_pooling : str
        Pooling used when none is asked.
    notes : str
        Free text.
    verification : dict
        The export check against torch.
    info : dict
        Anything else (source folder, prompt template, tokenizer, image tokens...).
    root : Path, optional
        The folder the spec was read from.
    """

    name: str
    family: str
    graphs: list[dict]
    layers: list[dict]
    preprocessing: dict
    default_pooling: str
    notes: str = ""
    verification: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    root: Path | None = None

    @property
    def layer_names(self) -> list[str]:
        """All layer names, depth order."""
        return [lay["name"] for lay in self.layers]

    def layers_for(self, mode: str = "image", stages: list[str] | None = None) -> list[dict]:
        """Layer records computed for ``mode`` (``image`` or ``text``), optionally only of
        ``stages``."""
        out = []
        for lay in self.layers:
            if mode not in lay.get("inputs", ["image"]):
                continue
            if stages is not None and layer_stage(lay) not in stages:
                continue
            out.append(lay)
        return out

    def stages(self, mode: str | None = None) -> list[str]:
        """Stages present (for ``mode``, or any), in depth order."""
        seen: list[str] = []
        for lay in self.layers if mode is None else self.layers_for(mode):
            st = layer_stage(lay)
            if st not in seen:
                seen.append(st)
        return seen

    def poolings(self, mode: str = "image") -> list[str]:
        """Pooling names at least one layer offers for ``mode``."""
        seen: list[str] = []
        for lay in self.layers_for(mode):
            for p in lay["outputs"]:
                if p not in seen:
                    seen.append(p)
        return seen

    def resolve_pooling(self, pooling: str | None, *, mode: str = "image",
                        stages: list[str] | None = None) -> dict[str, str]:
        """Layer name -> pooling actually used: the requested one where the layer offers it,
        else the layer's default (e.g. the last token for decoder layers when ``cls`` is
        asked). For captions (``mode="text"``) the default is the last token, and decoder
        layers have no image tokens: ``mean`` means the mean over all tokens there (``all``)."""
        offered = self.poolings(mode)
        if pooling is not None and pooling not in offered:
            raise NeuralignError(
                f"model {self.name!r} offers pooling {', '.join(offered)} for {mode} inputs, "
                f"not {pooling!r}")
        out = {}
        for lay in self.layers_for(mode, stages):
            opts = list(lay["outputs"])
            want = pooling or (self.default_pooling if mode == "image" else "last")
            if mode == "text" and want == "mean" and "all" in opts:
                want = "all"
            out[lay["name"]] = want if want in opts else opts[0]
        return out

    def graph_paths(self) -> list[Path]:
        """Paths of the ONNX graph files (torch-run parts have none)."""
        assert self.root is not None
        return [self.root / g["file"] for g in self.graphs if g.get("runtime", "onnx") == "onnx"]

    def to_dict(self) -> dict:
        """The JSON form written to ``neuralign_model.json``."""
        d = asdict(self)
        d.pop("root")
        return {"format": FORMAT, **d}

    def write(self, folder: str | Path) -> Path:
        """Write ``neuralign_model.json`` into ``folder`` (atomically); set :attr:`root`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / SPEC_FILE
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(p)
        self.root = folder
        return p


def layer_stage(layer: dict) -> str:
    """The stage of a layer record (its ``stage`` field, else read from its name)."""
    from .stages import stage_of

    return str(layer.get("stage") or stage_of(layer["name"]))


def read_spec(folder: str | Path) -> ModelSpec:
    """Read ``neuralign_model.json`` from an exported model folder."""
    p = Path(folder) / SPEC_FILE
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise NeuralignError(f"not an exported model folder (no {SPEC_FILE})", path=folder) from e
    except json.JSONDecodeError as e:
        raise NeuralignError(f"broken model description ({e.msg})", path=p) from e
    if d.pop("format", None) != FORMAT:
        raise NeuralignError(f"unknown model description format (expected {FORMAT})", path=p)
    try:
        spec = ModelSpec(**d)
    except TypeError as e:
        raise NeuralignError(f"broken model description ({e})", path=p) from e
    spec.root = Path(folder)
    return spec


def graph_sha256(path: str | Path, *, hashes: dict[str, str] | None = None) -> str:
    """sha256 of an ONNX graph file and, for graphs over 2 GB, of the external-data files it
    references (in name order), so a changed weight file changes the hash.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    hashes : dict, optional
        File path -> sha256 already computed (filled with the files hashed here).

    Returns
    -------
    str
    """
    import hashlib

    memo = {} if hashes is None else hashes

    def digest_of(f: Path) -> str:
        """sha256 of ``f``, computed once."""
        if str(f) not in memo:
            memo[str(f)] = file_sha256(f)
        return memo[str(f)]

    path = Path(path)
    digest = digest_of(path)
    externals = _external_files(path)
    if not externals:
        return digest
    h = hashlib.sha256(digest.encode())
    for name in externals:
        f = path.parent / name
        if not f.is_file():
            raise NeuralignError(f"external data file {name!r} of the ONNX graph is missing",
                                 path=path)
        h.update(f"{name}\0{digest_of(f)}\n".encode())
    return h.hexdigest()


def model_files(spec: ModelSpec) -> list[Path]:
    """Every file the model's features depend on: ONNX graphs with their external-data files,
    and for torch-run parts the Hugging Face folder's config and weight files.

    Parameters
    ----------
    spec : ModelSpec

    Returns
    -------
    list of Path
    """
    files: list[Path] = []
    for p in spec.graph_paths():
        files.append(p)
        files += [p.parent / name for name in _external_files(p)]
    if any(g.get("runtime") == "torch" for g in spec.graphs):
        src = Path(str(spec.info.get("source", "")))
        files += sorted(q for q in src.glob("*") if q.is_file() and (
            q.name == "config.json" or q.suffix in (".safetensors", ".bin")))
    return files


def _external_files(path: Path) -> list[str]:
    """Names of the external-data files an ONNX file references (empty for small graphs)."""
    siblings = [p for p in path.parent.iterdir() if p.is_file() and p != path]
    if not any(p.suffix not in (".onnx", ".json") for p in siblings):
        return []
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    names = set()
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            for e in t.external_data:
                if e.key == "location":
                    names.add(e.value)
    return sorted(names)
