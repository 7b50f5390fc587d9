"""Plans and prices: what an instance has (vCPUs, memory) and what it costs.

Prices are data: the seed's Standard ($7) and Pro ($25) per month over 730 hours
(``calculateScalingCost``) are the defaults; a scenario may add or change plans.
Billing is per second (Render prorates compute per second).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Plan", "Pricing", "DEFAULT_PLANS", "instance_cost"]


class Plan(BaseModel):
    """One instance type."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    vcpus: float = Field(gt=0, description="vCPUs per instance")
    memory_gb: float = Field(gt=0, description="memory per instance, GB")
    usd_per_month: float = Field(ge=0, description="list price per instance-month")


DEFAULT_PLANS = {
    "standard": Plan(vcpus=1, memory_gb=2, usd_per_month=7.0),
    "pro": Plan(vcpus=2, memory_gb=4, usd_per_month=25.0),
}


class Pricing(BaseModel):
    """Price table; cost = seconds billed x usd_per_month / (hours_per_month x 3600)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    hours_per_month: float = Field(730.0, gt=0, description="hours in a billing month (seed: 730)")
    plans: dict[str, Plan] = Field(default_factory=lambda: dict(DEFAULT_PLANS),
                                   description="plans by name")

    def usd_per_second(self, plan: str) -> float:
        return self.plans[plan].usd_per_month / (self.hours_per_month * 3600.0)


def instance_cost(pricing: Pricing, plan: str, seconds: float) -> float:
    """USD for ``seconds`` of one instance of ``plan``, prorated per second."""
    return seconds * pricing.usd_per_second(plan)
