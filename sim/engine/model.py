"""One model run: build the components, run the kernel, collect the results.

Components receive only their own typed config section and their own named random
streams (``capsim.engine.streams.Streams``), never a global generator.
"""
from __future__ import annotations

import time
from collections import deque

from capsim.models.autoscaling import build_parts
from capsim.models.autoscaling.fixed import Bounded, FixedConfig
from capsim.models.database import Database, Pool
from capsim.models.distributions import draws
from capsim.models.faults import FaultInjector
from capsim.models.fleet import Fleet
from capsim.models.load_balancer import LoadBalancer
from capsim.models.middleware import Middleware
from capsim.models.pricing import Billing
from capsim.models.sockets import Sockets
from capsim.models.timeouts import TimeoutSweeper
from capsim.models.request import CRASHED, OUTCOMES, TERMINATED, TIMEOUT
from capsim.models.sources import OpenLoopSource, SessionSource, TraceSource
from capsim.models.endpoints import RequestFactory
from capsim.models.workload import Calendar
from capsim.engine.autoscaler import Controller
from capsim.engine.kernel import Kernel
from capsim.engine.metrics import Metrics
from capsim.scenario.config import Scenario
from capsim.engine.streams import Streams

__all__ = ["Model"]

UNAVAILABLE = OUTCOMES.index("unavailable")
CHUNKS = 200          # stretches of simulated time between progress reports
FLOW_ENDERS = frozenset((CRASHED, TERMINATED))


