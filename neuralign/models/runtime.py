"""Run an exported model: provider choice, graph chaining, pooled layer outputs.

ONNX graphs run with ONNX Runtime (CUDA when present); a part that ONNX Runtime cannot run
was exported as a torch part and runs with torch eager (:mod:`neuralign.models.torch_parts`,
imported only then). No torch otherwise: this is the path ``features`` (and ``live``) uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .spec import ModelSpec

PROMPT_SOURCES = ("@input_ids", "@position_ids")


def choose_providers(prefer: str | None = None) -> list[str]:
    """ONNX Runtime providers, chosen at run time: CUDA when available, else CPU.

    Parameters
    ----------
    prefer : str, optional
        ``"cpu"`` forces the CPU provider.

    Returns
    -------
    list of str
    """
    import onnxruntime as ort

    avail = ort.get_available_providers()
    if prefer != "cpu" and "CUDAExecutionProvider" in avail:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def onnx_session(path: Path, providers: list[str], threads: int | None = None):
    """An ONNX Runtime session; a one-line error naming the file when it cannot load."""
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


class OnnxGraph:
    """One ONNX graph of a spec, run with ONNX Runtime."""

    def __init__(self, path: Path, providers: list[str], threads: int | None) -> None:
        self.path = path
        self.sess = onnx_session(path, providers, threads)
        self.input_shapes = {i.name: i.shape for i in self.sess.get_inputs()}
        self.output_names = [o.name for o in self.sess.get_outputs()]

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs by name."""
        return self.sess.run(outputs, feeds)


