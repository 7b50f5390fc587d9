"""Property-based checks (Hypothesis): valid scenarios keep every invariant, mutated ones are
rejected cleanly (issue 13, "make it stay fixed").

Valid scenarios are drawn from the features a scenario has (sessions and open-loop sources,
flows, every policy, cache, rate limits, sockets, faults, pools). Each run must:
finish within a budget (a few times its own work estimate); write a ``summary.json`` that is
strict JSON with finite numbers; conserve requests (in_flight_start + total = completed +
in_flight_end, in the summary and in every interval); keep every utilisation in [0, 1];
cost >= 0 and never falling; p50 <= p95 <= p99.

Mutated scenarios start from the shipped files: values replaced by hostile ones (NaN,
infinities, negatives, zero, huge numbers, wrong types, deep nesting, aliases), keys
dropped, misspelt or invented, the text cut short or garbled. ``capsim validate`` on them
exits 0 or 2, never with a traceback, and every problem it prints has FILE:LINE; a mutant
that is still valid is run (shortened) and must keep the invariants.

The default run has a short profile (seconds); ``pytest -m slow`` runs a long one.
"""
from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

import capsim
from capsim.cli import main
from capsim.engine.estimate import estimate
from capsim.models.request import OUTCOMES
from capsim.results.files import to_json
from capsim.scenario.config import Scenario
from capsim.scenario.loader import ScenarioError, load

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml"))
SHORT = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
LONG = settings(max_examples=250, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
EPS = 1e-9


# -- valid scenarios ----------------------------------------------------------------------------------
def _policy():
    bounds = st.fixed_dictionaries({"min_instances": st.just(1), "max_instances": st.integers(1, 4)})
    return st.one_of(
        st.none(),
        bounds.map(lambda b: {"policy": "threshold", **b, "cooldown": 60, "interval": 30}),
        bounds.map(lambda b: {"policy": "hpa", **b}),
        bounds.map(lambda b: {"policy": "target", **b}),
        bounds.map(lambda b: {"policy": "step", **b, "threshold": 50, "steps": [{"lower": 0, "adjustment": 1}]}),
    )


def _open_loop():
    rate = st.floats(0.5, 40).map(lambda r: {"rate": f"{r:.3f}/s"})
    phases = st.lists(st.fixed_dictionaries({"duration": st.integers(10, 300), "arrivalRate": st.integers(0, 30),
                                             "rampTo": st.integers(0, 30)}), min_size=1, max_size=3)
    flow = st.lists(st.sampled_from(["health", "auth", "toybox", "presence"]), min_size=1, max_size=5)
    source = st.one_of(rate, phases.map(lambda p: {"phases": p}))
    return st.lists(st.tuples(source, st.one_of(st.none(), flow)).map(
        lambda sf: {**sf[0], **({"flow": sf[1]} if sf[1] else {})}), max_size=2)


@st.composite
def valid_scenarios(draw, crashes: bool = True) -> dict:
    horizon = draw(st.integers(120, 1200))
    sessions = draw(st.one_of(st.none(), st.fixed_dictionaries({
        "peak_users": st.floats(0.01, 150),
        "daily_curve": st.sampled_from(["gaming", "business", "flat"]),
        "session_length": st.sampled_from(["30s", "5m", {"dist": "exponential", "mean": "2m"}]),
        "request_rate": st.sampled_from(["0.2/s", "0.5/s", "2/s"])})))
    open_loop = draw(_open_loop())
    return {
        "name": "prop", "horizon": horizon, "warmup": draw(st.integers(0, horizon // 2)),
        "seed": draw(st.integers(0, 2 ** 32)),
        "workload": {"sessions": sessions, "open_loop": open_loop},
        "instances": {"count": draw(st.integers(1, 3)), "processes": draw(st.integers(1, 2)),
                      "plan": draw(st.sampled_from(["standard", "pro"])),
                      "request_timeout": draw(st.sampled_from([None, "5s", "60s"])),
                      # an out-of-memory restart is a crash: with crashes only (see CRASHING below)
                      "out_of_memory": draw(st.sampled_from(["restart", "ignore"])) if crashes else "ignore",
                      "memory_base_mb": draw(st.sampled_from([160, 1900]))},
        "autoscaler": draw(_policy()),
        "database": {"max_connections": draw(st.integers(1, 100)),
                     "pool": {"max": draw(st.integers(1, 20)), "acquire_timeout": draw(st.sampled_from([0, "50ms", "2s"]))}},
        "cache": draw(st.sampled_from([None, {"store": "memory"}, {"store": "redis"}])),
        "rate_limit": draw(st.sampled_from([None, {}, {"store": "redis"}])),
        "circuit_breaker": draw(st.sampled_from([None, {}])),
        "sockets": draw(st.sampled_from([None, {}])),
        "metrics": {"interval": draw(st.sampled_from([15, 60, 97]))},
        "faults": {"crash_rate": draw(st.sampled_from([0.0, 20.0])) if crashes else 0.0},
    }


def check_invariants(result, work_seconds: float, wall: float) -> None:
    s, rows = result.summary, result.rows
    # a budget: a few times the run's own estimate (the estimate is honest), and a few seconds
    assert wall <= 5 * work_seconds + 10, (wall, work_seconds)
    # summary.json as written: strict JSON, every number finite
    text = to_json(s)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"summary.json contains {c}"))
    # the scenario.json written beside it validates again, to the same scenario
    assert Scenario.model_validate_json(result.scenario.model_dump_json(by_alias=True)) == result.scenario
    q = s["requests"]
    assert q["in_flight_start"] + q["total"] == q["completed"] + q["in_flight_end"], q
    assert q["completed"] == sum(q[o] for o in OUTCOMES)
    prev = 0
    for r in rows:
        assert r["arrivals"] - r["completed"] == r["in_system"] - prev, r
        prev = r["in_system"]
        for key in ("cpu_util", "db_util", "cache_hit_rate"):
            v = r.get(key)
            if v is not None and v == v:
                assert -EPS <= v <= 1 + EPS, (key, v, r["t_end"])
        assert r["cost_usd"] >= 0
        if r["completed"]:
            assert r["latency_p50_ms"] <= r["latency_p95_ms"] + EPS <= r["latency_p99_ms"] + 2 * EPS, r
    for r in result.instance_rows:
        v = r.get("cpu_util")
        if v is not None and v == v:
            assert -EPS <= v <= 1 + EPS, ("instance cpu_util", v, r)
    cum = [r["cost_usd_cum"] for r in rows]
    assert all(b >= a - EPS for a, b in zip(cum, cum[1:]))
    assert s["cost_usd"] >= 0 and s["monthly_cost_usd"] >= 0
    lat = s["latency_ms"]
    if q["completed"]:
        assert lat["p50"] <= lat["p95"] <= lat["p99"], lat


def run_and_check(sc) -> None:
    work = estimate(sc)
    t = time.perf_counter()
    result = capsim.run(sc)
    check_invariants(result, work.seconds, time.perf_counter() - t)


@SHORT
@given(valid_scenarios(crashes=True))
def test_valid_scenarios_keep_every_invariant(data):
    run_and_check(Scenario.model_validate(data))


@pytest.mark.slow
@LONG
@given(valid_scenarios(crashes=True))
def test_valid_scenarios_keep_every_invariant_long(data):
    run_and_check(Scenario.model_validate(data))


# The cases Hypothesis found while crashes and out-of-memory restarts inflated cpu_util (101%,
# 3.3 in an interval with two restarts: busy time counted over the whole interval, capacity
# only since the restart; issue 13 item 1, fixed by the instance CPU accounting per second served).
CRASHING = {"name": "prop", "horizon": 469, "warmup": 0, "seed": 78370640,
            "workload": {"sessions": {"peak_users": 144.62682966390872, "request_rate": "0.5/s", "daily_curve": "flat",
                                      "session_length": "5m"}, "open_loop": [{"rate": "2.058/s"}]},
            "instances": {"count": 3, "request_timeout": None, "out_of_memory": "restart",
                          "memory_base_mb": 160},
            "autoscaler": {"policy": "target", "min_instances": 1, "max_instances": 4},
            "database": {"max_connections": 68, "pool": {"max": 1, "acquire_timeout": "2s"}},
            "cache": {"store": "redis"}, "rate_limit": None, "circuit_breaker": None, "sockets": None,
            "metrics": {"interval": 15}, "faults": {"crash_rate": 20.0}}


OOM_RESTARTS = {"name": "prop", "horizon": 423, "warmup": 211, "seed": 6241838,
                "workload": {"sessions": {"peak_users": 93.1871279283325, "daily_curve": "gaming", "request_rate": "0.2/s",
                                          "session_length": "30s"},
                             "open_loop": [{"rate": "22.909/s", "flow": ["health", "health", "health", "health", "auth"]},
                                           {"rate": "18.379/s", "flow": ["auth", "health", "auth", "health", "health"]}]},
                "instances": {"count": 2, "request_timeout": None, "out_of_memory": "restart"},
                "autoscaler": {"policy": "threshold", "min_instances": 1, "max_instances": 1, "cooldown": 60, "interval": 30},
                "database": {"max_connections": 1, "pool": {"max": 1, "acquire_timeout": 0}},
                "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None,
                "metrics": {"interval": 97}, "faults": {"crash_rate": 0.0}}


@pytest.mark.parametrize("case", [CRASHING, OOM_RESTARTS], ids=["crashes", "out-of-memory restarts"])
def test_utilisation_stays_within_one_after_restarts(case):
    run_and_check(Scenario.model_validate(case))


# -- mutated scenarios ------------------------------------------------------------------------------------
HOSTILE = [".nan", ".inf", "-.inf", "-1", "0", "-0.0", "1e308", "1e-320", "9" * 400, "''", "[]", "{}", "true",
           "null", "x", "'5m'", "-5m", "1e308w", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]", "!custom 3",
           "&a [*a]", "2026-13-45", "{dist: exponential}", "{policy: nope}", "'%s'" % ("a" * 5000)]


