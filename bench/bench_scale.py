"""Scale benchmarks (issue 10): LVLM-wide layers offline and live, memory, GPU.

Run: ``.venv/bin/python bench/bench_scale.py [--quick] [--only wide|narrow|live|memory|gpu]
[--full]`` (one process per section, same data for every tool; prints times, ratios, mean r
and peak memory).

A. ``wide``: THINGS-EEG2-sized train/test set (1654 train x 4 reps + 200 test x 80 reps,
   17 x 100 targets, 8 alphas, alpha per target) with layers 4096 wide (n < D): neuralign
   (float64, float32) against scikit-learn ``RidgeCV(alpha_per_target=True)`` (efficient
   leave-one-out, gram mode), himalaya ``KernelRidgeCV`` and ``RidgeCV`` (5-fold; numpy and
   torch CPU). Every tool starts from the same epochs and ends with held-out r per layer x
   channel x time on the test images.
B. ``narrow``: the same at THINGS size with 12 layers x 256 (n > D).
C. ``live``: one live refresh with 32 layers x 4096 (1,200 candidate stimuli, 1,000 seen, 10
   new ones per refresh), train/test design and nested CV, full refresh (alphas re-selected)
   and refit; the form each layer used.
D. ``memory`` (own processes): ``analyze`` of 10 layers x 4096 x 700 stimuli; with ``--full``
   also 32 layers x 4096 x the full THINGS-EEG2 set (16,740 stimuli, 82,160 epochs) from a
   per-layer feature cache (8.8 GB on disk, layers read on demand). Peak RSS of each
   process.
E. ``gpu``: the torch backend on CUDA when a GPU is present (says so when it is not).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralign.align import AlignmentEngine  # noqa: E402
from neuralign.base import FeatureSet, LayerFile  # noqa: E402
from neuralign.base.resources import peak_rss_bytes  # noqa: E402

C, T = 17, 100
ALPHAS = np.logspace(-1, 6, 8)


# ---------------------------------------------------------------------------- measuring
def rss_bytes() -> int:
    """Current resident memory of this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Peak:
    """Peak RSS above the level at entry, sampled every 10 ms, and wall time."""

    def __enter__(self):
        self.base = rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        return self

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_bytes())
        self.extra_gb = (self.peak - self.base) / 1024**3


# ---------------------------------------------------------------------------- data
def make_data(rng, *, n_train, n_test, dim, layers, train_reps=4, test_reps=80, latent=64,
              noise=2.0):
    """Layers sharing a latent (like a model's), EEG planted from the latent, THINGS layout."""
    n = n_train + n_test
    ids = np.array([f"img{i:05d}" for i in range(n)])
    z = rng.standard_normal((n, latent)).astype(np.float32)
    arrays = []
    for _ in range(layers):
        mix = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
        arrays.append(np.tanh(z @ mix) + 0.5 * rng.standard_normal((n, dim)).astype(np.float32))
    fs = FeatureSet(ids, [f"layer{i:02d}" for i in range(layers)], arrays)
    w = rng.standard_normal((latent, C * T)).astype(np.float32) / np.sqrt(latent)
    sig = (z @ w).reshape(n, C, T)
    rows = np.concatenate([np.tile(np.arange(n_train), train_reps),
                           np.tile(np.arange(n_train, n), test_reps)])
    epochs = sig[rows] + noise * rng.standard_normal((rows.size, C, T)).astype(np.float32)
    return fs, ids[rows], epochs, ids[n_train:].tolist()


def stimulus_means(fs, sids, epochs):
    """Stimulus means of the epochs (what every alternative tool needs as targets)."""
    rows = fs.rows(sids)
    y = np.zeros((fs.n_stimuli, C * T))
    np.add.at(y, rows, epochs.reshape(len(sids), -1))
    return y / np.bincount(rows, minlength=fs.n_stimuli)[:, None]


def corr(p, y):
    p = p - p.mean(0)
    y = y - y.mean(0)
    return (p * y).sum(0) / np.sqrt((p * p).sum(0) * (y * y).sum(0))


