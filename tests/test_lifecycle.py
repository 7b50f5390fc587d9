"""Instance lifecycle and faults in whole runs: drain on scale-in, crashes and restarts,
random crashes, database outages, no instance ready.

Requests are injected by hand at chosen times with constant CPU slices and query times
(``Driver.send``), so every outcome, time and latency below is exact. The server request
timeout (if the model has one) is switched off so it cannot interfere.
"""
from __future__ import annotations

import math

import pytest

from capsim.models.instance import InstancesConfig
from capsim.scenario.config import Scenario
from tests.helpers import Driver, conserved

EPS = 1e-4
NO_TIMEOUT = {"request_timeout": None} if "request_timeout" in InstancesConfig.model_fields else {}
STANDARD_USD_PER_S = 7.0 / (730 * 3600)


def scenario(count=2, horizon=300.0, instances=None, faults=None, database=None, **extra) -> Scenario:
    """No traffic of its own (requests come from ``Driver.send``); constant times everywhere."""
    data = {
        "name": "lifecycle", "horizon": horizon, "warmup": 0,
        "workload": {"sessions": None, "open_loop": [],
                     "endpoints": {"api": {"cpu_pre": "1ms", "queries": 0}}},
        "instances": {"count": count, "provisioning": "60s", "shutdown_delay": "30s", "restart_after": "60s",
                      **NO_TIMEOUT, **(instances or {})},
        "database": {"connect_time": "20ms", "rtt": "1ms",
                     "pool": {"max": 1, "acquire_timeout": 0, "idle_timeout": 0}, **(database or {})},
        "faults": faults or {},
        "metrics": {"interval": 10},
        **extra,
    }
    return Scenario.model_validate(data)


# ---------------------------------------------------------------- drain on scale-in
def test_drain_finishes_what_it_can_then_terminates_and_stops_billing():
    d = Driver(scenario(count=3))
    inst = d.fleet.instances   # filled by run(); read lazily below
    # round robin over [i0, i1, i2]: a -> i0, x -> i1, y -> i2, b -> i0 (queued behind a)
    a = d.send(10, cpu=5.0)           # runs 10..15 on i0
    x = d.send(10)
    y = d.send(10)
    b = d.send(10, cpu=50.0)          # runs 15..65 on i0: still running at the deadline 12 + 30
    d.at(12, lambda: d.fleet.stop(inst[0]))
    d.probe(12 + EPS, lambda: list(d.fleet.lb.ready))
    c1, c2 = d.send(13), d.send(14)   # after the stop: only i1 and i2 take traffic
    d.at(50, lambda: d.fleet.stop(inst[2]))   # idle: stops at once
    e = d.send(100, cpu=5.0)          # i1 is the only one left ready: runs 100..105
    d.at(102, lambda: d.fleet.stop(inst[1]))  # drains until e finishes at 105 (< deadline 132)
    late = d.send(200)                # nothing ready any more
    s = d.run()

    i0, i1, i2 = inst
    assert d.probes[12 + EPS] == [i1, i2]           # out of the load balancer at once
    assert d.outcome(a) == ("ok", 15.0)             # in flight at the stop, finished normally
    assert b.inst is i0 and d.outcome(b) == ("terminated", 42.0)   # killed at stop + shutdown_delay
    assert {c1.inst, c2.inst} == {i1, i2} and d.outcome(c1)[0] == d.outcome(c2)[0] == "ok"
    assert d.outcome(x)[0] == d.outcome(y)[0] == "ok"
    assert d.outcome(e) == ("ok", 105.0)
    assert d.outcome(late) == ("unavailable", 200.0)
    # stopped: at the deadline, at once when idle, when the last request finished
    assert (i0.stopped_at, i2.stopped_at, i1.stopped_at) == (42.0, 50.0, 105.0)
    assert d.fleet.running == [] and all(i.draining for i in inst)
    # billing from start to stop
    billed = 42.0 + 105.0 + 50.0
    assert d.fleet.instance_seconds(0.0, 300.0) == pytest.approx({"standard": billed}, abs=1e-9)
    assert s["instance_hours"] == round(billed / 3600, 4)
    rows = d.model.metrics.rows
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(billed * STANDARD_USD_PER_S, rel=1e-12)
    assert [r["instances"] for r in rows if r["t_end"] in (40.0, 50.0, 100.0, 110.0)] == [3, 1, 1, 0]
    # outcomes and latencies in the summary
    req = s["requests"]
    assert (req["ok"], req["terminated"], req["unavailable"], req["total"]) == (6, 1, 1, 8)
    assert d.model.metrics.latency_ms(["terminated"])["mean"] == pytest.approx(32_000.0)
    assert conserved(s)


