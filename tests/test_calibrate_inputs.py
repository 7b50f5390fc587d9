"""``capsim calibrate``'s inputs: every documented example is read; bad input is a clear error with its
file, line or JSON path and column (exit code 2, no traceback); nothing is half-written. Fits from
Artillery reports, metrics CSVs and calendar logs are checked against the distributions and curves
that made them (theory, not digits of one run)."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from capsim.calibrate import Mapping, read_artillery, read_metrics, read_request_log
from capsim.calibrate.arrivals import arrivals_of_log
from capsim.calibrate.artillery import artillery_service
from capsim.calibrate.metrics import metrics_fits
from capsim.cli import main

EX = Path(__file__).resolve().parent.parent / "docs" / "examples" / "calibration"
CSV_COLS = ["--col", "t=timestamp", "--col", "route=path", "--col", "latency=response_time_ms", "--col",
            "server=handler_ms", "--col", "db_query=db_ms", "--col", "client=user"]


def run(args, capsys) -> tuple[int, str, str]:
    code = main(["calibrate", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# -- the documented examples ----------------------------------------------------------------------
@pytest.mark.parametrize("args", [["requests.csv", *CSV_COLS], ["requests.jsonl", "--map", "mapping.yaml"],
                                  ["artillery-report.json"], ["artillery-1x-report.json"], ["metrics.csv"]],
                         ids=["csv", "jsonl", "artillery2", "artillery1", "metrics"])
def test_each_documented_example_calibrates(args, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(EX)
    code, out, err = run([*args, "--out", str(tmp_path)], capsys)
    assert code == 0, err
    text = (tmp_path / "calibrated.yaml").read_text()
    assert "95% CI" in text and "Left at the base scenario's value" in text
    html = (tmp_path / "calibration.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "plotly" in html.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibrated.yaml", "calibration.html", "manifest.json"]


def test_iso_times_routes_and_clients(tmp_path):
    args = dict(zip(CSV_COLS[1::2], CSV_COLS[1::2]))
    mapping = Mapping({k.split("=")[0]: (k.split("=")[1].split(":")[0], None) for k in args})
    log = read_request_log(EX / "requests.csv", mapping)
    assert log.start is not None and log.start.isoformat().startswith("2026-01-05T18:00:00")
    assert log.routes == ["/api/presence", "/api/toybox", "/health"]
    assert log.frame.t.min() == pytest.approx(0.114, abs=1e-6)
    assert (log.frame.outcome == "ok").sum() == (pd.read_csv(EX / "requests.csv").status == 200).sum()
    # db 1 exactly where the log has a DB time; the unit (ms) came from the column names
    raw = pd.read_csv(EX / "requests.csv")
    assert list(log.frame.sort_values("line").db) == list(raw.db_ms.notna().astype(int))
    assert log.frame.sort_values("line").latency.iloc[0] == pytest.approx(raw.response_time_ms[0] / 1000)


def test_epoch_ms_is_told_from_epoch_seconds_by_magnitude(tmp_path):
    ms = read_request_log(EX / "requests.jsonl", Mapping({"t": ("ts", None), "latency": ("duration", "s")}))
    rows = [json.loads(x) for x in (EX / "requests.jsonl").read_text().splitlines()]
    secs = tmp_path / "s.jsonl"
    secs.write_text("\n".join(json.dumps({**r, "ts": r["ts"] / 1000}) for r in rows))
    s = read_request_log(secs, Mapping({"t": ("ts", None), "latency": ("duration", "s")}))
    assert np.allclose(ms.frame.t, s.frame.t, atol=1e-6) and ms.start == s.start
    assert ms.start.year == 2026


# -- bad input ------------------------------------------------------------------------------------------
def _csv(tmp_path, text: str, name="log.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("text, args, expect", [
    ("t_s,latency_ms\n1,2\n2,abc\n", [], ["log.csv:3", "column 'latency_ms' (latency)", "expected a duration in ms",
                                        "'abc'"]),
    ("t_s,latency_ms\n1,2\n2,-3\n", [], ["log.csv:3", "latency", ">= 0", "'-3'"]),
    ("when,rt\n1,2\n", ["--col", "t=when:s", "--col", "latency=rt"], ["column 'rt' (latency)", "unknown unit",
                                                                      "--col latency=rt:ms"]),
    ("when,rt_ms\n1,2\n", [], ["no send-time column", "--col t=COLUMN", "when, rt_ms"]),
    ("t,latency_ms\n1,2\n", [], ["column 't' (t)", "relative times need a unit"]),
    ("t_s,latency_ms\n1,2\n", ["--col", "t=stamp"], ["no column for t=stamp", "the file's columns are t_s, latency_ms"]),
    ("t_s,latency_ms\n1,2\n", ["--col", "speed=x"], ["unknown field 'speed'", "latency"]),
    ("t_s,latency_ms,db\n1,2,7\n", [], ["log.csv:2", "column 'db' (db)", "0 or 1"]),
    ("t_s,latency_ms\n" + "".join(f"{i},{i % 7 + 1}\n" for i in range(12)), [],
     ["12 measured requests", "needs at least 20"]),
    ("", [], ["empty file"]),
])
def test_bad_logs_say_file_line_column_and_what_was_expected(text, args, expect, tmp_path, capsys):
    path = _csv(tmp_path, text)
    code, out, err = run([path, *args, "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    for piece in expect:
        assert piece in err, (piece, err)
    assert not (tmp_path / "out").exists()               # nothing written


def test_bad_json_lines_and_reports_name_the_line_or_json_path(tmp_path, capsys):
    p = _csv(tmp_path, '{"t_s": 1, "latency_ms": 2}\n{"t_s": 2, latency_ms: 3}\n', "log.jsonl")
    code, _, err = run([p], capsys)
    assert code == 2 and "log.jsonl:2" in err and "expected one JSON object a line" in err
    rep = json.loads((EX / "artillery-report.json").read_text())
    rep["intermediate"][3]["summaries"]["http.response_time"]["p95"] = "fast"
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps(rep))
    code, _, err = run([str(bad)], capsys)
    assert code == 2 and '$.intermediate[3].summaries["http.response_time"].p95' in err and "expected a number" in err
    bad.write_text('{"aggregate": {}, "intermediate": []}')
    code, _, err = run([str(bad)], capsys)
    assert code == 2 and "$.intermediate" in err
    bad.write_text('{"aggregate": ')
    code, _, err = run([str(bad)], capsys)
    assert code == 2 and "report.json:1" in err and "JSON" in err


def test_bad_metrics_say_the_line(tmp_path, capsys):
    p = _csv(tmp_path, "time,requests,cpu\n2026-01-05T00:00:00Z,10,5\n2026-01-05T00:01:00Z,12,150\n"
                       "2026-01-05T00:02:00Z,9,4\n", "metrics.csv")
    code, _, err = run([p], capsys)
    assert code == 2 and "metrics.csv:3" in err and "column 'cpu' (cpu)" in err and "0-100" in err


def test_a_failed_calibration_leaves_the_previous_outputs_alone(tmp_path, capsys):
    out = tmp_path / "out"
    assert run([str(EX / "metrics.csv"), "--out", str(out)], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = _csv(tmp_path, "t_s,latency_ms\n1,x\n")
    assert run([bad, "--out", str(out)], capsys)[0] == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before       # no temporary files either


def test_an_earlier_calibration_is_replaced_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    assert run([str(EX / "metrics.csv"), "--out", str(out)], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = run([str(EX / "metrics.csv"), "--out", str(out), "--name", "again"], capsys)
    assert code == 2 and "holds an earlier output" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert run([str(EX / "metrics.csv"), "--out", str(out), "--name", "again", "--overwrite"], capsys)[0] == 0
    assert "name: again" in (out / "calibrated.yaml").read_text()


def test_a_bad_base_scenario_is_exit_2(tmp_path, capsys):
    base = _csv(tmp_path, "horizon: -1\n", "base.yaml")
    code, _, err = run([str(EX / "metrics.csv"), "--base", base], capsys)
    assert code == 2 and "base.yaml:1" in err


# -- fits against the distributions that made the data ---------------------------------------------
def _artillery(rates, mean_ms, outside_ms, per=10):
    """A report whose quiet periods' response times are outside + Exp(mean): quantiles from theory."""
    periods = []
    for i, r in enumerate(rates):
        s = mean_ms * (1 if r == min(rates) else 1 + r / 5)          # busier periods queue (unused by the fit)
        q = {k: outside_ms + s * -math.log(1 - p) for k, p in
             (("p50", .5), ("median", .5), ("p75", .75), ("p90", .9), ("p95", .95), ("p99", .99))}
        periods.append({"period": 1767636000000 + i * per * 1000, "counters": {"http.requests": r * per,
                        "http.responses": r * per, "http.codes.200": r * per},
                        "summaries": {"http.response_time": {"min": outside_ms, "max": outside_ms + 8 * s,
                                                             "mean": outside_ms + s, "count": r * per, **q}}})
    return {"aggregate": {"counters": {}}, "intermediate": periods}


