"""Run independent jobs in-process, on local worker processes, or on a Dask cluster.

``run_jobs(fn, jobs, workers=..., cluster=...)`` calls ``fn(job)`` for every job and
returns the results in job order, whatever order they finish in: each job carries its
own seed, so the numbers do not depend on where or when it ran.

- ``workers=1``: in this process, one after another.
- otherwise (default: every core): ``concurrent.futures.ProcessPoolExecutor``, its
  workers forked from this process when it runs a single thread, else started by the
  ``forkserver`` method (forking a multi-threaded process can deadlock; then a script
  needs the usual ``if __name__ == "__main__":`` guard).
- ``cluster="tcp://host:8786"`` (or ``DASK_SCHEDULER_ADDRESS``), or a
  ``distributed.Client``: Dask's ``Client.map(fn, jobs, pure=False)``. Dask does the
  scheduling; the workers need capsim installed.

Ctrl-C drops the pending jobs (local workers are stopped at once; Dask futures are
cancelled) and raises ``Interrupted`` with the results finished so far. Progress
(``capsim.experiments.progress``): a live bar on a terminal or in a notebook, rate-limited
log lines otherwise. Workers die with the process that started them.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from capsim.experiments.progress import Progress

__all__ = ["run_jobs", "Interrupted", "Progress", "cluster_address", "default_workers"]

PR_SET_PDEATHSIG = 1     # linux/prctl.h


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``run_jobs``: ``done`` maps job index -> result of the jobs that finished."""

    def __init__(self, done: dict):
        super().__init__(f"interrupted after {len(done)} finished jobs")
        self.done = done


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cluster_address(cluster=None):
    """``cluster`` if given, else ``$DASK_SCHEDULER_ADDRESS``, else None (local)."""
    return cluster if cluster is not None else (os.environ.get("DASK_SCHEDULER_ADDRESS") or None)


def run_jobs(fn, jobs: list, *, workers: int | None = None, cluster=None, progress: Progress | None = None,
             on_result=None) -> list:
    """``[fn(job) for job in jobs]``, in parallel; ``on_result(index, result)`` as each finishes."""
    done: dict = {}

    def finished(i, result):
        done[i] = result
        if on_result is not None:
            on_result(i, result)
        if progress is not None:
            progress.update()

    if not jobs:
        return []
    address = cluster_address(cluster)
    try:
        if address is not None:
            _dask(fn, jobs, address, finished)
        elif (workers or default_workers()) <= 1 or len(jobs) == 1:
            for i, job in enumerate(jobs):
                finished(i, fn(job))
        else:
            _local(fn, jobs, min(workers or default_workers(), len(jobs)), finished,
                   progress.tick if progress is not None else None)
    except KeyboardInterrupt:
        raise Interrupted(done) from None
    finally:
        if progress is not None:
            progress.close()
    return [done[i] for i in range(len(jobs))]


def _worker_start(parent: int) -> None:
    """In each worker: Ctrl-C is the parent's to handle, and the worker dies with its parent.

    On Linux the kernel kills it when its parent goes (``PR_SET_PDEATHSIG``); everywhere a
    watchdog thread ends it within a second of finding it has a new parent. Without this a
    SIGKILL/SIGTERM of the main process left workers blocked for ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _die_with_parent()
    parent = os.getppid() if parent == -1 else parent      # under a forkserver: the server
    if os.getppid() != parent:                   # the parent went before we could ask
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="capsim-parent-watch", daemon=True).start()


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass                                     # the watchdog still ends the worker


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _block_sigint():
    """Block SIGINT while workers start (they inherit the mask until they ignore it); returns the old mask."""
    if hasattr(signal, "pthread_sigmask"):
        return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    return None


def _context():
    """``fork`` from a single-threaded process (fast, no ``__main__`` guard needed); with other
    threads running (a Dask client, a GUI), ``forkserver``, as forking threads can deadlock."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["capsim.experiments.replications"])
        return ctx
    return multiprocessing.get_context()


def _local(fn, jobs, workers, finished, tick=None) -> None:
    ctx = _context()
    # a forkserver's workers are its children, not ours: they die with it, and it with us
    parent = os.getpid() if ctx.get_start_method() == "fork" else None
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_start,
                               initargs=(parent,) if parent is not None else (-1,))
    futures = {}
    try:
        mask = _block_sigint()
        try:
            futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        finally:
            if mask is not None:        # a Ctrl-C pressed meanwhile is delivered here
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        pending = set(futures)
        while pending:
            ready, pending = wait(pending, timeout=None if tick is None else 1.0, return_when=FIRST_COMPLETED)
            if not ready and tick is not None:
                tick()
            for f in sorted(ready, key=futures.get):
                finished(futures[f], f.result())
    except BaseException:
        # Stop now, not after the running jobs: end the workers, then the pool marks every
        # pending future failed (cancelling them first trips CPython's manager thread,
        # which then cannot set their exception: InvalidStateError).
        for p in list((getattr(pool, "_processes", None) or {}).values()):
            if p.is_alive():
                p.terminate()
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)


def _dask(fn, jobs, address, finished) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise RuntimeError("--cluster needs Dask distributed: pip install 'capsim[cluster]'") from None
    own = not isinstance(address, Client)
    client = Client(address) if own else address
    futures = []
    try:
        futures = client.map(fn, jobs, pure=False)   # pure=False: never merge look-alike jobs
        index = {f.key: i for i, f in enumerate(futures)}
        for f in as_completed(futures):
            finished(index[f.key], f.result())
    except BaseException:
        if futures:
            client.cancel(futures)
        raise
    finally:
        if own:
            client.close()