# ---------------------------------------------------------------- crash at a given time
def test_crash_kills_its_requests_closes_its_pool_and_restarts_after_restart_after():
    d = Driver(scenario(count=2, faults={"crashes": [{"at": 100, "instance": 0}]}))
    inst = d.fleet.instances
    # round robin from 80: r0 -> i0, r1 -> i1, r2 -> i0, r3 -> i1, r4 -> i0, r5 -> i1
    r0 = d.send(80, query=50.0)   # i0: holds its only pool connection, in its query at 100
    r1 = d.send(80, query=50.0)   # i1: the same on the healthy instance
    r2 = d.send(80, query=50.0)   # i0: waits for r0's connection (pool max 1, no acquire timeout)
    r3 = d.send(80)               # i1
    r4 = d.send(80, cpu=40.0)     # i0: on the CPU at 100
    r5 = d.send(80)               # i1
    d.probe(100 - EPS, lambda: (d.model.db.connections, inst[0] in d.fleet.lb.ready, inst[0].in_flight))
    d.probe(100 + EPS, lambda: (d.model.db.connections, inst[0] in d.fleet.lb.ready, inst[0].in_flight,
                                inst[0].pool.total, d.model.db.active))
    during = [d.send(t) for t in (110, 120, 150)]            # only i1 is ready
    d.probe(160 - EPS, lambda: inst[0] in d.fleet.lb.ready)
    d.probe(160 + EPS, lambda: inst[0] in d.fleet.lb.ready)
    after = [d.send(170, query=1.0), d.send(170, query=1.0)]  # one of them lands on i0 again
    s = d.run()

    i0, i1 = inst
    for r in (r0, r2, r4):
        assert d.outcome(r) == ("crashed", 100.0)                # latency 100 - 80
    assert r2.inst is i0 and r4.inst is i0
    assert d.outcome(r1)[0] == "ok" and d.outcome(r1)[1] > 130
    assert d.outcome(r3)[0] == d.outcome(r5)[0] == "ok"
    assert d.probes[100 - EPS] == (2, True, 3)
    # its pool's connection is closed, nothing of it left on the server
    assert d.probes[100 + EPS] == (1, False, 0, 0, 1)
    # out of the load balancer for exactly restart_after
    assert d.probes[160 - EPS] is False and d.probes[160 + EPS] is True
    assert i0.ready_at == 160.0 and i0.crashes == 1 and i0.stopped_at is None
    assert all(r.inst is i1 and d.outcome(r)[0] == "ok" for r in during)
    on_i0 = [r for r in after if r.inst is i0]
    assert len(on_i0) == 1 and all(d.outcome(r)[0] == "ok" for r in after)   # it takes traffic again
    assert i0.pool.total == 1   # and its new pool opened a connection
    req = s["requests"]
    assert (req["crashed"], req["ok"], req["total"]) == (3, 8, 11)
    assert s["crashes"] == 1
    assert d.model.metrics.latency_ms(["crashed"])["mean"] == pytest.approx(20_000.0)
    assert conserved(s)
    # a crash does not stop billing: both instances billed for the whole run
    assert d.fleet.instance_seconds(0.0, 300.0) == pytest.approx({"standard": 600.0})