# ---------------------------------------------------------------------------- tools
def run_neuralign(fs, sids, epochs, test_ids, dtype, backend="numpy"):
    eng = AlignmentEngine(fs, times=np.arange(T) / 100 - 0.2,
                          ch_names=[f"E{i}" for i in range(C)], test_ids=test_ids,
                          alphas=ALPHAS, dtype=dtype, backend=backend, incremental=False)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    return res.encoding_r.reshape(fs.n_layers, -1), res.counts["solver_forms"]


def run_alternative(name, fs, sids, epochs, test_ids):
    """One alternative over every layer: (L, M) held-out r on the test stimuli."""
    y = stimulus_means(fs, sids, epochs)
    te = fs.index_of(test_ids)
    tr = np.setdiff1d(np.arange(fs.n_stimuli), te)
    out = []
    if name == "sklearn RidgeCV":
        from sklearn.linear_model import RidgeCV

        for a in fs.arrays:
            x = np.asarray(a, float)
            x = (x - x[tr].mean(0)) / x[tr].std(0)
            m = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(x[tr], y[tr])
            out.append(corr(m.predict(x[te]), y[te]))
        return np.stack(out)
    import himalaya.backend as hb
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV as HRidgeCV

    kind, backend = name.split(" (")[0], name.split("(")[1].rstrip(")")
    hb.set_backend("torch" if backend == "torch CPU" else "numpy", on_error="raise")
    dt = np.float32 if backend == "torch CPU" else np.float64
    for a in fs.arrays:
        x = np.asarray(a, float)
        x = ((x - x[tr].mean(0)) / x[tr].std(0)).astype(dt)
        if kind == "himalaya KernelRidgeCV":
            m = KernelRidgeCV(alphas=ALPHAS, kernel="linear", cv=5, warn=False)
        else:
            m = HRidgeCV(alphas=ALPHAS, cv=5)
        m.fit(x[tr], y[tr].astype(dt))
        out.append(corr(np.asarray(hb.get_backend().to_numpy(m.predict(x[te])), float), y[te]))
    return np.stack(out)


ALTERNATIVES = ["sklearn RidgeCV", "himalaya KernelRidgeCV (numpy)",
                "himalaya KernelRidgeCV (torch CPU)", "himalaya RidgeCV (numpy)",
                "himalaya RidgeCV (torch CPU)"]


def compare(title, fs, sids, epochs, test_ids, alternatives):
    print(f"\n{title}")
    print(f"  {'tool':38s} {'time':>8s} {'peak +GB':>9s} {'mean r':>8s}")
    rows = {}
    for dtype in ("float64", "float32"):
        with Peak() as pk:
            r, forms = run_neuralign(fs, sids, epochs, test_ids, dtype)
        rows[f"neuralign {dtype}"] = (pk.seconds, pk.extra_gb, float(np.nanmean(r)))
        print(f"  {'neuralign ' + dtype:38s} {pk.seconds:7.2f}s {pk.extra_gb:8.2f} "
              f"{np.nanmean(r):8.4f}   forms: {sorted(set(forms))}")
    for name in alternatives:
        try:
            with Peak() as pk:
                r = run_alternative(name, fs, sids, epochs, test_ids)
        except Exception as e:  # noqa: BLE001 - a missing optional tool is reported, not fatal
            print(f"  {name:38s} unavailable: {type(e).__name__}: {e}")
            continue
        rows[name] = (pk.seconds, pk.extra_gb, float(np.nanmean(r)))
        print(f"  {name:38s} {pk.seconds:7.2f}s {pk.extra_gb:8.2f} {np.nanmean(r):8.4f}")
    alts = {k: v for k, v in rows.items() if not k.startswith("neuralign")}
    if alts:
        best = min(alts, key=lambda k: alts[k][0])
        ref_r = rows.get("sklearn RidgeCV", alts[best])[2]
        for k in ("neuralign float64", "neuralign float32"):
            t, _, r = rows[k]
            print(f"  ratio fastest alternative ({best}, {alts[best][0]:.2f}s) / {k}: "
                  f"{alts[best][0] / t:.1f}x; mean r - sklearn's: {r - ref_r:+.4f}")
    return rows


