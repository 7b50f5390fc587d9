"""A fixed fleet, and the small pieces every policy shares.

``FixedConfig`` keeps ``instances`` running (min = max = instances); only scheduled
actions, applied by the controller through the effective bounds, can move it.

Shared helpers (used by the other policy modules):

- ``Bounded``: the ``min_instances`` / ``max_instances`` fields with min <= max checked;
- ``ready_values`` / ``ready_mean``: a metric over the *ready* instances that have a
  sample (instances still booting or without a sample are left out);
- ``clamp``: a count clamped to the observation's effective bounds, so a Decision shows
  the real target;
- ``overruled``: the words for a count the bounds moved (policies and the controller);
- ``ceil_count``: ceil that forgives float noise (3 x 0.6 / 0.6 must give 3, not 4).
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.units import Count

from capsim.models.autoscaling.base import Decision, Observation

__all__ = ["Bounded", "FixedConfig", "FixedPolicy", "ready_values", "ready_mean", "clamp", "overruled",
           "ceil_count", "pct"]


class Bounded(BaseModel):
    """Instance bounds shared by the policy configs."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    min_instances: Count = Field(1, description="never fewer instances (seed: 1)")
    max_instances: Count = Field(10, description="never more instances (seed: 10)")

    @model_validator(mode="after")
    def _bounds(self):
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances {self.min_instances} > max_instances {self.max_instances}")
        return self


def ready_values(obs: Observation, metric: str) -> list[float]:
    """``metric`` (cpu, memory, rps) of the ready instances that have a sample."""
    return [v for i in obs.instances if i.ready and (v := getattr(i, metric)) is not None]


def ready_mean(obs: Observation, metric: str) -> float | None:
    """Mean of ``metric`` over the ready instances with a sample; None without any."""
    values = ready_values(obs, metric)
    return sum(values) / len(values) if values else None


def clamp(n: int, obs: Observation) -> int:
    """``n`` within the observation's effective bounds."""
    return max(obs.min_instances, min(obs.max_instances, int(n)))


def overruled(n: int, lo: int, hi: int) -> str:
    """Why a clamped count ``n`` differs from what was asked: the bound it was moved to."""
    side = "raised to the minimum" if n == lo else "held at the maximum"
    return f"{side} of bounds {lo}..{hi}"


def ceil_count(x: float) -> int:
    """ceil(x), ignoring float noise below 1e-9."""
    return math.ceil(round(x, 9))


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


class FixedConfig(BaseModel):
    """Always ``instances`` instances."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    policy: Literal["fixed"] = "fixed"
    instances: Count = Field(1, description="instances kept running")

    @property
    def min_instances(self) -> int:
        return self.instances

    @property
    def max_instances(self) -> int:
        return self.instances

    def build(self) -> FixedPolicy:
        return FixedPolicy(self.instances)


class FixedPolicy:
    """Wants ``instances`` at every evaluation (within the effective bounds)."""
    interval = 60.0
    window = 60.0

    def __init__(self, instances: int):
        self.instances = instances

    def decide(self, obs: Observation) -> Decision:
        desired = clamp(self.instances, obs)
        return Decision(desired, f"fixed fleet of {self.instances}", {"instances": float(self.instances)})
