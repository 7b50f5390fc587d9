"""The shipped studies: CPU costs derived from the seed's capacity table, and a week where policies differ.

The seed's table (``capsim.experiments.plan.LEVELS``): medium 250 req/s on 3 Standard
instances, heavy 500 req/s on 6, planned at the 70% CPU threshold, so one 1-vCPU
instance serves 83.3 req/s at 70%: 0.70 / 83.3 = 8.4 ms of CPU per request. growth.yaml
and fullscale.yaml carry that cost; week.yaml stands 10 users for one and multiplies
every CPU cost by 10, so its CPU demand is growth's.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import capsim
from capsim.experiments.compare import compare
from capsim.experiments.plan import LEVELS, cpu_per_request

ROOT = Path(__file__).resolve().parent.parent
SC = ROOT / "scenarios"
UP = 0.70                      # the seed's scale-up threshold: the planned utilisation
SCALE = 10                     # week.yaml: users / 10, CPU x 10
LEVEL = {name: (users, rps, count) for name, users, rps, count, _ in LEVELS}


def _text(name: str) -> str:
    return (SC / f"{name}.yaml").read_text()


def _load(name: str, overrides: list[str] | None = None):
    return capsim.load_scenario(SC / f"{name}.yaml", overrides or [])


def _seed_cpu() -> tuple[float, float]:
    """(requests/s one Standard instance serves at 70%, CPU seconds per request), from the seed's table."""
    per = {LEVEL[k][1] / LEVEL[k][2] for k in ("medium", "heavy")}
    assert len(per) == 1                       # 250 / 3 = 500 / 6: the table agrees with itself
    rps = per.pop()
    return rps, UP / rps


def test_the_seed_table_implies_8_4_ms_per_request_and_the_files_say_so():
    rps, cpu = _seed_cpu()
    assert rps == pytest.approx(83.33, abs=0.01) and cpu == pytest.approx(0.0084)
    text = _text("growth")
    sc = _load("growth")
    loop = sc.instances.event_loop
    overhead = loop.request_cpu + loop.response_cpu
    for figure in (f"{rps:.1f} req/s", f"0.70 / {rps:.1f} = {cpu * 1e3:.1f} ms",
                   f"{loop.request_cpu * 1e3:g} + {loop.response_cpu * 1e3:g} = {overhead * 1e3:g} ms",
                   f"average {(cpu - overhead) * 1e3:.1f} ms"):
        assert figure in text, figure
    users, seed_rps, count = LEVEL["medium"]
    assert sc.workload.sessions.peak_users == users and users * sc.workload.sessions.request_rate == seed_rps
    assert f"{seed_rps} req/s x {cpu * 1e3:.1f} ms = {seed_rps * cpu:.1f} vCPUs: {count} instances at 70%" in text


@pytest.mark.parametrize("name", ["growth", "fullscale"])
def test_full_scale_files_cost_what_the_table_implies(name):
    sc = _load(name)
    assert cpu_per_request(sc) == pytest.approx(_seed_cpu()[1], rel=0.002)
    assert sc.instances.event_loop.query_cpu == 0       # the cache moves database load, not CPU
    plan = sc.pricing.plans[sc.instances.plan]
    assert sc.instances.processes == plan.vcpus          # one event loop per vCPU: 70% is reachable


def test_week_is_growth_at_a_tenth_of_the_users_and_ten_times_the_cpu():
    week, growth = _load("week"), _load("growth")
    ws, gs = week.workload.sessions, growth.workload.sessions
    assert ws.peak_users * SCALE == gs.peak_users and ws.request_rate == gs.request_rate
    assert cpu_per_request(week) == pytest.approx(SCALE * cpu_per_request(growth), rel=1e-9)
    for name, ep in growth.workload.endpoints.items():
        wep = week.workload.endpoints[name]
        assert wep.cpu_pre.mean == pytest.approx(SCALE * ep.cpu_pre.mean) and \
            wep.cpu_post.mean == pytest.approx(SCALE * ep.cpu_post.mean), name
        assert (wep.weight, wep.queries, wep.db_probability) == (ep.weight, ep.queries, ep.db_probability)
    wl, gl = week.instances.event_loop, growth.instances.event_loop
    assert (wl.request_cpu, wl.response_cpu) == pytest.approx((SCALE * gl.request_cpu, SCALE * gl.response_cpu))
    assert week.instances.reject_cpu == pytest.approx(SCALE * growth.instances.reject_cpu)
    assert week.sockets.ping_cpu == pytest.approx(SCALE * growth.sockets.ping_cpu)
    assert week.instances.request_timeout == pytest.approx(SCALE * growth.instances.request_timeout)
    assert week.database.pool.acquire_timeout == pytest.approx(SCALE * growth.database.pool.acquire_timeout)
    _, cpu = _seed_cpu()
    text = _text("week")
    assert f"{cpu * 1e3:.1f} ms per" in text and f"becomes {SCALE * cpu * 1e3:.0f} ms" in text
    handlers = SCALE * (cpu - gl.request_cpu - gl.response_cpu)
    assert f"the handlers' cpu_pre + cpu_post {handlers * 1e3:.0f} ms" in text


