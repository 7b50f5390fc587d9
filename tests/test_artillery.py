"""Artillery as it runs: scripts read directly (capsim.scenario.artillery), the Artillery-shaped
report.json (capsim.results.artillery) by hand-computed small traces, and capsim's report of the
fixture scenario beside a real Artillery 2.0.34 run against a real Node server on loopback
(tests/data/artillery: report.json made by scripts/artillery_fixture.sh; no Node needed here)."""
import json
import math
from pathlib import Path

import pytest

import capsim
from capsim.cli import main
from capsim.results.artillery import ArtilleryRecorder, Sketch
from capsim.scenario.config import Scenario
from capsim.scenario.loader import ScenarioError, load

DATA = Path(__file__).resolve().parent / "data" / "artillery"
REAL = json.loads((DATA / "report.json").read_text())
SEED_SCRIPT = """config:
  target: 'https://api.dibeyond.com'
  phases:
    - duration: 60
      arrivalRate: 10
      name: Warm up
    - duration: 300
      arrivalRate: 50
      name: Sustained load
    - duration: 60
      arrivalRate: 100
      name: Peak load

scenarios:
  - name: API Load Test
    weight: 100
    requests:
      - get:
          url: '/api/v1/health'
      - get:
          url: '/api/v1/toybox'
        headers:
          Authorization: 'Bearer {{token}}'
"""


# --- reading scripts ------------------------------------------------------------------------
def test_seed_script_with_requests_key_is_rejected_as_artillery_2_does(tmp_path, capsys):
    f = tmp_path / "scaling-test.yml"
    f.write_text(SEED_SCRIPT)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:17:5: scenarios.0.requests: Artillery 2 rejects the 1.x key 'requests:'" in err
    assert "rename it to 'flow:'" in err and "Traceback" not in err


def test_seed_script_with_flow_runs_as_its_phases_and_flow(tmp_path):
    f = tmp_path / "scaling-test.yml"
    f.write_text(SEED_SCRIPT.replace("requests:", "flow:"))
    sc = load(f)
    (src,) = sc.workload.open_loop
    assert [(p.name, p.duration, p.arrivalRate) for p in src.phases] == [
        ("Warm up", 60, 10), ("Sustained load", 300, 50), ("Peak load", 60, 100)]
    assert src.even and [f.flow for f in src.flows] == [["health", "toybox"]]
    assert src.flows[0].weight == 100 and src.flows[0].name == "API Load Test"
    assert src.urls == {"health": "/api/v1/health", "toybox": "/api/v1/toybox"}
    assert (sc.horizon, sc.warmup, sc.metrics.interval) == (450.0, 0.0, 10.0)


def test_script_features_and_errors(tmp_path):
    f = tmp_path / "s.yml"
    f.write_text("config:\n  phases:\n    - {duration: 10, arrivalRate: 1, rampTo: 5}\n    - {pause: 5}\n"
                 "    - {duration: 10, arrivalCount: 20}\nscenarios:\n"
                 "  - {name: a, weight: 1, flow: [{get: {url: /x/health}}, {think: 2}, {post: {url: '/x/toybox?id=1'}}]}\n"
                 "  - {name: b, weight: 3, flow: [{get: {url: /other}}]}\n")
    with pytest.raises(ScenarioError) as exc:
        load(f)
    (p,) = exc.value.problems
    assert (p.line, p.path) == (8, "scenarios.1.flow.0.get") and "'/other' maps to no endpoint" in p.message
    g = tmp_path / "with.yaml"
    g.write_text("horizon: 60s\nwarmup: 0s\nworkload:\n  sessions: null\n  artillery: {script: s.yml, routes: {/other: auth}}\n")
    src = load(g).workload.open_loop[0]
    assert [ph.rampTo for ph in src.phases] == [5, None, None] and src.phases[1].pause == 5
    assert [(fl.name, fl.weight, fl.flow) for fl in src.flows] == [
        ("a", 1, ["health", {"think": 2.0}, "toybox"]) if False else ("a", 1, src.flows[0].flow), ("b", 3, ["auth"])]
    assert src.flows[0].flow[0] == "health" and src.flows[0].flow[1].think == 2.0 and src.flows[0].flow[2] == "toybox"
    f.write_text("config:\n  phases:\n    - {duration: 10, arrivalRate: 1, maxVusers: 3}\nscenarios:\n"
                 "  - flow: [{loop: [{get: {url: /health}}], count: 2}]\n")
    with pytest.raises(ScenarioError) as exc:
        load(f)
    msgs = [str(p) for p in exc.value.problems]
    assert any(":3:38: config.phases.0.maxVusers: capsim does not model the phase key 'maxVusers'" in m for m in msgs)
    assert any(":5:12: scenarios.0.flow.0: capsim does not model the step 'loop'" in m for m in msgs)


def test_workload_artillery_from_python_says_where_it_is_read():
    with pytest.raises(Exception, match="read by the scenario loader"):
        Scenario.model_validate({"workload": {"artillery": "x.yml"}})


