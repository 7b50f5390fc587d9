"""Instances with Node.js semantics (the fleet that starts and stops them: ``models.fleet``).

An instance runs ``processes`` Node processes (default 1: a plain ``node server.js``;
more with ``cluster`` or PM2), each with its own event loop, ``pg.Pool`` and in-memory
stores (``models.process``). Requests reach its processes round robin (the cluster
primary's scheduling); a session's socket requests stay on one process.

CPU as the platform measures it (what the seed's 70% / 30% thresholds read): the
processes' CPU over the instance's vCPUs. One busy event loop on a 2-vCPU Pro instance
shows at most 50% (plus its helper threads). A process can use at most one vCPU; with
more threads to run than vCPUs, each runs at ``vcpus / (processes x threads)`` of a
core's speed.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.distributions import Distribution, Uniform
from capsim.models.event_loop import EventLoopConfig
from capsim.models.process import Process, Work
from capsim.models.units import Count, Duration, NonNegative

__all__ = ["InstancesConfig", "Instance", "loop_capacity"]


class InstancesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    count: Count = Field(1, description="instances running (and ready) at the start")
    plan: str = Field("standard", description="plan name from pricing.plans")
    processes: Count = Field(1, description="Node processes per instance, each with its own event loop, pool and "
                                                "in-memory stores (1: plain node; n: cluster/PM2 with n workers)")
    threads: Count = Field(1, description="tasks one process runs at once from its queue (1: Node's event loop; "
                                              "more only to model a worker-thread pool or to check against M/M/c)")
    event_loop: EventLoopConfig = Field(default_factory=EventLoopConfig,
                                        description="event-loop CPU outside the handlers (models/event_loop.py)")
    provisioning: Distribution = Field(Uniform(low=30.0, high=90.0),
                                       description="from start to passing the health check (Render: 30-90 s reported)")
    shutdown_delay: Duration = Field(30.0, description="on scale-in, in-flight requests may finish for this long, then the rest are killed (Render default 30 s)")
    restart_after: Duration = Field(60.0, description="a crashed instance is restarted and healthy again after this (Render: 60 s)")
    memory_base_mb: NonNegative = Field(160.0, description="resident memory of an idle process (Node + Express + Socket.io)")
    memory_per_request_mb: NonNegative = Field(1.0, description="memory per request in flight")
    out_of_memory: Literal["restart", "ignore"] = Field(
        "restart", description="at the plan's memory the instance crashes and restarts (its sockets reconnect elsewhere); ignore: memory is only reported")
    reject_cpu: Duration = Field(0.0001, description="CPU the middleware spends turning a request away (429, maintenance page)")
    request_timeout: Duration | None = Field(60.0, description="server timeout: unfinished requests end 'timeout' for the client (seed: 60 s); null = none")

    @model_validator(mode="before")
    @classmethod
    def _no_workers(cls, data):
        if isinstance(data, dict) and "workers" in data:
            raise ValueError("workers was replaced: a Node instance runs `processes` (default 1; each one event loop), "
                             "and `threads` is how many tasks one process runs at once (1 for Node)")
        return data


def loop_capacity(config: InstancesConfig, plan) -> float:
    """Event-loop seconds per second one instance can work: its threads, at most its vCPUs."""
    return min(float(plan.vcpus), float(config.processes * config.threads))


class Instance:
    """One service instance: its processes, its lifecycle state and its CPU statistics."""

    def __init__(self, kernel, iid: int, plan: str, vcpus: float, config: InstancesConfig, done):
        self.kernel, self.iid, self.plan, self.vcpus = kernel, iid, plan, vcpus
        self._done = done            # done(req, outcome): the request leaves the system
        threads = config.processes * config.threads
        self.speed = min(1.0, vcpus / threads)
        self.helper = config.event_loop.helper_cpu
        self.procs = [Process(kernel, self, p, config.event_loop, config.threads, self.speed, config.reject_cpu)
                      for p in range(config.processes)]
        self.proc = self.procs[0]
        self.accept = self._accept_one if len(self.procs) == 1 else self._accept_rr
        self._rr = 0
        self.in_flight = 0
        self.accepted = 0            # requests taken, ever
        self.started_at = kernel.now
        self.ready_at: float | None = None
        self.stopped_at: float | None = None
        self.draining = False
        self.crashes = 0
        self.down_until = 0.0        # after a crash: not healthy before this time
        self.sockets = 0             # Socket.io connections open on it
        self.on_idle = None          # called when a draining instance has nothing in flight
        self._up = 0.0               # seconds it served (ready, not crashed) up to _up_since
        self._up_since: float | None = None

    # -- requests -------------------------------------------------------------------------------
    def _accept_one(self, req, session=None) -> None:
        req.inst = self
        self.in_flight += 1
        self.accepted += 1
        self.proc.accept(req)

    def _accept_rr(self, req, session=None) -> None:
        """Round robin over the processes; a session's socket requests stay on one process."""
        req.inst = self
        self.in_flight += 1
        self.accepted += 1
        procs = self.procs
        if session is None:
            self._rr = (self._rr + 1) % len(procs)
            procs[self._rr].accept(req)
        else:
            procs[session % len(procs)].accept(req)

    def finish(self, req, outcome: int) -> None:
        self.in_flight -= 1
        self._done(req, outcome)
        if self.in_flight == 0 and self.on_idle is not None:
            self.on_idle(self)

    def add_fluid(self, requests: float) -> None:
        """Fast mode (``capsim.engine.flow``): ``requests`` (an expected count) reached it over a step."""
        self.accepted += requests

    def background(self, cpu: float) -> None:
        """CPU work that is not a request (socket pings), spread over the processes."""
        share = cpu / len(self.procs)
        for p in self.procs:
            p.enqueue(Work(self, share))

    # -- lifecycle accounting ----------------------------------------------------------------------
    def serving(self, now: float) -> None:
        """It passed its health check (again): serving time counts from now."""
        if self._up_since is None:
            self._up_since = now

    def not_serving(self, now: float) -> None:
        """It crashed or stopped: serving time stops counting."""
        if self._up_since is not None:
            self._up += now - self._up_since
            self._up_since = None

    def up_seconds(self, now: float) -> float:
        """Seconds it has served traffic, ever (crashed and provisioning time left out)."""
        return self._up + (now - self._up_since if self._up_since is not None else 0.0)

    # -- CPU statistics ----------------------------------------------------------------------------
    def busy_total(self, now: float) -> float:
        """Event-loop busy seconds of all its processes up to ``now``, ever."""
        return sum(p.busy_total(now) for p in self.procs)

    def cpu_seconds(self, now: float) -> float:
        """CPU seconds as the platform counts them: the loops' work at their speed, plus helper threads."""
        return self.busy_total(now) * self.speed * (1.0 + self.helper)

    def max_cpu(self) -> float:
        """The highest platform CPU share it can show (every loop always busy)."""
        return min(1.0, len(self.procs) * self.proc.threads * self.speed * (1.0 + self.helper) / self.vcpus)

    def loop_queue(self) -> int:
        """Tasks waiting for an event loop now."""
        return sum(len(p.queue) + p.fluid_queue for p in self.procs)

    def lose_work(self, now: float) -> list:
        """A crash or kill: the loops' work not yet done is lost; returns the requests that queued for them."""
        waiting = [r for p in self.procs for r in p.waiting()]
        for p in self.procs:
            p.reset(now)
        return waiting

    # -- what all processes share -------------------------------------------------------------------
    @property
    def pool(self):
        """The primary's pool of the first process (one process: the instance's pool)."""
        return self.proc.pool

    def primary_pools(self) -> list:
        return [p.pool for p in self.procs]

    def all_pools(self) -> list:
        return [pool for p in self.procs for pool in p.pools]

    def caches(self) -> list:
        """Its processes' in-memory caches (empty with a shared Redis store)."""
        out = []
        for p in self.procs:
            if p.cache is not None and p.cache.kb_per_key and p.cache not in out:
                out.append(p.cache)
        return out
