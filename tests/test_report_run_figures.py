"""Figures of one run (capsim.report.run_figures): checked on the figures' data."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import capsim
from capsim.report.data import RunFiles
from capsim.report.run_figures import (cache_hit_rates, cost, database, fleet_cpu, latency, latency_by_endpoint,
                                       latency_distribution, load_capacity, outcomes, run_figures, sockets,
                                       utilisation_heatmap)
from capsim.scenario.slo import SLOConfig

KEYS = ["load_capacity", "fleet_cpu", "latency", "latency_by_endpoint", "latency_distribution", "outcomes", "database",
        "cache", "cpu_heatmap", "memory_heatmap", "sockets", "cost"]
SHORT = ["horizon=2h", "warmup=10m"]
FEATURES_OFF = ["cache=null", "sockets=null", "rate_limit=null", "circuit_breaker=null"]
# fullscale's night scaling (02:00: max 2 instances) scales 5 -> 2 -> 1; fewer users keep it fast;
# from a Monday (the shipped file starts on a Saturday, whose weekend pre-scaling holds 2 at night)
AUTOSCALE = ["horizon=2h30m", "warmup=10m", "workload.sessions.peak_users=300", "workload.start=2026-01-05T00:00:00"]


def _run(path: str, overrides: list[str]) -> capsim.Result:
    return capsim.run(capsim.load_scenario(path, overrides))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    out = {"launch": _run("scenarios/launch.yaml", SHORT),
           "autoscale": _run("scenarios/fullscale.yaml", AUTOSCALE),
           "off": _run("scenarios/launch.yaml", SHORT + FEATURES_OFF)}
    for name in ("launch", "autoscale"):
        out[f"{name}_files"] = RunFiles.read(out[name].write(tmp_path_factory.mktemp(name)))
    return out


@pytest.fixture(scope="module")
def run37():
    return _run("scenarios/launch.yaml", ["horizon=30m", "warmup=5m", "database.max_connections=37"])


def _clock(run, seconds) -> np.ndarray:
    """Simulated seconds on the scenario's calendar (workload.start at t = 0), as datetime64."""
    sc = run.scenario
    start = sc["workload"]["start"] if isinstance(sc, dict) else sc.workload.start
    return (np.datetime64(pd.Timestamp(start)) + (np.asarray(seconds, dtype=float) * 1e9).astype("timedelta64[ns]"))


def _dates(values) -> np.ndarray:
    return np.asarray(pd.to_datetime(pd.Series(list(values))), dtype="datetime64[ns]")


def _f(values) -> np.ndarray:
    return np.asarray(values if values is not None else [], dtype=float)


def _trace(fig: go.Figure, name: str):
    found = [t for t in fig.data if t.name == name]
    assert len(found) == 1, f"{name!r} in {[t.name for t in fig.data]}"
    return found[0]


def _hlines(fig: go.Figure) -> list[float]:
    return sorted(s.y0 for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1)


