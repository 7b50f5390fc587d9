"""workload.trace: a recorded request log replayed (exact times, routes, origin/start_at/shift),
``scale`` with its stated construction, a rate series as a non-homogeneous Poisson process,
streaming readers (CSV, JSON lines, gzip, ISO and epoch times) and their errors, CRN.

Stochastic checks: a Poisson or binomial count is within 4 standard deviations of its mean.
"""
import gzip
import json
import math

import pytest
from pydantic import ValidationError

from capsim.engine.model import Model
from capsim.models.workload import TraceConfig
from capsim.scenario.config import Scenario
from capsim.scenario.loader import ScenarioError, load

EPS = {"a": {"cpu_pre": 0.001, "queries": 0}, "b": {"cpu_pre": 0.002, "queries": 0, "weight": 3}}


def write_csv(path, rows, header="t,route"):
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def scenario(trace, horizon=20.0, interval=5.0, **extra):
    return Scenario.model_validate({"horizon": horizon, "warmup": 0, "metrics": {"interval": interval},
                                    "workload": {"sessions": None, "endpoints": EPS, "trace": trace}, **extra})


def arrivals(sc, seed=1):
    model = Model(sc, seed=seed)
    seen = []
    model.watch(on_arrive=lambda r: seen.append((r.t0, model.sources[0].factory.names[r.endpoint])))
    model.run()
    return seen, model


# --- replay -------------------------------------------------------------------------
def test_replay_is_exact_with_origin_start_at_and_shift(tmp_path):
    f = write_csv(tmp_path / "log.csv", [(100.5, "/a"), (101.0, "/b"), (101.0, "a"), (103.25, "/a"), (109.0, "/b")])
    routes = {"/a": "a", "/b": "b"}
    seen, _ = arrivals(scenario({"file": str(f), "routes": routes}))
    assert seen == [(0.0, "a"), (0.5, "b"), (0.5, "a"), (2.75, "a"), (8.5, "b")]   # origin: the first row
    seen, _ = arrivals(scenario({"file": str(f), "routes": routes, "origin": 100, "start_at": 1, "shift": 10}))
    assert seen == [(10.0, "b"), (10.0, "a"), (12.25, "a"), (18.0, "b")]          # 100.5 is before 100 + 1


def test_unknown_routes_listed_or_sent_to_the_default(tmp_path):
    f = write_csv(tmp_path / "log.csv", [(0, "/a"), (1, "/x"), (2, "/y"), (3, "/x")])
    with pytest.raises(ValidationError) as exc:
        scenario({"file": str(f), "routes": {"/a": "a"}})
    text = str(exc.value)
    assert "'/x' (2 requests, first on line 3)" in text and "'/y' (1 requests, first on line 4)" in text
    seen, _ = arrivals(scenario({"file": str(f), "routes": {"/a": "a"}, "default_endpoint": "b"}))
    assert [e for _, e in seen] == ["a", "b", "b", "b"]
    with pytest.raises(ValidationError, match="unknown endpoint 'nope'"):
        scenario({"file": str(f), "routes": {"/a": "nope"}})


def test_jsonl_gz_iso_times_and_ms(tmp_path):
    f = tmp_path / "log.jsonl.gz"
    with gzip.open(f, "wt") as fh:
        for ts, path in [("2026-01-05T18:00:00Z", "a"), ("2026-01-05T18:00:01.250+00:00", "b"),
                         ("2026-01-05T18:00:04", "a")]:
            fh.write(json.dumps({"ts": ts, "path": path, "other": 1}) + "\n")
    seen, _ = arrivals(scenario({"file": str(f), "columns": {"time": "ts", "route": "path"}}))
    assert seen == [(0.0, "a"), (1.25, "b"), (4.0, "a")]
    g = write_csv(tmp_path / "ms.csv", [(1767636000000, "a"), (1767636000400, "a")], header="when,route")
    seen, _ = arrivals(scenario({"file": str(g), "columns": {"time": "when"}, "time_unit": "ms"}))
    assert [t for t, _ in seen] == pytest.approx([0.0, 0.4]) and [e for _, e in seen] == ["a", "a"]


