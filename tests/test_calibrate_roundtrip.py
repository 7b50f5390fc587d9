"""Round trip: a capsim run with known parameters writes its request log (``--request-log``),
``capsim calibrate`` reads it back, and every parameter comes back within its stated interval.

Checked over several seeds and sizes. Each 95% interval misses its truth 5% of the time by
design, so the test asks what theory promises with room: at least 85% of the intervals cover
the truth, and every truth lies within twice the interval's half-width of the estimate
(about 4 standard errors). Event-loop figures without an interval are point estimates with
stated relative tolerances (the median of back-to-back gaps is exact in a simulated log).
"""
import json

import numpy as np
import pandas as pd
import pytest

import capsim
from capsim.calibrate import artillery_service, calibrate, calibrate_files, read_artillery, read_request_log
from capsim.scenario.config import Scenario
from capsim.scenario.loader import load

TRUTH = {"a": {"weight": 0.7, "cpu_pre": 0.004, "cpu_post": 0.002, "db_probability": 0.3, "query_time": 0.010},
         "b": {"weight": 0.3, "cpu_pre": 0.002, "cpu_post": 0.001, "db_probability": 0.0}}
LOOP = {"request_cpu": 0.0003, "response_cpu": 0.0003, "query_cpu": 0.0003, "wakeup_cpu": 0.0005, "helper_cpu": 0.05}
OUTSIDE = 0.001


def truth(rate: float, horizon: float) -> Scenario:
    return Scenario.model_validate({
        "name": "truth", "horizon": horizon, "warmup": 10.0, "metrics": {"interval": 60.0},
        "workload": {"sessions": None, "open_loop": [{"name": "p", "rate": rate}], "endpoints": {
            "a": {"weight": 0.7, "cpu_pre": {"dist": "exponential", "mean": 0.004},
                  "cpu_post": {"dist": "exponential", "mean": 0.002}, "queries": 1, "db_probability": 0.3,
                  "query_time": {"dist": "exponential", "mean": 0.010}},
            "b": {"weight": 0.3, "cpu_pre": {"dist": "gamma", "mean": 0.002, "cv": 0.5},
                  "cpu_post": {"dist": "lognormal", "mean": 0.001, "p99": 0.004}, "queries": 0}}},
        "instances": {"plan": "core", "request_timeout": None, "event_loop": LOOP},
        "pricing": {"plans": {"core": {"vcpus": 1, "memory_gb": 4, "usd_per_month": 0}}},
        "load_balancer": {"latency": OUTSIDE},
        "database": {"rtt": 0.0, "connect_time": 0.005, "pool": {"max": 5, "idle_timeout": 0}},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})


CASES = [(1, 20.0, 150.0), (2, 20.0, 150.0), (3, 20.0, 150.0), (4, 30.0, 400.0), (5, 30.0, 400.0)]


def _intervals(cal) -> list[tuple[str, float, float, float, float]]:
    """(name, truth, estimate, low, high) of every parameter with a stated interval."""
    out = []
    for route, t in TRUTH.items():
        ep = cal.endpoints[route]
        out.append((f"{route}.weight", t["weight"], ep.weight, *ep.weight_ci))
        for what in ("cpu_pre", "cpu_post"):
            fit = getattr(ep, what)
            out.append((f"{route}.{what}", t[what], fit.mean, *fit.mean_ci))
        if t["db_probability"] > 0:
            out.append((f"{route}.db_probability", t["db_probability"], ep.db_probability, *ep.db_ci))
            out.append((f"{route}.query_time", t["query_time"], ep.query_time.mean, *ep.query_time.mean_ci))
    return out


@pytest.fixture(scope="module")
def calibrations(tmp_path_factory):
    out = []
    for seed, rate, horizon in CASES:
        path = tmp_path_factory.mktemp(f"rt{seed}") / "requests.csv"
        capsim.run(truth(rate, horizon), seed=seed, request_log=path)
        out.append((seed, path, calibrate(read_request_log(path))))
    return out


