"""Service-level objectives, monitoring thresholds and alert rules: the ``slo`` section.

Defaults are the seed guide's: success criteria (average response < 200 ms, error rate
< 0.01%, uptime > 99.9%), monitoring thresholds (response > 500 ms average, error rate
> 1%) and alert rules (error rate > 5% for 5 minutes, average > 2 s for 10 minutes).
The error rate counts server errors (5xx-like outcomes); ``count_rejected: true`` adds
the 429s of rate limits. How they are evaluated on a run's time series: ``capsim.results.slo``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.request import REJECTED, SERVER_ERRORS
from capsim.models.units import NonNegative, Positive, PositiveDuration, Share

__all__ = ["SLOConfig", "Objectives", "Threshold", "AlertRule", "METRICS", "counted_outcomes", "errors_counted"]

METRICS = ("latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "error_rate",
           "server_error_rate", "rejected_rate", "cpu_util", "memory_util")
METRIC_HELP = ("per-interval value: a latency column (ms); error_rate (server errors, plus rate-limited "
               "responses with count_rejected); server_error_rate; rejected_rate (429s); cpu_util or memory_util")
Metric = Literal[METRICS]  # type: ignore[valid-type]


class Objectives(BaseModel):
    """Success criteria over the measured window (null: not checked)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    latency_mean_ms: Positive | None = Field(200.0, description="average response time must stay below this (ms)")
    error_rate: Share | None = Field(0.0001, description="share of responses that are server errors (plus rate-limited ones with slo.count_rejected) must stay below this (0.0001 = 0.01%)")
    uptime: Share | None = Field(0.999, description="share of measured intervals with an instance ready must exceed this")


class Threshold(BaseModel):
    """A monitoring threshold: minutes in which ``metric`` is above ``above``."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(description="its key in the slo block of summary.json")
    metric: Metric = Field(description=METRIC_HELP)
    above: NonNegative = Field(description="limit in the metric's unit (ms for latencies, a share for the rates)")


class AlertRule(BaseModel):
    """An alert: fires when ``metric`` has stayed above ``above`` for ``for``."""
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    name: str = Field(description="its key in the slo block of summary.json")
    metric: Metric = Field(description=METRIC_HELP)
    above: NonNegative = Field(description="limit in the metric's unit (ms for latencies, a share for the rates)")
    for_: PositiveDuration = Field(alias="for", description="how long the condition must hold before the alert fires")


def counted_outcomes(config: "SLOConfig") -> tuple[str, ...]:
    """The outcomes ``error_rate`` counts under ``config``: server errors, plus 429s with ``count_rejected``."""
    return SERVER_ERRORS + (REJECTED if config.count_rejected else ())


def errors_counted(config: "SLOConfig") -> str:
    """What ``error_rate`` means under ``config``, in words (for summaries and reports)."""
    return ("server errors and rate-limited responses (429)" if config.count_rejected
            else "server errors only (rate-limited 429s are reported as rejected_rate, not counted)")


def _names_unique(items, what):
    names = [i.name for i in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{what}: names must be unique, got {dup} more than once")


class SLOConfig(BaseModel):
    """Objectives, monitoring thresholds and alert rules (defaults: the seed guide's)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    count_rejected: bool = Field(False, description="count rate-limited responses (429) as errors in error_rate "
                                 "objectives, thresholds and alerts (default: server errors only; a 429 is the limit "
                                 "working as configured)")
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
