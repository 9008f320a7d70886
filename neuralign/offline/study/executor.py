"""Where a study's tasks run: in this process or on dask.distributed.

:class:`Executor` maps a task function over task dicts in-process (``scheduler="none"``), on a
``dask.distributed.LocalCluster`` bound to 127.0.0.1 (``"local"``), or on an existing
scheduler (its address). BLAS threads are pinned (:func:`set_blas_threads`) so that every mode
gives bit-identical results.
"""

from __future__ import annotations

import warnings

from ...errors import NeuralignError


def set_blas_threads(n: int | None) -> None:
    """Pin this process's BLAS/OpenMP pools to ``n`` threads (``None``: leave them).

    Process-wide and idempotent (concurrent tasks set the same value). The same thread count in
    every mode (dask worker processes run with 1) makes single-process and cluster runs
    bit-identical: BLAS sums in a different order with a different thread count.
    """
    if n is None:
        return
    from threadpoolctl import threadpool_info, threadpool_limits

    if any(p.get("num_threads") != n for p in threadpool_info()):
        threadpool_limits(limits=n)


class Executor:
    """Runs task functions in-process or on dask.distributed (LocalCluster on 127.0.0.1)."""

    def __init__(self, scheduler: str | None = "none", *, workers: int = 2,
                 processes: bool = False, threads_per_worker: int = 1,
                 blas_threads: int | None = 1) -> None:
        self.scheduler = "none" if scheduler in (None, "", "none", "sync", "single") else scheduler
        self.workers = int(workers)
        self.processes = bool(processes)
        self.threads_per_worker = int(threads_per_worker)
        self.blas_threads = blas_threads
        self._limiter = None
        self.client = None
        self.cluster = None

    def __enter__(self) -> Executor:
        if self.blas_threads is not None:  # tasks in this process (single / thread workers)
            from threadpoolctl import threadpool_limits

            self._limiter = threadpool_limits(limits=self.blas_threads)
        if self.scheduler == "none":
            return self
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - extra not installed
            raise NeuralignError("dask.distributed is not installed (extra 'scale')") from e
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.scheduler == "local":
                # threads: in-process "inproc://" transport, no socket at all; processes:
                # scheduler and workers listen on the loopback interface only
                net = {"host": "127.0.0.1"} if self.processes else {}
                self.cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=self.threads_per_worker,
                    processes=self.processes, dashboard_address=None, silence_logs=40, **net,
                )
                self.client = Client(self.cluster)
            else:
                try:
                    self.client = Client(self.scheduler, timeout="10s")
                except (OSError, TimeoutError) as e:
                    raise NeuralignError(f"cannot reach dask scheduler {self.scheduler!r} ({e})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._limiter is not None:
            self._limiter.restore_original_limits()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    @property
    def description(self) -> str:
        """Where the tasks run, in words (for the summary)."""
        if self.scheduler == "none":
            return "single process"
        if self.scheduler == "local":
            kind = "processes on 127.0.0.1" if self.processes else "threads, in-process"
            return f"dask LocalCluster ({self.workers} workers, {kind})"
        return f"dask scheduler {self.scheduler}"

    def map(self, fn, tasks: list[dict], *, desc: str, progress: bool = True) -> list[dict]:
        """Run ``fn`` on every task, here or on the cluster.

        Parameters
        ----------
        fn : callable
            ``fn(task) -> dict`` (picklable for process workers).
        tasks : list of dict
            The tasks.
        desc : str
            Progress-bar label.
        progress : bool
            Show a progress bar.

        Returns
        -------
        list of dict
            The outcomes, in completion order.
        """
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress or not tasks)
        out: list[dict] = []
        try:
            if self.client is None:
                for t in tasks:
                    out.append(fn(t))
                    bar.update(1)
                return out
            from distributed import as_completed

            futs = self.client.map(fn, tasks, pure=False)
            for f in as_completed(futs):
                out.append(f.result())
                bar.update(1)
            return out
        finally:
            bar.close()