def _notes(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _rate(ts: pd.DataFrame, column: str) -> np.ndarray:
    return _f(ts[column] / (ts["t_end"] - ts["t_start"]))


# -- every figure -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["launch", "autoscale", "off", "launch_files", "autoscale_files"])
def test_every_figure_builds_with_traces(runs, name):
    figs = run_figures(runs[name])
    assert list(figs) == KEYS
    for key, fig in figs.items():
        assert isinstance(fig, go.Figure), key
        assert fig.layout.height >= 420 and fig.layout.legend.orientation == "h", key
        if key == "latency_distribution":
            assert fig.layout.xaxis.type == "log"
        else:   # the scenario's calendar on x
            title = fig.layout.xaxis.title.text or fig.layout.xaxis2.title.text
            assert title.startswith("time (the scenario's calendar from Mon 05 Jan 2026"), key
        if name == "off" and key == "cache":
            assert not fig.data and "no cache in this run" in _notes(fig)
        else:
            assert len(fig.data) >= 1, key


def test_warmup_is_shaded(runs):
    fig = load_capacity(runs["launch"])
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    start = pd.Timestamp(runs["launch"].scenario.workload.start)
    assert len(bands) == 1 and pd.Timestamp(bands[0].x0) == start
    assert pd.Timestamp(bands[0].x1) == start + pd.Timedelta(minutes=10)
    assert "warm-up" in _notes(fig)
    assert len([s for s in database(runs["launch"]).layout.shapes if s.type == "rect"]) == 2   # both rows


def test_missing_optional_columns_do_not_raise(runs):
    r = runs["launch"]
    ts = r.timeseries
    optional = [c for c in ts if c.startswith(("cache_", "sockets", "session", "db_", "pool_", "rate_limited_"))]
    bare = SimpleNamespace(summary={}, timeseries=ts.drop(columns=optional), instances=pd.DataFrame(),
                           scaling_events=pd.DataFrame(columns=["time", "from", "to", "reason"]), scenario=None)
    figs = run_figures(bare)
    assert list(figs) == KEYS
    assert "no per-instance data in this run" in _notes(figs["cpu_heatmap"])
    empty = SimpleNamespace(summary={}, timeseries=pd.DataFrame(), instances=pd.DataFrame(),
                            scaling_events=pd.DataFrame(), scenario=None)
    assert all(isinstance(f, go.Figure) for f in run_figures(empty).values())


# -- load and capacity --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["launch", "autoscale"])
def test_load_capacity_arrivals_per_second(runs, name):
    r = runs[name]
    ts, fig = r.timeseries, load_capacity(r)
    arrivals = _trace(fig, "arrivals")
    np.testing.assert_allclose(_f(arrivals.y), _rate(ts, "arrivals"))
    np.testing.assert_array_equal(_dates(arrivals.x), _clock(r, ts["t_end"]))
    np.testing.assert_array_equal(_f(_trace(fig, "concurrent sessions").y), _f(ts["sessions"]))
    for col, label in (("instances", "running"), ("instances_ready", "ready"), ("instances_managed", "desired")):
        t = _trace(fig, f"instances {label}")
        assert t.yaxis == "y2" and t.line.shape == "hv"
        np.testing.assert_array_equal(_f(t.y), _f(ts[col]))


def test_scaling_event_markers(runs):
    r = runs["autoscale"]
    events = r.scaling_events
    assert len(events) >= 2       # the night-scaling schedule scales down at 02:00
    markers = _trace(load_capacity(r), "scaling events")
    assert markers.yaxis == "y2" and markers.mode == "markers"
    np.testing.assert_array_equal(_f(markers.y), _f(events["to"]))
    np.testing.assert_array_equal(_dates(markers.x), _clock(r, events["time"]))
    first = events.iloc[0]
    assert markers.text[0] == f"{first['from']} → {first['to']}: {first['reason']}"
    assert "scaling events" not in [t.name for t in load_capacity(runs["launch"]).data]   # no events, no markers


# -- latency ------------------------------------------------------------------------------
def test_latency_lines_match_timeseries(runs):
    r = runs["launch"]
    ts, fig = r.timeseries, latency(r)
    assert ts["latency_p95_ms"].isna().any()      # the first interval completes nothing
    for col, name in (("latency_p50_ms", "p50"), ("latency_p95_ms", "p95"), ("latency_p99_ms", "p99"),
                      ("latency_mean_ms", "mean")):
        np.testing.assert_allclose(_f(_trace(fig, name).y), _f(ts[col]), equal_nan=True)
    assert latency(r, log_y=False).layout.yaxis.type == "linear" and latency(r, log_y=True).layout.yaxis.type == "log"
    # automatic: log when the highest limit (the 2000 ms alert) is over 10x the highest p99
    top = ts[["latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_mean_ms"]].max().max()
    assert fig.layout.yaxis.type == ("log" if 2000 > 10 * top else "linear")
    high = SLOConfig(objectives={"latency_mean_ms": 0.5 * top}, thresholds=[], alerts=[])
    assert latency(r, slo=high).layout.yaxis.type == "linear"


def test_latency_default_slo_lines(runs):
    fig = latency(runs["launch"])
    assert _hlines(fig) == [200, 500, 2000]
    notes = _notes(fig)
    for text in ("objective: mean < 200 ms", "threshold slow_responses: mean > 500 ms",
                 "alert slow_responses: mean > 2000 ms for 10 min"):
        assert text in notes
    assert not any("error" in n for n in notes)     # error-rate limits are not latency lines


def test_latency_custom_slo(runs):
    custom = SLOConfig(objectives={"latency_mean_ms": 123}, alerts=[],
                       thresholds=[{"name": "tail", "metric": "latency_p95_ms", "above": 321}])
    fig = latency(runs["launch"], custom)
    assert _hlines(fig) == [123, 321]
    assert "threshold tail: p95 > 321 ms" in _notes(fig)
    assert _hlines(latency(runs["launch"], SLOConfig(objectives={"latency_mean_ms": 123})))[0] == 123


def test_latency_slo_from_scenario_section(runs):
    r = runs["launch"]
    with_slo = SimpleNamespace(summary=r.summary, timeseries=r.timeseries, instances=r.instances,
                               scaling_events=r.scaling_events,
                               scenario={"slo": {"objectives": {"latency_mean_ms": 150}, "thresholds": [],
                                                 "alerts": [{"name": "p99", "metric": "latency_p99_ms",
                                                             "above": 900, "for": "5m"}]}})
    fig = latency(with_slo)
    assert _hlines(fig) == [150, 900]
    assert "alert p99: p99 > 900 ms for 5 min" in _notes(fig)
    assert _hlines(latency(with_slo, SLOConfig())) == [200, 500, 2000]   # an explicit slo wins


# -- outcomes -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["launch", "autoscale", "off"])
def test_outcomes_stack_sums_to_completed(runs, name):
    r = runs[name]
    ts, fig = r.timeseries, outcomes(r)
    stacked = [t for t in fig.data if t.stackgroup]
    np.testing.assert_allclose(np.sum([_f(t.y) for t in stacked], axis=0), _rate(ts, "completed"))
    nonzero = {c.removeprefix("n_").replace("_", " ") for c in ts if c.startswith("n_") and ts[c].sum() > 0}
    assert {t.name for t in stacked} == nonzero | {"ok"}
    assert stacked[0].name == "ok"
    done = ts["completed"].where(ts["completed"] > 0)
    rejected = ts["n_rate_limited"] / done
    np.testing.assert_allclose(_f(_trace(fig, "rejected (429) share").y), _f(rejected), equal_nan=True)
    np.testing.assert_allclose(_f(_trace(fig, "server error share").y), _f(1 - ts["n_ok"] / done - rejected),
                               rtol=1e-9, atol=1e-12, equal_nan=True)


def test_outcomes_rate_limited_only_when_limiting(runs):
    assert "rate limited" in [t.name for t in outcomes(runs["launch"]).data]
    assert runs["off"].timeseries["n_rate_limited"].sum() == 0
    assert "rate limited" not in [t.name for t in outcomes(runs["off"]).data]


# -- database -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["launch", "autoscale", "autoscale_files"])
def test_database_per_instance_traces(runs, name):
    r = runs[name]
    fig = database(r)
    in_use = [t for t in fig.data if t.name.endswith(" in use")]
    waiters = [t for t in fig.data if t.name.endswith(" waiters")]
    assert len(in_use) == len(waiters) == r.instances["instance"].nunique()
    assert all(t.line.dash == "dot" for t in waiters)
    assert {t.legendgroup for t in in_use} == {t.legendgroup for t in waiters}
    first = r.instances[r.instances["instance"] == 0]
    np.testing.assert_array_equal(_f(_trace(fig, "instance 0 in use").y), _f(first["pool_in_use"]))
    np.testing.assert_array_equal(_f(_trace(fig, "server connections").y), _f(r.timeseries["db_connections"]))
    assert _hlines(fig) == [100]


def test_database_max_connections_from_scenario(run37):
    assert _hlines(database(run37)) == [37]
    unknown = SimpleNamespace(summary=run37.summary, timeseries=run37.timeseries, instances=run37.instances,
                              scaling_events=run37.scaling_events, scenario=None)
    assert _hlines(database(unknown)) == []   # no scenario: no limit line


def test_database_falls_back_to_pool_totals(runs):
    r = runs["launch"]
    bare = SimpleNamespace(summary=r.summary, timeseries=r.timeseries, scaling_events=r.scaling_events,
                           instances=r.instances.drop(columns=["pool_in_use", "pool_waiters"]), scenario=r.scenario)
    fig = database(bare)
    np.testing.assert_array_equal(_f(_trace(fig, "pool in use (all instances)").y), _f(r.timeseries["pool_in_use"]))
    assert not [t for t in fig.data if t.name.startswith("instance ")]


# -- cache --------------------------------------------------------------------------------
def test_cache_hit_rates_in_percent(runs):
    ts = runs["launch"].timeseries
    fig = cache_hit_rates(runs["launch"])
    overall = _trace(fig, "overall")
    np.testing.assert_allclose(_f(overall.y), _f(100 * ts["cache_hit_rate"]), equal_nan=True)
    assert overall.line.width > max(t.line.width for t in fig.data if t.name != "overall")
    classes = [c for c in ts if c.startswith("cache_hit_rate_")]
    kept = [c for c in classes if ts[c].notna().any()]
    assert len(fig.data) == len(kept) + 1 and 0 < len(kept) <= len(classes)
    assert list(fig.layout.yaxis.range) == [0, 100]


# -- heatmaps -----------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cpu_util", "memory_util"])
def test_heatmap_matches_instances(runs, metric):
    r = runs["autoscale"]
    inst, ts = r.instances, r.timeseries
    hm = utilisation_heatmap(r, metric).data[0]
    z = _f(hm.z)
    assert z.shape == (inst["instance"].nunique(), len(ts))
    expected = 100 * inst.pivot(index="instance", columns="t_end", values=metric).reindex(columns=ts["t_end"])
    np.testing.assert_allclose(z, expected.to_numpy(dtype=float), equal_nan=True)
    assert np.isnan(z).any()             # instances stopped by the night scaling are blank
    assert list(hm.y) == [f"instance {i}" for i in sorted(inst["instance"].unique())]
    assert (hm.zmin, hm.zmax) == (0, 100)


def test_heatmap_rejects_other_metrics(runs):
    with pytest.raises(ValueError, match="cpu_util.*memory_util"):
        utilisation_heatmap(runs["launch"], "disk")


# -- sockets ------------------------------------------------------------------------------
def test_sockets_per_instance_and_imbalance(runs):
    r = runs["autoscale"]
    fig = sockets(r)
    assert len([t for t in fig.data if t.name.startswith("instance ")]) == r.instances["instance"].nunique()
    spread = _trace(fig, "imbalance (max − min)")
    assert spread.line.dash == "dash"
    np.testing.assert_array_equal(_f(spread.y), _f(r.timeseries["sockets_max"] - r.timeseries["sockets_min"]))


# -- cost ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["launch", "autoscale_files"])
def test_cost_cumulative_and_projection(runs, name):
    r = runs[name]
    ts, fig = r.timeseries, cost(r)
    cum = _f(_trace(fig, "cumulative cost").y)
    assert cum[-1] == pytest.approx(ts["cost_usd"].sum())    # the whole horizon, warm-up included
    assert cum[-1] > r.summary["cost_usd"]                    # the summary covers only the measured window
    projection = _trace(fig, "monthly projection (running)")
    assert projection.yaxis == "y2"
    last = ts.iloc[-1]
    assert _f(projection.y)[-1] == pytest.approx(last["cost_usd_cum"] / last["t_end"] * 730 * 3600)
    monthly = r.summary["monthly_cost_usd"]
    assert f"monthly projection ${monthly:,.2f} (method: {r.summary['monthly_cost_method']})" in _notes(fig)


# -- files read back ----------------------------------------------------------------------
def _array(values):
    if values is None:
        return None
    try:
        return _f(values)
    except ValueError:          # category labels ("instance 0")
        return list(values)


def _data(fig: go.Figure) -> list[tuple]:
    return [(t.name, [_array(getattr(t, k, None)) for k in ("x", "y", "z")], tuple(getattr(t, "text", None) or ()))
            for t in fig.data]


@pytest.mark.parametrize("name", ["launch", "autoscale"])
def test_files_read_back_give_the_same_figures(runs, name):
    mem, files = run_figures(runs[name]), run_figures(runs[f"{name}_files"])
    for key in KEYS:
        a, b = _data(mem[key]), _data(files[key])
        assert [n for n, *_ in a] == [n for n, *_ in b], key
        for (n, arrays_a, text_a), (_, arrays_b, text_b) in zip(a, b):
            for va, vb in zip(arrays_a, arrays_b):
                assert (va is None) == (vb is None), (key, n)
                if isinstance(va, list):
                    assert va == vb, (key, n)
                elif va is not None:
                    np.testing.assert_allclose(va, vb, rtol=1e-12, equal_nan=True, err_msg=f"{key} {n}")
            assert text_a == text_b, (key, n)
        assert _hlines(mem[key]) == _hlines(files[key]), key
        assert _notes(mem[key]) == _notes(files[key]), key


# -- calendar marks, CPU thresholds, per-endpoint latency, distribution (issue 12 items 4 and 6) --------
def _limit_labels(fig: go.Figure, axis: str = "y") -> dict[str, float]:
    """Label -> position of the annotations placed on a data axis (not on the paper)."""
    return {a.text: (a.y if axis == "y" else a.x) for a in fig.layout.annotations
            if (a.yref if axis == "y" else a.xref) == axis}


@pytest.mark.parametrize("log_y", [True, False])
def test_limit_labels_sit_on_their_lines_on_log_and_linear_axes(runs, log_y):
    """plotly places annotations on a log axis at log10(y): a label at y=200 would land at 10^200."""
    fig = latency(runs["launch"], log_y=log_y)
    labels = _limit_labels(fig)
    expected = {"objective: mean < 200 ms": 200.0, "threshold slow_responses: mean > 500 ms": 500.0,
                "alert slow_responses: mean > 2000 ms for 10 min": 2000.0}
    for text, value in expected.items():
        assert labels[text] == pytest.approx(np.log10(value) if log_y else value), text
    assert _hlines(fig) == [200, 500, 2000]          # the lines themselves stay at the data values


def test_distribution_marks_percentiles_at_log10_on_its_log_axis(runs):
    r = runs["launch"]
    fig = latency_distribution(r)
    assert fig.layout.xaxis.type == "log"
    lat = r.summary["latency_ms"]
    marks = _limit_labels(fig, "x")
    for q in ("p50", "p95", "p99"):
        text = next(t for t in marks if t.startswith(q))
        assert marks[text] == pytest.approx(np.log10(lat[q]))
    total = _trace(fig, "all responses")
    assert _f(total.y)[:-1].sum() == pytest.approx(100.0)    # shares of every response (last point repeats)
    hist = r.latency_histogram
    assert hist["responses"].sum() == r.summary["requests"]["completed"]
    assert {f"endpoint:{e}" for e in r.scenario.workload.endpoints} <= set(hist.columns)


def test_latency_by_endpoint_draws_each_endpoints_column(runs):
    r = runs["launch"]
    fig = latency_by_endpoint(r)
    names = list(r.scenario.workload.endpoints)
    assert [t.name for t in fig.data] == names
    for name in names:
        np.testing.assert_allclose(_f(_trace(fig, name).y), _f(r.timeseries[f"latency_p95_ms_{name}"]),
                                   equal_nan=True)


def test_fleet_cpu_against_the_threshold_policys_limits(runs):
    r = runs["autoscale"]            # fullscale: threshold rules, 70% up and 30% down
    fig = fleet_cpu(r)
    a = r.scenario.autoscaler
    assert a.policy == "threshold" and _hlines(fig) == sorted([100 * a.cpu_down, 100 * a.cpu_up])
    np.testing.assert_allclose(_f(_trace(fig, "fleet CPU (mean of ready instances)").y),
                               100 * _f(r.timeseries["cpu_util"]), equal_nan=True)
    peak = r.instances.groupby("t_end")["cpu_util"].max()
    np.testing.assert_allclose(_f(_trace(fig, "busiest instance").y), 100 * _f(peak))
    assert _hlines(fleet_cpu(runs["launch"])) == []     # no autoscaler: nothing to draw against


def test_hpa_target_and_tolerance_band():
    sc = capsim.load_scenario("scenarios/launch.yaml", ["horizon=10m", "warmup=1m",
                                                       "autoscaler={policy: hpa, min_instances: 1, max_instances: 3}"])
    r = capsim.run(sc)
    assert _hlines(fleet_cpu(r)) == pytest.approx([63.0, 70.0, 77.0])     # 70% +- 10% tolerance


def test_events_and_schedule_actions_are_marked_at_their_times():
    sc = capsim.load_scenario("scenarios/launch.yaml", [
        "horizon=3h", "warmup=10m", "workload.start=2026-01-10T01:00:00",
        "workload.sessions.events=[{name: tournament, start: 30m, duration: 1h, multiplier: 2}]",
        "schedule={actions: [{at: '02:00', max_instances: 2}, {at: 150m, min_instances: 1}]}"])
    r = capsim.run(sc)
    fig = load_capacity(r)
    start = pd.Timestamp("2026-01-10T01:00:00")
    rects = [s for s in fig.layout.shapes if s.type == "rect" and s.fillcolor == "orange"]
    assert [(pd.Timestamp(s.x0), pd.Timestamp(s.x1)) for s in rects] == [
        (start + pd.Timedelta(minutes=30), start + pd.Timedelta(minutes=90))]
    assert "tournament x2" in _notes(fig)
    lines = sorted(pd.Timestamp(s.x0) for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1)
    assert lines == [start + pd.Timedelta(hours=1), start + pd.Timedelta(minutes=150)]   # 02:00, then t = 150 min
    assert "schedule: max 2" in _notes(fig) and "schedule: min 1" in _notes(fig)


def test_instance_axes_tick_whole_numbers(runs):
    for name, top in (("launch", 1), ("autoscale", int(runs["autoscale"].timeseries["instances"].max()))):
        ax = load_capacity(runs[name]).layout.yaxis2
        assert (ax.tickmode, ax.tick0, ax.dtick, ax.tickformat) == ("linear", 0, 1, "d")
        assert list(ax.range) == [0, top + 0.5]
