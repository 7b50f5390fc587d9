"""Service-level objectives, monitoring thresholds and alert rules: the ``slo`` section.

Defaults are the seed guide's: success criteria (average response < 200 ms, error rate
< 0.01%, uptime > 99.9%), monitoring thresholds (response > 500 ms average, error rate
> 1%) and alert rules (error rate > 5% for 5 minutes, average > 2 s for 10 minutes).
How they are evaluated on a run's time series: ``capsim.results.slo``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.units import NonNegative, Positive, PositiveDuration, Share

__all__ = ["SLOConfig", "Objectives", "Threshold", "AlertRule", "METRICS"]

METRICS = ("latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate",
           "cpu_util", "memory_util")
Metric = Literal[METRICS]  # type: ignore[valid-type]


class Objectives(BaseModel):
    """Success criteria over the measured window (null: not checked)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    latency_mean_ms: Positive | None = Field(200.0, description="average response time must stay below this (ms)")
    error_rate: Share | None = Field(0.0001, description="share of responses that are not ok must stay below this (0.0001 = 0.01%)")
    uptime: Share | None = Field(0.999, description="share of measured intervals with an instance ready must exceed this")


class Threshold(BaseModel):
    """A monitoring threshold: minutes in which ``metric`` is above ``above``."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(description="its key in the slo block of summary.json")
    metric: Metric = Field(description="per-interval value: a latency column (ms), error_rate (non-ok share), cpu_util or memory_util")
    above: NonNegative = Field(description="limit in the metric's unit (ms for latencies, a share for error_rate)")


class AlertRule(BaseModel):
    """An alert: fires when ``metric`` has stayed above ``above`` for ``for``."""
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    name: str = Field(description="its key in the slo block of summary.json")
    metric: Metric = Field(description="per-interval value: a latency column (ms), error_rate (non-ok share), cpu_util or memory_util")
    above: NonNegative = Field(description="limit in the metric's unit (ms for latencies, a share for error_rate)")
    for_: PositiveDuration = Field(alias="for", description="how long the condition must hold before the alert fires")


def _names_unique(items, what):
    names = [i.name for i in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what}: names must be unique, got {dup} more than once")


class SLOConfig(BaseModel):
    """Objectives, monitoring thresholds and alert rules (defaults: the seed guide's)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    objectives: Objectives = Field(default_factory=Objectives)
    thresholds: list[Threshold] = Field(default_factory=lambda: [
        Threshold(name="slow_responses", metric="latency_mean_ms", above=500.0),
        Threshold(name="high_error_rate", metric="error_rate", above=0.01)])
    alerts: list[AlertRule] = Field(default_factory=lambda: [
        AlertRule(name="high_error_rate", metric="error_rate", above=0.05, for_=300.0),
        AlertRule(name="slow_responses", metric="latency_mean_ms", above=2000.0, for_=600.0)])

    @model_validator(mode="after")
    def _unique(self):
        _names_unique(self.thresholds, "thresholds")
        _names_unique(self.alerts, "alerts")
        return self
