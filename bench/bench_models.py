"""Feature-extraction throughput: ONNX Runtime vs torch eager, same model, same batch size,
same thread count, one process. Prints images/s and the ratio ORT / torch.

    .venv/bin/python bench/bench_models.py [--batch-size 8] [--threads 2] [--quick]

Models: ``mobilenet_v2`` (the built-in, real ImageNet weights; every block pooled + logits)
and a ViT-S/16-sized ViT (``ViTModel``, 12 blocks, width 384, 224 px; random weights from a
transformers config: speed does not depend on the weights) with every block CLS+mean pooled.
Both paths compute the same outputs (every layer, pooled). Where ``CUDAExecutionProvider``
is available the GPU figure is added.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _rates(fns: dict, n_images: int, *, repeats: int) -> dict:
    """images/s (median over ``repeats``) of each callable; runs are interleaved so a busy
    shared machine slows every path alike."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: n_images / float(np.median(v)) for k, v in times.items()}


def bench_pair(name, module, spec, *, batch: int, repeats: int, threads: int) -> dict:
    import torch

    from neuralign.models.runtime import LayerRunner

    size = spec.preprocessing["crop"]
    x = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    xt = torch.from_numpy(x)
    pooling = spec.resolve_pooling(None)
    cpu = LayerRunner(spec, providers=["CPUExecutionProvider"], threads=threads)
    torch.set_num_threads(threads)

    def run_torch():
        with torch.inference_mode():
            module(xt)

    out = {"model": name, "batch": batch, "threads": threads}
    out.update(_rates({"torch_eager_img_s": run_torch,
                       "ort_cpu_img_s": lambda: cpu.run(x, pooling)}, batch, repeats=repeats))
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        gpu = LayerRunner(spec, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        fns = {"ort_cuda_img_s": lambda: gpu.run(x, pooling)}
        if torch.cuda.is_available():
            mg = module.to("cuda")
            xg = xt.to("cuda")

            def run_torch_gpu():
                with torch.inference_mode():
                    mg(xg)
                torch.cuda.synchronize()

            fns["torch_cuda_img_s"] = run_torch_gpu
        out.update(_rates(fns, batch, repeats=repeats))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args = ap.parse_args()
    repeats = 3 if args.quick else 7

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("NEURALIGN_CACHE", str(Path(tmp) / "cache"))
        import onnxruntime as ort
        import torch
        import transformers

        from neuralign.models import builtin
        from neuralign.models.extract import extract_features
        from neuralign.models.hf import export_hf
        from neuralign.models.hf.parts import build_parts
        from neuralign.models.mobilenet import MobileNetV2Layers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        results = []
        spec = builtin.build_mobilenet_v2()
        net = MobileNetV2Layers(builtin.load_mobilenet_torch()).eval()
        results.append(bench_pair("mobilenet_v2", net, spec, batch=args.batch_size,
                                  repeats=repeats, threads=args.threads))

        torch.manual_seed(0)
        cfg = transformers.ViTConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                     intermediate_size=1536, image_size=224, patch_size=16)
        vit = transformers.ViTModel(cfg, add_pooling_layer=False).eval()
        vit.save_pretrained(str(Path(tmp) / "vit_s16"))
        vspec = export_hf(Path(tmp) / "vit_s16", Path(tmp) / "vit_s16_onnx")
        vit_t = transformers.ViTModel.from_pretrained(str(Path(tmp) / "vit_s16"),
                                                      attn_implementation="eager").eval()
        wrapper = build_parts(vit_t, "vit", size=224).parts[0].module
        results.append(bench_pair("vit_s16 (ViT-S/16, 12 blocks)", wrapper, vspec,
                                  batch=args.batch_size, repeats=repeats, threads=args.threads))
        print(f"export check (max abs diff vs torch): mobilenet_v2 "
              f"{spec.verification['max_abs_diff']:.2e}, vit_s16 "
              f"{vspec.verification['max_abs_diff']:.2e}")
        # end to end: the 102 built-in images -> per-layer cache (decode, preprocess, ORT,
        # memory-mapped writes, hashes), default provider (CUDA when present)
        t0 = time.perf_counter()
        [res] = extract_features(vspec, "builtin", Path(tmp) / "cache_vit", batch_size="auto",
                                 threads=args.threads, progress=False)
        dt = time.perf_counter() - t0
        print(f"extraction vit_s16, 102 built-in images -> per-layer cache: {dt:.1f} s "
              f"({102 / dt:.1f} img/s, batch {res.batch_size}, {', '.join(res.providers)})")
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            print("GPU: no CUDAExecutionProvider in this onnxruntime "
                  f"({', '.join(ort.get_available_providers())}): GPU figures not measured; "
                  "install the gpu extra (onnxruntime-gpu) on a CUDA machine")

    print(f"{'model':32s} {'batch':>5s} {'thr':>3s} {'torch img/s':>12s} {'ORT img/s':>10s} "
          f"{'ORT/torch':>9s}")
    for r in results:
        ratio = r["ort_cpu_img_s"] / r["torch_eager_img_s"]
        print(f"{r['model']:32s} {r['batch']:5d} {r['threads']:3d} "
              f"{r['torch_eager_img_s']:12.1f} {r['ort_cpu_img_s']:10.1f} {ratio:9.2f}")
        if "ort_cuda_img_s" in r:
            line = f"  GPU: ORT CUDA {r['ort_cuda_img_s']:.1f} img/s"
            if "torch_cuda_img_s" in r:
                line += (f", torch CUDA {r['torch_cuda_img_s']:.1f} img/s, ratio "
                         f"{r['ort_cuda_img_s'] / r['torch_cuda_img_s']:.2f}")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