@pytest.mark.parametrize("rows, header, expected", [
    ([(0, "a"), ("soon", "a")], "t,route", ":3: column 't': expected a number or an ISO 8601 date-time, got 'soon'"),
    ([(5, "a"), (4, "a")], "t,route", ":3: column 't': expected rows in time order"),
    ([(0, "a")], "time,route", ":1: no column 't' (for time); the file has ['time', 'route']"),
    ([], "t,route", ": no rows: expected at least one request"),
])
def test_bad_csv_rows_have_file_line_column(tmp_path, rows, header, expected):
    f = write_csv(tmp_path / "log.csv", rows, header)
    with pytest.raises(ValidationError) as exc:
        scenario({"file": str(f)})
    assert f"{f}{expected}" in str(exc.value)


def test_bad_json_line(tmp_path):
    f = tmp_path / "log.jsonl"
    f.write_text('{"t": 0, "route": "a"}\n{"t": 1, route: "a"}\n')
    with pytest.raises(ValidationError, match=r"log.jsonl:2: expected a JSON object per line: .* at column 10"):
        scenario({"file": str(f)})


def test_loader_places_the_problem_and_resolves_relative_files(tmp_path):
    write_csv(tmp_path / "log.csv", [(0, "a"), (1, "b")])
    (tmp_path / "s.yaml").write_text("horizon: 10s\nwarmup: 0s\nworkload:\n  sessions: null\n  endpoints:\n"
                                     "    a: {cpu_pre: 1ms}\n    b: {cpu_pre: 1ms}\n  trace:\n    file: log.csv\n")
    sc = load(tmp_path / "s.yaml")
    assert sc.workload.trace.file == str(tmp_path / "log.csv")
    (tmp_path / "log.csv").write_text("t,route\n0,a\nx,b\n")
    with pytest.raises(ScenarioError) as exc:
        load(tmp_path / "s.yaml")
    (p,) = exc.value.problems
    assert (p.line, p.path) == (8, "workload.trace")
    assert f"{tmp_path / 'log.csv'}:3: column 't'" in str(p)


def test_missing_file(tmp_path):
    with pytest.raises(ValidationError, match="nope.csv: no such file"):
        scenario({"file": str(tmp_path / "nope.csv")})


# --- scale --------------------------------------------------------------------------
def _uniform_log(tmp_path, n=2000, span=100.0):
    """n requests evenly over [0, span), none on a window's edge (the first at span / 2n)."""
    return write_csv(tmp_path / "log.csv", [(round(span * (i + 0.5) / n, 6), "a") for i in range(n)])


def test_scale_two_doubles_every_window_exactly_and_keeps_the_recorded_times(tmp_path):
    f = _uniform_log(tmp_path)
    for seed in (1, 2):
        seen, model = arrivals(scenario({"file": str(f), "scale": 2.0, "jitter": 5, "origin": 0}, horizon=100, interval=5), seed)
        assert [r["arrivals"] for r in model.metrics.rows] == [200] * 20      # 5 s windows = jitter windows
        recorded = {round(100 * (i + 0.5) / 2000, 6) for i in range(2000)}
        assert recorded <= {round(t, 6) for t, _ in seen}
        assert [t for t, _ in seen] == sorted(t for t, _ in seen)


@pytest.mark.parametrize("s", [0.5, 1.5, 2.7])
def test_fractional_scale_is_binomial_per_window(tmp_path, s):
    f = _uniform_log(tmp_path)
    _, model = arrivals(scenario({"file": str(f), "scale": s, "jitter": 5, "origin": 0}, horizon=100, interval=5), seed=3)
    counts = [r["arrivals"] for r in model.metrics.rows]
    whole, frac = math.floor(s), s - math.floor(s)
    for c in counts:                                   # 100 recorded per window
        assert abs(c - 100 * s) <= 4 * math.sqrt(100 * frac * (1 - frac)) + 1e-9
        assert 100 * whole <= c <= 100 * (whole + 1)
    assert abs(sum(counts) - 2000 * s) <= 4 * math.sqrt(2000 * frac * (1 - frac))


def test_scale_one_draws_nothing_and_same_seed_same_arrivals(tmp_path):
    f = _uniform_log(tmp_path, n=300, span=30)
    a, _ = arrivals(scenario({"file": str(f), "scale": 1.3}), seed=5)
    b, _ = arrivals(scenario({"file": str(f), "scale": 1.3}), seed=5)
    c, _ = arrivals(scenario({"file": str(f), "scale": 1.3}), seed=6)
    assert a == b and a != c


