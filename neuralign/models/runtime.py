"""Run an exported model with ONNX Runtime: provider choice, input checks, pooled layer outputs.

No torch here: this is the path ``features`` (and later ``live``) uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .spec import ModelSpec


def choose_providers(prefer: str | None = None) -> list[str]:
    """ONNX Runtime providers, chosen at run time: CUDA when available, else CPU.

    ``prefer`` = ``"cpu"`` forces the CPU provider.
    """
    import onnxruntime as ort

    avail = ort.get_available_providers()
    if prefer != "cpu" and "CUDAExecutionProvider" in avail:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _session(path: Path, providers: list[str], threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise NeuralignError(f"ONNX Runtime cannot load this model: {msg}", path=path) from e


class LayerRunner:
    """Runs the graphs of a :class:`ModelSpec` on preprocessed images.

    Parameters
    ----------
    spec : ModelSpec
    providers : list of str, optional
        Defaults to :func:`choose_providers`.
    threads : int, optional
        Intra-op threads (ONNX Runtime default when None).
    """

    def __init__(self, spec: ModelSpec, *, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        self.spec = spec
        self.providers = providers or choose_providers()
        self.sessions = []
        self.static_batch: int | None = None
        produced: set[str] = {"@image"}
        for g, path in zip(spec.graphs, spec.graph_paths()):
            if not path.is_file():
                raise NeuralignError("model graph file is missing", path=path)
            sess = _session(path, self.providers, threads)
            names = {i.name: i for i in sess.get_inputs()}
            feeds = g["inputs"]
            missing = [n for n in names if n not in feeds]
            extra = [n for n in feeds if n not in names]
            if missing or extra:
                raise NeuralignError(
                    f"ONNX graph inputs are {sorted(names)}, expected {sorted(feeds)}", path=path
                )
            for name, src in feeds.items():
                if src not in produced:
                    raise NeuralignError(f"graph input {name!r} needs {src!r}, not produced earlier",
                                         path=path)
                if src == "@image":
                    shape = names[name].shape
                    if len(shape) != 4 or shape[1] not in (3, None) and not isinstance(shape[1], str):
                        raise NeuralignError(
                            f"image input {name!r} has shape {shape}, expected [B, 3, H, W]",
                            path=path)
                b = names[name].shape[0] if names[name].shape else None
                if isinstance(b, int) and b > 0:
                    self.static_batch = b if self.static_batch is None else min(self.static_batch, b)
            produced.update(o.name for o in sess.get_outputs())
            self.sessions.append((sess, feeds))
        wanted = {o for lay in spec.layers for o in lay["outputs"].values()}
        if not wanted <= produced:
            raise NeuralignError(
                f"model graphs lack layer outputs {sorted(wanted - produced)[:3]}", path=spec.root
            )

    def run(self, images: np.ndarray, pooling: dict[str, str]) -> dict[str, np.ndarray]:
        """``images`` float32 (B, 3, H, W) -> {layer: (B, D) float32} for the chosen poolings."""
        step = self.static_batch or images.shape[0]
        parts = []
        for i in range(0, images.shape[0], step):
            parts.append(self._run_once(np.ascontiguousarray(images[i : i + step]), pooling))
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}

    def _run_once(self, images: np.ndarray, pooling: dict[str, str]) -> dict[str, np.ndarray]:
        values: dict[str, np.ndarray] = {"@image": images}
        for sess, feeds in self.sessions:
            outs = [o.name for o in sess.get_outputs()]
            res = sess.run(outs, {k: values[src] for k, src in feeds.items()})
            values.update(zip(outs, res))
        out = {}
        for lay in self.spec.layers:
            a = np.asarray(values[lay["outputs"][pooling[lay["name"]]]], dtype=np.float32)
            if a.ndim == 4:  # (B, C, H, W) map of a plain ONNX file: spatial mean
                a = a.mean(axis=(2, 3))
            elif a.ndim == 3:  # (B, tokens, D): mean over tokens
                a = a.mean(axis=1)
            out[lay["name"]] = a.reshape(a.shape[0], -1)
        return out


def spec_from_plain_onnx(path: Path) -> ModelSpec:
    """A spec for an ONNX file not exported by neuralign: one image input [B,3,H,W]; every
    float output with a batch axis is a layer (flattened; 4-D maps are averaged over space)."""
    import onnx

    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise NeuralignError(f"not a readable ONNX file ({type(e).__name__})", path=path) from e
    init = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in init]
    dims = []
    if len(inputs) == 1:
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in inputs[0].type.tensor_type.shape.dim]
    if len(inputs) != 1 or len(dims) != 4 or dims[1] not in (3, None):
        shown = [i.name for i in inputs]
        raise NeuralignError(
            f"ONNX model inputs {shown} do not match the one image input [B, 3, H, W] expected",
            path=path,
        )
    size = dims[2] or 224
    layers = [{"name": o.name, "outputs": {"mean": o.name}} for o in m.graph.output]
    return ModelSpec(
        name=path.stem, family="onnx",
        graphs=[{"file": path.name, "inputs": {inputs[0].name: "@image"}}],
        layers=layers,
        preprocessing={"resize": int(size * 256 / 224), "resize_mode": "shorter", "crop": size,
                       "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406],
                       "std": [0.229, 0.224, 0.225]},
        default_pooling="mean",
        notes="plain ONNX file: outputs taken as layers, ImageNet preprocessing assumed",
        root=path.parent,
    )
