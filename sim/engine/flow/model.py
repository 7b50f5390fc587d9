"""The fast mode's model: the request-level ``Model`` with fluid work instead of requests.

Everything above the request path is the request level's own: the fleet and its
lifecycle, the load balancer's ready list, the autoscaling controller and its
``Observation``s, schedules, faults, billing, the metrics' intervals and the summary.
What differs: no request sources, timeout sweeper, socket pings or invalidation
process; ``FlowKernel`` advances the ``FlowEngine`` to each event's time before the
event runs; ``FlowMetrics`` takes expected counts and latency distributions.
"""
from __future__ import annotations

import math
import time

import numpy as np

from capsim.engine.flow.fluid import FlowEngine
from capsim.engine.flow.latency import GammaPlacer
from capsim.engine.flow.validity import Validity
from capsim.engine.histogram import LogHistogram
from capsim.engine.kernel import Kernel
from capsim.engine.metrics import REL_ERR, Metrics
from capsim.engine.model import Model
from capsim.models.request import OUTCOMES

__all__ = ["FlowModel", "FlowKernel", "FlowMetrics"]

INF = float("inf")


class FlowKernel(Kernel):
    """The request-path calendar (the fleet's timers) and SimPy, with the fluid advanced first."""

    advance = None        # callable(t): set by the model

    def later(self, time: float, handler, arg=None) -> None:
        """No far calendar here: ``run`` below reads ``heap`` only, so every event goes there."""
        self.at(time, handler, arg)

    def run(self, until: float) -> None:
        heap, env = self.heap, self.env
        from heapq import heappop
        while True:
            th = heap[0][0] if heap else INF
            te = env.peek()
            t = min(th, te)
            if t > until:
                break
            self.advance(t)
            self.now = t
            if th <= te:
                _, _, handler, arg = heappop(heap)
                handler(arg)
            else:
                env.step()
        self.advance(until)
        self.now = until
        if env.now < until:
            env.run(until=until)


class FlowMetrics(Metrics):
    """Expected counts: each interval's paths are placed into the histograms when it closes."""
    COUNTS = np.float64

    def __init__(self, kernel, interval, warmup, horizon, probes, endpoints=("all",), outside=0.0):
        super().__init__(kernel, interval, warmup, horizon, probes, endpoints, outside)
        proto = LogHistogram(rel_err=REL_ERR)
        self.placer = GammaPlacer(proto.inv_log_gamma, proto.offset, proto.nbuckets)
        self.hist = np.zeros((self._slots_n, proto.nbuckets))   # slot = outcome * endpoints + endpoint
        self._mix = np.zeros(self._ne)                # requests per endpoint so far: spreads outcome-only counts
        self._paths = None                            # (F, E, 3): count, sum, sum of squares
        self._fate_outcome = ()
        self._extra: dict = {}                        # outcome -> [count, sum, sum of squares]
        self._pool_now = np.zeros(proto.nbuckets)
        self._pool_total = np.zeros(proto.nbuckets)

    # -- fed by the engine -------------------------------------------------------------------------
    def add_paths(self, counts, mean, var, fate_outcome, arrivals: float, in_system: float, dt: float) -> None:
        n = counts.sum(axis=(1, 2))
        s1 = (counts * mean).sum(axis=(1, 2))
        s2 = (counts * (var + mean * mean)).sum(axis=(1, 2))
        block = np.stack([n, s1, s2], axis=-1)
        if self._paths is None:
            self._paths = np.zeros_like(block)
            self._fate_outcome = fate_outcome
        self._paths += block
        ne = self._ne
        self._mix += n.sum(axis=0)
        for f, o in enumerate(fate_outcome):
            for e in range(ne):
                self.lat_sum[o * ne + e] += float(s1[f, e])
        self.arrivals += arrivals
        self._area += 0.5 * (self.in_system + in_system) * dt
        self.in_system = in_system
        self._t = self.kernel.now if self.kernel.now > self._t else self._t

    def add_outcome(self, outcome: int, count: float, mean: float, var: float, arrivals: float) -> None:
        if count <= 0 and arrivals <= 0:
            return
        acc = self._extra.setdefault(outcome, [0.0, 0.0, 0.0])
        acc[0] += count
        acc[1] += count * mean
        acc[2] += count * (var + mean * mean)
        for e, share in enumerate(self._shares()):
            self.lat_sum[outcome * self._ne + e] += count * share * mean
        self.arrivals += arrivals

    def _shares(self) -> np.ndarray:
        """Each endpoint's share of the requests so far (equal before the first): where an
        outcome known only in total (a timeout, a crash) is laid out per endpoint."""
        total = float(self._mix.sum())
        return self._mix / total if total > 0 else np.full(self._ne, 1.0 / self._ne)

    def add_pool_waits(self, acquires: float, waited: tuple, timeouts: float, patience: float) -> None:
        n_wait, mean_wait = waited
        immediate = max(acquires - n_wait - timeouts, 0.0)
        self._pool_now[0] += immediate
        if n_wait > 0 and mean_wait > 0:
            self.placer.place(self._pool_now, n_wait, mean_wait, mean_wait * mean_wait)
        if timeouts > 0:
            self._pool_now[self.placer.bucket(patience)] += timeouts

    # -- intervals -----------------------------------------------------------------------------------
    def _flush(self) -> None:
        hist, place, ne = self.hist, self.placer.place, self._ne
        if self._paths is not None:
            for f, o in enumerate(self._fate_outcome):
                for e, (n, s1, s2) in enumerate(self._paths[f]):
                    if n > 1e-12:
                        m = s1 / n
                        place(hist[o * ne + e], n, m, max(s2 / n - m * m, 0.0))
            self._paths[:] = 0.0
        shares = self._shares()
        for o, (n, s1, s2) in self._extra.items():
            if n > 1e-12:
                m = s1 / n
                for e, share in enumerate(shares):
                    if share > 0:
                        place(hist[o * ne + e], n * share, m, max(s2 / n - m * m, 0.0))
        self._extra = {}

    def close(self, t0: float, t1: float) -> None:
        self._flush()
        self._t = t1
        if t1 > self.warmup:
            self._pool_total += self._pool_now
        self._pool_now[:] = 0.0
        super().close(t0, t1)

    def interval_hist(self) -> np.ndarray:
        return self.hist.copy()

    def reset_hist(self) -> None:
        self.hist[:] = 0.0

    def finish(self) -> None:
        """After the run: the last interval closed, the pool-wait totals into the summary's histogram."""
        super().finish()
        self.total_pool_wait.counts[:] = self._pool_total.tolist()