# --- the report: small exact traces -------------------------------------------------------
def test_sketch_is_artillerys_ddsketch():
    s = Sketch()
    for v in [0, 8, 8, 8, 20]:
        s.add(v)
    gamma = 1 + 2 * 0.01 / 0.99
    k8 = math.ceil(math.log(8) / math.log(gamma))                 # 104
    assert k8 == 104
    v8 = 2 * gamma ** k8 / (1 + gamma)
    assert round(v8, 1) == 7.9                                    # why the real report shows 7.9 for 8 ms
    summ = s.summary()
    assert summ["min"] == 0 and summ["max"] == 20 and summ["count"] == 5 and summ["mean"] == 8.8
    assert summ["p50"] == 7.9                                     # rank 0.5 * 4 = 2: the 3rd value
    assert s.quantile(0.1) == 0.0                                 # rank 0.4 < one zero
    assert summ["p999"] == 7.9                                    # rank 3.996: still the 4th value
    assert round(s.quantile(1.0), 1) == round(2 * gamma ** math.ceil(math.log(20) / math.log(gamma)) / (1 + gamma), 1)


def _two_users(start_ms=0, latency="1ms"):
    """Two virtual users (t = 0.5 s, 1 s), flow a -> b; a: 2 ms CPU, b: 3 ms CPU, outside ``latency``."""
    return Scenario.model_validate({
        "horizon": 30, "warmup": 0, "metrics": {"interval": 10},
        "workload": {"sessions": None, "endpoints": {"a": {"cpu_pre": "2ms", "queries": 0},
                                                    "b": {"cpu_pre": "3ms", "queries": 0}},
                     "open_loop": [{"phases": [{"duration": 1, "arrivalRate": 2}],
                                    "flows": [{"name": "vu", "flow": ["a", "b"]}], "urls": {"a": "/api/a"}}]},
        "instances": {"request_timeout": None}, "load_balancer": {"latency": latency},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})


def test_two_users_counted_and_timed_as_artillery_would():
    rec = ArtilleryRecorder(start_ms=1_000_009_000)                # 9 s into a period: users straddle two
    capsim.run(_two_users(), seed=1, watchers=[rec])
    rep = rec.report()
    first, second = rep["intermediate"]
    assert (first["period"], second["period"]) == ("1000000000", "1000010000")
    # user 1 at 9.5 s: a sent 9.500, answered 9.503 (2 ms + 1 ms); b sent 9.503 (server side 9.502), answered 9.506
    assert first["counters"] == {"vusers.created_by_name.vu": 1, "vusers.created": 1, "http.requests": 2,
                                 "http.codes.200": 2, "http.responses": 2, "plugins.metrics-by-endpoint./api/a.codes.200": 1,
                                 "plugins.metrics-by-endpoint./b.codes.200": 1, "vusers.failed": 0,
                                 "vusers.completed": 1}
    assert first["summaries"]["http.response_time"]["min"] == 3 and first["summaries"]["http.response_time"]["max"] == 4
    assert first["firstCounterAt"] == 1_000_009_500 and first["rates"] == {"http.request_rate": 2}
    assert second["counters"]["vusers.created"] == 1 and second["firstCounterAt"] == 1_000_010_000
    agg = rep["aggregate"]
    assert agg["counters"]["http.requests"] == 4 and agg["counters"]["vusers.completed"] == 2
    assert agg["period"] == 1_000_010_000 and agg["firstMetricAt"] == 1_000_009_500
    assert agg["histograms"] == agg["summaries"]


def test_whole_milliseconds_read_floor_or_ceil_in_proportion():
    """Latency 2 ms CPU + 0.6 ms outside = 2.6 ms reads 2 or 3 ms, 3 with probability 0.6."""
    sc = _two_users(latency="0.6ms").model_copy(update={"horizon": 120.0})
    wl = sc.workload.model_copy(update={"open_loop": [sc.workload.open_loop[0].model_copy(update={
        "phases": [sc.workload.open_loop[0].phases[0].model_copy(update={"duration": 100.0, "arrivalRate": 20.0})],
        "flows": [sc.workload.open_loop[0].flows[0].model_copy(update={"flow": ["a"]})]})]})
    sc = Scenario.model_validate({**sc.model_dump(), "workload": wl.model_dump()})
    rec = ArtilleryRecorder(start_ms=0)
    capsim.run(sc, seed=3, watchers=[rec])
    s = rec.report()["aggregate"]["summaries"]["http.response_time"]
    n = s["count"]
    assert n == 2000 and (s["min"], s["max"]) == (2, 3)
    threes = (s["mean"] - 2) * n                                   # mean is rounded to 0.1: +-0.05 n
    assert abs(threes - 0.6 * n) <= 4 * math.sqrt(n * 0.24) + 0.05 * n


def test_cli_writes_the_report(tmp_path, capsys):
    f = tmp_path / "s.yml"
    f.write_text(SEED_SCRIPT.replace("requests:", "flow:").replace("duration: 300", "duration: 20")
                 .replace("duration: 60", "duration: 10"))
    out = tmp_path / "report.json"
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--artillery-report", str(out), "--quiet"]) == 0
    rep = json.loads(out.read_text())
    assert rep["aggregate"]["counters"]["vusers.created"] == 10 * 10 + 20 * 50 + 10 * 100
    assert main(["run", str(f), "-r", "2", "--artillery-report", str(out)]) == 2
    assert "--artillery-report writes one run's requests: leave out --replications" in capsys.readouterr().err