def _paths(node, prefix=()):
    """Every (path, value) of a YAML tree, containers included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _dump(data) -> str:
    buf = io.StringIO()
    YAML().dump(data, buf)
    return buf.getvalue()


@st.composite
def mutants(draw) -> str:
    path = draw(st.sampled_from(SHIPPED))
    text = path.read_text()
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "typo", "invent", "cut", "garble"]))
    if kind == "cut":
        return text[:draw(st.integers(0, len(text)))]
    if kind == "garble":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from([":", "-", "{", "]", "&", "*", "!", "\t", "'", "\x00", "\n  x"])) + text[at:]
    data = YAML().load(text)
    spots = [(p, v) for p, v in _paths(data) if p]
    p, _ = draw(st.sampled_from(spots))
    parent = data
    for seg in p[:-1]:
        parent = parent[seg]
    key = p[-1]
    if kind == "value":
        parent[key] = "__HOSTILE__"
        return _dump(data).replace("__HOSTILE__", draw(st.sampled_from(HOSTILE)), 1)
    if kind == "drop" and isinstance(parent, dict):
        del parent[key]
    elif kind == "typo" and isinstance(parent, dict) and isinstance(key, str) and len(key) > 2:
        parent.insert(list(parent).index(key), key[:-1] + key[-1] * 2 if key[-1] != "s" else key[:-1], parent.pop(key))
    elif kind == "invent" and isinstance(parent, dict):
        parent["surprise_field"] = 1
    return _dump(data)


PLACED = re.compile(r"^(?:--set [^:]*: |(?P<file>[^:]+):\d+:\d+: )")


def check_mutant(text: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in out + err, (code, err)
    if code == 2:
        lines = err.splitlines()
        assert lines and all(line.startswith(f"{path}:") and re.match(rf"^{re.escape(str(path))}:\d+:", line)
                             for line in lines), err
        return
    sc = load(path, ["horizon=5m", "warmup=1m"]) if _fits(path) else None
    if sc is not None and estimate(sc).refusal() is None and estimate(sc).seconds < 20:
        run_and_check(sc)


def _fits(path: Path) -> bool:
    try:
        load(path, ["horizon=5m", "warmup=1m"])
        return True
    except ScenarioError:              # a mutant whose own warm-up does not fit 5 minutes, etc.
        return False


@SHORT
@given(mutants())
def test_mutated_scenarios_are_rejected_cleanly_or_keep_the_invariants(tmp_path, capsys, text):
    check_mutant(text, tmp_path, capsys)


@pytest.mark.slow
@LONG
@given(mutants())
def test_mutated_scenarios_long(tmp_path, capsys, text):
    check_mutant(text, tmp_path, capsys)


@SHORT
@given(st.sampled_from(["instances.count", "horizon", "workload.sessions.peak_users", "database.pool.max",
                        "autoscaler", "workload.open_loop.0.rate", "pricing.hours_per_month", "slo.objectives.uptime",
                        "workload.sessions.daily_curve"]),
       st.sampled_from(HOSTILE))
def test_hostile_overrides_are_rejected_cleanly(capsys, path, value):
    code = main(["validate", "--set", f"{path}={value}"])
    out, err = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in out + err
    if code == 2:
        assert all(line.startswith("--set ") for line in err.splitlines()), err
