"""capsim backtest: a log's own traffic through a scenario, measured beside simulated.

Exact small traces (hand-computed queueing on one event loop), the interval figures against
numpy, the CLI end to end on a real low-load log (tests/data/node-pg/runs/CAL_E1, calibrated from
itself), a counterfactual with common random numbers, and bad input (exit 2, no traceback)."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capsim.backtest import backtest, edges_of, measured_intervals, read_log
from capsim.calibrate import calibrate, read_node_pg_run
from capsim.cli import main
from capsim.report import figure_data
from capsim.scenario.config import Scenario

RUNS = Path(__file__).resolve().parent / "data" / "node-pg" / "runs"


def one_loop(cpu="10ms", **extra):
    """One instance, one Node process, endpoint ``work`` of constant CPU, nothing else in the way."""
    return Scenario.model_validate({
        "horizon": 60, "warmup": 0,
        "workload": {"sessions": None, "open_loop": [], "endpoints": {"work": {"cpu_pre": cpu, "queries": 0}}},
        "instances": {"plan": "core", "request_timeout": None}, **extra,
        "pricing": {"plans": {"core": {"vcpus": 1, "memory_gb": 4, "usd_per_month": 0}}},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})


def write_log(path, rows):
    pd.DataFrame(rows, columns=["t", "route", "latency_ms", "status"]).to_csv(path, index=False)
    return path


def test_two_requests_one_loop_exactly(tmp_path):
    """At 0 and 5 ms, 10 ms of CPU each: answered after 10 ms and after 5 + 10 = 15 ms."""
    log = read_log(write_log(tmp_path / "log.csv", [(0.0, "/work", 10.0, 200), (0.005, "/work", 15.0, 200)]))
    bt = backtest(log, one_loop(), tmp_path / "out", interval=1.0, replications=2, workers=1, progress=False)
    t = bt.table()
    assert list(t["interval"]) == ["1", "all"]
    row = t.iloc[-1]
    assert row["requests"] == 2 and row["measured_mean_ms"] == pytest.approx(12.5)
    assert row["capsim_mean_ms"] == pytest.approx(12.5, abs=1e-9) and row["capsim_mean_ms_hw"] == 0
    assert row["capsim_p99_ms"] == pytest.approx(15.0, rel=0.005)      # capsim's histograms: within 0.5%
    assert row["capsim_mean_ms_error"] == pytest.approx(0.0, abs=1e-9)
    assert row["capsim_rate"] == row["measured_rate"]


def test_interval_figures_are_numpys(tmp_path):
    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0, 30, 500))
    lat = rng.exponential(0.02, 500)
    frame = pd.DataFrame({"t": t, "latency": lat, "outcome": np.where(rng.uniform(size=500) < 0.1, "x", "ok")})
    edges = edges_of(0.0, 30.0, 12.0)
    assert edges == [0.0, 12.0, 24.0, 30.0]
    got = measured_intervals(frame, edges)
    for (a, b), g in zip([(0, 12), (12, 24), (24, 30.0001), (0, 30.0001)], got):
        sel = (t >= a) & (t < b)
        assert g["arrivals"] == sel.sum() and g["rate"] == pytest.approx(sel.sum() / (min(b, 30) - a))
        assert g["mean_ms"] == pytest.approx(1000 * lat[sel].mean())
        assert g["p95_ms"] == pytest.approx(1000 * np.quantile(lat[sel], 0.95, method="inverted_cdf"))
        assert g["errors"] == pytest.approx((frame.outcome[sel] != "ok").mean())


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    cal = calibrate(read_node_pg_run(RUNS / "CAL_E1.csv.gz", RUNS / "CAL_E1.json"))
    path = tmp_path_factory.mktemp("cal") / "cal_e1.yaml"
    path.write_text(cal.scenario(5.0, 70, 10).model_dump_json(by_alias=True))   # JSON is YAML
    return path


def test_cli_backtest_of_a_real_log_through_its_own_calibration(calibrated, tmp_path, capsys):
    out = tmp_path / "bt"
    code = main(["backtest", str(RUNS / "CAL_E1.csv.gz"), "--scenario", str(calibrated), "--interval", "20s",
                 "-r", "3", "--workers", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "backtest of CAL_E1" in text
    doc = json.loads((out / "backtest.json").read_text())
    rows = {r["interval"]: r for r in doc["intervals"]}
    assert list(rows) == ["1", "2", "3", "all"]
    for r in doc["intervals"]:
        assert r["capsim_rate"] == pytest.approx(r["measured_rate"])            # the log's own arrivals
    # calibrated from this very log at 5 req/s: the mean within 15%, the p95 within 30%
    assert abs(rows["all"]["capsim_mean_ms_error"]) <= 0.15, rows["all"]
    assert abs(rows["all"]["capsim_p95_ms_error"]) <= 0.30, rows["all"]
    page = (out / "report.html").read_text()
    curves = figure_data(page, "backtest-mean_ms")
    assert [c["name"] for c in curves if c.get("showlegend") is not False] == ["measured", str(calibrated)]
    assert list(curves[0]["y"]) == pytest.approx([rows[k]["measured_mean_ms"] for k in ("1", "2", "3")])
    for f in ("backtest.csv", "trace.csv.gz", "a/replications.csv"):
        assert (out / f).exists()


def test_counterfactual_on_the_same_traffic(calibrated, tmp_path, capsys):
    out = tmp_path / "bt"
    code = main(["backtest", str(RUNS / "CAL_E1.csv.gz"), "--scenario", str(calibrated), "-r", "3", "--workers", "1",
                 "--out", str(out), "--set-b", "instances.event_loop.request_cpu=5ms"])
    assert code == 0
    text = capsys.readouterr().out
    assert "counterfactual B on the same traffic" in text and "common random numbers" in text
    comp = json.loads((out / "comparison.json").read_text())
    d = comp["metrics"]["latency_ms.mean"]
    # 5 ms more loop work per request before the handler, at 5 req/s (utilisation ~5%): about +5 ms
    assert 4.5 <= d["diff"] <= 6.5 and d["ci_low"] > 0, d
    doc = json.loads((out / "backtest.json").read_text())
    for r in doc["intervals"]:
        assert r["capsim_b_rate"] == r["capsim_rate"]                           # same arrivals in A and B


def test_plain_log_with_iso_times_and_status(tmp_path):
    f = tmp_path / "access.csv"
    f.write_text("t,route,latency_ms,status\n2026-01-05T10:00:00Z,/api/v1/work,12,200\n"
                 "2026-01-05T10:00:00.5Z,/api/v1/work?x=1,30,503\n")
    log = read_log(f)
    assert list(log.frame.t) == [0.0, 0.5] and list(log.frame.latency) == [0.012, 0.030]
    assert list(log.frame.outcome) == ["ok", "http_503"]
    bt = backtest(log, one_loop(), tmp_path / "o", interval=60, replications=1, workers=1, progress=False)
    assert bt.table().iloc[-1]["measured_errors"] == 0.5


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("t,route,status\n0,/a,200\n", "expected columns t and latency_ms (or latency, in s); the file has ['t', 'route', 'status']"),
    ("t,route,latency_ms\n0,/a,5\nsoon,/a,5\n", "log.csv:3: column 't': expected a number or an ISO 8601 date-time, got 'soon'"),
    ("t,route,latency_ms\n0,/a,5\n1,/a,-3\n", "log.csv:3: latency: expected a number >= 0"),
])
def test_bad_logs_exit_2(tmp_path, capsys, content, expected):
    f = tmp_path / "log.csv"
    if content is not None:
        f.write_text(content)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(one_loop().model_dump_json(by_alias=True))
    assert main(["backtest", str(f), "--scenario", str(scenario), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_routes_that_map_to_no_endpoint_exit_2(tmp_path, capsys):
    f = write_log(tmp_path / "log.csv", [(0, "/a", 5, 200), (1, "/b", 5, 200)])
    sc = one_loop().model_dump(mode="json", by_alias=True)
    sc["workload"]["endpoints"]["other"] = {"cpu_pre": 0.001, "queries": 0}
    (tmp_path / "s.yaml").write_text(json.dumps(sc))
    assert main(["backtest", str(f), "--scenario", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "routes that map to no endpoint of the scenario (work, other): '/a', '/b'" in err


def test_bad_scenario_exit_2(tmp_path, capsys):
    f = write_log(tmp_path / "log.csv", [(0, "/work", 5, 200)])
    (tmp_path / "s.yaml").write_text("horizon: -5\n")
    assert main(["backtest", str(f), "--scenario", str(tmp_path / "s.yaml")]) == 2
    assert "s.yaml:1:10: horizon" in capsys.readouterr().err


def test_capsim_report_redraws_the_backtest_page(calibrated, tmp_path, capsys):
    out = tmp_path / "bt"
    assert main(["backtest", str(RUNS / "CAL_E1.csv.gz"), "--scenario", str(calibrated), "-r", "2", "--workers", "1",
                 "--out", str(out), "--quiet", "--set-b", "instances.count=2"]) == 0
    first = figure_data((out / "report.html").read_text(), "backtest-p95_ms")
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Backtest: CAL_E1" in page and "B - A on the same traffic" in page
    again = figure_data(page, "backtest-p95_ms")
    assert [list(c["y"]) for c in again] == [list(c["y"]) for c in first]


def test_unanswered_requests_make_the_backtest_say_so(tmp_path):
    """One request of 10 s CPU and a drain of 1 s: it has no answer when the run ends."""
    log = read_log(write_log(tmp_path / "log.csv", [(0.0, "/work", 10.0, 200), (0.5, "/work", 10.0, 200)]))
    bt = backtest(log, one_loop(cpu="10s"), tmp_path / "out", interval=1.0, replications=1, workers=1,
                  progress=False, drain=1.0)
    assert any(n.startswith("NOT TRUSTWORTHY (A): up to 2 requests") for n in bt.notes)
    assert "NOT TRUSTWORTHY" in bt.format()
