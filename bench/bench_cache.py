"""The per-layer feature cache at LVLM scale: write, resume, load (memory-mapped), verify.

    .venv/bin/python bench/bench_cache.py [--rows 2093] [--layers 32] [--width 4096] [--full]

Writes a synthetic cache the way extraction does (every batch of rows into every layer's
memory map, flush, progress record), interrupts it half way and resumes, then finalizes (one
sha256 per layer) and loads it: opening (memory maps, inputs check), reading one layer, and a
full hash verification. ``--full`` uses the THINGS-EEG2 size (16,740 stimuli: 8.8 GB for 32
layers x 4096); the default is an eighth of the rows. Peak RSS is printed: it stays near one
batch, whatever the cache size.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


PEAK = {"anon": 0.0}


def _rss_mb() -> float:
    """Peak resident set (includes file pages of the memory maps, which the kernel can drop)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _anon_mb() -> float:
    """Anonymous (heap) memory now, in MB (Linux); tracks the peak in PEAK."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    mb = int(line.split()[1]) / 1024
                    PEAK["anon"] = max(PEAK["anon"], mb)
                    return mb
    except OSError:
        pass
    return float("nan")


def main() -> int:
    from neuralign.io.feature_cache import CacheWriter
    from neuralign.io.features import load_features

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=16740 // 8)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--width", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--full", action="store_true", help="16,740 rows (8.8 GB at 32 x 4096)")
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = ap.parse_args()
    n = 16740 if args.full else args.rows
    names = [f"llm.{i:02d}" for i in range(args.layers)]
    ids = [f"img{i:05d}.jpg" for i in range(n)]
    block = np.random.default_rng(0).standard_normal((args.batch, args.width)).astype(np.float32)
    gb = n * args.layers * args.width * 4 / 2**30
    print(f"cache: {args.layers} layers x {n} stimuli x {args.width} float32 = {gb:.2f} GB "
          f"(batches of {args.batch})")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "cache"

        def writer():
            return CacheWriter.open(path, key="bench", stimulus_ids=ids,
                                    image_sha256=["0" * 64] * n,
                                    layers=[{"name": x, "stage": "llm"} for x in names],
                                    provenance={"stimuli": {"kind": "builtin"}})

        def fill(w, stop: int) -> None:
            for i in range(w.rows_done, stop, args.batch):
                b = min(args.batch, stop - i)
                w.write(i, {x: block[:b] + k for k, x in enumerate(names)})
                w.commit(i + b)
                _anon_mb()

        t0 = time.perf_counter()
        w = writer()
        fill(w, n // 2)
        t_half = time.perf_counter() - t0
        del w  # "killed" half way: nothing but the files remains
        t1 = time.perf_counter()
        w = writer()
        resumed_at = w.rows_done
        fill(w, n)
        t_rest = time.perf_counter() - t1
        t2 = time.perf_counter()
        w.finalize()
        t_final = time.perf_counter() - t2
        write_s = t_half + t_rest
        print(f"write: {write_s:.1f} s ({gb * 1024 / write_s:.0f} MB/s, {n / write_s:.0f} "
              f"stimuli/s, every batch flushed + progress recorded); resumed at row "
              f"{resumed_at} of {n}")
        print(f"finalize (sha256 of every layer): {t_final:.1f} s")
        t3 = time.perf_counter()
        fs = load_features(path, verify="inputs")
        t_open = time.perf_counter() - t3
        t4 = time.perf_counter()
        x = fs.layer(args.layers // 2)
        t_layer = time.perf_counter() - t4
        _anon_mb()
        assert x.shape == (n, args.width)
        del x
        t5 = time.perf_counter()
        load_features(path, verify="full")
        t_verify = time.perf_counter() - t5
        print(f"load: open {t_open * 1000:.0f} ms (memory maps, nothing read); one layer "
              f"read {t_layer:.2f} s; full hash verification {t_verify:.1f} s")
        _anon_mb()
        print(f"memory: peak heap (RssAnon) {PEAK['anon']:.0f} MB (one layer read into memory "
              f"is {n * args.width * 4 / 2**20:.0f} MB); peak RSS {_rss_mb():.0f} MB counts the "
              "page cache of the memory maps, which the kernel reclaims")
    return 0


if __name__ == "__main__":
    sys.exit(main())
