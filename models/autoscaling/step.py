"""AWS step scaling: an alarm on one metric, adjustments chosen by how far it breaches.

The alarm breaches when the metric is at or above ``threshold`` (``comparison: above``)
or at or below it (``below``); it fires after ``evaluation_periods`` consecutive breaching
evaluations (one per ``period``) and keeps firing while it breaches. An evaluation with
no sample leaves the count unchanged (CloudWatch's default "missing" treatment).

Step bounds are relative to the threshold (metric - threshold), None = infinity. Above
the threshold the lower bound is inclusive and the upper exclusive; below it AWS makes
the lower bound exclusive and the upper inclusive, and so do we. The steps must not
overlap or leave gaps (AWS's rule). A value that falls in no step does nothing.

Adjustments: ``ChangeInCapacity`` (+/- n), ``ExactCapacity`` (n), ``PercentChangeInCapacity``
(n% of the current capacity, i.e. ``obs.current``, which includes instances still
starting; the change is rounded: > 1 floor, 0..1 -> 1, -1..0 -> -1, < -1 ceil, then
raised to ``min_adjustment_magnitude``). AWS's example: threshold 50, capacity 10,
[0,10) -> 0, [10,20) -> +10%, >= 20 -> +30%: 60 gives 11; then, at 11, 70 gives 14.

Metric: cpu / memory = average utilisation of the ready instances in percent (0-100),
rps = average requests per second per ready instance. For scale-in use a second policy
with ``comparison: below`` and negative adjustments.

Simplification: AWS step scaling uses instance warm-up rather than a cooldown; we apply
``cooldown`` after any fleet change (as the threshold policy does).
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.autoscaling.base import Decision, Observation
from capsim.models.autoscaling.fixed import Bounded, clamp, ready_mean
from capsim.models.autoscaling.threshold import Cooldown
from capsim.models.units import Count, Duration, NonNegative, PositiveDuration, Real

__all__ = ["StepAdjustment", "StepConfig", "StepPolicy", "percent_change"]

_INF = math.inf


class StepAdjustment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    lower: Real() | None = Field(None, description="bound relative to the threshold (null: -infinity)")
    upper: Real() | None = Field(None, description="bound relative to the threshold (null: +infinity)")
    adjustment: Real() = Field(description="instances, percent or exact capacity (adjustment_type)")

    @property
    def lo(self) -> float:
        return -_INF if self.lower is None else self.lower

    @property
    def hi(self) -> float:
        return _INF if self.upper is None else self.upper

    def contains(self, delta: float, above: bool) -> bool:
        return self.lo <= delta < self.hi if above else self.lo < delta <= self.hi


class StepConfig(Bounded):
    """An AWS step scaling policy with its alarm."""
    policy: Literal["step"] = "step"
    metric: Literal["cpu", "memory", "rps"] = Field("cpu", description="cpu/memory in percent 0-100, rps per instance")
    threshold: NonNegative = Field(description="alarm threshold, in the metric's unit")
    comparison: Literal["above", "below"] = Field("above", description="breach at/above or at/below the threshold")
    evaluation_periods: Count = Field(1, description="consecutive breaching periods before the alarm fires")
    period: PositiveDuration = Field(60.0, description="alarm period: evaluation interval and metric window")
    adjustment_type: Literal["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"] = "ChangeInCapacity"
    steps: list[StepAdjustment] = Field(min_length=1, description="contiguous, non-overlapping steps")
    min_adjustment_magnitude: Count | None = Field(None, description="PercentChangeInCapacity only")
    cooldown: Duration = Field(300.0, description="no action this long after any fleet change")

    @model_validator(mode="after")
    def _check_steps(self):
        steps = sorted(self.steps, key=lambda s: s.lo)
        for s in steps:
            if s.lo >= s.hi:
                raise ValueError(f"steps: lower {s.lower} must be below upper {s.upper}")
        for a, b in zip(steps, steps[1:]):
            if a.hi != b.lo:
                raise ValueError(f"steps: [{a.lower}, {a.upper}) and [{b.lower}, {b.upper}) "
                                 f"{'overlap' if a.hi > b.lo else 'leave a gap'}")
        percent = self.adjustment_type == "PercentChangeInCapacity"
        if self.min_adjustment_magnitude is not None and not percent:
            raise ValueError("min_adjustment_magnitude: only with PercentChangeInCapacity")
        if not percent and any(s.adjustment != int(s.adjustment) for s in steps):
            raise ValueError(f"steps: {self.adjustment_type} adjustments must be whole instances")
        if self.adjustment_type == "ExactCapacity" and any(s.adjustment < 0 for s in steps):
            raise ValueError("steps: ExactCapacity adjustments must be >= 0")
        return self

    def build(self) -> StepPolicy:
        return StepPolicy(self)


def percent_change(capacity: int, percent: float, min_magnitude: int | None = None) -> int:
    """Instances to add (negative: remove) for ``percent`` of ``capacity``, AWS rounding."""
    raw = capacity * percent / 100.0
    if raw == 0:
        return 0
    sign, size = (1 if raw > 0 else -1), abs(raw)
    n = 1 if size < 1 else math.floor(size + 1e-9)
    return sign * max(n, min_magnitude or 0)


class StepPolicy:
    def __init__(self, config: StepConfig):
        self.config = config
        self.interval = self.window = config.period
        self.cooldown = Cooldown(config.cooldown)
        self.breaches = 0

    def decide(self, obs: Observation) -> Decision | None:
        c = self.config
        cooling = self.cooldown.active(obs)
        value = self._metric(obs)
        if value is None:
            return None
        above = c.comparison == "above"
        breach = value >= c.threshold if above else value <= c.threshold
        self.breaches = self.breaches + 1 if breach else 0
        if self.breaches < c.evaluation_periods or cooling:
            return None
        step = next((s for s in c.steps if s.contains(value - c.threshold, above)), None)
        if step is None:
            return None
        desired = clamp(self._apply(step.adjustment, obs.current), obs)
        if desired == obs.current:
            return None
        self.cooldown.acted(obs, desired)
        why = (f"{c.metric} {value:g} {'>=' if above else '<='} {c.threshold:g} for {self.breaches} period(s), "
               f"step [{step.lower}, {step.upper}) {step.adjustment:+g} ({c.adjustment_type})")
        return Decision(desired, f"{why}: {obs.current} -> {desired}", {c.metric: value})

    def _metric(self, obs: Observation) -> float | None:
        value = ready_mean(obs, self.config.metric)
        if value is None or self.config.metric == "rps":
            return value
        return round(100.0 * value, 9)  # 0.57 -> 57, not 56.99999999999999

    def _apply(self, adjustment: float, current: int) -> int:
        kind = self.config.adjustment_type
        if kind == "ExactCapacity":
            return int(adjustment)
        if kind == "ChangeInCapacity":
            return current + int(adjustment)
        return current + percent_change(current, adjustment, self.config.min_adjustment_magnitude)