def test_week_covers_a_week_with_weekend_and_a_saturday_tournament():
    sc = _load("week")
    assert sc.horizon == 7 * 86400 and sc.workload.start.weekday() == 0 and sc.workload.start.hour == 0
    (ev,) = sc.workload.sessions.events
    assert (ev.start.weekday(), ev.start.hour, ev.duration, ev.multiplier) == (5, 18, 4 * 3600, 2.0)
    assert (sc.autoscaler.policy, sc.autoscaler.min_instances, sc.autoscaler.max_instances) == ("threshold", 1, 10)
    _, cpu = _seed_cpu()
    need = ev.multiplier * sc.workload.sessions.weekend_multiplier * SCALE * sc.workload.sessions.peak_users \
        * sc.workload.sessions.request_rate * cpu
    assert 0.7 * (sc.autoscaler.max_instances - 1) <= need < 0.7 * sc.autoscaler.max_instances  # 9 at 70% fit in 10
    assert "6.3 vCPUs" in _text("week") and f"{need:.1f}" == "6.3"


@pytest.mark.parametrize("name, users, count", [("growth", 500, 3), ("fullscale", 1000, 3), ("week", 50, 3)])
def test_at_the_seeds_level_the_planned_fleet_runs_at_70_percent(name, users, count):
    """Simulated, not computed: steady load (flat day, constant 5-minute sessions, so
    Poisson(users) concurrent users after the warm-up) on a fixed fleet. The CPU the
    platform measures per served request is the derived cost (sockets' pings add 0.05%),
    and at full scale the fleet runs at the planned 70% (3 Pro with 2 processes = 6 vCPUs
    carry the heavy level's 500 req/s as 6 Standard instances would). At week.yaml's
    reduced scale the 50 users' own noise (Poisson sd 7, for 5-minute stretches) moves a
    10-minute CPU mean by ~10%, so only its cost per request is held to 2%."""
    sc = _load(name, ["workload.sessions.daily_curve=flat", "workload.sessions.weekend_multiplier=1",
                      "workload.sessions.events=[]", "workload.sessions.session_length=5m",
                      f"workload.sessions.peak_users={users}", "autoscaler=null", "schedule=null",
                      f"instances.count={count}", "horizon=15m", "warmup=5m"])
    s = capsim.run(sc, seed=3).summary
    vcpus = count * sc.pricing.plans[sc.instances.plan].vcpus
    per_request = s["cpu_util_mean"] * vcpus / s["throughput_rps"]
    assert per_request == pytest.approx(cpu_per_request(sc), rel=0.02)
    if name != "week":
        assert s["cpu_util_mean"] == pytest.approx(UP, abs=0.04), s["cpu_util_mean"]


def _saturday_evening(policy: str) -> capsim.Scenario:
    """week.yaml from Saturday 16:00 for 6 h: the weekend evening and the tournament's start."""
    return _load("week", ["workload.start=2026-01-10T16:00:00", "horizon=6h", "warmup=30m",
                          "instances.count=3", f"autoscaler={{policy: {policy}, min_instances: 1, max_instances: 10}}"])


@pytest.mark.slow
def test_the_week_studys_policies_differ_in_every_replication():
    """A reduced horizon of the shipped study, two replications with common random numbers:
    the threshold rules and the HPA run different instance-hours in each, and compare does
    not call them identical."""
    ab = compare(_saturday_evening("threshold"), _saturday_evening("hpa"), replications=2, workers=1)
    hours = ab.metrics()["instance_hours"]
    a = ab.a.table["instance_hours"].to_numpy()
    b = ab.b.table["instance_hours"].to_numpy()
    assert (a != b).all(), (a, b)
    assert "identical" not in hours["verdict"]