@pytest.mark.parametrize("mean_ms", [2.0, 8.0, 30.0])
def test_artillery_quiet_periods_recover_the_service_distribution(mean_ms, tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_artillery([2, 2, 2, 5, 10, 20, 20, 10, 5, 2, 2, 2], mean_ms, 3.0)))
    run_ = read_artillery(p)
    assert run_.layout == "2" and len(run_.periods) == 12 and run_.periods.seconds.iloc[0] == pytest.approx(10.0)
    svc = artillery_service(run_)
    assert svc.outside == pytest.approx(0.003)
    assert svc.cpu.family == "exponential"
    assert svc.cpu.mean == pytest.approx(mean_ms / 1000, rel=0.01)
    assert len(svc.quiet) == 6 and (svc.quiet.rate == 2).all()
    assert any("assumed" in n for n in svc.notes)


def test_metrics_regression_interval_covers_the_cpu_per_request(tmp_path):
    """CPU-seconds = 0.02/s idle + 4 ms per request + noise: the slope's 95% interval covers 4 ms in
    about 95% of synthetic days (checked over 40 seeds: at least 33 cover, a binomial 1st percentile)."""
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = rng.poisson(rng.uniform(200, 2000, 60))
        cpu_s = 0.02 * 60 + 0.004 * n + rng.normal(0, 0.3, 60)
        t = pd.date_range("2026-01-05", periods=60, freq="min", tz="UTC")
        f = tmp_path / f"m{seed}.csv"
        pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "requests": n, "cpu": 100 * cpu_s / 60,
                      "instances": 1}).to_csv(f, index=False)
        r = metrics_fits(read_metrics(f), vcpus=1, memory_gb=1, plan="x").cpu_per_request
        covered += r.slope_ci[0] <= 0.004 <= r.slope_ci[1]
    assert covered >= stats.binom.ppf(0.01, 40, 0.95)


