"""Statistics of ``neuralign analyze`` computed once and cached (see
:mod:`neuralign.offline.stat_cache`): per feature set, then the variance partition."""

from __future__ import annotations

import argparse
import functools
import hashlib
import sys
import time

import numpy as np


class StatsRunner:
    """Computes or reads back the statistics of one ``analyze`` run.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line (engine settings, ``--cache``, ``--no-cache``).
    data : EpochData
        The epochs (digested for the cache key).
    specs : dict of str to Path
        Label -> feature file.
    options : StatOptions
        Permutations, resamples, seed, alpha.
    quiet : bool
        No progress bar or message.
    """

    def __init__(self, args: argparse.Namespace, data, specs: dict, options, *,
                 quiet: bool) -> None:
        from ..offline.stat_cache import StatCache, data_digest, default_cache_dir, file_digest

        self.options, self.quiet = options, quiet
        self.cache = None if args.no_cache else StatCache(args.cache or default_cache_dir())
        self.settings = {
            "alphas": args.alphas, "folds": args.folds,
            "alpha_selection": args.alpha_selection, "dtype": args.dtype,
            "backend": args.backend, **options.to_dict()}
        self.info: dict = {"dir": None if self.cache is None else str(self.cache.root),
                           "read": [], "written": []}
        self.data_digest = data_digest(data) if self.cache is not None else ""
        self.digests = ({k: file_digest(p) for k, p in specs.items()}
                        if self.cache is not None else {})

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr)

    def _key(self, what: str, features: dict, extra: dict) -> str:
        from ..offline.stat_cache import cache_key

        return cache_key(data=self.data_digest, features=features,
                         settings={**self.settings, "what": what, **extra})

    def layer_statistics(self, group, results) -> dict:
        """Each feature set's :class:`~neuralign.offline.analysis.LayerStatistics`.

        Parameters
        ----------
        group : ModelGroup
            The refreshed engines.
        results : dict of str to AlignmentResult
            Their maps.

        Returns
        -------
        dict of str to LayerStatistics
        """
        from ..offline.analysis import LayerStatistics, layer_statistics
        from .analyze_common import Bars

        o = self.options
        out = {}
        for label, eng in group.engines.items():
            key = None
            if self.cache is not None:
                ids = hashlib.blake2b("\n".join(eng.features.stimulus_ids.tolist()).encode(),
                                      digest_size=16).hexdigest()
                key = self._key("layers", {label: self.digests[label]}, {"ids": ids})
                hit = self.cache.get(key)
                if hit is not None:
                    out[label] = LayerStatistics.from_saved(label, hit[0]["stats"], hit[1])
                    self.info["read"].append({"what": f"statistics {label}", "key": key})
                    self._say(f"statistics of {label}: read from the cache ({key[:12]})")
                    continue
            n_steps = len(results[label].layers) * (bool(o.n_boot) + bool(o.n_perm))
            held = eng.held_out
            if held is not None and o.n_perm:
                # measured: 1000 permutations of 2000 stimuli x 1700 targets ~ 16 s per layer
                est = (16.0 * (held.n / 2000) ** 2 * (o.n_perm / 1000) * len(results[label].layers)
                       * held.y.shape[1] / 1700)
                if est > 120:
                    self._say(f"statistics of {label}: the permutation test over {held.n} "
                              f"scored stimuli takes about {est / 60:.0f} min of CPU "
                              "(it grows with the square of the stimuli; --permutations 0 "
                              "skips it, a designated test set makes it small)")
            bars = Bars({f"statistics {label}": n_steps}, quiet=self.quiet)
            t0 = time.perf_counter()
            try:
                st = layer_statistics(eng.held_out, results[label], label=label, options=o,
                                      progress=functools.partial(bars,
                                                                 what=f"statistics {label}"))
            finally:
                bars.close()
            self._say(f"statistics of {label}: {o.n_boot} bootstrap resamples, {o.n_perm} "
                      f"permutations in {time.perf_counter() - t0:.1f} s")
            if key is not None:
                self.cache.put(key, {"stats": st.to_dict()}, st.arrays())
                self.info["written"].append({"what": f"statistics {label}", "key": key})
            out[label] = st
        return out

    def partition(self, group, stats: dict, chosen: dict):
        """The variance partition (computed or read back) and the layers that entered.

        Parameters
        ----------
        group : ModelGroup
            The refreshed engines.
        stats : dict of str to LayerStatistics
            Each set's statistics (default layers: highest peak r).
        chosen : dict of str to str
            ``--partition-layer`` choices.

        Returns
        -------
        tuple of (PartitionResult, dict)
            The partition and its JSON record.
        """
        from ..offline.comparison import (
            partition_arrays,
            partition_from_saved,
            partition_layers,
            partition_meta,
            partition_sets,
        )

        layers = partition_layers(group, stats, chosen)
        names = {k: group.engines[k].features.layers[i] for k, i in layers.items()}
        o = self.options
        key = None
        if self.cache is not None:
            key = self._key("partition", dict(self.digests), {"layers": names,
                                                              "labels": list(layers)})
            hit = self.cache.get(key)
            if hit is not None:
                self.info["read"].append({"what": "partition", "key": key})
                self._say(f"variance partition: read from the cache ({key[:12]})")
                return partition_from_saved(hit[0]["partition"], hit[1]), hit[0]["partition"]
        self._say(f"variance partition of {', '.join(f'{k}:{v}' for k, v in names.items())} "
                  f"({o.n_boot} bootstrap resamples, {o.n_perm} permutations)...")
        from .analyze_common import Bars

        t0 = time.perf_counter()
        n = len(layers)
        bars = Bars({"partition": 2 ** n - 1 + n}, quiet=self.quiet)
        try:
            res = partition_sets(group, layers, n_boot=o.n_boot, n_perm=o.n_perm,
                                 seed=o.seed,
                                 progress=functools.partial(bars, what="partition"))
        finally:
            bars.close()
        meta = partition_meta(res, names)
        self._say(f"variance partition done in {time.perf_counter() - t0:.1f} s")
        if key is not None:
            self.cache.put(key, {"partition": meta}, {k: np.asarray(v) for k, v in
                                                      partition_arrays(res).items()})
            self.info["written"].append({"what": "partition", "key": key})
        return res, meta
