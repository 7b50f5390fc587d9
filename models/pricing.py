"""Plans and prices: what an instance has (vCPUs, memory) and what it costs.

Prices are data: the seed's Standard ($7) and Pro ($25) per month over 730 hours
(``calculateScalingCost``) are the defaults; a scenario may add or change plans.
Billing is per second (Render prorates compute per second).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.units import Money, Positive, Real

__all__ = ["Plan", "Pricing", "Billing", "DEFAULT_PLANS", "instance_cost", "extras_cost", "monthly_projection"]


class Plan(BaseModel):
    """One instance type."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    vcpus: Positive = Field(description="vCPUs per instance")
    memory_gb: Positive = Field(description="memory per instance, GB")
    usd_per_month: Money = Field(description="list price per instance-month")


DEFAULT_PLANS = {
    "standard": Plan(vcpus=1, memory_gb=2, usd_per_month=7.0),
    "pro": Plan(vcpus=2, memory_gb=4, usd_per_month=25.0),
}


class Pricing(BaseModel):
    """Price table; cost = seconds billed x usd_per_month / (hours_per_month x 3600)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    hours_per_month: Real(gt=0, le=744) = Field(730.0, description="hours in a billing month, at most 31 x 24 (seed: 730)")
    plans: dict[str, Plan] = Field(default_factory=lambda: dict(DEFAULT_PLANS),
                                   description="plans by name")
    extras_usd_per_month: dict[str, Money] = Field(
        default_factory=dict, description="fixed monthly items prorated over the run, e.g. {redis: 10, database: 25}")

    def usd_per_second(self, plan: str) -> float:
        return self.plans[plan].usd_per_month / (self.hours_per_month * 3600.0)


def instance_cost(pricing: Pricing, plan: str, seconds: float) -> float:
    """USD for ``seconds`` of one instance of ``plan``, prorated per second."""
    return seconds * pricing.usd_per_second(plan)


def extras_cost(pricing: Pricing, seconds: float) -> float:
    """USD of the monthly extras (Redis, database plans) for ``seconds``."""
    return sum(pricing.extras_usd_per_month.values()) * seconds / (pricing.hours_per_month * 3600.0)


def monthly_projection(cost: float, seconds: float, pricing: Pricing) -> float:
    """Projected monthly bill: the run's average cost rate over a month of ``hours_per_month``.

    A horizon of whole days or weeks projects its own daily/weekly rhythm; a shorter one
    assumes the measured window repeats.
    """
    return cost / seconds * pricing.hours_per_month * 3600.0 if seconds > 0 else 0.0


class Billing:
    """Cost per interval and cumulative: instance-seconds (start to stop) plus extras."""

    def __init__(self, pricing: Pricing, fleet):
        self.pricing, self.fleet = pricing, fleet
        self.total = 0.0

    def sample(self, t0: float, t1: float) -> dict:
        seconds = self.fleet.instance_seconds(t0, t1)
        cost = sum(instance_cost(self.pricing, plan, s) for plan, s in seconds.items())
        cost += extras_cost(self.pricing, t1 - t0)
        self.total += cost
        return {"cost_usd": cost, "cost_usd_cum": self.total}