def test_common_random_numbers_across_a_b(tmp_path):
    """Two scenarios that differ in capacity replay the same arrivals (and scale's copies)."""
    f = _uniform_log(tmp_path, n=500, span=50)
    a, _ = arrivals(scenario({"file": str(f), "scale": 1.7}, horizon=60), seed=9)
    b, _ = arrivals(scenario({"file": str(f), "scale": 1.7}, horizon=60, instances={"count": 3}), seed=9)
    assert a == b


# --- rate series --------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2])
def test_step_rate_series_is_poisson_per_step(tmp_path, seed):
    f = write_csv(tmp_path / "rates.csv", [(0, 10), (50, 40), (100, 0), (150, 20)], header="t,rate")
    sc = scenario({"file": str(f), "kind": "rates"}, horizon=250, interval=50)
    _, model = arrivals(sc, seed)
    counts = [r["arrivals"] for r in model.metrics.rows]
    for n, lam in zip(counts, [500, 2000, 0, 1000, 0]):          # the last rate holds for the previous gap
        assert abs(n - lam) <= 4 * math.sqrt(max(lam, 1)), (n, lam)
    assert counts[2] == counts[4] == 0


def test_linear_rate_series_and_counts_per_interval(tmp_path):
    f = write_csv(tmp_path / "rates.csv", [(0, 0), (100, 100)], header="t,rate")
    _, model = arrivals(scenario({"file": str(f), "kind": "rates", "interpolation": "linear", "scale": 2},
                                 horizon=120, interval=50), seed=4)
    counts = [r["arrivals"] for r in model.metrics.rows]
    for n, lam in zip(counts, [2 * 1250, 2 * 3750, 0]):          # integral of 2 t over [0, 50], [50, 100]
        assert abs(n - lam) <= 4 * math.sqrt(max(lam, 1)), (n, lam)
    g = write_csv(tmp_path / "per_minute.csv", [(0, 600), (60, 1200), (120, 0)], header="minute_start,requests")
    sc = scenario({"file": str(g), "kind": "rates", "columns": {"time": "minute_start", "requests": "requests"}},
                  horizon=180, interval=60)
    _, model = arrivals(sc, seed=4)
    for n, lam in zip([r["arrivals"] for r in model.metrics.rows], [600, 1200, 0]):
        assert abs(n - lam) <= 4 * math.sqrt(max(lam, 1)), (n, lam)


def test_rate_series_start_at_cuts_a_ramp_exactly(tmp_path):
    f = write_csv(tmp_path / "rates.csv", [(0, 0), (100, 100)], header="t,rate")
    _, model = arrivals(scenario({"file": str(f), "kind": "rates", "interpolation": "linear", "start_at": 50},
                                 horizon=60, interval=50), seed=2)
    lam = 50 * 50 + 50 * 50 / 2                                  # rate 50 -> 100 over 50 s
    assert abs(model.metrics.rows[0]["arrivals"] - lam) <= 4 * math.sqrt(lam)


def test_config_errors():
    with pytest.raises(ValidationError, match="linear needs rates at points"):
        TraceConfig.model_validate({"file": "x.csv", "kind": "rates", "interpolation": "linear",
                                    "columns": {"requests": "n"}})
    with pytest.raises(ValidationError, match="for kind: rates"):
        TraceConfig.model_validate({"file": "x.csv", "interpolation": "linear"})
    with pytest.raises(ValidationError, match="scale"):
        TraceConfig.model_validate({"file": "x.csv", "scale": 0})


def test_same_results_in_process_and_in_workers(tmp_path):
    import capsim
    f = _uniform_log(tmp_path, n=400, span=40)
    sc = scenario({"file": str(f), "scale": 1.5}, horizon=50)
    one = capsim.replicate(sc, replications=2, workers=1, progress=False).summaries
    two = capsim.replicate(sc, replications=2, workers=2, progress=False).summaries
    drop = lambda s: {k: v for k, v in s.items() if k != "wall_seconds"}    # noqa: E731
    assert [drop(s) for s in one] == [drop(s) for s in two]
