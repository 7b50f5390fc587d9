"""Autoscaling in whole runs: policies against the fleet, schedules, pre-scaling, predictive
scaling, custom policies (Python and opt-in scenario code), scaling_events.csv, validate
warnings, and the seed's three phases.

Deterministic setups: open-loop ``schedule`` rates, one endpoint with a constant CPU slice
and no queries, constant provisioning (60 s). Per-instance CPU is then rate / instances x
CPU slice, up to Poisson noise that the thresholds below leave far behind; the assertions
on times are exact (they follow from the evaluation grid, the cooldowns and the
provisioning constant), the ones on measured values carry a tolerance.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

import capsim
from capsim.models.autoscaling import CodeNotAllowed, Decision
from capsim.models.instance import InstancesConfig
from capsim.cli import main
from capsim.engine.model import Model
from capsim.results.result import summarize

ROOT = Path(__file__).resolve().parents[1]
H, D = 3600.0, 86400.0
NO_TIMEOUT = {"request_timeout": None} if "request_timeout" in InstancesConfig.model_fields else {}
PROVISIONING = 60.0


def scenario_dict(steps, horizon, cpu="10ms", count=1, autoscaler=None, metrics=60, warmup=0, **extra) -> dict:
    data = {
        "name": "autoscaling-run", "horizon": horizon, "warmup": warmup,
        "workload": {"sessions": None,
                     "open_loop": [{"name": "load", "schedule": [{"at": a, "rate": r} for a, r in steps]}],
                     "endpoints": {"api": {"cpu_pre": cpu, "queries": 0}}},
        "instances": {"count": count, "provisioning": f"{PROVISIONING:g}s", "memory_per_request_mb": 0, **NO_TIMEOUT},
        "metrics": {"interval": metrics},
        **extra,
    }
    if autoscaler is not None:
        data["autoscaler"] = autoscaler
    return data


def scenario(*args, **kwargs) -> capsim.Scenario:
    return capsim.Scenario.model_validate(scenario_dict(*args, **kwargs))


def conserved(s: dict) -> bool:
    r = s["requests"]
    return r["in_flight_start"] + r["total"] == r["completed"] + r["in_flight_end"]


def ups_downs(events):
    return ([e for e in events if e.to_count > e.from_count], [e for e in events if e.to_count < e.from_count])


# ---------------------------------------------------------------- threshold, end to end
# 20/s -> 180/s at 10 min -> 20/s at 40 min, 10 ms each: one instance at 20% / 180%,
# two at 90%, three at 60% (still above cpu_up 50%: only max_instances 3 stops it).
THRESHOLD = {"policy": "threshold", "min_instances": 1, "max_instances": 3, "cpu_up": 0.5, "cpu_down": 0.2,
             "cooldown": 300, "interval": 60, "window": 60}
STEPS = [(0, 20), (600, 180), (2400, 20)]


@pytest.fixture(scope="module")
def threshold_run():
    model = Model(scenario(STEPS, 3000, autoscaler=THRESHOLD, metrics=30), seed=3).run()
    return model, summarize(model)


def test_threshold_timeline(threshold_run):
    model, s = threshold_run
    events = model.controller.events
    ups, downs = ups_downs(events)
    # first evaluation after the step (its 60 s window is all high load), then one cooldown later
    assert [(e.time, e.from_count, e.to_count) for e in ups] == [(660.0, 1, 2), (960.0, 2, 3)]
    assert ups[1].time - ups[0].time == THRESHOLD["cooldown"]
    # after the load drops: the first evaluation whose window is all low load, then one cooldown later
    assert [(e.time, e.from_count, e.to_count) for e in downs] == [(2460.0, 3, 2), (2760.0, 2, 1)]
    assert downs[1].time - downs[0].time == THRESHOLD["cooldown"]
    assert len(events) == 4 and s["scaling_events"] == 4
    # each new instance started at its event and became ready exactly the provisioning time later
    insts = model.fleet.instances
    assert len(insts) == 3     # never beyond max_instances
    for inst, ev in zip(insts[1:], ups):
        assert inst.started_at == ev.time and inst.ready_at == ev.time + PROVISIONING
    # the instances stopped by the scale-downs stopped at their events (give or take a last request)
    stopped = sorted(i.stopped_at for i in insts if i.stopped_at is not None)
    assert len(stopped) == 2 and all(0 <= t - ev.time < 1 for t, ev in zip(stopped, downs))
    assert conserved(s)


def test_threshold_scale_down_stops_the_newest_first(threshold_run):
    """Scale-in stops not-ready instances first, then the newest (sim/engine/autoscaler.py docstring)."""
    model, _ = threshold_run
    insts = model.fleet.instances
    by_event = {ev.time: [i.iid for i in insts if i.stopped_at is not None and 0 <= i.stopped_at - ev.time < 1]
                for ev in ups_downs(model.controller.events)[1]}
    assert by_event == {2460.0: [2], 2760.0: [1]}, f"instances stopped at each scale-down: {by_event}"


def test_threshold_time_series_follows_the_fleet(threshold_run):
    model, s = threshold_run
    rows = pd.DataFrame(model.metrics.rows).set_index("t_end")
    insts = model.fleet.instances
    # explicit points between events: instances counts started ones, instances_ready the ready ones
    expected = {600: (1, 1), 690: (2, 1), 750: (2, 2), 990: (3, 2), 1050: (3, 3), 2400: (3, 3),
                2490: (2, 2), 2790: (1, 1), 3000: (1, 1)}
    got = {t: (int(rows.at[t, "instances"]), int(rows.at[t, "instances_ready"])) for t in expected}
    assert got == expected
    # every row away from a lifecycle moment agrees with the fleet's own record
    moments = [t for i in insts for t in (i.started_at, i.ready_at, i.stopped_at) if t is not None]
    for t, r in rows.iterrows():
        if min(abs(t - m) for m in moments) < 1:
            continue
        alive = [i for i in insts if i.started_at < t and (i.stopped_at is None or i.stopped_at > t)]
        assert r["instances"] == len(alive)
        assert r["instances_ready"] == sum(1 for i in alive if i.ready_at is not None and i.ready_at < t)
    assert rows["instances"].max() == 3 == s["instances"]["max"]
    # at max_instances the load stays above cpu_up: the policy would scale further, the bounds hold it
    hot = rows.loc[1300:2400, "cpu_util"]
    assert len(hot) > 30 and (hot > THRESHOLD["cpu_up"]).all()
    assert not [e for e in model.controller.events if 1000 < e.time < 2400]


def test_threshold_events_agree_with_the_time_series(threshold_run):
    model, _ = threshold_run
    rows = model.metrics.rows
    window = THRESHOLD["window"]
    for ev in model.controller.events:
        before = [r for r in rows if r["t_end"] < ev.time][-1]
        after = [r for r in rows if r["t_end"] > ev.time][0]
        assert before["instances_managed"] == ev.from_count
        assert after["instances_managed"] == ev.to_count
        # the policy's CPU (mean over ready instances over its window) is the time series' CPU
        # over the same window (equal capacities, all ready all along)
        in_window = [r["cpu_util"] for r in rows if ev.time - window < r["t_end"] <= ev.time]
        assert ev.metrics["cpu"] == pytest.approx(sum(in_window) / len(in_window), abs=2e-6)
        assert ev.metrics["memory"] == 160 / 2048
        if ev.to_count > ev.from_count:
            assert ev.metrics["cpu"] > THRESHOLD["cpu_up"]
            assert f"cpu {ev.metrics['cpu']:.0%} > 50%: {ev.from_count} -> {ev.to_count}" in ev.reason
        else:
            assert ev.metrics["cpu"] < THRESHOLD["cpu_down"]
            assert f"cpu {ev.metrics['cpu']:.0%} < 20% and memory 8% < 50%" in ev.reason
    # the rows a Result exposes are the same events
    assert [e.row()["to"] for e in model.controller.events] == [2, 3, 2, 1]


# ---------------------------------------------------------------- target (Render)
def test_target_two_at_80_percent_with_target_60_become_three():
    # window = interval: the evaluation after the third is ready sees only post-scaling load
    # (a longer window still holds the 80% of the two old instances and proposes 4 for a while)
    target = {"policy": "target", "min_instances": 1, "max_instances": 10, "cpu_target": 0.6,
              "interval": 30, "window": 30}
    model = Model(scenario([(0, 160)], 900, count=2, autoscaler=target), seed=5).run()
    events = model.controller.events
    assert [(e.time, e.from_count, e.to_count) for e in events] == [(30.0, 2, 3)]
    ev = events[0]
    assert ev.metrics["cpu"] == pytest.approx(0.8, abs=0.05)          # the load: 160/s x 10 ms / 2
    assert ev.metrics["desired_cpu"] == 3 and "vs target 60% -> 3" in ev.reason
    third = model.fleet.instances[2]
    assert (third.started_at, third.ready_at) == (30.0, 30.0 + PROVISIONING)
    rows = model.metrics.rows
    assert rows[-1]["instances_ready"] == 3
    assert rows[-1]["cpu_util"] == pytest.approx(0.8 * 2 / 3, abs=0.05)


# ---------------------------------------------------------------- Kubernetes HPA
HPA_STEPS = [(0, 20), (600, 120), (1500, 20)]


def hpa_run(behavior=None):
    hpa = {"policy": "hpa", "min_instances": 1, "max_instances": 4, "metrics": [{"type": "cpu", "target": 50}]}
    if behavior is not None:
        hpa["behavior"] = behavior
    return Model(scenario(HPA_STEPS, 2100, autoscaler=hpa), seed=2).run()


def test_hpa_scales_up_promptly_and_down_after_the_stabilisation_window():
    model = hpa_run()
    ups, downs = ups_downs(model.controller.events)
    assert ups and 600 < ups[0].time <= 660             # within one metrics window of the step
    assert max(e.to_count for e in ups) == 3            # 120/s x 10 ms / 50% -> 2.4 -> 3
    assert all(e.time < 1500 for e in ups)
    assert downs, "never scaled down"
    assert all(e.time >= 1500 + 300 for e in downs)     # the load dropped at 1500; 300 s window
    assert downs[0].time <= 1500 + 300 + 60
    assert model.controller.events[-1].to_count == 1


def test_hpa_without_stabilisation_scales_down_at_once():
    """The same run with a scale-down stabilisation window of 0: down to 1 within 100 s of the drop
    (and, unprotected, it also follows the transient low proposals while new instances warm up)."""
    model = hpa_run({"scale_down": {"stabilization_window": 0}})
    to_one = [e for e in model.controller.events if e.to_count == 1]
    assert to_one and 1500 < to_one[0].time < 1600


# ---------------------------------------------------------------- scheduled night scaling
def test_night_schedule_shrinks_a_fixed_fleet_and_restores_it():
    sc = scenario([(0, 0.1)], 20 * H, cpu="1ms", count=4, metrics=600,
                  autoscaler={"policy": "fixed", "instances": 4},
                  schedule={"actions": [{"at": "02:00", "min_instances": 1, "max_instances": 2},
                                        {"at": "18:00", "min_instances": 1, "max_instances": 4}]})
    assert sc.workload.start.weekday() == 0 and sc.workload.start.hour == 0     # Monday 00:00
    model = Model(sc, seed=1).run()
    events = model.controller.events
    assert [(e.time, e.from_count, e.to_count) for e in events] == [(2 * H, 4, 2), (18 * H, 2, 4)]
    insts = model.fleet.instances
    assert len(insts) == 6 and [i.started_at for i in insts[4:]] == [18 * H, 18 * H]
    assert all(i.ready_at == 18 * H + PROVISIONING for i in insts[4:])
    rows = {r["t_end"]: r for r in model.metrics.rows}
    assert [rows[t]["instances"] for t in (H, 3 * H, 17 * H, 19 * H)] == [4, 2, 2, 4]
    assert rows[19 * H]["instances_ready"] == 4


# ---------------------------------------------------------------- weekend pre-scaling
def test_weekend_prescale_raises_the_minimum():
    threshold = {"policy": "threshold", "min_instances": 3, "max_instances": 10, "cooldown": 300}
    data = scenario_dict([(0, 0.1)], 2 * D + 1200, cpu="1ms", count=3, autoscaler=threshold, metrics=600,
                         schedule={"prescale": {"weekend_multiplier": 1.5, "lead": "15m"}})
    data["workload"]["start"] = "2026-01-10T00:00"
    sc = capsim.Scenario.model_validate(data)
    assert sc.workload.start.weekday() == 5   # Saturday
    model = Model(sc, seed=1).run()
    events = model.controller.events
    first = events[0]
    # the reference is the count at the first evaluation in the window (3): min -> ceil(1.5 x 3) = 5
    assert (first.time, first.from_count, first.to_count) == (60.0, 3, 5)
    assert first.reason.endswith(", but raised to the minimum of bounds 5..10: 3 -> 5")
    # held all weekend (no ratchet on its own floor, idle load does not scale it in) ...
    assert [e for e in events if 60 < e.time < 2 * D] == []
    rows = {r["t_end"]: r for r in model.metrics.rows}
    assert rows[D]["instances"] == 5 and rows[2 * D]["instances"] == 5
    # ... and back to the policy on Monday: idle, it scales in to its own minimum
    after = [(e.from_count, e.to_count) for e in events if e.time >= 2 * D]
    assert after == [(5, 4), (4, 3)] and events[-2].time == 2 * D


# ---------------------------------------------------------------- predictive
def daily_steps(days: int, low: float, high: float):
    out = []
    for d in range(days):
        out += [(d * D, low), (d * D + 18 * H, high), (d * D + 22 * H, low)]
    return out


def predictive_scenario(predictive: bool) -> capsim.Scenario:
    # 0.5 s of CPU per request: 0.2/s (10% of one instance) off-peak, 3/s (1.5 instances) 18:00-22:00
    threshold = {"policy": "threshold", "min_instances": 1, "max_instances": 5, "cooldown": 300}
    extra = {"predictive": {"metric": "rps", "target": 1.2, "min_history": "1d", "buffer": 300}} if predictive else {}
    return scenario(daily_steps(3, 0.2, 3.0), 2 * D + 19 * H, cpu="500ms", autoscaler=threshold, metrics=3600,
                    **extra)


@pytest.fixture(scope="module")
def predictive_runs():
    return {p: Model(predictive_scenario(p), seed=4).run() for p in (True, False)}


def test_predictive_starts_capacity_ahead_of_the_daily_peak(predictive_runs):
    model = predictive_runs[True]
    peak = 2 * D + 18 * H                       # day 3, 18:00
    starts = [i.started_at for i in model.fleet.instances if peak - 2 * H <= i.started_at < peak + H]
    assert starts and min(starts) == peak - 300  # the first evaluation whose now + buffer reaches 18:00
    ev = [e for e in model.controller.events if e.time == peak - 300][0]
    assert ev.reason.startswith("predictive: rps forecast") and ev.to_count >= 2
    assert ev.metrics["forecast"] == pytest.approx(3.0, rel=0.2)
    # ready when the load arrives
    assert sum(1 for i in model.fleet.instances if i.ready_at is not None and i.ready_at <= peak
               and (i.stopped_at is None or i.stopped_at > peak)) >= 2


def test_reactive_alone_starts_capacity_only_after_the_load_arrives(predictive_runs):
    model = predictive_runs[False]
    peak = 2 * D + 18 * H
    starts = [i.started_at for i in model.fleet.instances if peak - 2 * H <= i.started_at < peak + H]
    assert starts and min(starts) > peak
    assert not any(e.reason.startswith("predictive") for e in model.controller.events)


def test_predictive_needs_its_min_history(predictive_runs):
    # no forecast on day 1: its first start before a peak is on day 2
    model = predictive_runs[True]
    assert not [i for i in model.fleet.instances if 18 * H - 600 <= i.started_at < 18 * H]
    assert [i for i in model.fleet.instances if i.started_at == D + 18 * H - 300]


# ---------------------------------------------------------------- custom policies
class MyPolicy:
    """Asks for ``target`` instances from ``at`` on; remembers when it was asked."""

    def __init__(self, target: int = 3, at: float = 120.0):
        self.interval, self.window = 30.0, 60.0
        self.target, self.at = target, at
        self.calls: list[float] = []

    def decide(self, obs):
        self.calls.append(obs.now)
        if obs.now < self.at:
            return None
        return Decision(self.target, f"my policy: {obs.current} -> {self.target}", {"answer": 42.0})


CUSTOM_BOUNDS = {"min_instances": 1, "max_instances": 5}


def custom_scenario_dict(**params) -> dict:
    return scenario_dict([(0, 1)], 600, cpu="1ms", autoscaler={
        "policy": "custom", "path": "tests.test_autoscaling_run:MyPolicy", **CUSTOM_BOUNDS, "params": params})


def test_custom_policy_object_from_python():
    sc = scenario([(0, 1)], 600, cpu="1ms", autoscaler={"policy": "threshold", **CUSTOM_BOUNDS})
    policy = MyPolicy(target=4)
    result = capsim.run(sc, seed=1, policy=policy)
    assert policy.calls[:4] == [30.0, 60.0, 90.0, 120.0]            # its own interval
    assert [(e["time"], e["from"], e["to"]) for e in result.events] == [(120.0, 1, 4)]
    assert result.events[0]["reason"] == "my policy: 1 -> 4" and result.events[0]["metric_answer"] == 42.0
    # clamped to the scenario's bounds like any policy
    result = capsim.run(sc, seed=1, policy=MyPolicy(target=9))
    assert [(e["from"], e["to"]) for e in result.events] == [(1, 5)]


def test_custom_policy_in_a_scenario_needs_allow_code():
    sc = capsim.Scenario.model_validate(custom_scenario_dict(target=2))
    with pytest.raises(CodeNotAllowed, match="--allow-code"):
        capsim.run(sc, seed=1)
    result = capsim.run(sc, seed=1, allow_code=True)
    assert [(e["time"], e["from"], e["to"], e["reason"]) for e in result.events] == [(120.0, 1, 2, "my policy: 1 -> 2")]


def test_custom_policy_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "custom.yaml"
    path.write_text(json.dumps(custom_scenario_dict(target=3)))   # JSON is YAML 1.2
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "--allow-code" in captured.err and "tests.test_autoscaling_run:MyPolicy" in captured.err
    assert not out.exists()
    assert main(["run", str(path), "--out", str(out), "--quiet", "--allow-code"]) == 0
    capsys.readouterr()
    events = pd.read_csv(out / "scaling_events.csv")
    assert events[["time", "from", "to"]].values.tolist() == [[120.0, 1, 3]]
    assert events["reason"].tolist() == ["my policy: 1 -> 3"]


# ---------------------------------------------------------------- scaling_events.csv
def test_scaling_events_csv(tmp_path, capsys):
    path = tmp_path / "threshold.yaml"
    path.write_text(json.dumps(scenario_dict([(0, 20), (300, 180)], 1200, autoscaler=THRESHOLD)))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--seed", "3"]) == 0
    capsys.readouterr()
    events = pd.read_csv(out / "scaling_events.csv")
    assert list(events.columns)[:4] == ["time", "from", "to", "reason"]
    assert {"metric_cpu", "metric_memory"} <= set(events.columns)
    assert all(c in ("time", "from", "to", "reason") or c.startswith("metric_") for c in events.columns)
    assert events[["time", "from", "to"]].values.tolist() == [[360.0, 1, 2], [660.0, 2, 3]]
    assert (events["metric_cpu"] > 0.5).all() and events["reason"].str.contains("> 50%").all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scaling_events"] == 2
    # a run without a controller still writes the file, with the columns
    plain = tmp_path / "plain.yaml"
    plain.write_text(json.dumps(scenario_dict([(0, 1)], 300, cpu="1ms")))
    assert main(["run", str(plain), "--out", str(tmp_path / "plain"), "--quiet"]) == 0
    capsys.readouterr()
    assert (tmp_path / "plain" / "scaling_events.csv").read_text().splitlines() == ["time,from,to,reason"]


# ---------------------------------------------------------------- validate warnings
def validate(tmp_path, capsys, data=None, file=None) -> tuple[int, str]:
    if file is None:
        file = tmp_path / "s.yaml"
        file.write_text(json.dumps(data))
    code = main(["validate", str(file)])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def warnings_of(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("warning: ")]


THRESHOLD_10 = {"policy": "threshold", "min_instances": 1, "max_instances": 10}


@pytest.mark.parametrize("data, fragments", [
    pytest.param({"autoscaler": THRESHOLD_10, "database": {"max_connections": 100, "pool": {"max": 20}}},
                 ["database.pool.max", "up to 10 instances x pool max 20 = 200 connections",
                  "> database.max_connections 100", "pool.max <= 10"], id="pool-vs-max-connections"),
    pytest.param({"autoscaler": THRESHOLD_10,
                  "database": {"max_connections": 100, "pool": {"policy": "dynamic", "per_instance": 20, "cap": 100}}},
                 ["database.pool.policy: dynamic", "min(20 x 10, 100) = 100", "10 x 100 = 1000",
                  "> database.max_connections 100"], id="dynamic-pool"),
    pytest.param({"autoscaler": {"policy": "threshold", "min_instances": 1, "max_instances": 5,
                                 "cpu_up": 0.7, "cpu_down": 0.4}},
                 ["autoscaler.cpu_down", "scaling 2 -> 1", "40% x 2/1 = 80% >= cpu_up 70%", "flapping"],
                 id="flapping"),
    pytest.param({"autoscaler": {"policy": "threshold", "min_instances": 1, "max_instances": 5, "cooldown": "30s"},
                  "instances": {"provisioning": {"dist": "uniform", "low": "30s", "high": "90s"}}},
                 ["autoscaler.cooldown: 30 s < provisioning of up to 90 s", "cooldown >= 90 s"],
                 id="cooldown-vs-provisioning"),
    pytest.param({"autoscaler": {"policy": "threshold", "min_instances": 1, "max_instances": 4},
                  "rate_limit": {"store": "memory"}},
                 ["rate_limit.store: memory", "up to 4 instances", "4 x 10 = 40", "store: redis"],
                 id="memory-rate-store"),
    pytest.param({"workload": {"sessions": {"request_rate": "1/s"},
                               "endpoints": {"api": {"cpu_pre": "1ms", "rate_limit_tier": "general"}}},
                  "rate_limit": {"window": "10m", "limits": {"general": 300}}},
                 ["rate_limit.limits.general", "1 x 600 s x 100% = 600", "> limit 300", "50%", "limit >= 601"],
                 id="rate-limit-vs-users"),
])
def test_validate_warning_fires_with_its_arithmetic(tmp_path, capsys, data, fragments):
    code, out = validate(tmp_path, capsys, data)
    assert code == 0 and out.endswith("ok\n")
    found = [w for w in warnings_of(out) if fragments[0] in w]
    assert len(found) == 1, out
    for fragment in fragments:
        assert fragment in found[0], (fragment, found[0])


@pytest.mark.parametrize("name, fields", [
    ("launch.yaml", {"rate_limit.limits"}),
    ("growth.yaml", set()),
    ("fullscale.yaml", {"database.pool.max"}),
    ("week.yaml", set()),
    ("loadtest.yaml", set())])
def test_validate_seed_scenarios_warn_only_about_the_seeds_own_contradictions(tmp_path, capsys, name, fields):
    """launch: the seed's tier limits against its 0.5 req/s per user; fullscale: its pool
    of 20 per Node process (10 instances x 2) against 100 connections: nothing else (the
    studies turn rate limits off and run one Node process per vCPU)."""
    code, out = validate(tmp_path, capsys, file=ROOT / "scenarios" / name)
    assert code == 0 and out.endswith("ok\n")
    texts = [re.sub(r"^\S+:\d+:\d+: ", "", w.removeprefix("warning: ")) for w in warnings_of(out)]   # FILE:LINE:COL
    paths = {t.split(":")[0] for t in texts}
    assert {p.rsplit(".", 1)[0] if p.startswith("rate_limit.limits.") else p for p in paths} == fields


def test_validate_fullscale_warns_about_its_connections(tmp_path, capsys):
    code, out = validate(tmp_path, capsys, file=ROOT / "scenarios" / "fullscale.yaml")
    assert code == 0 and out.endswith("ok\n")
    assert [w for w in warnings_of(out) if "10 instances x 2 processes x pool max 20 = 400 connections" in w]


# ---------------------------------------------------------------- the seed's phases
@pytest.mark.parametrize("name", ["launch", "growth", "fullscale"])
def test_seed_phase_runs_and_conserves_requests(name):
    sc = capsim.load_scenario(ROOT / "scenarios" / f"{name}.yaml", ["horizon=2h", "warmup=10m"])
    assert (sc.horizon, sc.warmup) == (2 * H, 600.0)
    result = capsim.run(sc)
    s = result.summary
    assert s["requests"]["total"] > 1000
    assert conserved(s)
    assert s["requests"]["completed"] == sum(s["requests"][k] for k in s["requests"]
                                             if k not in ("total", "completed", "in_flight_start", "in_flight_end"))
    assert s["cost_usd"] > 0 and math.isfinite(s["monthly_cost_usd"])


class OncePolicy(MyPolicy):
    """Stateful: scales to ``target`` on its first decision after ``at``, never again."""

    def __init__(self, target: int = 3, at: float = 120.0):
        super().__init__(target, at)
        self.fired = False

    def decide(self, obs):
        if self.fired or obs.now < self.at:
            return None
        self.fired = True
        return Decision(self.target, "once", {})


@pytest.mark.parametrize("workers", [1, 2])
def test_each_replication_gets_a_fresh_copy_of_a_custom_policy(workers):
    """State never carries from one replication to the next, in process or in workers."""
    sc = scenario([(0, 1)], 600, cpu="1ms", autoscaler={"policy": "threshold", **CUSTOM_BOUNDS})
    policy = OncePolicy(target=4)
    reps = capsim.replicate(sc, replications=3, workers=workers, progress=False, policy=policy)
    assert policy.fired is False                                   # the caller's object is not used up
    for seed, s in zip(reps.seeds, reps.summaries):
        alone = capsim.run(sc, seed=seed, policy=OncePolicy(target=4)).summary
        assert s["instance_hours"] == alone["instance_hours"] and s["scaling_events"] == 1


def test_replication_result_and_result_format():
    sc = scenario([(0, 1)], 600, cpu="1ms")
    reps = capsim.replicate(sc, replications=2, workers=1, progress=False, keep_first=True)
    first = reps.result()
    assert first.summary == reps.summaries[0] and len(first.timeseries) == len(first.rows) > 0
    assert first.format().splitlines()[0].startswith("scenario")
    with pytest.raises(ValueError, match="keep_first=True"):
        capsim.replicate(sc, replications=1, workers=1, progress=False).result()
