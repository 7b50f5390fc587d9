"""The scenario: one frozen, typed section per component, validated once at the edge.

``Scenario()`` with no arguments is the built-in default: the seed's Phase 1 launch
(up to 100 concurrent users, one Standard instance, a pool of 20 connections).
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.autoscaling import AutoscalerConfig, PredictiveConfig, ScheduleConfig
from capsim.models.cache import CacheConfig
from capsim.models.circuit_breaker import BreakerConfig
from capsim.models.database import DatabaseConfig
from capsim.models.rate_limit import RateLimitConfig
from capsim.models.sockets import SocketsConfig
from capsim.models.faults import FaultsConfig
from capsim.models.instance import InstancesConfig
from capsim.models.load_balancer import LoadBalancerConfig
from capsim.models.pricing import Pricing
from capsim.models.units import Duration, PositiveDuration, Real, Seed
from capsim.models.workload import WorkloadConfig
from capsim.scenario.slo import SLOConfig

__all__ = ["Scenario", "MetricsConfig", "FlowConfig", "FIDELITIES"]

FIDELITIES = ("request", "flow")


class MetricsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    interval: PositiveDuration = Field(60.0, description="time-series resolution")


class FlowConfig(BaseModel):
    """The fast mode (``fidelity: flow``, ``capsim.engine.flow``): closed forms per step instead of requests."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    step: PositiveDuration = Field(10.0, description="length of one fast-mode step; must divide metrics.interval")
    max_utilisation: Real(gt=0, le=1) = Field(0.6, description="a step with an event loop, pool or database busier "
                                   "than this is flagged: outside the fast mode's validity (measured: above ~0.6, "
                                   "round-robin arrivals make its mean latency 10-20% high)")


class Scenario(BaseModel):
    """A capsim scenario (all durations in seconds once loaded)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field("launch", description="a short name for reports")
    description: str = Field("Seed Phase 1, initial launch: up to 100 concurrent users, one Standard instance, pool 20",
                             description="free text")
    horizon: PositiveDuration = Field(86400.0, description="simulated time")
    warmup: Duration = Field(1800.0, description="excluded from the summary (the time series keeps it, flagged)")
    seed: Seed = Field(1, description="base seed of every random stream (--seed overrides)")
    fidelity: Literal[FIDELITIES] = Field(  # type: ignore[valid-type]
        "request", description="request: every request simulated; flow: the fast mode, closed forms per step "
                               "(flow.step), cross-validated against the request level (capsim run --check)")
    flow: FlowConfig = Field(default_factory=FlowConfig, description="fast-mode settings (fidelity: flow)")
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    instances: InstancesConfig = Field(default_factory=InstancesConfig)
    autoscaler: AutoscalerConfig | None = Field(None, description="scaling policy; null keeps instances.count")
    schedule: ScheduleConfig | None = Field(None, description="scheduled actions and pre-scaling (with any policy)")
    predictive: PredictiveConfig | None = Field(None, description="forecast-and-scale on top of the policy")
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    cache: CacheConfig | None = Field(default_factory=CacheConfig, description="response cache (seed Phase 1: in memory); null for none")
    rate_limit: RateLimitConfig | None = Field(default_factory=RateLimitConfig, description="express-rate-limit tiers; null for none")
    circuit_breaker: BreakerConfig | None = Field(default_factory=BreakerConfig, description="database circuit breaker and load shedding; null for none")
    sockets: SocketsConfig | None = Field(default_factory=SocketsConfig, description="a sticky Socket.io connection per session; null for none")
    pricing: Pricing = Field(default_factory=Pricing)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    faults: FaultsConfig = Field(default_factory=FaultsConfig)
    slo: SLOConfig = Field(default_factory=SLOConfig, description="objectives, monitoring thresholds and alert rules (sim/scenario/slo.py, sim/results/slo.py)")

    @model_validator(mode="after")
    def _consistent(self):
        if self.warmup >= self.horizon:
            raise ValueError(f"warmup: expected less than horizon ({self.horizon:g} s), got {self.warmup:g} s")
        if self.sockets is not None and self.workload.sessions is not None:   # sockets belong to sessions
            names = set(self.workload.endpoints)
            for field in ("endpoints", "reconnect_flow"):
                bad = [n for n in getattr(self.sockets, field) or [] if n not in names]
                if bad:
                    raise ValueError(f"sockets.{field}: unknown endpoint {bad[0]!r}; expected one of {sorted(names)}")
        pool = self.database.pool
        if pool.policy == "static" and pool.min > pool.max:
            raise ValueError(f"database.pool.min: expected at most pool.max ({pool.max}), got {pool.min}")
        ratio = self.metrics.interval / self.flow.step
        if self.fidelity == "flow" and (abs(ratio - round(ratio)) > 1e-9 or ratio < 1 - 1e-9):
            raise ValueError(f"flow.step: expected a divisor of metrics.interval ({self.metrics.interval:g} s), "
                             f"got {self.flow.step:g} s")
        if self.instances.plan not in self.pricing.plans:
            raise ValueError(f"instances.plan: expected one of {sorted(self.pricing.plans)}, got {self.instances.plan!r}")
        self._action_zones()
        return self

    def _action_zones(self) -> None:
        """A dated scheduled action and workload.start: both with a time zone or both without (as events)."""
        from capsim.models.autoscaling.scheduled import parse_at
        aware = self.workload.start.tzinfo is not None
        own = self.autoscaler.actions if self.autoscaler is not None and self.autoscaler.policy == "scheduled" else []
        for field, actions in (("schedule.actions", self.schedule.actions if self.schedule else []),
                               ("autoscaler.actions", own)):
            for i, a in enumerate(actions):
                when = parse_at(a.at)[1]
                if isinstance(when, datetime) and (when.tzinfo is not None) != aware:
                    raise ValueError(f"{field}[{i}].at: {when.isoformat()} and workload.start "
                                     f"{self.workload.start.isoformat()}: expected both with a time zone or both without")
