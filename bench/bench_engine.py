"""Engine benchmarks (issue 2): live refresh cost and a THINGS-EEG2-sized batch vs himalaya + rsatoolbox.

Run: ``.venv/bin/python bench/bench_engine.py [--quick]`` (one process; prints figures and ratios).

A. Live: 32 layers x D=128, 17 channels x 100 times, 5 folds, 8 alphas, 1000 stimuli x 2 reps:
   per-epoch accumulation, full refresh (alpha re-selection + refit + RSA + noise ceilings) with
   GCV and with K-fold selection, and a refit with the alphas already chosen.
B. Batch: 1654 train stimuli x 4 reps + 200 test x 80 reps, 17 x 100, 12 layers x D=256:
   neuralign (accumulate + one refresh) vs himalaya ``RidgeCV`` (5-fold, same alphas, alpha per
   target) + rsatoolbox RSA (correlation RDM per time point, Spearman with 12 layer RDMs), which
   produce the same outputs (held-out r per layer x channel x time, RSA per layer x time).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from neuralign.align import AlignmentEngine, FeatureSet
from neuralign.align.assemble import RSAComputer

C, T = 17, 100
ALPHAS = np.logspace(-1, 6, 8)


def _features(rng, n, d, layers, prefix="img"):
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    latent = rng.standard_normal((n, d))
    arrays = []
    for _ in range(layers):
        latent = np.tanh(latent @ rng.standard_normal((d, d)) / np.sqrt(d)) + 0.3 * rng.standard_normal((n, d))
        arrays.append(latent.astype(np.float32))
    return FeatureSet(ids, [f"layer{i:02d}" for i in range(layers)], arrays)


def _eeg(rng, fs, reps, noise=2.0, rows=None):
    rows = np.arange(fs.n_stimuli) if rows is None else rows
    w = rng.standard_normal((fs.dims[0], C * T)).astype(np.float32) / np.sqrt(fs.dims[0])
    sig = (fs.arrays[len(fs.arrays) // 2][rows] @ w).reshape(-1, C, T)
    ep = np.concatenate([sig + noise * rng.standard_normal(sig.shape).astype(np.float32)
                         for _ in range(reps)])
    return np.tile(fs.stimulus_ids[rows], reps), ep


def bench_live(quick: bool) -> None:
    rng = np.random.default_rng(0)
    L, D, N = (8, 128, 400) if quick else (32, 128, 1000)
    fs = _features(rng, N, D, L)
    sids, ep = _eeg(rng, fs, 2)
    times = np.arange(T) / 100 - 0.2
    ch = [f"E{i}" for i in range(C)]
    print(f"\nA. live refresh: {L} layers x D={D}, {C}x{T} targets, 5 folds, 8 alphas, "
          f"{N} stimuli x 2 reps")
    test_ids = fs.stimulus_ids[:200].tolist()
    runs = [("nested CV", None, dt, sel) for dt in ("float32", "float64") for sel in ("gcv", "kfold")]
    runs += [("train/test (200 test)", test_ids, dt, "gcv") for dt in ("float32", "float64")]
    for mode, design, dtype, sel in runs:
        eng = AlignmentEngine(fs, times=times, ch_names=ch, dtype=dtype, alpha_selection=sel,
                              test_ids=design)
        t0 = time.perf_counter()
        for s, e in zip(sids[:2000], ep[:2000]):
            eng.add_epoch(s, e)
        per_epoch = (time.perf_counter() - t0) / min(2000, len(sids))
        eng.add_epochs(sids[2000:], ep[2000:])
        eng.refresh()  # first refresh folds in all stimuli (a one-off, like a session start)
        eng.add_epochs(sids[:50], ep[:50])  # a second's worth of new epochs
        t0 = time.perf_counter()
        eng.refresh(select_alphas=True)
        full = time.perf_counter() - t0
        rsa = RSAComputer(fs, eng.store, n_channels=C, n_times=T, max_stimuli=200)
        t0 = time.perf_counter()
        rsa.compute()
        rsa_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        eng.refresh(select_alphas=False)
        refit = time.perf_counter() - t0
        print(f"  {mode:22s} {dtype:7s} {sel:5s}: accumulate {per_epoch * 1e3:.3f} ms/epoch | "
              f"full refresh {full:.2f} s (RSA + noise ceilings {rsa_s:.2f} s) | "
              f"refit with chosen alphas {refit:.2f} s")


def bench_batch(quick: bool) -> None:
    rng = np.random.default_rng(1)
    L, D, NTR, NTE, RTE = (4, 128, 400, 100, 20) if quick else (12, 256, 1654, 200, 80)
    fs = _features(rng, NTR + NTE, D, L)
    test_rows = np.arange(NTR, NTR + NTE)
    s_tr, e_tr = _eeg(rng, fs, 4, rows=np.arange(NTR))
    s_te, e_te = _eeg(rng, fs, RTE, rows=test_rows)
    sids = np.concatenate([s_tr, s_te])
    ep = np.concatenate([e_tr, e_te])
    test_ids = fs.stimulus_ids[test_rows].tolist()
    times = np.arange(T) / 100 - 0.2
    ch = [f"E{i}" for i in range(C)]
    print(f"\nB. batch: {NTR} train x 4 reps + {NTE} test x {RTE} reps, {C}x{T}, {L} layers x D={D}")

    results = {}
    for sel in ("gcv", "kfold"):
        for dtype in ("float32", "float64"):
            t0 = time.perf_counter()
            eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, alphas=ALPHAS,
                                  dtype=dtype, alpha_selection=sel)
            eng.add_epochs(sids, ep)
            res = eng.refresh()
            results[(sel, dtype)] = (time.perf_counter() - t0, res)
            print(f"  neuralign {sel:5s} {dtype}: {results[(sel, dtype)][0]:.2f} s")

    # ---- the alternatives: himalaya RidgeCV + rsatoolbox
    import himalaya.backend
    import rsatoolbox
    from himalaya.ridge import RidgeCV
    from sklearn.model_selection import KFold

    def stimulus_means(ids_subset):
        order = {s: i for i, s in enumerate(ids_subset)}
        y = np.zeros((len(ids_subset), C * T))
        cnt = np.zeros(len(ids_subset))
        for s, e in zip(sids, ep):
            i = order.get(s)
            if i is not None:
                y[i] += e.ravel()
                cnt[i] += 1
        return y / cnt[:, None]

    tr_ids = fs.stimulus_ids[:NTR].tolist()
    alt = {}
    for be in ("numpy", "torch"):
        try:
            himalaya.backend.set_backend(be, on_error="raise")
        except Exception as e:  # noqa: BLE001
            print(f"  himalaya backend {be} unavailable: {e}")
            continue
        dtype = np.float64 if be == "numpy" else np.float32
        t0 = time.perf_counter()
        y_tr = stimulus_means(tr_ids).astype(dtype)
        y_te = stimulus_means(test_ids).astype(dtype)
        r_all = []
        for li in range(L):
            x = np.asarray(fs.arrays[li], dtype=dtype)
            mu, sd = x[:NTR].mean(0), x[:NTR].std(0)
            x = (x - mu) / sd
            model = RidgeCV(alphas=ALPHAS, cv=KFold(5), fit_intercept=True)
            model.fit(x[:NTR], y_tr)
            pred = himalaya.backend.get_backend().to_numpy(model.predict(x[NTR:]))
            pc = pred - pred.mean(0)
            yc = y_te - y_te.mean(0)
            r_all.append((pc * yc).sum(0) / np.sqrt((pc**2).sum(0) * (yc**2).sum(0)))
        t_ridge = time.perf_counter() - t0
        alt[be] = t_ridge
        print(f"  himalaya RidgeCV ({be}): {t_ridge:.2f} s")

    t0 = time.perf_counter()
    y_te = stimulus_means(test_ids).reshape(NTE, C, T)
    model_rdms = rsatoolbox.rdm.concat([
        rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(np.asarray(f[NTR:], float)),
                                method="correlation")
        for f in fs.arrays
    ])
    rho = np.zeros((L, T))
    for t in range(T):
        d = rsatoolbox.data.Dataset(y_te[:, :, t])
        eeg_rdm = rsatoolbox.rdm.calc_rdm(d, method="correlation")
        rho[:, t] = rsatoolbox.rdm.compare(model_rdms, eeg_rdm, method="spearman")[:, 0]
    t_rsa = time.perf_counter() - t0
    print(f"  rsatoolbox RSA: {t_rsa:.2f} s")
    ours = results[("gcv", "float32")][1]
    print(f"  max |RSA rho neuralign - rsatoolbox| = {np.nanmax(np.abs(ours.rsa_spearman - rho)):.2e}")
    best_alt = min(alt.values()) + t_rsa if alt else float("nan")
    for key, (t, _) in results.items():
        print(f"  ratio (himalaya best backend + rsatoolbox) / neuralign {key[0]} {key[1]}: "
              f"{best_alt / t:.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--only", choices=["live", "batch"], default=None)
    a = p.parse_args()
    from threadpoolctl import threadpool_info

    print("BLAS:", [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()])
    if a.only in (None, "live"):
        bench_live(a.quick)
    if a.only in (None, "batch"):
        bench_batch(a.quick)


if __name__ == "__main__":
    main()