def test_the_hourly_curve_and_the_weekend_from_a_calendar_log(tmp_path):
    """A non-homogeneous Poisson log over Monday-Sunday with a known hourly curve and weekend x1.6:
    each hour's multiplier within 4 standard errors (Poisson counts), the weekend's interval covers 1.6."""
    rng = np.random.default_rng(5)
    curve = np.array([0.2] * 7 + [0.5] * 5 + [0.8] * 6 + [1.0] * 4 + [0.4] * 2)
    peak = 0.4          # requests/s at the busiest weekday hour
    times = []
    for day in range(7):
        for h in range(24):
            rate = peak * curve[h] * (1.6 if day >= 5 else 1.0)
            k = rng.poisson(rate * 3600)
            times.append(day * 86400 + h * 3600 + np.sort(rng.uniform(0, 3600, k)))
    t = np.concatenate(times)
    stamps = pd.Timestamp("2026-01-05T00:00:00Z") + pd.to_timedelta(t, unit="s")
    path = tmp_path / "cal.csv"
    pd.DataFrame({"time": stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "latency_ms": 5.0}).to_csv(path, index=False)
    log = read_request_log(path, Mapping({"t": ("time", None)}))
    a = arrivals_of_log(log)
    assert a.hourly is not None and a.peak_rate == pytest.approx(peak, rel=0.1)
    for h in range(24):
        if h in (0, 23):           # the log's first and last hours are cut by its edges
            continue
        n_days = a.hours_seen[h]
        se = math.sqrt(peak * curve[h] * 3600 * n_days) / (peak * 3600 * n_days)
        assert abs(a.hourly[h] - curve[h]) <= 4 * se + 4 * 0.03 * curve[h], (h, a.hourly[h], curve[h])
    lo, hi = a.weekend_ci
    assert lo <= 1.6 <= hi and a.weekend_days == 2