# ---------------------------------------------------------------------------- sections
def bench_wide(quick: bool, layers: int) -> None:
    rng = np.random.default_rng(0)
    n_tr, n_te, reps = (400, 100, 20) if quick else (1654, 200, 80)
    D = 1024 if quick else 4096
    fs, sids, epochs, test_ids = make_data(rng, n_train=n_tr, n_test=n_te, dim=D,
                                           layers=layers, test_reps=reps)
    compare(f"A. wide: {layers} layers x D={D}, {n_tr} train x 4 reps + {n_te} test x {reps} "
            f"reps, {C}x{T} targets (n < D)", fs, sids, epochs, test_ids, ALTERNATIVES)


def bench_narrow(quick: bool) -> None:
    rng = np.random.default_rng(1)
    L, D, n_tr, n_te, reps = (4, 128, 400, 100, 20) if quick else (12, 256, 1654, 200, 80)
    fs, sids, epochs, test_ids = make_data(rng, n_train=n_tr, n_test=n_te, dim=D, layers=L,
                                           test_reps=reps)
    compare(f"B. narrow (THINGS size): {L} layers x D={D}, {n_tr} train x 4 reps + {n_te} test "
            f"x {reps} reps (n > D)", fs, sids, epochs, test_ids, ALTERNATIVES)


def live_refreshes(fs, sids, epochs, test_ids, *, backend="numpy", n_refresh=16, new=10,
                   reselect_every=None, memory=None, warm_step=40):
    """Times of refreshes that each bring ``new`` unseen stimuli, after a warm-up.

    The session grows as a live one does: a first refresh once 400 epochs are in, then one
    every ``warm_step`` epochs up to the timed window, so that the layers' kept
    eigendecompositions (rebuilt every 64-184 added stimuli, fewer while they are small) are
    at every stage of their life when timing starts, as in a long session. The timed
    refreshes each bring ``new`` unseen stimuli; their mean is the steady state, rebuilds
    included. Without ``reselect_every``: each step times a refresh that re-selects every
    layer's alphas, then a refit with the alphas kept. With it: one refresh per step under
    that policy (what a live session does)."""
    eng = AlignmentEngine(fs, times=np.arange(T) / 100 - 0.2,
                          ch_names=[f"E{i}" for i in range(C)], test_ids=test_ids,
                          dtype="float32", backend=backend, reselect_every=reselect_every or 1,
                          memory=memory)
    n0 = len(sids) - n_refresh * new
    marks = [0] + list(range(min(400, n0), n0, warm_step)) + [n0]
    first = None  # the first refresh that solves (it builds the Gram caches)
    for a, b in zip(marks[:-1], marks[1:], strict=True):  # the session grows to n0 epochs
        eng.add_epochs(sids[a:b], epochs[a:b])
        with Peak() as pk:
            eng.refresh()
        if first is None and set(eng.last_forms) != {"-"}:
            first = pk.seconds
    full, refit = [], []
    for k in range(n_refresh):
        part = slice(n0 + k * new, n0 + (k + 1) * new)
        eng.add_epochs(sids[part], epochs[part])
        t0 = time.perf_counter()
        res = eng.refresh(select_alphas=None if reselect_every else True)
        full.append(time.perf_counter() - t0)
        if reselect_every:
            continue
        t0 = time.perf_counter()
        eng.refresh(select_alphas=False)
        refit.append(time.perf_counter() - t0)
    return first, full, refit, res.counts["solver_forms"], eng


