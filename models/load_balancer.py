"""Load balancer: spreads requests over the instances that are ready.

Render balances round robin; least-connections and random are offered for comparison.
An instance takes traffic only once it is started and healthy (``Fleet`` adds it to
``ready``) and stops taking new requests when it begins to drain.

``latency`` is the time a response spends outside the server: client to instance
(network, Render's proxy, the kernel) and back. It adds to every response's latency
and never occupies the server; the server's own work (HTTP parse, the write) is the
event loop's (``instances.event_loop``).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.distributions import Constant, Distribution, uniforms

__all__ = ["LoadBalancerConfig", "LoadBalancer"]


class LoadBalancerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    policy: Literal["round_robin", "least_connections", "random"] = Field(
        "round_robin", description="how a request picks its instance (Render: round_robin)")
    latency: Distribution = Field(Constant(value=0.0), description="time outside the server per response: client to "
                                  "instance and back (network, proxy), added to its latency")


class LoadBalancer:
    """Picks an instance from ``ready`` (a list the fleet keeps current)."""

    def __init__(self, config: LoadBalancerConfig, rng):
        self.ready: list = []
        self._next = 0
        self._u = uniforms(rng)
        self.pick = {"round_robin": self._round_robin,
                     "least_connections": self._least_connections,
                     "random": self._random}[config.policy]

    def _round_robin(self):
        ready = self.ready
        i = self._next % len(ready)
        self._next = i + 1
        return ready[i]

    def _least_connections(self):
        ready = self.ready
        n = len(ready)
        start = self._next % n  # rotate the tie-break so equal instances share traffic
        self._next = start + 1
        best = ready[start]
        for k in range(1, n):
            inst = ready[(start + k) % n]
            if inst.in_flight < best.in_flight:
                best = inst
        return best

    def _random(self):
        ready = self.ready
        return ready[int(next(self._u) * len(ready))]