def test_every_parameter_with_an_interval_comes_back_within_it(calibrations):
    rows = [(seed, *r) for seed, _, cal in calibrations for r in _intervals(cal)]
    covered = [lo <= t <= hi for *_, t, est, lo, hi in rows]
    assert sum(covered) / len(rows) >= 0.85, [r for r, c in zip(rows, covered) if not c]
    for seed, name, t, est, lo, hi in rows:
        assert abs(est - t) <= 2 * max(hi - est, est - lo), (seed, name, t, est, lo, hi)
    # a route that never took the database step says so exactly
    for _, _, cal in calibrations:
        assert cal.endpoints["b"].db_probability == 0.0 and cal.endpoints["b"].query_time is None


def test_the_event_loop_and_the_latency_outside_come_back(calibrations):
    for seed, _, cal in calibrations:
        loop = cal.loop
        assert loop.pairs >= 50, seed
        # back to back, the gap between two handlers is exactly response_cpu + request_cpu
        assert loop.request_cpu + loop.response_cpu == pytest.approx(0.0006, rel=1e-3)
        assert loop.wakeup_cpu == pytest.approx(LOOP["wakeup_cpu"], rel=0.10), seed
        assert loop.helper_cpu == pytest.approx(LOOP["helper_cpu"], rel=1e-6)
        assert cal.outside == pytest.approx(OUTSIDE, rel=0.10), seed
        assert cal.pool["max"] == 5


def test_the_calibrated_yaml_loads_as_the_calibrated_scenario(calibrations, tmp_path):
    _, path, _ = calibrations[0]
    cal = calibrate_files([str(path)])
    out = tmp_path / "calibrated.yaml"
    out.write_text(cal.yaml)
    sc = load(out)
    assert sc == cal.built.scenario
    assert set(sc.workload.endpoints) == {"a", "b"}
    assert sc.workload.endpoints["a"].queries == 1 and sc.workload.endpoints["b"].queries == 0
    assert sc.instances.event_loop.helper_cpu == pytest.approx(0.05, rel=1e-4)
    text = cal.yaml
    # each calibrated value's comment: its source, its sample size and its interval
    assert f"request log {path}" in text and "n=" in text and "95% CI" in text
    assert "Left at the base scenario's value" in text and "instances.memory_base_mb" in text


def test_a_log_with_only_latencies_states_its_assumption(calibrations, tmp_path):
    """Without server timings the handler's CPU is the quiet windows' latency above the smallest one."""
    _, path, _ = calibrations[3]
    f = pd.read_csv(path)[["t_ms", "route", "latency_ms", "status"]]
    thin = tmp_path / "thin.csv"
    f.to_csv(thin, index=False)
    cal = calibrate(read_request_log(thin))
    assert cal.basis == "latency at low load" and cal.loop is None
    assert any("assumed" in n and "quietest" in n for n in cal.endpoints["a"].notes)
    assert cal.endpoints["a"].db_probability is None and cal.query_time is None
    assert cal.outside == pytest.approx(f.latency_ms.min() / 1000)
    # the service it finds lies between the handler's CPU and the whole response time
    full = calibrate(read_request_log(path))
    a = cal.endpoints["a"].cpu_pre.mean
    assert full.endpoints["a"].cpu_pre.mean < a < f[f.route == "a"].latency_ms.mean() / 1000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sessions_come_back(tmp_path, seed):
    """Sessions of 120 s on average (lognormal), 0.2 requests/s per user, 30 users, 3 hours."""
    sc = Scenario.model_validate({
        "name": "sessions", "horizon": 10800.0, "warmup": 600.0, "metrics": {"interval": 600.0},
        "workload": {"sessions": {"peak_users": 30, "daily_curve": "flat", "weekend_multiplier": 1.0,
                                  "session_length": {"dist": "lognormal", "mean": 120.0, "p99": 600.0},
                                  "request_rate": 0.2}, "endpoints": {"x": {"cpu_pre": 0.0005}}},
        "instances": {"request_timeout": None},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})
    path = tmp_path / "s.csv"
    capsim.run(sc, seed=seed, request_log=path)
    s = calibrate(read_request_log(path)).sessions
    lo, hi = s.request_rate_ci
    assert lo <= 0.2 <= hi or abs(s.request_rate - 0.2) <= 2 * (hi - lo), s.request_rate_ci
    # sessions cut by the window's edges look shorter: within the interval or 5%
    lo, hi = s.length.mean_ci
    assert lo <= 120.0 <= hi or abs(s.length.mean / 120.0 - 1) <= 0.05, s.length.describe()
    # peak_users from the busiest whole hour (flat curve: the mean concurrency, 30, plus hour-to-hour noise)
    assert s.peak_users == pytest.approx(30, rel=0.15)


