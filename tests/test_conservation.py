"""Conservation of requests: nothing is created or lost, in the summary and the time series.

For every scenario:
  * summary: in_flight_start + requests.total == requests.completed + in_flight_end, and
    completed == the sum of every outcome count (ok, pool_timeout, db_refused, unavailable);
  * time series: rows tile [0, horizon]; per row, arrivals - completed == the change of
    in_system and completed == the sum of its n_<outcome> columns; the non-warm-up rows sum
    to the summary's totals; in_flight_start / in_flight_end are in_system at the warm-up
    boundary / the horizon;
  * the model's own state at the horizon agrees: requests in the system are the requests
    in flight on the instances, and pool/server connection counts are consistent.
Each scenario also asserts the behaviour it exists for (timeouts, refusals, flows), so
the checks are not vacuous.
"""
from __future__ import annotations

import pytest

from capsim.models.request import OUTCOMES
from capsim.engine.model import Model
from capsim.results.result import summarize
from capsim.scenario.config import Scenario


def _open_loop(rate, endpoints, mix=None, flow=None, **extra) -> dict:
    src = {"name": "load", "rate": rate}
    if flow is not None:
        src["flow"] = flow
    else:
        src["mix"] = mix or {n: 1 for n in endpoints}
    return {"sessions": None, "open_loop": [src], "endpoints": endpoints, **extra}


DB_EP = {"api": {"cpu_pre": {"dist": "exponential", "mean": 0.002}, "cpu_post": {"dist": "exponential", "mean": 0.001},
                 "queries": 2, "query_time": {"dist": "lognormal", "mean": 0.02, "p99": 0.15}}}

SCENARIOS = {
    # the built-in default (sessions, default endpoints), shortened
    "default": lambda: Scenario(horizon=7200, warmup=600),
    # warm-up and horizon off the interval grid, no warm-up at all
    "default_odd_grid": lambda: Scenario(horizon=3333, warmup=777, metrics={"interval": 60}),
    "no_warmup": lambda: Scenario(horizon=1800, warmup=0),
    # pool far too small for the load: most requests time out waiting for a connection
    "pool_overload": lambda: Scenario.model_validate({
        "horizon": 1500, "warmup": 300, "metrics": {"interval": 30},
        "workload": _open_loop(200.0, DB_EP),
        "instances": {"count": 2, "plan": "pro", "threads": 2},
        "database": {"pool": {"max": 3, "acquire_timeout": 0.5}}}),
    # 3 instances x pool 20 against a server that accepts 5 connections: refusals;
    # short idle timeout so connections close and are reopened (and refused) all the time
    "db_refused": lambda: Scenario.model_validate({
        "horizon": 1500, "warmup": 300, "metrics": {"interval": 30},
        "workload": _open_loop(150.0, DB_EP),
        "instances": {"count": 3},
        "load_balancer": {"policy": "least_connections"},
        "database": {"max_connections": 5, "pool": {"max": 20, "idle_timeout": 1.0}}}),
    # Artillery-style flows: each arrival is a user issuing 3 requests in a row (default
    # endpoints), with ramped phases, on a database with limited concurrency
    "flow": lambda: Scenario.model_validate({
        "horizon": 1800, "warmup": 120, "metrics": {"interval": 45},
        "workload": {"sessions": None, "open_loop": [
            {"name": "vu", "phases": [{"duration": 600, "arrivalRate": 5, "rampTo": 40},
                                      {"duration": 900, "arrivalRate": 40}],
             "flow": ["auth", "toybox", "presence"]}]},
        "instances": {"count": 2},   # ~1.25 cores of work at the peak: two instances keep up
        "database": {"concurrency": 4, "pool": {"max": 10, "acquire_timeout": 1.0}}}),
    # sessions and an open-loop source together, random load balancing over 2 instances
    "mixed": lambda: Scenario.model_validate({
        "horizon": 3600, "warmup": 600,
        "workload": {"open_loop": [{"name": "burst", "schedule": [{"at": 0, "rate": 5}, {"at": 1200, "rate": 60},
                                                                   {"at": 2400, "rate": 5}]}]},
        "instances": {"count": 2}, "load_balancer": {"policy": "random"}}),
}


_RUNS: dict = {}


