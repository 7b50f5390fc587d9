"""Request logs from capsim runs (``capsim run --request-log``): every column on an exact small trace,
the stats beside it, nothing written when not asked for, and the same log for the same seed."""
import json

import pandas as pd
import pytest

import capsim
from capsim import scenarios
from capsim.cli import main
from capsim.engine.request_log import COLUMNS, RequestLogWriter, stats_path
from capsim.scenario.config import Scenario
from tests.helpers import Driver


def two_requests_one_connection() -> Scenario:
    return Scenario.model_validate({
        "horizon": 10.0, "warmup": 0.0, "metrics": {"interval": 5.0},
        "workload": {"sessions": None, "endpoints": {"x": {}}},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None,
        "load_balancer": {"latency": 0.003},
        "instances": {"request_timeout": None, "event_loop": {"request_cpu": 0.01, "response_cpu": 0.02,
                                                              "query_cpu": 0.005, "wakeup_cpu": 0.1}},
        "database": {"connect_time": 0.0, "rtt": 0.0, "pool": {"max": 1, "acquire_timeout": 0}}})


def test_every_column_on_two_requests_sharing_one_connection(tmp_path):
    """Pool of 1; wake-up 0.1, request 0.01, response 0.02, query 0.005 s of loop work.
    a (sent 0): wake + parse, handler in at 0.11, pre 0.1 to 0.21, asks the pool (a new connection).
    b (sent 0.05) waits for the loop: in at 0.22, pre to 0.32, waits for the connection; a's READY
    task (0.32) sends its query: acquire 0.11. a's result at 0.52 wakes the loop: seen 0.625, post 0.05
    to out 0.675, response to 0.695 (+ 0.003 outside: latency 0.698); the release hands the connection
    to b, whose query is sent when that task ends (0.695): acquire 0.375. b's result at 0.895 wakes the
    loop: seen 1.0, out 1.05, end 1.07, latency 1.023."""
    d = Driver(two_requests_one_connection())
    d.send(0.0, cpu=0.1, query=0.2, post=0.05)
    d.send(0.05, cpu=0.1, query=0.2, post=0.05)
    log = tmp_path / "requests.csv"
    w = RequestLogWriter(d.model, log)
    d.run()
    w.close()
    f = pd.read_csv(log)
    assert list(f.columns) == COLUMNS and len(f) == 2
    a, b = f.iloc[0], f.iloc[1]
    expect = {"t_ms": (0.0, 50.0), "srv_in_ms": (110.0, 220.0), "srv_out_ms": (675.0, 1050.0),
              "server_ms": (565.0, 830.0), "cpu_pre_ms": (100.0, 100.0), "cpu_post_ms": (50.0, 50.0),
              "db": (1, 1), "db_acquire_ms": (110.0, 375.0), "db_query_ms": (305.0, 305.0),
              "latency_ms": (698.0, 1023.0), "status": (200, 200)}
    for col, (va, vb) in expect.items():
        assert (a[col], b[col]) == (pytest.approx(va, abs=1e-3), pytest.approx(vb, abs=1e-3)), col
    assert list(f.outcome) == ["ok", "ok"] and list(f.route) == ["x", "x"] and list(f.phase) == ["measure"] * 2
    stats = json.loads(stats_path(log).read_text())
    # the loop's busy time: a 0.21 + b 0.11 + two reply tasks of 0.175 (the READY task costs nothing)
    assert stats["elu_active"] == pytest.approx(0.67) and stats["requests"] == 2
    assert stats["config"]["pool"]["max"] == 1
    assert not (tmp_path / "requests.csv.part").exists()


