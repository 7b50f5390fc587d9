"""Autoscaling policies behind one protocol (``base.Policy``), chosen by ``policy:``.

``fixed``, ``threshold`` (the seed's Render rules), ``target`` (Render's documented
autoscaling), ``hpa`` (Kubernetes HPA v2), ``step`` (AWS step scaling), ``scheduled``
(bounds moved by scheduled actions only) and ``custom`` (your class, opt-in). Any of
them combines with the scenario's ``schedule`` (time-of-day and dated actions, weekend
and event pre-scaling) and ``predictive`` (forecast-and-scale, the larger wins).
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Union

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.autoscaling.base import Decision, InstanceView, Observation, Policy
from capsim.models.autoscaling.custom import CodeNotAllowed, CustomConfig
from capsim.models.autoscaling.fixed import FixedConfig
from capsim.models.autoscaling.hpa import HPAConfig
from capsim.models.autoscaling.predictive import PredictiveConfig
from capsim.models.autoscaling.scheduled import Prescale, Schedule, ScheduledAction, SchedulePolicyConfig
from capsim.models.autoscaling.step import StepConfig
from capsim.models.autoscaling.target import TargetConfig
from capsim.models.autoscaling.threshold import ThresholdConfig

__all__ = ["AutoscalerConfig", "ScheduleConfig", "Policy", "Observation", "InstanceView", "Decision",
           "PredictiveConfig", "CodeNotAllowed", "build_parts"]

AutoscalerConfig = Annotated[
    Union[FixedConfig, ThresholdConfig, TargetConfig, HPAConfig, StepConfig, SchedulePolicyConfig, CustomConfig],
    Field(discriminator="policy")]


class ScheduleConfig(BaseModel):
    """Scheduled actions and pre-scaling, applied with any policy."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    actions: list[ScheduledAction] = Field(default_factory=list, description="set min/max/desired at times")
    prescale: Prescale | None = Field(None, description="raise the minimum ahead of weekends and events")


def build_parts(config, schedule: ScheduleConfig | None, predictive: PredictiveConfig | None,
                start: datetime, events: list[tuple[float, float]], allow_code: bool = False,
                policy: Policy | None = None):
    """(policy, Schedule or None, Prescaler or None) for one run."""
    if policy is None:
        policy = config.build(allow_code) if isinstance(config, CustomConfig) else config.build()
    if predictive is not None:
        policy = predictive.wrap(policy)
    actions = list(schedule.actions) if schedule else []
    if isinstance(config, SchedulePolicyConfig):
        actions = list(config.actions) + actions
    sched = Schedule(actions, start, config.min_instances, config.max_instances) if actions else None
    prescaler = schedule.prescale.build(start, events) if schedule and schedule.prescale else None
    return policy, sched, prescaler
