"""The model description (``neuralign_model.json``) that goes with every exported ONNX model.

An exported model is a folder holding one or more ONNX graphs and ``neuralign_model.json``::

    {
      "format": "neuralign.model/1",
      "name": "mobilenet_v2", "family": "mobilenet_v2",
      "graphs": [{"file": "model.onnx", "sha256": "...", "inputs": {"pixel_values": "@image"}}],
      "layers": [{"name": "features.00", "outputs": {"mean": "features.00/mean"}}, ...],
      "default_pooling": "mean",
      "preprocessing": {"resize": 256, "resize_mode": "shorter", "crop": 224,
                        "interpolation": "bilinear", "mean": [...], "std": [...]},
      "notes": "...", "verification": {"max_abs_diff": 1e-6, ...}
    }

Graphs run in order; a graph input maps to ``@image`` (the preprocessed images, NCHW float32)
or to the name of an output of an earlier graph (how an LVLM's language-model graph receives the
projected image tokens). Every layer output is already pooled per image: ``(batch, D)``; the
``outputs`` dict maps a pooling name (``cls``, ``mean``, ``last``) to the graph output, the
layer's default pooling first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import NeuralignError

SPEC_FILE = "neuralign_model.json"
FORMAT = "neuralign.model/1"
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
POOLINGS = ("cls", "mean", "last")


@dataclass
class ModelSpec:
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
        return [lay["name"] for lay in self.layers]

    def poolings(self) -> list[str]:
        """Pooling names at least one layer offers."""
        seen: list[str] = []
        for lay in self.layers:
            for p in lay["outputs"]:
                if p not in seen:
                    seen.append(p)
        return seen

    def resolve_pooling(self, pooling: str | None) -> dict[str, str]:
        """Layer name -> pooling actually used (the requested one where the layer offers it,
        else the layer's default, e.g. last-token for language-model layers)."""
        if pooling is not None and pooling not in self.poolings():
            raise NeuralignError(
                f"model {self.name!r} offers pooling {', '.join(self.poolings())}, not {pooling!r}"
            )
        out = {}
        for lay in self.layers:
            opts = list(lay["outputs"])
            want = pooling or self.default_pooling
            out[lay["name"]] = want if want in opts else opts[0]
        return out

    def graph_paths(self) -> list[Path]:
        assert self.root is not None
        return [self.root / g["file"] for g in self.graphs]

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("root")
        return {"format": FORMAT, **d}

    def write(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / SPEC_FILE
        tmp = p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(p)
        self.root = folder
        return p


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


def graph_sha256(path: str | Path) -> str:
    """sha256 of an ONNX graph file and, for graphs over 2 GB, of the external-data files it
    references (in name order), so a changed weight file changes the hash."""
    import hashlib

    from .stimuli import file_sha256

    path = Path(path)
    digest = file_sha256(path)
    externals = _external_files(path)
    if not externals:
        return digest
    h = hashlib.sha256(digest.encode())
    for name in externals:
        f = path.parent / name
        if not f.is_file():
            raise NeuralignError(f"external data file {name!r} of the ONNX graph is missing",
                                 path=path)
        h.update(f"{name}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


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