def bench_live(quick: bool) -> None:
    from neuralign.realtime.session import LIVE_RESELECT_EVERY

    rng = np.random.default_rng(2)
    L, D, N, seen = (8, 1024, 400, 340) if quick else (32, 4096, 1200, 1000)
    n_refresh = 4 if quick else 16
    ids = np.array([f"img{i:05d}" for i in range(N)])
    z = rng.standard_normal((N, 64)).astype(np.float32)
    arrays = [np.tanh(z @ (rng.standard_normal((64, D)).astype(np.float32) / 8))
              + 0.5 * rng.standard_normal((N, D)).astype(np.float32) for _ in range(L)]
    fs = FeatureSet(ids, [f"layer{i:02d}" for i in range(L)], arrays)
    sig = (z @ (rng.standard_normal((64, C * T)).astype(np.float32) / 8)).reshape(N, C, T)
    n_test = 200 if not quick else 60
    test_rows = np.arange(n_test)
    train_rows = rng.permutation(np.arange(n_test, N))[: seen - n_test]
    # test stimuli first (shown from the start of a session), then training stimuli in order
    order = np.concatenate([test_rows, test_rows, train_rows])
    epochs = sig[order] + 2.0 * rng.standard_normal((order.size, C, T)).astype(np.float32)
    from neuralign.base.resources import available_memory

    # one budget for every engine below (each would otherwise plan for what the previous
    # ones left free)
    memory = int(0.8 * available_memory())
    print(f"\nC. live refresh: {L} layers x D={D}, {N} candidate stimuli, {seen} seen, "
          f"10 new per refresh, {C}x{T} targets, float32, memory budget "
          f"{memory / 1024**3:.1f} GB")
    for mode, test_ids in (("train/test (200 test)" if not quick else "train/test",
                            ids[test_rows].tolist()), ("nested CV", None)):
        first, full, refit, forms, eng = live_refreshes(fs, ids[order], epochs, test_ids,
                                                        n_refresh=n_refresh, memory=memory)
        print(f"  {mode:22s}: first refresh (builds Gram caches) {first:.2f}s | every layer "
              f"re-selects: median {np.median(full):.2f}s, mean {np.mean(full):.2f}s (max "
              f"{max(full):.2f}) | refit with alphas kept median {np.median(refit):.2f}s, mean "
              f"{np.mean(refit):.2f}s | forms {sorted(set(forms))} | caches "
              f"{eng.plan.describe()['cache_gb']} GB | load {os.getloadavg()[0]:.1f}")
        del eng
        gc.collect()
        _, live, _, _, eng = live_refreshes(fs, ids[order], epochs, test_ids,
                                            n_refresh=n_refresh, memory=memory,
                                            reselect_every=LIVE_RESELECT_EVERY)
        print(f"  {'':22s}  live policy (each layer re-selects every {LIVE_RESELECT_EVERY}th "
              f"refresh, staggered): median {np.median(live):.2f}s, mean {np.mean(live):.2f}s "
              f"(max {max(live):.2f}) | caches planned {eng.plan.describe()['cache_gb']} GB | "
              f"process peak RSS so far {peak_rss_bytes() / 1024**3:.2f} GB | load "
              f"{os.getloadavg()[0]:.1f}")
        del eng


def bench_memory(quick: bool, full: bool) -> None:
    print("\nD. memory (each run in its own process; peak RSS of that process)")
    runs = [("10 layers x 4096 x 700 stimuli (500 train x 4 + 200 test x 40)",
             ["--layers", "10", "--dim", "4096", "--n-train", "500", "--n-test", "200",
              "--test-reps", "40"])]
    if quick:
        runs = [("4 layers x 1024 x 300 stimuli", ["--layers", "4", "--dim", "1024",
                                                  "--n-train", "200", "--n-test", "100",
                                                  "--test-reps", "10"])]
    if full:
        runs.append(("32 layers x 4096 x full THINGS-EEG2 (16,540 train x 4 + 200 test x 80), "
                     "memory-mapped per-layer features", ["--layers", "32", "--dim", "4096",
                                                          "--n-train", "16540", "--n-test",
                                                          "200", "--test-reps", "80"]))
    for title, args in runs:
        with tempfile.TemporaryDirectory(dir=os.environ.get("NEURALIGN_BENCH_TMP")) as tmp:
            cmd = [sys.executable, __file__, "--child-memory", tmp, *args]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            last = (out.stdout.strip().splitlines() or ["(no output)"])[-1]
            if out.returncode:
                last += " | " + out.stderr.strip()[-500:]
            print(f"  {title}: {last}")