class Model:
    """build (``__init__``) -> ``run()`` -> ``summary()`` / ``rows``."""
    KERNEL, METRICS = Kernel, Metrics          # the fast mode (capsim.engine.flow) brings its own

    def __init__(self, scenario: Scenario, seed: int | None = None, policy=None, allow_code: bool = False):
        self.scenario = sc = scenario
        self.seed = sc.seed if seed is None else int(seed)
        self.kernel = self.KERNEL()
        self.streams = Streams(self.seed)
        self.wall_seconds = 0.0
        self._build_service()
        self._build_sources()
        self.billing = Billing(sc.pricing, self.fleet)
        self.metrics.probes += [self.fleet.sample, self.db.sample, self.billing.sample, self.middleware.sample]
        self.metrics.probes += [lambda t0, t1, db=db, i=i: db.sample(t0, t1, f"replica{i}")
                                for i, db in enumerate(self.replicas, 1)]
        if self.sessions is not None:
            self.metrics.probes.append(self.sessions.sample)
        self.controller = self._controller(policy, allow_code)
        self.baseline: dict = {}     # counters at the end of the warm-up (summary = since then)
        self.metrics.on_warmup.append(self._snapshot)
        self.faults = FaultInjector(sc.faults, self.fleet, self.db, self.streams.get("faults.crash_times"),
                                    self.streams.get("faults.crash_pick"), self.middleware.redis_down)
        self.invalidator = None
        if sc.cache is not None and sc.cache.invalidations:
            from capsim.models.cache import Invalidator
            self.invalidator = Invalidator(sc.cache, self._cache_stores, self.streams.get("cache.invalidations"))

    def _build_service(self) -> None:
        """Metrics, database, load balancer, fleet, and how a finished request is recorded."""
        sc, k, streams = self.scenario, self.kernel, self.streams
        lat = sc.load_balancer.latency
        outside = float(lat.value) if lat.dist == "constant" else draws(lat, streams.get("load_balancer.latency"))
        self.metrics = self.METRICS(k, sc.metrics.interval, sc.warmup, sc.horizon, probes=[],
                                    endpoints=list(sc.workload.endpoints), outside=outside)
        self._arrive, self._record = self.metrics.arrive, self.metrics.done
        flows = any(ol.all_flows() for ol in sc.workload.open_loop)
        self._done = self._done_with_flow if flows else self._record   # no flows: only record
        self._follow: deque = deque()         # flow steps to follow, in the order they ended
        timeout = sc.instances.request_timeout
        self.sweeper = TimeoutSweeper(timeout, self.metrics.timed_out) if timeout else None
        self._track = self.sweeper.track if self.sweeper is not None else None   # the sweeper follows each request
        self.db = Database(k, sc.database, streams.get("database.connect"))
        r = sc.database.replicas
        self.replicas = [Database(k, sc.database.replica(), streams.get(f"replica.{i}.connect"))
                         for i in range(r.count)] if r else []
        self.lb = LoadBalancer(sc.load_balancer, streams.get("load_balancer"))
        self.middleware = Middleware(k, sc.cache, sc.rate_limit, sc.circuit_breaker)
        self.fleet = Fleet(k, sc.instances, sc.pricing.plans, self.lb, self._make_pool, self._done,
                           streams.get("fleet.provisioning"), self.middleware.equip)

    def _build_sources(self) -> None:
        sc, k, streams, wl = self.scenario, self.kernel, self.streams, self.scenario.workload
        self.sources: list = []
        self.sessions = None
        if wl.sessions is not None:
            cal = Calendar(wl.start, wl.sessions.events)
            factory = RequestFactory(wl.endpoints, streams, "sessions", *self._request_options())
            self.sessions = SessionSource(k, wl.sessions, cal, wl.endpoints, factory, self.route, streams, sc.horizon)
            self.sources.append(self.sessions)
        self.sockets = None
        if self.sessions is not None and sc.sockets is not None:
            factory = RequestFactory(wl.endpoints, streams, "reconnects", *self._request_options())
            self.sockets = Sockets(k, sc.sockets, self.fleet, self.route, factory, streams.get("sockets.reconnect"))
            self.sessions.use_sockets(self.sockets)
            self.fleet.on_lost.append(self.sockets.lost)
            self.fleet.socket_mb = sc.sockets.memory_mb
        for i, ol in enumerate(wl.open_loop):
            factory = RequestFactory(wl.endpoints, streams, f"open_loop.{i}", *self._request_options())
            self.sources.append(OpenLoopSource(k, ol, wl.endpoints, factory, self.route, streams, i, sc.horizon))
        if wl.trace is not None:
            factory = RequestFactory(wl.endpoints, streams, "trace", *self._request_options())
            self.sources.append(TraceSource(k, wl.trace, wl.endpoints, factory, self.route, streams, sc.horizon))

    def _request_options(self) -> tuple:
        r = self.scenario.database.replicas
        return self.scenario.cache, self.scenario.rate_limit is not None, (r.count, r.read_share) if r else None

    def _controller(self, policy, allow_code: bool):
        sc = self.scenario
        config = sc.autoscaler
        if config is None and policy is None and sc.schedule is None and sc.predictive is None:
            return None
        if config is None:   # a Python policy gets the default bounds 1..10; a schedule, a fixed fleet
            config = Bounded() if policy is not None else FixedConfig(instances=sc.instances.count)
        cal = Calendar(sc.workload.start, sc.workload.sessions.events if sc.workload.sessions else [])
        policy, schedule, prescaler = build_parts(config, sc.schedule, sc.predictive, sc.workload.start,
                                                  [(a, b) for a, b, _ in cal.events], allow_code, policy)
        return Controller(self.kernel, self.fleet, policy, config.min_instances, config.max_instances,
                          schedule, prescaler)

    def counters(self) -> dict:
        return {**self.middleware.counters(), "oom_restarts": self.fleet.oom_restarts,
                "reconnects": self.sockets.reconnects if self.sockets is not None else 0,
                "crashes": self.faults.crashes}

    def fidelity(self) -> dict:
        """The summary's ``fidelity`` block: how this run computed its requests."""
        return {"mode": "request"}

    def _snapshot(self) -> None:
        self.baseline = self.counters()

    def _cache_stores(self) -> list:
        m = self.middleware
        return [m.shared_cache] if m.shared_cache is not None else [c for i in self.fleet.running for c in i.caches()]

    def _make_pool(self, proc) -> None:
        """A process's pg.Pool for the primary, and one per read replica."""
        proc.pools = []
        for db in [self.db, *self.replicas]:
            pool = Pool(self.kernel, db, db.config.pool, proc)
            pool.wait_hist = self.metrics.pool_wait
            proc.pools.append(pool)
        proc.pool = proc.pools[0]

    # -- request path -----------------------------------------------------------
    def route(self, req, inst=None, session=None) -> None:
        """A request reaches the load balancer (or, over a socket, its instance and the session's process)."""
        if self._track is not None:
            self._track(req)
        self._arrive(req)
        if inst is not None:
            inst.accept(req, session)
        elif self.lb.ready:
            self.lb.pick().accept(req)
        else:
            self._done(req, UNAVAILABLE)

    def watch(self, on_done=None, on_arrive=None) -> None:
        """Before ``run()``: call ``on_arrive(req)`` for every request that arrives and
        ``on_done(req, outcome, now)`` once for every outcome recorded (timeouts included),
        e.g. to write a request log. Costs a function call per request."""
        if on_arrive is not None:
            arrive = self._arrive

            def arrived(req):
                on_arrive(req)
                arrive(req)
            self._arrive = arrived
        if on_done is not None:
            record, now = self._record, lambda: self.kernel.now

            def recorded(req, outcome):
                if record(req, outcome):
                    on_done(req, outcome, now())
                    return True
                return False
            self._record = recorded
            self._done = self._done_with_flow if self._done == self._done_with_flow else recorded
            self.fleet.done = self._done
            if self.sweeper is not None:
                timed_out = self.sweeper.record

                def gave_up(req, timeout):
                    if not req.done:
                        on_done(req, TIMEOUT, now())
                    timed_out(req, timeout)
                self.sweeper.record = gave_up

    def _done_with_flow(self, req, outcome: int) -> None:
        """As Artillery: an HTTP error (429, 5xx) continues the user's flow; a network-level
        failure (the connection died: crashed, terminated) ends it, as does a timeout.

        A step that ends at once (no instance ready) while its flow is being followed is
        queued, not followed from inside: a long flow is a loop, never a deep recursion."""
        if self._record(req, outcome) and req.flow is not None and outcome not in FLOW_ENDERS:
            self._follow.append(req)
            if len(self._follow) > 1:
                return                       # an outer call is following: it takes this one next
            while self._follow:
                nxt = self._follow[0]
                nxt.flow[0].follow(nxt)
                self._follow.popleft()

    # -- run ------------------------------------------------------------------
    def run(self, progress=None) -> "Model":
        """Simulate to the horizon. ``progress(simulated_seconds, horizon)``, if given, is
        called after each of ``CHUNKS`` equal stretches of simulated time (the kernel runs
        chunk by chunk, with the same events in the same order as in one go)."""
        sc = self.scenario
        for _ in range(sc.instances.count):
            self.fleet.start(ready_after=0.0)
        env = self.kernel.env
        for src in self.sources:
            src.start()
        env.process(self.metrics.process(env))
        if self.controller is not None:
            env.process(self.controller.process(env))
        if self.sweeper is not None:
            env.process(self.sweeper.process(env))
        if self.invalidator is not None:
            env.process(self.invalidator.process(env))
        if self.sockets is not None:
            env.process(self.sockets.process(env))
        if sc.instances.out_of_memory == "restart":
            env.process(self.fleet.watch_memory(env))
        self.faults.start(env)
        t = time.perf_counter()
        for until in self._chunks(progress is not None):
            self.kernel.run(until)
            if progress is not None:
                progress(until, sc.horizon)
        self.metrics.finish()
        self.wall_seconds = time.perf_counter() - t
        return self

    def _chunks(self, chunked: bool) -> list[float]:
        horizon = self.scenario.horizon
        if not chunked:
            return [horizon]
        return [horizon * k / CHUNKS for k in range(1, CHUNKS)] + [horizon]
