"""AWS-style predictive scaling in forecast-and-scale mode.

A ``Predictor`` records the total load (sum over the instances of the metric: total
requests per second, or total busy CPU in instance units) at each evaluation, in
``step``-sized buckets, keeping ``history`` (at most 14 days, as AWS). It forecasts
nothing until it has seen ``min_history`` (AWS: 24 h).

- ``seasonal``: the forecast for time t is the mean, over the previous seasons still
  kept, of the bucket at the same time of season (each season weighted equally).
- ``holt_winters``: additive Holt-Winters over the bucket means (smoothing constants
  ``HW_ALPHA``, ``HW_BETA``, ``HW_GAMMA``; the first season initialises level and
  seasonal terms, missing buckets skip their update); needs one full season.

Seasons and buckets are aligned on t = 0. ``desired(now)`` = ceil(forecast(now + buffer)
/ target): capacity is launched ``buffer`` ahead of the load it is for (AWS's default
buffer 300 s). Unlike AWS (a 48 h hourly forecast refreshed every 6 h), we forecast on
demand from everything seen so far.

``WithPredictive(policy, predictor)`` wraps a reactive policy: desired = max(reactive
decision, or current when it proposes nothing; predictive desired). The forecast only
ever raises the count, so predictive scaling never scales in by itself.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.autoscaling.base import Decision, Observation, Policy
from capsim.models.autoscaling.fixed import ceil_count, clamp
from capsim.models.units import Duration, Positive, PositiveDuration

__all__ = ["PredictiveConfig", "Predictor", "WithPredictive", "HW_ALPHA", "HW_BETA", "HW_GAMMA"]

HW_ALPHA, HW_BETA, HW_GAMMA = 0.3, 0.05, 0.3
_MAX_HISTORY = 14 * 86400.0


class PredictiveConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    metric: Literal["cpu", "rps"] = Field("rps", description="load forecast: total rps or total CPU busy fraction")
    target: Positive = Field(description="per-instance target: rps per instance, or CPU fraction (0..1]")
    history: PositiveDuration = Field(_MAX_HISTORY, le=_MAX_HISTORY, description="history kept (AWS: up to 14d)")
    min_history: Duration = Field(86400.0, description="no forecast before this much history (AWS: 24h)")
    season: PositiveDuration = Field(86400.0, description="length of the repeating pattern")
    method: Literal["seasonal", "holt_winters"] = "seasonal"
    buffer: Duration = Field(300.0, description="capacity launched this long ahead (AWS default 300s)")
    step: PositiveDuration = Field(3600.0, description="forecast bucket (AWS: 1h)")

    @model_validator(mode="after")
    def _check(self):
        if self.metric == "cpu" and self.target > 1:
            raise ValueError(f"target {self.target:g}: a CPU target is a fraction in (0, 1]")
        ratio = self.season / self.step
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"season {self.season:g}s must be a whole number of steps ({self.step:g}s)")
        if not self.min_history <= self.history or self.season > self.history:
            raise ValueError("expected season <= history and min_history <= history")
        if self.method == "holt_winters" and self.min_history < self.season:
            raise ValueError("holt_winters needs min_history >= season")
        return self

    def build(self) -> Predictor:
        return Predictor(self)

    def wrap(self, policy: Policy) -> WithPredictive:
        return WithPredictive(policy, self.build())


class Predictor:
    def __init__(self, config: PredictiveConfig):
        self.config = config
        self.per_season = round(config.season / config.step)
        self._buckets: dict[int, list[float]] = {}  # bucket index -> [sum, count]
        self._first: float | None = None
        self._last: float | None = None

    def observe(self, now: float, total_load: float) -> None:
        c = self.config
        b = self._buckets.setdefault(int(now // c.step), [0.0, 0])
        b[0] += total_load
        b[1] += 1
        self._first = now if self._first is None else self._first
        self._last = now
        oldest = int((now - c.history) // c.step)
        for i in [i for i in self._buckets if i < oldest]:
            del self._buckets[i]

    def _mean(self, i: int) -> float | None:
        b = self._buckets.get(i)
        return b[0] / b[1] if b else None

    def forecast(self, t: float) -> float | None:
        if self._last is None or self._last - self._first < self.config.min_history:
            return None
        i = int(t // self.config.step)
        return self._seasonal(i) if self.config.method == "seasonal" else self._holt_winters(i)

    def _seasonal(self, i: int) -> float | None:
        m, oldest = self.per_season, min(self._buckets)
        means = [v for k in range(1, (i - oldest) // m + 1) if (v := self._mean(i - k * m)) is not None]
        return sum(means) / len(means) if means else None

    def _holt_winters(self, i: int) -> float | None:
        m, lo, hi = self.per_season, min(self._buckets), max(self._buckets)
        if hi - lo + 1 < m:
            return None
        first = [v for j in range(lo, lo + m) if (v := self._mean(j)) is not None]
        level, trend = sum(first) / len(first), 0.0
        season = [(v - level) if (v := self._mean(lo + j)) is not None else 0.0 for j in range(m)]
        for j in range(lo + m, hi + 1):
            x, s = self._mean(j), (j - lo) % m
            if x is None:
                level += trend
                continue
            prev = level
            level = HW_ALPHA * (x - season[s]) + (1 - HW_ALPHA) * (level + trend)
            trend = HW_BETA * (level - prev) + (1 - HW_BETA) * trend
            season[s] = HW_GAMMA * (x - level) + (1 - HW_GAMMA) * season[s]
        return max(0.0, level + max(i - hi, 0) * trend + season[(i - lo) % m])

    def desired(self, now: float) -> int | None:
        f = self.forecast(now + self.config.buffer)
        return None if f is None else ceil_count(f / self.config.target)


class WithPredictive:
    """A reactive policy plus predictive scaling; the larger count wins."""

    def __init__(self, policy: Policy, predictor: Predictor):
        self.policy, self.predictor = policy, predictor
        self.interval, self.window = policy.interval, policy.window

    def decide(self, obs: Observation) -> Decision | None:
        load = self._load(obs)
        if load is not None:
            self.predictor.observe(obs.now, load)
        reactive = self.policy.decide(obs)
        base = reactive.desired if reactive else obs.current
        want = self.predictor.desired(obs.now)
        if want is None or clamp(want, obs) <= base:
            return reactive
        desired = clamp(want, obs)
        if desired == obs.current:
            return None
        c = self.config
        forecast = self.predictor.forecast(obs.now + c.buffer)
        why = (f"predictive: {c.metric} forecast {forecast:.4g} at +{c.buffer:g}s / {c.target:g} per instance "
               f"-> {want} (reactive: {reactive.reason if reactive else 'no change'})")
        metrics = {**(reactive.metrics if reactive else {}), "forecast": forecast, "predictive_desired": float(want)}
        return Decision(desired, f"{why}: {obs.current} -> {desired}", metrics)

    @property
    def config(self) -> PredictiveConfig:
        return self.predictor.config

    def _load(self, obs: Observation) -> float | None:
        values = [v for i in obs.instances if (v := getattr(i, self.config.metric)) is not None]
        return sum(values) if values else None