def test_a_request_without_a_database_step_and_a_pool_timeout(tmp_path):
    """No loop work; pool of 1, acquire timeout 0.5 s. a runs [0, 0.1], its connection opens and its
    query is sent at 0.2 (2 s). b runs [0.1, 0.2], asks at 0.2 and times out at 0.7: its handler
    answers 503 at once (out at 0.7, acquire 0.5 s, no query, no second slice). c (sent at 3, no
    database step) finds the loop idle: in 3.0, out 3.0 + 0.02 + 0.01."""
    sc = two_requests_one_connection().model_copy(deep=True)
    data = sc.model_dump()
    data["database"]["pool"]["acquire_timeout"] = 0.5
    data["instances"]["event_loop"] = {}
    sc = Scenario.model_validate(data)
    d = Driver(sc)
    d.send(0.0, cpu=0.1, query=2.0, post=0.05)          # in 0, asks at 0.1, query 0.1 -> 2.1
    d.send(0.0, cpu=0.1, query=0.2, post=0.05)          # in 0.1, asks at 0.2, times out at 0.7
    d.send(3.0, cpu=0.02, post=0.01)                    # no database step
    log = tmp_path / "r.csv"
    w = RequestLogWriter(d.model, log)
    d.run()
    w.close()
    f = pd.read_csv(log).set_index("t_ms", drop=False)
    b = f[f.outcome == "pool_timeout"].iloc[0]
    assert b.status == 503 and b.db == 1 and b.db_acquire_ms == pytest.approx(500.0)
    assert b.srv_out_ms == pytest.approx(700.0) and b.cpu_post_ms == 0 and pd.isna(b.db_query_ms)
    c = f[f.t_ms == 3000.0].iloc[0]
    assert (c.srv_in_ms, c.srv_out_ms, c.db) == (pytest.approx(3000.0), pytest.approx(3030.0), 0)
    assert pd.isna(c.db_acquire_ms) and pd.isna(c.db_query_ms)


def test_untraced_runs_use_the_plain_process(tmp_path):
    """Zero cost when not asked for: without a request log no tracing class is on the request path."""
    from capsim.engine.model import Model
    from capsim.engine.request_log import TracingProcess
    from capsim.models.process import Process
    m = Model(two_requests_one_connection(), seed=1)
    m.run()
    assert all(type(p) is Process for inst in m.fleet.instances for p in inst.procs)
    d = Driver(two_requests_one_connection())
    w = RequestLogWriter(d.model, tmp_path / "r.csv")
    d.run()
    w.close()
    assert all(type(p) is TracingProcess for inst in d.fleet.instances for p in inst.procs)


def test_same_seed_same_log_and_the_run_is_unchanged(tmp_path):
    sc = capsim.load_scenario(scenarios.path("validation/mm1"), ["horizon=600", "warmup=60"])
    r0 = capsim.run(sc, seed=3)
    r1 = capsim.run(sc, seed=3, request_log=tmp_path / "a.csv")
    capsim.run(sc, seed=3, request_log=tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert r0.summary["latency_ms"] == r1.summary["latency_ms"]          # tracing changes nothing
    f = pd.read_csv(tmp_path / "a.csv")
    measured = f[f.phase == "measure"]
    # every request sent in the window that completed is there once (the summary counts completions in it)
    assert abs(len(measured) - r1.summary["requests"]["completed"]) <= r1.summary["requests"]["in_flight_start"] + \
        r1.summary["requests"]["in_flight_end"]
    assert measured.latency_ms.mean() == pytest.approx(r1.summary["latency_ms"]["mean"], rel=0.02)
    assert (f.srv_out_ms >= f.srv_in_ms).all() and (f.srv_in_ms >= f.t_ms).all()


def test_cli_request_log(tmp_path):
    out = tmp_path / "out"
    log = tmp_path / "log.csv"
    assert main(["run", str(scenarios.path("validation/mm1")), "--set", "horizon=120", "--set", "warmup=10", "--out", str(out),
                 "--quiet", "--request-log", str(log)]) == 0
    assert log.exists() and stats_path(log).exists()
    assert main(["run", str(scenarios.path("validation/mm1")), "-r", "2", "--out", str(out),
                 "--request-log", str(log)]) == 2
