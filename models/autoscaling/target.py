"""Render's documented autoscaling: target utilisation for CPU and/or memory.

Per metric, desired = ceil(current x average utilisation / target), averaged over all
instances; with both metrics the larger proposal wins. Render's example: 2 instances at
80% CPU with a 60% target become 3.

We compute ceil(sum of utilisation over the ready instances / target): the same as
Render's formula when every instance is ready, and the same as counting instances still
booting (or ready without a sample yet) at 0% utilisation. It avoids double counting
while capacity is starting: 2 loaded instances at 80% plus 1 booting give 3, not 4.

Scale-up is applied at once. Scale-down waits: only when the proposal has stayed below
the current count at every evaluation for ``scale_down_delay`` does the policy act, and
it then goes to the largest proposal seen during that delay (the most conservative
count the recent load justifies). Any evaluation at or above the current count, or
without samples, restarts the delay.

Render publishes neither the metric window, the evaluation interval nor the scale-down
delay ("a few minutes"): ``interval``, ``window`` and ``scale_down_delay`` are
parameters with assumed defaults.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from capsim.models.autoscaling.base import Decision, Observation
from capsim.models.autoscaling.fixed import Bounded, ceil_count, clamp, pct, ready_values
from capsim.models.units import Duration, PositiveDuration, Real

__all__ = ["TargetConfig", "TargetPolicy"]

Target = Real(ge=0.01, le=0.90)  # Render accepts 1-90%


class TargetConfig(Bounded):
    """Render autoscaling: keep average utilisation near the targets."""
    policy: Literal["target"] = "target"
    cpu_target: Target | None = Field(0.70, description="CPU target, 0.01..0.90 (null: not used)")
    memory_target: Target | None = Field(None, description="memory target, 0.01..0.90 (null: not used)")
    interval: PositiveDuration = Field(30.0, description="time between evaluations (not published by Render)")
    window: PositiveDuration = Field(60.0, description="utilisation averaged over this window (not published)")
    scale_down_delay: Duration = Field(300.0, description="proposal below current this long before scaling down")

    @model_validator(mode="after")
    def _some_target(self):
        if self.cpu_target is None and self.memory_target is None:
            raise ValueError("expected cpu_target, memory_target or both")
        return self

    def build(self) -> TargetPolicy:
        return TargetPolicy(self)


class TargetPolicy:
    def __init__(self, config: TargetConfig):
        self.config = config
        self.interval, self.window = config.interval, config.window
        self._below_since: float | None = None
        self._peak = 0

    def decide(self, obs: Observation) -> Decision | None:
        proposals = self._proposals(obs)
        if not proposals:
            self._below_since = None
            return None
        metric = max(proposals, key=lambda m: proposals[m][1])
        want = proposals[metric][1]
        metrics = {k: v for m, (u, n) in proposals.items() for k, v in ((m, u), (f"desired_{m}", n))}
        if want >= obs.current:
            self._below_since = None
            return self._act(obs, want, self._why(metric, proposals), metrics) if want > obs.current else None
        return self._maybe_down(obs, want, metric, proposals, metrics)

    def _proposals(self, obs: Observation) -> dict[str, tuple[float, int]]:
        """metric -> (average utilisation, proposed count)."""
        out = {}
        for metric in ("cpu", "memory"):
            target, values = getattr(self.config, f"{metric}_target"), ready_values(obs, metric)
            if target is not None and values:
                out[metric] = (sum(values) / len(values), ceil_count(sum(values) / target))
        return out

    def _why(self, metric: str, proposals) -> str:
        util, n = proposals[metric]
        return f"{metric} {pct(util)} vs target {pct(getattr(self.config, f'{metric}_target'))} -> {n}"

    def _maybe_down(self, obs, want, metric, proposals, metrics) -> Decision | None:
        if self._below_since is None:
            self._below_since, self._peak = obs.now, want
        self._peak = max(self._peak, want)
        waited = obs.now - self._below_since
        if waited < self.config.scale_down_delay:
            return None
        self._below_since = None
        why = f"{self._why(metric, proposals)}; below {obs.current} for {waited:g} s, largest proposal {self._peak}"
        return self._act(obs, self._peak, why, metrics)

    @staticmethod
    def _act(obs: Observation, want: int, why: str, metrics: dict[str, float]) -> Decision | None:
        desired = clamp(want, obs)
        if desired == obs.current:
            return None
        return Decision(desired, f"{why}: {obs.current} -> {desired}", metrics)
