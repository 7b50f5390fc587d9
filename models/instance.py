"""Instances with Node.js semantics, and the fleet that starts and stops them.

An instance runs ``workers`` event loops (default: the plan's vCPUs). CPU work holds
a worker; waiting on the database does not. A request takes a CPU slice, then (if it
needs the database) borrows a connection from its instance's pool and runs its
queries, then takes a second CPU slice (after an await, a request rejoins the queue;
a second slice of zero work needs no worker and the response leaves at once).
Slices queue FIFO for a free worker.
"""
from __future__ import annotations

from heapq import heappush, heapreplace

from pydantic import BaseModel, ConfigDict, Field

from models.request import OK

__all__ = ["InstancesConfig", "Instance", "Fleet"]


class InstancesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    count: int = Field(1, ge=1, description="instances running from the start")
    plan: str = Field("standard", description="plan name from pricing.plans")
    workers: int | None = Field(None, ge=1, description="event-loop threads per instance; default: the plan's vCPUs (at least 1)")


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
        self.committed = 0.0         # CPU-seconds committed since the last sample
        self.started_at = kernel.now
        self.ready_at: float | None = None
        self.stopped_at: float | None = None
        self.draining = False
        self.on_idle = None          # called when a draining instance has nothing in flight
        self._on_cpu_done = self._cpu_done

    def accept(self, req) -> None:
        req.inst = self
        self.in_flight += 1
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

    def _cpu_done(self, req) -> None:
        if req.stage == 0:
            req.stage = 1
            if req.queries is not None:
                self.pool.acquire(req)
                return
            if req.cpu_post > 0:       # no database step: after_db(req), inlined (hot path)
                self.cpu(req, req.cpu_post)
                return
        self.finish(req, OK)

    def after_db(self, req) -> None:
        """The database step is over (or there was none): the second slice, if any work."""
        if req.cpu_post > 0:
            self.cpu(req, req.cpu_post)
        else:
            self.finish(req, OK)

    def finish(self, req, outcome: int) -> None:
        self.in_flight -= 1
        self._done(req, outcome)
        if self.in_flight == 0 and self.on_idle is not None:
            self.on_idle(self)

    def queued_cpu(self, now: float) -> float:
        """CPU-seconds of committed work not yet done at ``now``."""
        return sum(f - now for f in self.free_at if f > now)

    def take_busy(self, now: float) -> float:
        """Busy worker-seconds since the last call; work after ``now`` carries over."""
        future = self.queued_cpu(now)
        busy, self.committed = self.committed - future, future
        return busy


class Fleet:
    """The instances of a run: starts them, tells the load balancer which are ready."""

    def __init__(self, kernel, config: InstancesConfig, plans: dict, lb, make_pool, done):
        self.kernel, self.config, self.lb = kernel, config, lb
        self._make_pool, self._done = make_pool, done
        vcpus = plans[config.plan].vcpus
        self.workers = config.workers or max(1, int(round(vcpus)))
        self.instances: list[Instance] = []   # every instance ever started
        self.running: list[Instance] = []     # started and not yet stopped
        self._ids = 0

    def start(self, ready_after: float = 0.0) -> Instance:
        """Start an instance; it takes traffic once healthy, ``ready_after`` seconds later."""
        inst = Instance(self.kernel, self._ids, self.config.plan, self.workers, None, self._done)
        self._ids += 1
        inst.pool = self._make_pool(inst)
        self.instances.append(inst)
        self.running.append(inst)
        if ready_after > 0:
            self.kernel.after(ready_after, self._ready, inst)
        else:
            self._ready(inst)
        self.on_change()
        return inst

    def _ready(self, inst: Instance) -> None:
        if inst.stopped_at is None and not inst.draining:
            inst.ready_at = self.kernel.now
            self.lb.ready.append(inst)

    def stop(self, inst: Instance) -> None:
        """Take ``inst`` out of the load balancer; it stops once its last request is done."""
        if inst in self.lb.ready:
            self.lb.ready.remove(inst)
        inst.draining = True
        inst.on_idle = self._stopped
        if inst.in_flight == 0:
            self._stopped(inst)

    def _stopped(self, inst: Instance) -> None:
        if inst.stopped_at is None:
            inst.stopped_at = self.kernel.now
            self.running.remove(inst)
            self.on_change()

    def on_change(self) -> None:
        """Hook for pool policies that depend on the instance count."""
        for inst in self.running:
            inst.pool.resize(len(self.running))

    @property
    def ready_count(self) -> int:
        return len(self.lb.ready)

    def sample(self, t0: float, t1: float) -> dict:
        """Time-series columns for the interval [t0, t1]: capacity, CPU, pools."""
        busy = capacity = 0.0
        for inst in self.running:
            busy += inst.take_busy(t1)
            capacity += inst.workers * (t1 - max(t0, inst.started_at))
        pools = [inst.pool for inst in self.running]
        return {"instances": len(self.running), "instances_ready": len(self.lb.ready),
                "cpu_util": busy / capacity if capacity else float("nan"),
                "cpu_backlog_s": sum(inst.queued_cpu(t1) for inst in self.running),
                "pool_in_use": sum(p.in_use for p in pools),
                "pool_waiters": sum(p.waiting for p in pools),
                "pool_connections": sum(p.total for p in pools)}

    def instance_seconds(self, t0: float, t1: float) -> dict[str, float]:
        """Seconds each plan ran within [t0, t1] (open intervals closed at t1)."""
        out: dict[str, float] = {}
        for inst in self.instances:
            end = inst.stopped_at if inst.stopped_at is not None else t1
            overlap = min(end, t1) - max(inst.started_at, t0)
            if overlap > 0:
                out[inst.plan] = out.get(inst.plan, 0.0) + overlap
        return out
