"""One model run: build the components, run the kernel, collect the results.

Components receive only their own typed config section and their own named random
streams (``sim.streams.Streams``), never a global generator.
"""
from __future__ import annotations

import time

from models.database import Database, Pool
from models.instance import Fleet
from models.load_balancer import LoadBalancer
from models.request import OUTCOMES
from models.sources import OpenLoopSource, SessionSource
from models.endpoints import RequestFactory
from models.workload import Calendar
from sim.engine import Kernel
from sim.metrics import Metrics
from sim.scenario import Scenario
from sim.streams import Streams

__all__ = ["Model"]

UNAVAILABLE = OUTCOMES.index("unavailable")


class Model:
    """build (``__init__``) -> ``run()`` -> ``summary()`` / ``rows``."""

    def __init__(self, scenario: Scenario, seed: int | None = None):
        self.scenario = sc = scenario
        self.seed = sc.seed if seed is None else int(seed)
        self.kernel = k = Kernel()
        self.streams = streams = Streams(self.seed)
        self.db = Database(k, sc.database, streams.get("database.connect"))
        self.lb = LoadBalancer(sc.load_balancer, streams.get("load_balancer"))
        self.metrics = Metrics(k, sc.metrics.interval, sc.warmup, sc.horizon, probes=[])
        self._arrive, self._record = self.metrics.arrive, self.metrics.done
        flows = any(ol.flow for ol in sc.workload.open_loop)
        self._done = self._done_with_flow if flows else self._record   # no flows: only record
        self.fleet = Fleet(k, sc.instances, sc.pricing.plans, self.lb, self._make_pool, self._done)
        wl = sc.workload
        self.sources: list = []
        self.sessions = None
        if wl.sessions is not None:
            cal = Calendar(wl.start, wl.sessions.events)
            factory = RequestFactory(wl.endpoints, streams, "sessions")
            self.sessions = SessionSource(k, wl.sessions, cal, wl.endpoints, factory, self.route, streams)
            self.sources.append(self.sessions)
        for i, ol in enumerate(wl.open_loop):
            factory = RequestFactory(wl.endpoints, streams, f"open_loop.{i}")
            self.sources.append(OpenLoopSource(k, ol, wl.endpoints, factory, self.route, streams, i))
        self.metrics.probes += [self.fleet.sample, self.db.sample]
        if self.sessions is not None:
            self.metrics.probes.append(self.sessions.sample)
        self.wall_seconds = 0.0

    def _make_pool(self, instance):
        pool = Pool(self.kernel, self.db, self.scenario.database.pool, instance)
        pool.wait_hist = self.metrics.pool_wait
        return pool

    # -- request path -----------------------------------------------------------
    def route(self, req) -> None:
        self._arrive()
        ready = self.lb.ready
        if ready:
            self.lb.pick().accept(req)
        else:
            self._done(req, UNAVAILABLE)

    def _done_with_flow(self, req, outcome: int) -> None:
        self._record(req, outcome)
        if req.flow is not None:
            req.flow[0].follow(req)

    # -- run ------------------------------------------------------------------
    def run(self) -> "Model":
        sc = self.scenario
        for _ in range(sc.instances.count):
            self.fleet.start()
        for src in self.sources:
            src.start()
        self.kernel.env.process(self.metrics.process(self.kernel.env))
        t = time.perf_counter()
        self.kernel.run(sc.horizon)
        self.wall_seconds = time.perf_counter() - t
        return self
