"""The seed's Render-dashboard rules: step up/down by one on CPU/memory thresholds.

    Scale Up Threshold: 70% CPU or 80% Memory      Scale Up By: 1 instance
    Scale Down Threshold: CPU < 30%, Memory < 50%  Scale Down By: 1 instance
    Cooldown Period: 300 seconds

Up: average CPU > ``cpu_up`` OR average memory > ``memory_up`` (either hot metric is a
reason to add capacity). Down: average CPU < ``cpu_down`` AND average memory <
``memory_down``. The seed's dashboard block reads "30% CPU or 50% Memory", its config
block "CPU < 30%, Memory < 50%"; we take AND: with OR, a fleet at 20% CPU and 70%
memory would scale down (CPU is low), push memory over 80% and scale up again: it would
flap. A metric no ready instance reports cannot trigger and does not block.

Averages are over the ready instances that have a sample (the controller averages each
over ``window``). No sample at all: no opinion.

Cooldown: no action for ``cooldown`` seconds after any change of the fleet size: one
this policy made (dated when it decided), or one it did not cause (a scheduled action,
another policy, a replaced instance), dated at the evaluation that first sees it, since
the policy only sees the fleet at its evaluations.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from capsim.models.autoscaling.base import Decision, Observation
from capsim.models.autoscaling.fixed import Bounded, clamp, overruled, pct, ready_mean
from capsim.models.units import Count, Duration, PositiveDuration, Real

__all__ = ["ThresholdConfig", "ThresholdPolicy", "Cooldown"]

Fraction = Real(gt=0, le=1)


class ThresholdConfig(Bounded):
    """Render dashboard style thresholds (the seed's defaults)."""
    policy: Literal["threshold"] = "threshold"
    cpu_up: Fraction = Field(0.70, description="scale up when average CPU is above (fraction)")
    memory_up: Fraction = Field(0.80, description="... or average memory is above")
    cpu_down: Fraction = Field(0.30, description="scale down when average CPU is below ...")
    memory_down: Fraction = Field(0.50, description="... and average memory is below")
    step_up: Count = Field(1, description="instances added per action")
    step_down: Count = Field(1, description="instances removed per action")
    cooldown: Duration = Field(300.0, description="no action this long after any change of the fleet")
    interval: PositiveDuration = Field(60.0, description="time between evaluations")
    window: PositiveDuration = Field(300.0, description="utilisation averaged over this window")

    @model_validator(mode="after")
    def _hysteresis(self):
        for m in ("cpu", "memory"):
            down, up = getattr(self, f"{m}_down"), getattr(self, f"{m}_up")
            if down >= up:
                raise ValueError(f"{m}_down {down:g} must be below {m}_up {up:g}")
        return self

    def build(self) -> ThresholdPolicy:
        return ThresholdPolicy(self)


class Cooldown:
    """Blocks actions for ``period`` s after any fleet change (see the module text)."""

    def __init__(self, period: float):
        self.period = period
        self.last: float | None = None    # time of the last change
        self.expected: int | None = None  # fleet size after the last change we know of

    def active(self, obs: Observation) -> bool:
        """Call once per evaluation: notes outside changes, then tells if cooling down."""
        if self.expected is not None and obs.current != self.expected:
            self.last = obs.now
        self.expected = obs.current
        return self.last is not None and obs.now - self.last < self.period

    def acted(self, obs: Observation, desired: int) -> None:
        self.last, self.expected = obs.now, desired


class ThresholdPolicy:
    def __init__(self, config: ThresholdConfig):
        self.config = config
        self.interval, self.window = config.interval, config.window
        self.cooldown = Cooldown(config.cooldown)

    def decide(self, obs: Observation) -> Decision | None:
        if self.cooldown.active(obs):
            return None
        values = {m: v for m in ("cpu", "memory") if (v := ready_mean(obs, m)) is not None}
        if not values:
            return None
        step, why = self._rule(values)
        desired = clamp(obs.current + step, obs)
        if desired == obs.current:
            return None
        if desired != obs.current + step:   # the bounds (scheduled, pre-scaling) overrule the rule
            why = f"{why or 'no rule fired'}, but {overruled(desired, obs.min_instances, obs.max_instances)}"
        self.cooldown.acted(obs, desired)
        return Decision(desired, f"{why}: {obs.current} -> {desired}", dict(values))

    def _rule(self, values: dict[str, float]) -> tuple[int, str]:
        c = self.config
        hot = [f"{m} {pct(v)} > {pct(getattr(c, f'{m}_up'))}"
               for m, v in values.items() if v > getattr(c, f"{m}_up")]
        if hot:
            return c.step_up, " or ".join(hot)
        if all(v < getattr(c, f"{m}_down") for m, v in values.items()):
            return -c.step_down, " and ".join(
                f"{m} {pct(v)} < {pct(getattr(c, f'{m}_down'))}" for m, v in values.items())
        return 0, ""