# --- beside the real run --------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated():
    """capsim's report of the fixture scenario, its t = 0 placed where the real run's was (the
    first arrival is one tick, 200 ms at 5/s, after the first phase starts)."""
    rec = ArtilleryRecorder(start_ms=REAL["aggregate"]["firstCounterAt"] - 200,
                            urls={"health": "/api/v1/health", "toybox": "/api/v1/toybox"})
    capsim.run(load(DATA / "scenario.yaml"), seed=1, watchers=[rec])
    return rec.report()


def test_same_shape_as_the_real_report(simulated):
    real_keys = set(REAL["aggregate"]) | {k for p in REAL["intermediate"] for k in p}
    assert real_keys <= set(simulated["aggregate"]) | {k for p in simulated["intermediate"] for k in p}
    for name in ("http.response_time", "http.response_time.2xx", "vusers.session_length",
                 "plugins.metrics-by-endpoint.response_time./api/v1/health"):
        assert set(simulated["aggregate"]["summaries"][name]) == set(REAL["aggregate"]["summaries"][name])
    counters = set(REAL["aggregate"]["counters"]) - {"http.downloaded_bytes"}      # no response sizes in capsim
    assert counters == set(simulated["aggregate"]["counters"])


def test_periods_and_counters_match_the_real_run(simulated):
    """Evenly spaced arrivals: each 10 s period's requests and users within 2% + 2 of the real
    run's (timer jitter moves an arrival across a boundary); totals exactly."""
    real, sim = REAL["intermediate"], simulated["intermediate"]
    assert [p["period"] for p in sim] == [p["period"] for p in real]
    for r, s in zip(real, sim):
        for key in ("http.requests", "vusers.created", "http.responses"):
            a, b = r["counters"].get(key, 0), s["counters"].get(key, 0)
            assert abs(a - b) <= 0.02 * a + 2, (r["period"], key, a, b)
        assert abs(r["rates"]["http.request_rate"] - s["rates"]["http.request_rate"]) <= 2
    for key in ("http.requests", "http.codes.200", "vusers.created", "vusers.completed"):
        assert simulated["aggregate"]["counters"][key] == REAL["aggregate"]["counters"][key]
    assert simulated["aggregate"]["rates"] == REAL["aggregate"]["rates"]


def test_response_times_within_stated_tolerances(simulated):
    """Medians per endpoint within 2 ms and the mean within 25% of the real run's. The real
    tail (p95 21 ms, p99 38 ms) comes from scheduling noise on a shared 2-core machine that the
    model has no part for: capsim's p95 is below it, never above."""
    rs, ss = REAL["aggregate"]["summaries"], simulated["aggregate"]["summaries"]
    for url in ("/api/v1/health", "/api/v1/toybox"):
        key = f"plugins.metrics-by-endpoint.response_time.{url}"
        assert abs(rs[key]["p50"] - ss[key]["p50"]) <= 2, (url, rs[key], ss[key])
    r, s = rs["http.response_time"], ss["http.response_time"]
    assert abs(s["mean"] / r["mean"] - 1) <= 0.25, (r, s)
    assert s["p95"] <= r["p95"] and s["min"] >= 0


def test_script_given_by_an_override_is_relative_to_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "s.yml").write_text(SEED_SCRIPT.replace("requests:", "flow:"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text("horizon: 60s\nwarmup: 0s\nworkload:\n  sessions: null\n")
    monkeypatch.chdir(tmp_path)
    sc = load(tmp_path / "sub" / "base.yaml", ["workload.artillery=s.yml"])
    assert sc.workload.open_loop[0].name == "artillery s.yml" and len(sc.workload.open_loop[0].phases) == 3
    sc = load(tmp_path / "s.yml", ["workload.open_loop.0.phases.1.arrivalRate=5"])     # a script takes --set too
    assert sc.workload.open_loop[0].phases[1].arrivalRate == 5


def test_calibrating_from_the_real_artillery_report_finds_the_servers_cost():
    """The real run's server (scripts/artillery_server.js) spends 0.5 ms (health) and 8 ms (toybox) of busy
    loop per request, one of each per virtual user: 4.25 ms a request, plus its own loop work (the node-pg
    server's was 0.45-1.65 ms a request) and a new connection per user. With no server timings the calibrator
    takes the quietest periods' response times beyond the fastest one as service time: its mean's 95% interval
    must overlap 4.25-5.9 ms, and the outside latency be a few ms at most (loopback)."""
    from capsim.calibrate.artillery import artillery_service, read_artillery
    svc = artillery_service(read_artillery(DATA / "report.json"))
    lo, hi = svc.cpu.mean_ci
    assert lo <= 0.0059 and hi >= 0.00425, svc.cpu.describe()
    assert 0 <= svc.outside <= 0.003 and svc.cpu.responses > 100