def test_a_base_scenario_keeps_what_the_inputs_do_not_identify(tmp_path, capsys, monkeypatch):
    from capsim import scenarios
    from capsim.scenario.loader import load
    monkeypatch.chdir(EX)
    base = scenarios.path("launch")
    code, _, err = run(["requests.csv", *CSV_COLS, "--base", str(base), "--out", str(tmp_path), "--name", "mine"],
                       capsys)
    assert code == 0, err
    sc, b = load(tmp_path / "calibrated.yaml"), load(base)
    assert sc.name == "mine" and set(sc.workload.endpoints) == {"/api/presence", "/api/toybox", "/health"}
    # identified: the sessions' request rate and peak, the latency outside; kept: everything else
    assert sc.workload.sessions.request_rate != b.workload.sessions.request_rate
    assert sc.workload.sessions.daily_curve == b.workload.sessions.daily_curve == "gaming"
    assert sc.workload.sessions.session_length == b.workload.sessions.session_length   # 12 sessions: too few
    assert sc.pricing == b.pricing and sc.database.pool == b.database.pool and sc.horizon == b.horizon
    assert sc.load_balancer.latency.mean != b.load_balancer.latency.mean
    text = (tmp_path / "calibrated.yaml").read_text()
    assert f"from the base scenario {base}" in text and "session_length" in text.split("Left at the base")[1]


def test_artillery_1x_layout(tmp_path):
    run_ = read_artillery(EX / "artillery-1x-report.json")
    assert run_.layout == "1.x" and len(run_.periods) == 6
    assert list(run_.periods.requests) == [20, 20, 50, 100, 150, 200]
    assert run_.periods.seconds.iloc[0] == pytest.approx(10.0) and run_.periods.rt_min.iloc[0] == pytest.approx(0.002)


def test_the_report_plots_the_measured_sample_and_its_fit(tmp_path, capsys):
    from capsim.calibrate import calibrate, read_node_pg_run
    from capsim.report.html import figure_data
    runs = Path(__file__).resolve().parent / "data" / "node-pg" / "runs"
    assert run([str(runs / "CAL_E2.csv.gz"), "--out", str(tmp_path)], capsys)[0] == 0
    html = (tmp_path / "calibration.html").read_text()
    traces = figure_data(html, "log0-all-cpu_pre")
    cal = calibrate(read_node_pg_run(runs / "CAL_E2.csv.gz", runs / "CAL_E2.json"))
    measured = np.sort(np.asarray(traces[0]["x"], dtype=float))
    assert np.allclose(measured, np.sort(1e3 * cal.cpu_pre.values))               # the histogram is the sample
    qq = traces[2]                      # at 200 plotting positions (i + 0.5)/n of the sorted sample
    assert cal.cpu_pre.family == "exponential"
    n = cal.cpu_pre.n
    idx = np.unique(np.linspace(0, n - 1, 200).astype(int))
    fitted = stats.expon(scale=1e3 * cal.cpu_pre.mean)
    assert np.allclose(np.asarray(qq["x"], dtype=float), fitted.ppf((idx + 0.5) / n))
    assert np.allclose(np.asarray(qq["y"], dtype=float), measured[idx])
    assert figure_data(html, "log0-arrivals")[0]["y"] is not None
