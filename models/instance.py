"""Instances with Node.js semantics (the fleet that starts and stops them: ``capsim.models.fleet``).

An instance runs ``workers`` event loops (default: the plan's vCPUs). CPU work holds
a worker; waiting on the database does not. A request takes a CPU slice, then (if it
needs the database) borrows a connection from its instance's pool and runs its
queries, then takes a second CPU slice (after an await, a request rejoins the queue;
a second slice of zero work needs no worker and the response leaves at once).
Slices queue FIFO for a free worker.
"""
from __future__ import annotations

from heapq import heappush, heapreplace

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.distributions import Distribution, Uniform
from capsim.models.request import CIRCUIT_OPEN, DB_FAILURES, OK
from capsim.models.units import Count, Duration, NonNegative

__all__ = ["InstancesConfig", "Instance"]


class InstancesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    count: Count = Field(1, description="instances running (and ready) at the start")
    plan: str = Field("standard", description="plan name from pricing.plans")
    workers: Count | None = Field(None, description="event-loop threads per instance; default: the plan's vCPUs (at least 1)")
    provisioning: Distribution = Field(Uniform(low=30.0, high=90.0),
                                       description="from start to passing the health check (Render: 30-90 s reported)")
    shutdown_delay: Duration = Field(30.0, description="on scale-in, in-flight requests may finish for this long, then the rest are killed (Render default 30 s)")
    restart_after: Duration = Field(60.0, description="a crashed instance is restarted and healthy again after this (Render: 60 s)")
    memory_base_mb: NonNegative = Field(160.0, description="resident memory of an idle instance (Node + Express + Socket.io)")
    memory_per_request_mb: NonNegative = Field(1.0, description="memory per request in flight")
    out_of_memory: Literal["restart", "ignore"] = Field(
        "restart", description="at the plan's memory the instance crashes and restarts (its sockets reconnect elsewhere); ignore: memory is only reported")
    reject_cpu: Duration = Field(0.0001, description="CPU a request turned away by middleware costs (429, maintenance page)")
    request_timeout: Duration | None = Field(60.0, description="server timeout: unfinished requests end 'timeout' for the client (seed: 60 s); null = none")


class Instance:
    """One service instance: its workers, its pool, and its busy-time statistics.

    Workers serve CPU slices first come, first served. Because slices join in time
    order, a slice's start is known when it joins: it goes to the worker that frees
    up first (Kiefer-Wolfowitz recursion), so no queue or start event is needed.
    """

    def __init__(self, kernel, iid: int, plan: str, workers: int, pool, done):
        self.kernel, self.iid, self.plan, self.workers = kernel, iid, plan, workers
        self.pool = pool
        self._done = done            # done(req, outcome): the request leaves the system
        self.free_at = [kernel.now] * workers   # heap: when each worker is next free
        self.in_flight = 0
        self.accepted = 0            # requests taken, ever
        self.committed = 0.0         # CPU-seconds committed, ever (some may lie in the future)
        self._busy_mark = 0.0        # busy_total at the last take_busy
        self.started_at = kernel.now
        self.ready_at: float | None = None
        self.stopped_at: float | None = None
        self.draining = False
        self.crashes = 0
        self.down_until = 0.0        # after a crash: not healthy before this time
        self.sockets = 0             # Socket.io connections open on it
        self.on_idle = None          # called when a draining instance has nothing in flight
        self.gate = None             # middleware: gate(req) -> False when it turned req away
        self.cache = None            # CacheStore (own in-memory one, or the shared Redis)
        self.cache_rtt = 0.0         # round trip of a cache read (Redis)
        self.breaker = None          # CircuitBreaker around the database
        self.pools = [pool]          # the primary's pool, then one per read replica
        self._on_cpu_done, self._on_cache = self._cpu_done, self._cache_answer

    def accept(self, req) -> None:
        req.inst = self
        self.in_flight += 1
        self.accepted += 1
        if self.gate is not None and not self.gate(req):
            return                     # shed or rate limited: the gate took it from here
        self.cpu(req, req.cpu_pre)

    def cpu(self, req, seconds: float) -> None:
        k = self.kernel
        free_at = self.free_at
        start = free_at[0]
        if start < k.now:
            start = k.now
        end = start + seconds
        heapreplace(free_at, end)
        self.committed += seconds
        heappush(k.heap, (end, next(k.seq), self._on_cpu_done, req))  # k.at, inlined: hot path

    def background(self, seconds: float) -> None:
        """CPU work that is not a request (socket pings): it only delays later slices."""
        free_at = self.free_at
        start = max(free_at[0], self.kernel.now)
        heapreplace(free_at, start + seconds)
        self.committed += seconds

    def _cpu_done(self, req) -> None:
        if req.stage == 0:
            req.stage = 1
            if req.cls >= 0 and self.cache is not None:
                self._lookup(req)
                return
            if req.queries is not None:
                self.db_step(req)
                return
            if req.cpu_post > 0:       # no database step: respond(req), inlined (hot path)
                self.cpu(req, req.cpu_post)
                return
        elif req.stage == 2:
            self.finish(req, req.verdict)
            return
        self.finish(req, OK)

    # -- cache and database ---------------------------------------------------------------
    def _lookup(self, req) -> None:
        if self.cache_rtt > 0:        # a Redis GET is an await: the worker is free meanwhile
            self.kernel.after(self.cache_rtt, self._on_cache, req)
        else:
            self._cache_answer(req)

    def _cache_answer(self, req) -> None:
        cache = self.cache
        if req.queries is not None and not (cache.available and cache.get(req.cls, req.key, self.kernel.now)):
            self.db_step(req)
        else:
            self.respond(req)         # a hit: no database step

    def db_step(self, req) -> None:
        b = self.breaker
        if b is not None and not b.allow(self.kernel.now):
            self.finish(req, CIRCUIT_OPEN)
            return
        (self.pools[req.db] if req.db else self.pool).acquire(req)

    def after_db(self, req) -> None:
        """The database answered (the pool calls this): note it, fill the cache, respond."""
        if self.breaker is not None:
            self.breaker.success(self.kernel.now)
        if req.cls >= 0 and self.cache is not None and self.cache.available:
            self.cache.put(req.cls, req.key, self.kernel.now)   # a SET, not awaited
        self.respond(req)

    def respond(self, req) -> None:
        """The second CPU slice, if it has work, then the response."""
        if req.cpu_post > 0:
            self.cpu(req, req.cpu_post)
        else:
            self.finish(req, OK)

    def finish(self, req, outcome: int) -> None:
        self.in_flight -= 1
        if outcome and self.breaker is not None and outcome in DB_FAILURES:
            self.breaker.failure(self.kernel.now)
        self._done(req, outcome)
        if self.in_flight == 0 and self.on_idle is not None:
            self.on_idle(self)

    def queued_cpu(self, now: float) -> float:
        """CPU-seconds of committed work not yet done at ``now``."""
        return sum(f - now for f in self.free_at if f > now)

    def busy_total(self, now: float) -> float:
        """Worker-seconds of CPU done up to ``now``, ever."""
        return self.committed - self.queued_cpu(now)

    def take_busy(self, now: float) -> float:
        """Busy worker-seconds since the last call (work after ``now`` counts later)."""
        total = self.busy_total(now)
        busy, self._busy_mark = total - self._busy_mark, total
        return busy

    def lose_work(self, now: float) -> None:
        """A crash or kill: committed work not yet done is lost, workers are free."""
        self.committed -= self.queued_cpu(now)
        self.free_at = [now] * self.workers
