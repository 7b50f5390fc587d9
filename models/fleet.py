"""The fleet: starts, drains, crashes and restarts instances; tells the load balancer.

Lifecycle (Render): a started instance provisions (``provisioning`` delay, billed) and
takes traffic once its health check passes. On scale-in it leaves the load balancer at
once, in-flight requests may finish for ``shutdown_delay``, then the rest are killed
(outcome ``terminated``) and billing stops. A crash kills its requests (``crashed``),
closes its pool's connections and loses its CPU backlog; the instance is restarted and
healthy again ``restart_after`` later, billed throughout.
"""
from __future__ import annotations

from capsim.models.distributions import draws
from capsim.models.instance import Instance, InstancesConfig
from capsim.models.process import Process
from capsim.models.request import CRASHED, TERMINATED, Request

__all__ = ["Fleet"]


class Fleet:
    """Every instance of a run (``instances``) and those still running (``running``)."""

    def __init__(self, kernel, config: InstancesConfig, plans: dict, lb, make_pool, done, rng, equip=None):
        self.kernel, self.config, self.lb = kernel, config, lb
        self._make_pool = make_pool
        self.done = done             # done(req, outcome): a request leaves the system (instances take it when started)
        self._equip = equip          # equip(inst): fresh middleware state (at start and restart)
        self.plan = plans[config.plan]
        self.memory_mb = self.plan.memory_gb * 1024.0
        self._provisioning = draws(config.provisioning, rng)
        self.instances: list[Instance] = []
        self.running: list[Instance] = []
        self.on_lost: list = []      # hooks(inst) when an instance leaves the load balancer
        self.socket_mb = 0.0         # memory per socket (set by the model when sockets exist)
        self.instance_rows: list[dict] = []   # per instance and interval, for heatmaps
        self.oom_restarts = 0
        self._marks: dict[int, tuple] = {}    # instance id -> (busy, cpu, up) at the last sample
        self._held: dict[int, float] = {}     # id(pool) -> its connection-seconds at the last sample
        self.process = Process                # the class of the instances' processes (tracing: a subclass)

    @property
    def managed(self) -> list[Instance]:
        """Instances an autoscaler counts: started (maybe provisioning), not draining."""
        return [i for i in self.running if not i.draining]

    # -- lifecycle ------------------------------------------------------------------
    def start(self, ready_after: float | None = None) -> Instance:
        """Start an instance; healthy after ``ready_after`` (default: a provisioning draw)."""
        inst = Instance(self.kernel, len(self.instances), self.config.plan, self.plan.vcpus, self.config, self.done,
                        self.process)
        for proc in inst.procs:
            self._make_pool(proc)
        self._equip_all(inst)
        self.instances.append(inst)
        self.running.append(inst)
        delay = next(self._provisioning) if ready_after is None else ready_after
        if delay > 0:
            self.kernel.after(delay, self._ready, inst)
        else:
            self._ready(inst)
        self._changed()
        return inst

    def _ready(self, inst: Instance) -> None:
        if inst.down_until > self.kernel.now:
            return                   # a stale timer: it crashed again since this was set
        if inst.stopped_at is None and not inst.draining and inst not in self.lb.ready:
            inst.ready_at = self.kernel.now
            inst.serving(self.kernel.now)
            self.lb.ready.append(inst)

    def stop(self, inst: Instance) -> None:
        """Scale-in: out of the load balancer now; stopped when idle or at the deadline."""
        self._unroute(inst)
        inst.draining = True
        inst.on_idle = self._stopped
        if inst.in_flight == 0:
            self._stopped(inst)
        else:
            self.kernel.after(self.config.shutdown_delay, self._deadline, inst)
        self._changed()

    def _deadline(self, inst: Instance) -> None:
        if inst.stopped_at is None:
            self.kill(inst, TERMINATED)

    def _stopped(self, inst: Instance) -> None:
        if inst.stopped_at is None:
            inst.stopped_at = self.kernel.now
            inst.not_serving(self.kernel.now)
            inst.on_idle = None
            self.running.remove(inst)
            self._changed()

    def crash(self, inst: Instance) -> None:
        """The process dies: its requests fail; it is healthy again after ``restart_after``."""
        if inst.stopped_at is not None:
            return
        self._unroute(inst)
        inst.crashes += 1
        inst.not_serving(self.kernel.now)
        self.kill(inst, CRASHED)
        self._equip_all(inst)        # the processes restart: in-memory stores start empty
        inst.down_until = self.kernel.now + self.config.restart_after
        if not inst.draining:
            self.kernel.after(self.config.restart_after, self._ready, inst)

    def kill(self, inst: Instance, outcome: int) -> None:
        """End every request in flight on ``inst`` with ``outcome``; free its resources."""
        now = self.kernel.now
        events = self.kernel.remove(lambda handler, arg: getattr(arg, "inst", None) is inst)
        victims = {id(r): r for _, r in events if isinstance(r, Request)}
        for pool in inst.all_pools():
            victims.update((id(r), r) for r in pool.abandon(events))
        victims.update((id(r), r) for r in inst.lose_work(now))
        for r in list(victims.values()):          # a waiter a dying request had handed its connection to
            if r.heir is not None:
                victims[id(r.heir)] = r.heir
                r.heir = None
        for req in victims.values():
            req.waiting = req.in_db = False
            inst.finish(req, outcome)

    def _equip_all(self, inst: Instance) -> None:
        if self._equip is not None:
            for proc in inst.procs:
                self._equip(proc)

    def _unroute(self, inst: Instance) -> None:
        if inst in self.lb.ready:
            self.lb.ready.remove(inst)
        for hook in self.on_lost:
            hook(inst)

    def _changed(self) -> None:
        n = len(self.managed)
        for inst in self.running:
            for pool in inst.primary_pools():
                pool.resize(n)

    # -- statistics -----------------------------------------------------------------
    def memory_util(self, inst: Instance) -> float:
        """(base per process + requests in flight + sockets + in-memory caches) / the plan's memory."""
        c = self.config
        used = (c.memory_base_mb * len(inst.procs) + c.memory_per_request_mb * inst.in_flight
                + self.socket_mb * inst.sockets)
        for cache in inst.caches():
            used += cache.memory_kb / 1024.0
        return used / self.memory_mb

    def watch_memory(self, env, tick: float = 1.0):
        """SimPy process: an instance at its plan's memory crashes (out of memory) and restarts."""
        while True:
            yield env.timeout(tick)
            for inst in list(self.lb.ready):
                if self.memory_util(inst) >= 1.0:
                    self.oom_restarts += 1
                    self.crash(inst)

    def sample(self, t0: float, t1: float) -> dict:
        """Time-series columns for [t0, t1]; one row per instance too.

        ``cpu_util``: CPU as the platform measures it (processes' CPU over vCPUs) per second
        an instance served; ``elu``: the share of that time its event loops were busy.
        """
        busy = cpu = cap_cpu = cap_loop = 0.0
        for inst in [i for i in self.instances if i.stopped_at is None or i.stopped_at > t0]:
            b, c, up = self._take(inst, t1)
            loops = len(inst.procs) * inst.proc.threads
            busy, cpu, cap_cpu, cap_loop = busy + b, cpu + c, cap_cpu + inst.vcpus * up, cap_loop + loops * up
            pools = inst.primary_pools()
            self.instance_rows.append({
                "t_end": t1, "instance": inst.iid, "ready": inst in self.lb.ready,
                "cpu_util": c / (inst.vcpus * up) if up else float("nan"),
                "elu": b / (loops * up) if up else float("nan"), "memory_util": self.memory_util(inst),
                "sockets": inst.sockets, "in_flight": inst.in_flight, "loop_queue": inst.loop_queue(),
                "pool_in_use": sum(p.in_use for p in pools), "pool_waiters": sum(p.waiting for p in pools)})
        pools = [pool for inst in self.running for pool in inst.primary_pools()]
        held = cap_pool = 0.0
        for pool in pools:
            h = pool.held_seconds(t1)
            held += h - self._held.get(id(pool), 0.0)
            self._held[id(pool)] = h
            cap_pool += pool.max * (t1 - t0)
        mem = [self.memory_util(i) for i in self.running]
        sockets = [i.sockets for i in self.lb.ready]
        return {"instances": len(self.running), "instances_ready": len(self.lb.ready),
                "instances_managed": len(self.managed),
                "cpu_util": cpu / cap_cpu if cap_cpu else float("nan"),
                "elu": busy / cap_loop if cap_loop else float("nan"),
                "memory_util": sum(mem) / len(mem) if mem else float("nan"),
                "memory_util_max": max(mem) if mem else float("nan"),
                "sockets": sum(sockets), "sockets_max": max(sockets, default=0),
                "sockets_min": min(sockets, default=0),
                "loop_queue": sum(inst.loop_queue() for inst in self.running),
                "pool_in_use": sum(p.in_use for p in pools),
                "pool_waiters": sum(p.waiting for p in pools),
                "pool_connections": sum(p.total for p in pools),
                "pool_busy": held / cap_pool if cap_pool else float("nan")}

    def _take(self, inst: Instance, now: float) -> tuple[float, float, float]:
        """(loop busy seconds, platform CPU seconds, serving seconds) since the last sample."""
        marks = (inst.busy_total(now), inst.cpu_seconds(now), inst.up_seconds(now))
        last = self._marks.get(inst.iid, (0.0, 0.0, 0.0))
        self._marks[inst.iid] = marks
        return marks[0] - last[0], marks[1] - last[1], marks[2] - last[2]

    def instance_seconds(self, t0: float, t1: float) -> dict[str, float]:
        """Billed seconds per plan within [t0, t1] (start to stop; open intervals closed at t1)."""
        out: dict[str, float] = {}
        for inst in self.instances:
            end = inst.stopped_at if inst.stopped_at is not None else t1
            overlap = min(end, t1) - max(inst.started_at, t0)
            if overlap > 0:
                out[inst.plan] = out.get(inst.plan, 0.0) + overlap
        return out
