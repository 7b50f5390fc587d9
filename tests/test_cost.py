"""Cost: per-second billing of instances, plans, extras, the monthly projection and the
per-request / per-user ratios, checked against independent arithmetic.

Fixed fleets run a tiny open-loop workload (0.1/s) so long horizons stay fast; cost does
not depend on the traffic, only on instance time.
"""
from __future__ import annotations

import pytest

from capsim.models.instance import InstancesConfig
from capsim.engine.model import Model
from capsim.results.result import summarize
from capsim.scenario.config import Scenario

H, D = 3600.0, 86400.0
MONTH_S = 730 * H
NO_TIMEOUT = {"request_timeout": None} if "request_timeout" in InstancesConfig.model_fields else {}


def scenario(horizon, warmup=0.0, count=3, plan="standard", rate=0.1, pricing=None, **extra) -> Scenario:
    data = {
        "name": "cost", "horizon": horizon, "warmup": warmup,
        "workload": {"sessions": None, "open_loop": [{"name": "trickle", "rate": rate}],
                     "endpoints": {"api": {"cpu_pre": "1ms", "queries": 0}}},
        "instances": {"count": count, "plan": plan, "provisioning": "60s", **NO_TIMEOUT},
        "metrics": {"interval": 3600},
        **extra,
    }
    if pricing is not None:
        data["pricing"] = pricing
    return Scenario.model_validate(data)


def run(sc: Scenario, seed: int = 1) -> tuple[Model, dict]:
    model = Model(sc, seed=seed).run()
    return model, summarize(model)


def exact_cost(model) -> float:
    """The run's cost, unrounded, from the model's own accounting (window [warmup, horizon])."""
    sc = model.scenario
    seconds = model.fleet.instance_seconds(sc.warmup, sc.horizon)
    from capsim.models.pricing import extras_cost, instance_cost
    return sum(instance_cost(sc.pricing, p, s) for p, s in seconds.items()) + extras_cost(sc.pricing, sc.horizon - sc.warmup)


# ---------------------------------------------------------------- fixed fleets, exact to the cent
def test_three_standard_instances_for_ten_days():
    model, s = run(scenario(10 * D))
    expected = 3 * 7.0 * 240 / 730                      # 6.9041... USD
    assert round(exact_cost(model), 2) == round(expected, 2) == 6.90
    assert abs(exact_cost(model) - expected) < 1e-9
    assert s["cost_usd"] == round(expected, 4) and s["cost_compute_usd"] == round(expected, 4)
    assert s["instance_hours"] == 720.0 and s["instance_hours_by_plan"] == {"standard": 720.0}
    # the time series bills the same: last cumulative value, and the sum of the intervals
    rows = model.metrics.rows
    assert abs(rows[-1]["cost_usd_cum"] - expected) < 1e-9
    assert abs(sum(r["cost_usd"] for r in rows) - expected) < 1e-9
    assert all(r["cost_usd"] == pytest.approx(3 * 7.0 * 1.0 / 730) for r in rows)   # 1 h rows


def test_warmup_is_not_billed_in_the_summary():
    model, s = run(scenario(10 * D, warmup=D))
    expected = 3 * 7.0 * 216 / 730
    assert s["measured_seconds"] == 9 * D
    assert abs(exact_cost(model) - expected) < 1e-9 and s["cost_usd"] == round(expected, 4)
    assert s["instance_hours"] == 648.0 and s["instance_hours_by_plan"] == {"standard": 648.0}
    # the time series still covers the whole run
    assert abs(model.metrics.rows[-1]["cost_usd_cum"] - 3 * 7.0 * 240 / 730) < 1e-9


def test_pro_plan():
    model, s = run(scenario(2 * D, count=2, plan="pro"))
    expected = 2 * 25.0 * 48 / 730
    assert abs(exact_cost(model) - expected) < 1e-9 and s["cost_usd"] == round(expected, 4)
    assert s["instance_hours_by_plan"] == {"pro": 96.0}
    assert all(i.vcpus == 2 and len(i.procs) == 1 for i in model.fleet.instances)   # one Node process on 2 vCPUs


def test_custom_plan_and_extras():
    pricing = {"plans": {"standard": {"vcpus": 1, "memory_gb": 2, "usd_per_month": 7.0},
                         "big": {"vcpus": 4, "memory_gb": 8, "usd_per_month": 100.0}},
               "extras_usd_per_month": {"redis": 10, "database": 25}}
    model, s = run(scenario(3 * D, warmup=D, count=2, plan="big", pricing=pricing))
    window = 2 * D
    compute = 2 * 100.0 * window / MONTH_S
    extras = 35.0 * window / MONTH_S
    assert abs(exact_cost(model) - (compute + extras)) < 1e-9
    assert s["cost_compute_usd"] == round(compute, 4)
    assert s["cost_usd"] == round(compute + extras, 4)
    assert s["instance_hours_by_plan"] == {"big": 96.0}
    assert all(i.vcpus == 4 for i in model.fleet.instances)
    # the time series includes the extras in every interval (whole run, warm-up included)
    rows = model.metrics.rows
    assert abs(rows[-1]["cost_usd_cum"] - (2 * 100.0 + 35.0) * 3 * D / MONTH_S) < 1e-9
    # monthly projection: compute and extras at their monthly prices
    assert s["monthly_cost_usd"] == round(2 * 100.0 + 35.0, 2)


