"""The autoscaling controller: a SimPy process that runs a policy against the fleet.

Every ``policy.interval`` seconds it builds an ``Observation`` of the managed instances
(started and not draining; provisioning ones are not ready): CPU as the platform
measures it (the processes' CPU over the instance's vCPUs) over the policy's ``window``,
per second the instance served (provisioning and crashed time left out), memory as a
snapshot of the plan's memory in use, and requests per second
over the window. The decision is clamped to the effective bounds (``schedule`` may
change them, and weekend/event pre-scaling raises the minimum; bounds apply even
when the policy has no opinion). A predictive policy wraps the reactive one. Scaling up
starts instances (they provision, then take traffic); scaling down stops the
not-yet-ready ones first, then the newest. Every change is a scaling event.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from capsim.models.autoscaling.base import Decision, InstanceView, Observation
from capsim.models.autoscaling.fixed import overruled

__all__ = ["Controller", "ScalingEvent"]


@dataclass(frozen=True)
class ScalingEvent:
    time: float
    from_count: int
    to_count: int
    reason: str
    metrics: dict = field(default_factory=dict)

    def row(self) -> dict:
        return {"time": self.time, "from": self.from_count, "to": self.to_count, "reason": self.reason,
                **{f"metric_{k}": v for k, v in self.metrics.items()}}


class Controller:
    """Drives ``policy`` over ``fleet`` within [min, max] (moved by ``schedule`` if any)."""

    def __init__(self, kernel, fleet, policy, min_instances: int, max_instances: int,
                 schedule=None, prescaler=None):
        self.kernel, self.fleet, self.policy = kernel, fleet, policy
        self.bounds = (min_instances, max_instances)
        self.schedule, self.prescaler = schedule, prescaler
        self.events: list[ScalingEvent] = []
        self._history: dict[int, deque] = {}     # instance id -> (t, cpu seconds, serving seconds, accepted)
        self._last_eval: float | None = None

    def process(self, env):
        interval = self.policy.interval
        while True:
            yield env.timeout(interval)
            self.evaluate()

    # -- one evaluation -----------------------------------------------------------------
    def evaluate(self) -> None:
        now = self.kernel.now
        lo, hi = self.schedule.bounds(now) if self.schedule is not None else self.bounds
        raised = False
        if self.prescaler is not None:
            base_lo = lo
            lo, hi = self.prescaler.bounds(now, len(self.fleet.managed), lo, hi)
            raised = lo > base_lo
        obs = self.observe(now, lo, hi)
        decision = self.policy.decide(obs)
        desired = self.schedule.desired_at(now, self._last_eval) if self.schedule is not None else None
        self._last_eval = now
        if desired is not None:
            decision = Decision(desired, f"scheduled: desired {desired}")
        if decision is None:
            decision = Decision(obs.current, "policy: no change")
        target = min(max(decision.desired, lo), hi)
        if target != obs.current:
            reason = decision.reason if target == decision.desired else (
                overruled(target, lo, hi) + (" (pre-scaling)" if raised else "") + f"; the policy alone: {decision.desired} ({decision.reason})")
            self.scale(target, reason, decision.metrics)

    def observe(self, now: float, lo: int, hi: int) -> Observation:
        views = tuple(self._view(inst, now) for inst in self.fleet.managed)
        return Observation(now=now, current=len(views), instances=views, min_instances=lo, max_instances=hi)

    def _view(self, inst, now: float) -> InstanceView:
        """CPU (as the platform measures it: CPU over vCPUs) and requests per second over the
        policy's window, per second the instance served (time down after a crash is left out)."""
        hist = self._history.get(inst.iid)
        if hist is None:   # counters start at zero when the instance starts
            hist = self._history[inst.iid] = deque([(inst.started_at, 0.0, 0.0, 0)])
        hist.append((now, inst.cpu_seconds(now), inst.up_seconds(now), inst.accepted))
        while len(hist) > 1 and hist[1][0] <= now - self.policy.window:
            hist.popleft()
        ready = inst in self.fleet.lb.ready
        cpu = rps = None
        if ready:
            _, cpu0, up0, acc0 = hist[0]
            _, cpu1, up1, acc1 = hist[-1]
            span = up1 - up0
            if span > 0:
                cpu = (cpu1 - cpu0) / (inst.vcpus * span)
                rps = (acc1 - acc0) / span
        return InstanceView(ready=ready, age=now - inst.started_at, cpu=cpu,
                            memory=self.fleet.memory_util(inst), rps=rps,
                            since_ready=None if inst.ready_at is None else now - inst.ready_at)

    # -- acting ------------------------------------------------------------------------
    def scale(self, target: int, reason: str, metrics: dict) -> None:
        managed = self.fleet.managed
        current = len(managed)
        if target > current:
            for _ in range(target - current):
                self.fleet.start()
        else:
            order = sorted(managed, key=lambda i: (i.ready_at is not None, -i.started_at, -i.iid))
            for inst in order[:current - target]:
                self.fleet.stop(inst)
        clean = {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else v) for k, v in metrics.items()}
        self.events.append(ScalingEvent(self.kernel.now, current, target, reason, clean))
