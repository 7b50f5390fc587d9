"""What every scaling policy sees and says, and the protocol it implements.

The controller (``sim/engine/autoscaler.py``) evaluates a policy every ``interval`` seconds.
It hands the policy an ``Observation`` (the instances it manages, with utilisation
averaged over the policy's ``window``) and gets back a ``Decision`` (or None: no
opinion). The controller clamps the desired count to the effective bounds (scheduled
actions may change them), starts or stops instances and records a scaling event with
the decision's reason and metric values. Policies are small stateful objects (cooldowns,
stabilisation windows, history) built fresh for every run by their config's ``build()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["InstanceView", "Observation", "Decision", "Policy"]


@dataclass(frozen=True)
class InstanceView:
    """One managed instance, as a metrics pipeline would report it."""
    ready: bool                 # passed its health check and takes traffic
    age: float                  # seconds since it was started (provisioning included)
    cpu: float | None = None    # busy fraction of its workers over the window, 0..1 (None: no sample yet)
    memory: float | None = None  # fraction of the plan's memory in use, 0..1
    rps: float | None = None    # requests per second it received over the window
    since_ready: float | None = None  # seconds since it became ready (None: not ready yet)


@dataclass(frozen=True)
class Observation:
    now: float                          # simulated seconds since the start
    current: int                        # instances managed now (started, not draining)
    instances: tuple[InstanceView, ...]  # one view per managed instance (len == current)
    min_instances: int                  # effective bounds at this moment
    max_instances: int


@dataclass(frozen=True)
class Decision:
    desired: int                              # the count the policy wants (before clamping)
    reason: str                               # human text, e.g. "cpu 82% > 70%"
    metrics: dict[str, float] = field(default_factory=dict)   # values that led to it


@runtime_checkable
class Policy(Protocol):
    interval: float   # seconds between evaluations
    window: float     # seconds of history averaged into cpu / memory / rps

    def decide(self, obs: Observation) -> Decision | None: ...