class _Sessions:
    """The time-series columns and the count of session starts (expected values)."""

    def __init__(self, engine):
        self.engine = engine
        self._sampled = 0.0

    @property
    def started(self) -> float:
        return self.engine.started

    def sample(self, t0: float, t1: float) -> dict:
        e = self.engine
        starts, self._sampled = e.started - self._sampled, e.started
        return {"sessions": e.arrivals.active_at(t1), "session_starts": starts}


class FlowModel(Model):
    """``Model`` in fast mode (``fidelity: flow``): same build, same outputs, fluid requests."""
    KERNEL, METRICS = FlowKernel, FlowMetrics

    def _build_sources(self) -> None:
        sc = self.scenario
        self.sources = []
        self.flow = FlowEngine(self)
        self.flow.validity = Validity(sc.warmup, sc.horizon, sc.flow.max_utilisation)
        self.kernel.advance = self.flow.advance
        self.sessions = _Sessions(self.flow) if sc.workload.sessions is not None else None
        self.sockets = self.flow if self.flow.socket_cfg is not None else None
        if self.sockets is not None:
            self.fleet.on_lost.append(self.flow.lost)
            self.fleet.socket_mb = sc.sockets.memory_mb

    def fidelity(self) -> dict:
        return self.flow.fidelity_block()

    def run(self, progress=None) -> "FlowModel":
        """Advance to the horizon step by step; ``progress(horizon, horizon)`` once at the end
        (a fast-mode run takes seconds)."""
        sc = self.scenario
        for _ in range(sc.instances.count):
            self.fleet.start(ready_after=0.0)
        env = self.kernel.env
        env.process(self.metrics.process(env))
        if self.controller is not None:
            env.process(self.controller.process(env))
        if sc.instances.out_of_memory == "restart":   # fluid memory moves slowly: checked once per interval
            env.process(self.fleet.watch_memory(env, tick=sc.metrics.interval))
        self.faults.start(env)
        t = time.perf_counter()
        self.kernel.run(sc.horizon)
        self.metrics.finish()
        self.wall_seconds = time.perf_counter() - t
        if progress is not None:
            progress(sc.horizon, sc.horizon)
        return self