def _artillery_of_log(path, period: float = 10.0) -> dict:
    """An Artillery-2-shaped report of a capsim request log, made here (not by capsim): requests per
    10 s period and http.response_time quantiles in whole milliseconds, as Artillery reports them."""
    f = pd.read_csv(path)
    f = f[f.phase == "measure"]
    out = []
    for k, part in f.groupby((f.t_ms // (1000 * period)).astype(int)):
        rt = np.round(part.latency_ms.to_numpy())
        q = {p: float(np.quantile(rt, x)) for p, x in (("p50", .5), ("median", .5), ("p75", .75), ("p90", .9),
                                                       ("p95", .95), ("p99", .99))}
        out.append({"period": str(1767636000000 + int(k * period * 1000)),
                    "counters": {"http.requests": len(part), "http.responses": len(part),
                                 "http.codes.200": int((part.status == 200).sum())},
                    "summaries": {"http.response_time": {"min": float(rt.min()), "max": float(rt.max()),
                                                         "mean": float(rt.mean()), "count": len(part), **q}}})
    return {"aggregate": {"counters": {}}, "intermediate": out}


@pytest.mark.parametrize("seed", [1, 2])
def test_an_artillery_shaped_report_of_a_run_gives_back_its_service_time(tmp_path, seed):
    """One endpoint, Exp(20 ms) of CPU, 5 ms outside, Poisson steps 2 -> 10 -> 30 -> 10 -> 2 requests/s
    over 800 s. From the periods alone, the stated assumption (the quietest quarter of periods saw no
    queueing; the smallest response is the fixed part) finds the latency outside within the 1 ms
    rounding plus the fastest CPU draw, and the service time's mean within its interval or 15%
    (queueing at 2/s: 4% utilisation; whole-ms rounding; the smallest response holds the fastest draw)."""
    steps = [(0, 2), (300, 10), (400, 30), (500, 10), (600, 2)]
    sc = Scenario.model_validate({
        "name": "ramp", "horizon": 800.0, "warmup": 0.0, "metrics": {"interval": 10.0},
        "workload": {"sessions": None, "open_loop": [{"name": "ramp", "schedule": [{"at": a, "rate": r}
                                                                                   for a, r in steps]}],
                     "endpoints": {"x": {"cpu_pre": {"dist": "exponential", "mean": 0.020}, "queries": 0}}},
        "instances": {"plan": "core", "request_timeout": None},
        "pricing": {"plans": {"core": {"vcpus": 1, "memory_gb": 4, "usd_per_month": 0}}},
        "load_balancer": {"latency": 0.005},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})
    log = tmp_path / "r.csv"
    capsim.run(sc, seed=seed, request_log=log)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_artillery_of_log(log)))
    svc = artillery_service(read_artillery(report))
    assert 0.004 <= svc.outside <= 0.0065
    lo, hi = svc.cpu.mean_ci
    assert lo <= 0.020 <= hi or svc.cpu.mean == pytest.approx(0.020, rel=0.15), svc.cpu.describe()
    assert (svc.quiet.rate <= 3.0).all() and svc.cpu.responses >= 200
    cal = calibrate_files([str(report)])
    assert cal.built.scenario.load_balancer.latency.mean == pytest.approx(svc.outside)
    schedule = cal.built.scenario.workload.open_loop[0].schedule
    assert len(schedule) == 81 and schedule[-1].rate == 0                  # 80 periods, then nothing
    assert schedule[45].rate == pytest.approx(30, rel=0.4) and schedule[45].at == pytest.approx(450)


def test_a_log_of_several_processes_leaves_the_event_loop_at_the_base(tmp_path):
    data = truth(20.0, 100.0).model_dump()
    data["instances"]["processes"] = 2
    data["pricing"]["plans"]["core"]["vcpus"] = 2
    sc = Scenario.model_validate(data)
    path = tmp_path / "r.csv"
    capsim.run(sc, seed=1, request_log=path)
    cal = calibrate(read_request_log(path))
    assert cal.loop is None and any("several processes" in n for n in cal.notes)
    assert cal.endpoints["a"].cpu_pre.mean_ci[0] <= 0.004 * 1.2           # the handler's CPU is still there