class LayerRunner:
    """Runs the graphs of a :class:`ModelSpec` and returns pooled layer outputs.

    Parameters
    ----------
    spec : ModelSpec
        The exported model.
    providers : list of str, optional
        ONNX Runtime providers (default :func:`choose_providers`).
    threads : int, optional
        Intra-op threads (ONNX Runtime and torch).
    mode : {"image", "text"}
        Images (with a prompt for LVLMs) or captions.
    stages : list of str, optional
        Only layers of these stages; graphs nothing needs are not loaded.
    """

    def __init__(self, spec: ModelSpec, *, providers: list[str] | None = None,
                 threads: int | None = None, mode: str = "image",
                 stages: list[str] | None = None) -> None:
        self.spec = spec
        self.mode = mode
        self.providers = providers or choose_providers()
        self.layers = spec.layers_for(mode, stages)
        if not self.layers:
            raise NeuralignError(f"model {spec.name!r} has no {mode} layers"
                                 + (f" in stages {stages}" if stages else ""), path=spec.root)
        wanted = {o for lay in self.layers for o in lay["outputs"].values()}
        self.graphs = self._plan(wanted, threads)
        self.needs_prompt = any(src in PROMPT_SOURCES for g, _ in self.graphs
                                for src in g["inputs"].values())
        self.uses_torch = any(g.get("runtime") == "torch" for g, _ in self.graphs)

    def _plan(self, wanted: set[str], threads: int | None) -> list[tuple[dict, object]]:
        """Graphs needed for ``wanted`` outputs, in run order, loaded."""
        loaded = []
        for g in plan_graphs(self.spec, wanted, mode=self.mode):
            if g.get("runtime", "onnx") == "torch":
                from .torch_parts import TorchGraph

                loaded.append((g, TorchGraph(self.spec, g["part"], threads=threads)))
            else:
                path = Path(self.spec.root) / g["file"]
                if not path.is_file():
                    raise NeuralignError("model graph file is missing", path=path)
                og = OnnxGraph(path, self.providers, threads)
                _check_inputs(og, g, path)
                loaded.append((g, og))
        return loaded

    @property
    def static_batch(self) -> int | None:
        """The largest batch every image graph accepts (None: any)."""
        sizes = [_static_batch(g, r) for g, r in self.graphs]
        sizes = [s for s in sizes if s]
        return min(sizes) if sizes else None

    def outputs(self, images: np.ndarray | None, *, input_ids: np.ndarray | None = None,
                position_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Every output of the needed graphs, by name (all poolings, ``image_embeds``...).

        Parameters are those of :meth:`run`.
        """
        ctx = {"input_ids": input_ids, "position_ids": position_ids}
        return self.outputs_many(images, [ctx])[0]

    def outputs_many(self, images: np.ndarray | None,
                     contexts: list[dict]) -> list[dict[str, np.ndarray]]:
        """:meth:`outputs` for several prompts on the same images: graphs that do not read the
        prompt (the vision tower) run once, the others once per prompt.

        Parameters
        ----------
        images : ndarray, optional
            Preprocessed images (None for captions).
        contexts : list of dict
            ``{"input_ids": ..., "position_ids": ...}`` per prompt.

        Returns
        -------
        list of dict
            One ``{output name: array}`` per context.
        """
        if self.needs_prompt and any(c.get("input_ids") is None for c in contexts):
            raise NeuralignError(f"model {self.spec.name!r} needs prompt token ids for its "
                                 "language-model layers")
        base: dict[str, np.ndarray] = {}
        if images is not None:
            base["@image"] = np.ascontiguousarray(images, dtype=np.float32)
        dependent: set[str] = set(PROMPT_SOURCES)
        shared_graphs, prompt_graphs = [], []
        for g, runner in self.graphs:
            if any(src in dependent for src in g["inputs"].values()):
                prompt_graphs.append((g, runner))
                dependent |= set(g.get("outputs") or runner.output_names)
            else:
                shared_graphs.append((g, runner))
        for g, runner in shared_graphs:
            self._run_graph(g, runner, base)
        results = []
        for ctx in contexts:
            values = dict(base)
            for key in ("input_ids", "position_ids"):
                if ctx.get(key) is not None:
                    values[f"@{key}"] = np.ascontiguousarray(ctx[key], dtype=np.int64)
            for g, runner in prompt_graphs:
                self._run_graph(g, runner, values)
            results.append(values)
        return results

    def _run_graph(self, g: dict, runner, values: dict[str, np.ndarray]) -> None:
        outs = list(g.get("outputs") or runner.output_names)
        feeds, shared = {}, {}
        for name, src in g["inputs"].items():
            if src in values:
                (shared if src in PROMPT_SOURCES else feeds)[name] = values[src]
            else:  # captions: no image tokens
                d = g["text_defaults"][name]
                shared[name] = np.zeros(d["shape"], dtype=d.get("dtype", "float32"))
        step = _static_batch(g, runner)
        n = next(iter(feeds.values())).shape[0] if feeds else 1
        if not feeds or not step or n <= step:
            res = runner.run(outs, {**feeds, **shared})
        else:
            parts = [runner.run(outs, {**{k: v[i:i + step] for k, v in feeds.items()}, **shared})
                     for i in range(0, n, step)]
            res = [np.concatenate(cols, axis=0) for cols in zip(*parts)]
        values.update(zip(outs, res))

    def run(self, images: np.ndarray | None, pooling: dict[str, str], *,
            input_ids: np.ndarray | None = None,
            position_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Pooled outputs ``{layer: (B, D) float32}`` for the chosen poolings.

        Parameters
        ----------
        images : ndarray, optional
            Preprocessed images ``(B, 3, H, W)`` (or ``(B, tiles, 3, H, W)``); None for
            captions.
        pooling : dict
            Layer -> pooling (:meth:`ModelSpec.resolve_pooling`).
        input_ids : ndarray, optional
            ``(1, T)`` int64: the prompt (image mode) or the caption (text mode).
        position_ids : ndarray, optional
            ``(3, 1, T)`` for Qwen-VL models.
        """
        values = self.outputs(images, input_ids=input_ids, position_ids=position_ids)
        return self.pool(values, pooling)

    def pool(self, values: dict[str, np.ndarray], pooling: dict[str, str]) -> dict[str, np.ndarray]:
        """``{layer: (B, D) float32}`` from graph outputs (:meth:`outputs`) for ``pooling``."""
        out = {}
        for lay in self.layers:
            if lay["name"] not in pooling:
                continue
            a = np.asarray(values[lay["outputs"][pooling[lay["name"]]]], dtype=np.float32)
            if a.ndim == 4:  # (B, C, H, W) map of a plain ONNX file: spatial mean
                a = a.mean(axis=(2, 3))
            elif a.ndim == 3:  # (B, tokens, D): mean over tokens
                a = a.mean(axis=1)
            out[lay["name"]] = a.reshape(a.shape[0], -1)
        return out


def plan_graphs(spec: ModelSpec, wanted: set[str], *, mode: str = "image") -> list[dict]:
    """The graph entries needed to compute the outputs ``wanted``, in run order (without
    loading any graph).

    Parameters
    ----------
    spec : ModelSpec
        The model.
    wanted : set of str
        Graph output names.
    mode : {"image", "text"}
        Captions get empty image tokens (``text_defaults``) instead of the vision graph.

    Returns
    -------
    list of dict
    """
    produces = []
    for g in spec.graphs:
        outs = g.get("outputs")
        if not outs and g.get("runtime", "onnx") == "onnx":
            outs = _graph_outputs(spec, g)
        produces.append(set(outs or []))
    need = set(wanted)
    chosen: list[int] = []
    for k in range(len(spec.graphs) - 1, -1, -1):
        g = spec.graphs[k]
        if produces[k] & need:
            chosen.append(k)
            text_defaults = g.get("text_defaults", {}) if mode == "text" else {}
            need |= {src for name, src in g["inputs"].items()
                     if not src.startswith("@") and name not in text_defaults}
    chosen.reverse()
    missing = wanted - set().union(*(produces[k] for k in chosen)) if chosen else wanted
    if missing:
        raise NeuralignError(f"model graphs lack layer outputs {sorted(missing)[:3]}",
                             path=spec.root)
    available = {"@image", "@input_ids", "@position_ids"}
    for k in chosen:
        g = spec.graphs[k]
        for name, src in g["inputs"].items():
            text_default = mode == "text" and name in g.get("text_defaults", {})
            if src not in available and not text_default:
                raise NeuralignError(f"graph input {name!r} needs {src!r}, not produced "
                                     "earlier", path=spec.root)
        available |= produces[k]
    return [spec.graphs[k] for k in chosen]


def needs_prompt(spec: ModelSpec, *, mode: str = "image", stages: list[str] | None = None) -> bool:
    """Whether the layers of ``mode``/``stages`` read token ids (a prompt or a caption)."""
    wanted = {o for lay in spec.layers_for(mode, stages) for o in lay["outputs"].values()}
    if not wanted:
        return False
    return any(src in PROMPT_SOURCES for g in plan_graphs(spec, wanted, mode=mode)
               for src in g["inputs"].values())


def _graph_outputs(spec: ModelSpec, g: dict) -> list[str]:
    import onnx

    m = onnx.load(str(Path(spec.root) / g["file"]), load_external_data=False)
    return [o.name for o in m.graph.output]


def _static_batch(g: dict, runner) -> int | None:
    if g.get("static_batch"):
        return int(g["static_batch"])
    for name, src in g["inputs"].items():
        if src in PROMPT_SOURCES or not isinstance(runner, OnnxGraph):
            continue
        shape = runner.input_shapes.get(name) or []
        if shape and isinstance(shape[0], int) and shape[0] > 0:
            return int(shape[0])
    return None


def _check_inputs(og: OnnxGraph, g: dict, path: Path) -> None:
    names = set(og.input_shapes)
    feeds = g["inputs"]
    missing = [n for n in names if n not in feeds]
    extra = [n for n in feeds if n not in names]
    if missing or extra:
        raise NeuralignError(f"ONNX graph inputs are {sorted(names)}, expected {sorted(feeds)}",
                             path=path)
    for name, src in feeds.items():
        shape = og.input_shapes[name]
        if src == "@image" and (len(shape) not in (4, 5) or (
                isinstance(shape[-3], int) and shape[-3] != 3)):
            raise NeuralignError(f"image input {name!r} has shape {shape}, expected "
                                 "[B, 3, H, W]", path=path)


def spec_from_plain_onnx(path: Path) -> ModelSpec:
    """A spec for an ONNX file not exported by neuralign: one image input [B,3,H,W]; every
    float output with a batch axis is a layer (flattened; 4-D maps are averaged over space).

    Parameters
    ----------
    path : Path
        The ``.onnx`` file.

    Returns
    -------
    ModelSpec
    """
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
    layers = [{"name": o.name, "stage": "other", "inputs": ["image"],
               "outputs": {"mean": o.name}} for o in m.graph.output]
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