def test_second_crash_during_restart_restarts_the_clock():
    """Crashed at 100 and again at 130 while restarting: healthy restart_after after the last crash (190)."""
    d = Driver(scenario(count=2, faults={"crashes": [{"at": 100, "instance": 0}, {"at": 130, "instance": 0}]}))
    inst = d.fleet.instances
    d.probe(160 + EPS, lambda: inst[0] in d.fleet.lb.ready)
    d.probe(190 + EPS, lambda: inst[0] in d.fleet.lb.ready)
    d.run()
    assert inst[0].crashes == 2
    assert d.probes[190 + EPS] is True
    assert d.probes[160 + EPS] is False, "healthy again only 30 s after its second crash (restart_after is 60 s)"
    assert inst[0].ready_at == 190.0


def test_only_instance_crashed_gives_unavailable_during_restart():
    d = Driver(scenario(count=1, faults={"crashes": [{"at": 100, "instance": 0}]}))
    before, during, after = d.send(90), [d.send(120), d.send(150)], d.send(170)
    s = d.run()
    assert d.outcome(before)[0] == "ok"
    assert [d.outcome(r) for r in during] == [("unavailable", 120.0), ("unavailable", 150.0)]
    assert d.outcome(after)[0] == "ok"
    assert s["requests"]["unavailable"] == 2 and s["requests"]["ok"] == 2
    assert conserved(s)


# ---------------------------------------------------------------- random crashes
def test_random_crash_count_matches_rate_times_instance_hours():
    rate, n, hours = 2.0, 3, 100.0
    sc = scenario(count=n, horizon=hours * 3600, faults={"crash_rate": rate}, metrics={"interval": 3600})
    d = Driver(sc, seed=11)
    s = d.run()
    assert s["instance_hours"] == pytest.approx(n * hours)   # crashed instances are billed while restarting
    expected = rate * s["instance_hours"]
    assert abs(s["crashes"] - expected) < 4 * math.sqrt(expected), (s["crashes"], expected)
    assert s["crashes"] == sum(i.crashes for i in d.fleet.instances) == d.model.faults.crashes
    assert len(d.fleet.instances) == n   # restarted, never replaced


# ---------------------------------------------------------------- database outage
def test_database_outage_fails_database_steps_only_and_recovers():
    d = Driver(scenario(count=1, faults={"database_outages": [{"start": 100, "duration": 30}]}))
    db = d.model.db
    in_query = d.send(80, query=50.0)       # in its query at 100
    waiting = d.send(80, query=50.0)        # waiting for the pool's only connection at 100
    cpu_only = d.send(90, cpu=20.0)         # on the event loop across the outage: [90, 110]
    d.probe(100 - EPS, lambda: db.connections)
    d.probe(100 + EPS, lambda: (db.connections, db.active, db.down))
    new_db = [d.send(110, query=1.0), d.send(129, query=1.0)]   # connections cannot be opened
    no_db = d.send(115)
    d.probe(130 + EPS, lambda: db.down)
    recovered = [d.send(131, query=1.0), d.send(140, query=1.0), d.send(141)]
    s = d.run()

    assert d.probes[100 - EPS] == 1
    assert d.probes[100 + EPS] == (0, 0, True)
    # the errors reach their handlers at 100, which run when the loop is free again (Node)
    assert d.outcome(in_query) == ("db_error", 110.0)
    assert d.outcome(waiting) == ("db_error", 110.0)
    for r in new_db:
        outcome, t = d.outcome(r)
        assert outcome == "db_error" and r.t0 < t < r.t0 + 0.1   # after its failed connect attempt
    assert d.outcome(cpu_only) == ("ok", 110.0)
    assert d.outcome(no_db)[0] == "ok"
    assert d.probes[130 + EPS] is False
    assert all(d.outcome(r)[0] == "ok" for r in recovered)
    req = s["requests"]
    assert (req["db_error"], req["ok"], req["total"]) == (4, 5, 9)
    assert conserved(s)