def test_extras_alone_are_prorated():
    model, s = run(scenario(D, count=1, pricing={"extras_usd_per_month": {"redis": 10, "database": 25}}))
    assert s["cost_usd"] - s["cost_compute_usd"] == pytest.approx(35.0 * 24 / 730, abs=2e-4)
    assert abs(exact_cost(model) - (7.0 + 35.0) * 24 / 730) < 1e-9


# ---------------------------------------------------------------- autoscaling
def autoscaled(warmup: float) -> Scenario:
    """Threshold scaling 1 -> 3 -> 1 on a load step (constant 10 ms of CPU, provisioning 60 s)."""
    return Scenario.model_validate({
        "name": "autoscaled-cost", "horizon": 3000, "warmup": warmup,
        "workload": {"sessions": None,
                     "open_loop": [{"name": "load", "schedule": [{"at": 0, "rate": 20}, {"at": 600, "rate": 180},
                                                                 {"at": 2400, "rate": 20}]}],
                     "endpoints": {"api": {"cpu_pre": "10ms", "queries": 0}}},
        "instances": {"count": 1, "provisioning": "60s", "memory_per_request_mb": 0, **NO_TIMEOUT},
        "autoscaler": {"policy": "threshold", "min_instances": 1, "max_instances": 3, "cpu_up": 0.5,
                       "cpu_down": 0.2, "cooldown": 300, "interval": 60, "window": 60},
        "metrics": {"interval": 30},
    })


def test_autoscaled_cost_is_the_sum_over_instances():
    warmup = 700.0   # in the middle of the scale-up: instance 1 started at 660
    model, s = run(autoscaled(warmup), seed=3)
    horizon, rate = 3000.0, 7.0 / MONTH_S
    insts = model.fleet.instances
    assert len(insts) == 3 and sum(i.stopped_at is not None for i in insts) == 2   # it scaled up and down
    assert insts[1].started_at < warmup   # started in the warm-up, billed in the window only from warmup

    def billed(t0):
        return sum(max(0.0, min(i.stopped_at if i.stopped_at is not None else horizon, horizon) - max(i.started_at, t0))
                   for i in insts) * rate

    assert abs(exact_cost(model) - billed(warmup)) < 1e-12
    assert s["cost_usd"] == round(billed(warmup), 4)
    assert s["instance_hours"] == round(billed(warmup) / rate / H, 4)
    # time series: whole run, warm-up included
    rows = model.metrics.rows
    assert abs(rows[-1]["cost_usd_cum"] - billed(0.0)) < 1e-12
    assert abs(sum(r["cost_usd"] for r in rows) - billed(0.0)) < 1e-12
    # per interval: the instances that ran in it, each for the part of the interval it ran
    for r in rows:
        t0, t1 = r["t_start"], r["t_end"]
        secs = sum(max(0.0, min(i.stopped_at if i.stopped_at is not None else t1, t1) - max(i.started_at, t0))
                   for i in insts)
        assert r["cost_usd"] == pytest.approx(secs * rate, rel=1e-12, abs=1e-15)
    # a fixed fleet of 3 would cost more; a fixed fleet of 1 less
    assert 1 * (horizon - warmup) * rate < billed(warmup) < 3 * (horizon - warmup) * rate


# ---------------------------------------------------------------- projections and ratios
def test_monthly_projection_and_cost_per_request():
    model, s = run(scenario(D, count=2))
    cost = 2 * 7.0 * 24 / 730
    assert abs(exact_cost(model) - cost) < 1e-9
    assert s["monthly_cost_usd"] == 14.00            # cost rate x 730 h: 2 x $7
    assert "730" in s["monthly_cost_method"]
    completed = s["requests"]["completed"]
    assert completed > 8000                          # ~0.1/s for a day
    assert s["cost_per_1000_requests_usd"] == round(cost * 1000 / completed, 6)
    assert s["cost_per_peak_user_usd"] is None      # no sessions, no users


def test_monthly_projection_of_a_partial_day_and_a_warmup():
    # 5 h measured of 3 instances: the rate, not the total, is projected
    model, s = run(scenario(6 * H, warmup=H, count=3))
    assert s["monthly_cost_usd"] == 21.00
    assert s["cost_usd"] == round(3 * 7.0 * 5 / 730, 4)


def test_cost_per_peak_user():
    sc = Scenario.model_validate({
        "name": "users", "horizon": 2 * H, "warmup": 0,
        "workload": {"sessions": {"peak_users": 20, "daily_curve": "flat", "session_length": "30m"},
                     "endpoints": {"api": {"cpu_pre": "1ms", "queries": 0}}},
        "instances": {"count": 1, **NO_TIMEOUT},
        "metrics": {"interval": 60},
    })
    model, s = run(sc)
    peak = max(r["sessions"] for r in model.metrics.rows)
    assert peak == s["sessions"]["peak"] and peak > 5
    cost = 7.0 * 2 / 730
    assert s["cost_per_peak_user_usd"] == round(cost / peak, 6)
    assert s["cost_per_1000_requests_usd"] == round(1000 * cost / s["requests"]["completed"], 6)