def run(name: str, seed: int = 11):
    if name not in _RUNS:
        m = Model(SCENARIOS[name](), seed).run()
        _RUNS[name] = (m, summarize(m), m.metrics.rows)
    return _RUNS[name]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_summary_conservation(name):
    _, s, _ = run(name)
    q = s["requests"]
    assert q["in_flight_start"] + q["total"] == q["completed"] + q["in_flight_end"], q
    assert q["completed"] == sum(q[o] for o in OUTCOMES), q
    assert q["total"] > 0 and q["completed"] > 0
    assert s["pool"]["timeouts"] == q["pool_timeout"] and s["pool"]["db_refused"] == q["db_refused"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_timeseries_conservation(name):
    m, s, rows = run(name)
    sc = m.scenario
    # rows tile [0, horizon], the warm-up boundary is a row boundary
    assert rows[0]["t_start"] == 0 and rows[-1]["t_end"] == sc.horizon
    assert all(a["t_end"] == b["t_start"] for a, b in zip(rows, rows[1:]))
    assert all(r["warmup"] == (r["t_end"] <= sc.warmup) for r in rows)
    if sc.warmup > 0:
        assert any(r["t_end"] == sc.warmup for r in rows)
    prev = 0
    for r in rows:
        assert r["completed"] == sum(r[f"n_{o}"] for o in OUTCOMES), r
        assert r["arrivals"] - r["completed"] == r["in_system"] - prev, r
        assert r["in_system"] >= 0
        prev = r["in_system"]
    meas = [r for r in rows if not r["warmup"]]
    warm = [r for r in rows if r["warmup"]]
    q = s["requests"]
    assert sum(r["arrivals"] for r in meas) == q["total"]
    assert sum(r["completed"] for r in meas) == q["completed"]
    for o in OUTCOMES:
        assert sum(r[f"n_{o}"] for r in meas) == q[o], o
    assert q["in_flight_start"] == (warm[-1]["in_system"] if warm else 0)
    assert q["in_flight_end"] == rows[-1]["in_system"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_model_state_at_horizon(name):
    """Requests in the system are exactly those in flight on the instances (a request that
    finds no instance ends at once); connection counts are consistent."""
    m, s, _ = run(name)
    assert m.metrics.in_system == sum(inst.in_flight for inst in m.fleet.instances)
    cfg = m.scenario.database
    for inst in m.fleet.instances:
        for p in inst.primary_pools():
            assert 0 <= p.in_use and p.in_use + len(p.idle) <= p.total <= p.max
            assert p.waiting == sum(1 for r in p.waiters if r.waiting)
        assert sum(p.in_use + p.waiting for p in inst.primary_pools()) <= inst.in_flight
    assert 0 <= m.db.connections <= cfg.max_connections
    assert m.db.connections <= sum(p.total for inst in m.fleet.instances for p in inst.primary_pools())


def test_scenarios_exercise_what_they_claim():
    q = run("pool_overload")[1]["requests"]
    assert q["pool_timeout"] > 0.2 * q["completed"], q
    q = run("db_refused")[1]["requests"]
    assert q["db_refused"] > 100, q
    assert q["ok"] > 0
    m, s, _ = run("flow")
    assert s["requests"]["total"] > 3 * m.sources[0].arrivals * 0.9   # ~3 requests per user
    assert m.sources[0].arrivals > 1000
    m, s, _ = run("mixed")
    assert s["sessions"]["started"] > 0 and m.sources[1].arrivals > 0
    for name in ("default", "default_odd_grid", "no_warmup", "mixed"):
        assert run(name)[1]["requests"]["ok"] > 1000, name


# -- a timeout swept at exactly the horizon (issue 13 item 2) ------------------------------------
def _timeout_at_horizon() -> Scenario:
    return Scenario.model_validate({
        "horizon": 5, "warmup": 0, "metrics": {"interval": 60},
        "workload": {"sessions": None, "open_loop": [],
                     "endpoints": {"api": {"cpu_pre": "100s", "queries": 0}}},
        "instances": {"count": 1, "request_timeout": "4s"},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})


def test_a_timeout_swept_at_the_horizon_is_counted():
    """One request at t = 1 s holding the only worker for 100 s, server timeout 4 s: the sweeper
    (a tick a second) ends it at exactly t = 5 s, the horizon. It must be in the last interval."""
    from tests.helpers import Driver, conserved
    d = Driver(_timeout_at_horizon())
    req = d.send(1.0, cpu=100.0)
    s = d.run()
    assert d.outcome(req) == ("timeout", 5.0)
    q = s["requests"]
    assert (q["total"], q["timeout"], q["completed"], q["in_flight_end"]) == (1, 1, 1, 0), q
    assert conserved(s)
    rows = d.model.metrics.rows
    assert len(rows) == 1 and (rows[0]["t_end"], rows[0]["n_timeout"], rows[0]["in_system"]) == (5.0, 1, 0)


def test_the_issue_reproduction_conserves_requests():
    """The issue's command: launch, 10 min, timeouts falling on the horizon (1978 in, 1972 out)."""
    from tests.helpers import conserved
    from capsim.scenario.loader import load
    from pathlib import Path
    launch = Path(__file__).resolve().parents[1] / "scenarios" / "launch.yaml"
    sc = load(launch, ["horizon=10m", "warmup=1m", "instances.reject_cpu=1h"])
    m = Model(sc).run()
    s = summarize(m)
    assert s["requests"]["timeout"] > 0 and conserved(s), s["requests"]


def test_a_chunked_run_is_the_run_in_one_go():
    """Progress reporting runs the kernel in stretches of simulated time: same events, same order."""
    import math
    sc = Scenario.model_validate({"horizon": 3600, "warmup": 600, "autoscaler": {"policy": "threshold"},
                                  "faults": {"crash_rate": 2.0}})
    one = Model(sc, 5).run()
    seen = []
    chunked = Model(sc, 5).run(progress=lambda t, h: seen.append((t, h)))
    assert len(seen) > 100 and seen[-1] == (3600, 3600) and all(b[0] > a[0] for a, b in zip(seen, seen[1:]))

    def same(a, b):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    assert len(one.metrics.rows) == len(chunked.metrics.rows)
    for r1, r2 in zip(one.metrics.rows, chunked.metrics.rows):
        assert r1.keys() == r2.keys() and all(same(r1[k], r2[k]) for k in r1), r1["t_end"]
    s1, s2 = summarize(one), summarize(chunked)
    s1.pop("wall_seconds"), s2.pop("wall_seconds")
    assert s1 == s2 and s1["scaling_events"] + s1["crashes"] > 0