def child_memory(tmp: str, argv: list[str]) -> None:
    """One memory run: write memory-mapped per-layer features, accumulate, solve; print."""
    import resource

    p = argparse.ArgumentParser()
    for k in ("--layers", "--dim", "--n-train", "--n-test", "--test-reps"):
        p.add_argument(k, type=int)
    a = p.parse_args(argv)
    rng = np.random.default_rng(3)
    n = a.n_train + a.n_test
    ids = np.array([f"img{i:05d}" for i in range(n)])
    z = rng.standard_normal((n, 64)).astype(np.float32)
    arrays = []
    for li in range(a.layers):  # written layer by layer, then memory-mapped read-only
        mix = rng.standard_normal((64, a.dim)).astype(np.float32) / 8
        f = Path(tmp) / f"layer{li:02d}.npy"
        mm = np.lib.format.open_memmap(f, mode="w+", dtype=np.float32, shape=(n, a.dim))
        for s in range(0, n, 2048):
            blk = z[s:s + 2048]
            mm[s:s + 2048] = np.tanh(blk @ mix) + 0.5 * rng.standard_normal(
                (blk.shape[0], a.dim)).astype(np.float32)
        mm.flush()
        del mm
        arrays.append(LayerFile(f))  # as the per-layer feature cache opens its layers
    fs = FeatureSet(ids, [f"layer{i:02d}" for i in range(a.layers)], arrays)
    sig = (z @ (rng.standard_normal((64, C * T)).astype(np.float32) / 8)).reshape(n, C, T)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    t0 = time.perf_counter()
    eng = AlignmentEngine(fs, times=np.arange(T) / 100 - 0.2,
                          ch_names=[f"E{i}" for i in range(C)],
                          test_ids=ids[a.n_train:].tolist(), incremental=False)
    reps = [(np.arange(a.n_train), 4), (np.arange(a.n_train, n), a.test_reps)]
    for rows, r in reps:
        for _ in range(r):
            for s in range(0, rows.size, 4096):
                rr = rows[s:s + 4096]
                eng.add_epochs(ids[rr], sig[rr] + 2.0 * rng.standard_normal(
                    (rr.size, C, T)).astype(np.float32))
    res = eng.refresh()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{eng.n_epochs} epochs, {time.perf_counter() - t0:.1f}s, peak RSS {peak:.2f} GB "
          f"(before the engine {base:.2f} GB), forms {sorted(set(res.counts['solver_forms']))}, "
          f"{eng.plan.n_parallel} layer(s) at a time, mean r {np.nanmean(res.encoding_r):.3f}")


def bench_gpu(quick: bool) -> None:
    try:
        import torch
    except ImportError:
        print("\nE. GPU: torch is not installed (pip install 'neuralign[export]')")
        return
    if not torch.cuda.is_available():
        print("\nE. GPU: no CUDA device on this machine: no GPU figures (the torch backend "
              "runs on the CPU here)")
        return
    print(f"\nE. GPU: {torch.cuda.get_device_name(0)}")
    rng = np.random.default_rng(0)
    fs, sids, epochs, test_ids = make_data(rng, n_train=1654, n_test=200, dim=4096, layers=4)
    for dtype in ("float32", "float64"):
        run_neuralign(fs, sids, epochs, test_ids, dtype, backend="torch")  # warm-up
        t0 = time.perf_counter()
        r, _ = run_neuralign(fs, sids, epochs, test_ids, dtype, backend="torch")
        print(f"  wide batch 4 x 4096, torch CUDA {dtype}: {time.perf_counter() - t0:.2f}s, "
              f"mean r {np.nanmean(r):.4f}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child-memory":
        child_memory(sys.argv[2], sys.argv[3:])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--only", choices=["wide", "narrow", "live", "memory", "gpu"])
    p.add_argument("--layers", type=int, default=4, help="layers in the wide batch (default 4)")
    p.add_argument("--full", action="store_true",
                   help="also the full-scale memory run (32 x 4096 x 16,740; 8.8 GB of disk)")
    a = p.parse_args()
    from threadpoolctl import threadpool_info

    print("BLAS:", [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()],
          "| cores:", os.cpu_count())
    sections = {"wide": lambda: bench_wide(a.quick, a.layers), "narrow": lambda: bench_narrow(
        a.quick), "live": lambda: bench_live(a.quick), "memory": lambda: bench_memory(
        a.quick, a.full), "gpu": lambda: bench_gpu(a.quick)}
    for name, fn in sections.items():
        if a.only in (None, name):
            fn()


if __name__ == "__main__":
    main()
