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
cancelled) and raises ``Interrupted`` with the results finished so far. ``Progress`` prints a live line on a terminal and
rate-limited log lines otherwise (one per ``every`` seconds, plus the last).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

__all__ = ["run_jobs", "Interrupted", "Progress", "cluster_address", "default_workers"]


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


class Progress:
    """``done/total`` on stderr: a live line on a terminal, else a log line every ``every`` s."""

    def __init__(self, total: int, label: str, stream=None, every: float = 10.0, enabled: bool = True,
                 heartbeat: float = 60.0):
        self.total, self.label, self.every, self.enabled = total, label, every, enabled and total > 0
        self.heartbeat = heartbeat
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done, self.t0, self._last = 0, time.monotonic(), -float("inf")

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        final = self.done >= self.total
        if self.tty:
            self.stream.write("\r" + self._text(now) + ("\n" if final else ""))
            self.stream.flush()
        elif final or now - self._last >= self.every:
            self._last = now
            self.stream.write(self._text(now) + "\n")
            self.stream.flush()

    def tick(self) -> None:
        """Between finishes: on a terminal refresh the line, else a log line when nothing was
        logged for ``heartbeat`` s, so a long job shows it is alive before its first run ends."""
        now = time.monotonic()
        if not self.enabled or self.done >= self.total:
            return
        if self.tty:
            self.stream.write("\r" + self._text(now))
        elif now - max(self._last, self.t0) >= self.heartbeat:
            self._last = now
            self.stream.write(self._text(now) + "\n")
        else:
            return
        self.stream.flush()

    def _text(self, now: float) -> str:
        dt = now - self.t0
        text = f"{self.label}: {self.done}/{self.total} jobs ({100 * self.done / self.total:.0f}%), {dt:.1f} s"
        if 0 < self.done < self.total:
            text += f", ~{dt / self.done * (self.total - self.done):.0f} s left"
        return text


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
    return [done[i] for i in range(len(jobs))]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


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
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_ignore_sigint)
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
