"""The fast mode's mechanisms, each against an exact figure: theory, a hand computation,
or the request level's own bookkeeping (same columns, same hooks)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import capsim
from capsim import scenarios, theory
from capsim.engine.flow.arrivals import Arrivals
from capsim.engine.flow.limits import by_age, excess, flow_share
from capsim.engine.histogram import quantile_from_counts
from capsim.cli import main


def flow(name, overrides=()):
    return capsim.run(capsim.load_scenario(scenarios.path(name), list(overrides)), fidelity="flow")


def test_mm1_sojourn_is_theory():
    s = flow("validation/mm1", ["horizon=3000s"]).summary
    assert s["latency_ms"]["mean"] == pytest.approx(500.0, rel=1e-3)                      # E[T] = 1/(mu - lam)
    assert s["latency_ms"]["p95"] == pytest.approx(1000 * theory.mm1_sojourn_quantile(8, 10, 0.95), rel=0.02)
    assert s["cpu_util_mean"] == pytest.approx(0.8, abs=1e-3)
    assert s["fidelity"]["mode"] == "flow"


def test_mmc_wait_is_erlang_c():
    s = flow("validation/mmc", ["horizon=3000s"]).summary
    assert s["latency_ms"]["mean"] == pytest.approx(1000 * (theory.mmc_mean_wait(8.5, 2.5, 4) + 0.4), rel=1e-3)


def test_pool_is_mmcd():
    s = flow("validation/pool_mmc_timeout", ["horizon=3000s"]).summary
    q = theory.mmcd(11, 2, 5, 2.0)
    assert s["requests"]["pool_timeout"] / s["requests"]["completed"] == pytest.approx(q["p_abandon"], abs=1e-3)
    assert not s["fidelity"]["valid"]                        # a pool at 110% of its connections says so
    assert any(w.startswith("pool") for w in s["fidelity"]["warnings"])


def test_sessions_are_mg_inf_exactly():
    """Constant 600 s sessions at a flat start rate of 100/600 per second: from t = 600 s on exactly
    100 users, so [600, 1200] s holds 0.5 x 100 x 600 requests."""
    sc = capsim.load_scenario(None if False else scenarios.path("launch"), [
        "workload.sessions.daily_curve=flat", "workload.sessions.session_length=600s", "horizon=1200s", "warmup=0s"])
    arr = Arrivals(sc.workload, sc.horizon, 10.0)
    src = arr.sources[0]
    assert arr.active_at(900.0) == pytest.approx(100.0, rel=1e-9)
    assert src.between(600.0, 1200.0, 10.0) == pytest.approx(30000.0, rel=1e-9)
    assert arr.starts(0.0, 1200.0) == pytest.approx(200.0, rel=1e-9)


def test_artillery_phases_integrate_exactly():
    s = flow("loadtest").summary
    assert s["requests"]["total"] == (10 * 60 + 50 * 300 + 100 * 60) * 2        # two requests per virtual user


def test_rate_limit_window_arithmetic():
    # E[(N - 2)+] for N ~ Poisson(3), by hand: sum_k (k - 2) P(k) = 3 - 2 + 2 P(0) + 1 P(1)
    p0, p1 = math.exp(-3), 3 * math.exp(-3)
    assert float(excess(3.0, 2)) == pytest.approx(3 - 2 + 2 * p0 + p1, rel=1e-12)
    assert flow_share(12, 5, 2) == pytest.approx(2 / 12)           # two stores of 5 each pass 10 of 12
    # windows every 10 + 1/lam = 11 s: at age 1 and 12 s one second into a window, at 10.5 s in the gap
    r = by_age(1.0, 1, 10.0, np.array([0.0, 1.0, 10.5, 12.0]))
    assert r[0] == 0.0 and r[2] == 0.0
    assert r[1] == pytest.approx(1 - math.exp(-1.0)) and r[3] == pytest.approx(r[1])   # P(one came before it)


def test_float_counts_quantile():
    counts = np.array([0.0, 0.5, 0.5, 1.0])
    assert quantile_from_counts(counts, 0.25, rel_err=0.005, min_value=1e-6) == \
        quantile_from_counts([0, 1, 1, 2], 0.25, rel_err=0.005, min_value=1e-6)


def test_same_outputs_as_the_request_level():
    sc = capsim.load_scenario(scenarios.path("launch"), ["horizon=20m", "warmup=5m"])
    a, b = capsim.run(sc), capsim.run(sc, fidelity="flow")
    assert list(a.timeseries.columns) == list(b.timeseries.columns)
    assert list(a.instances.columns) == list(b.instances.columns)

    def keys(d, p=""):
        return {p + k for k, v in d.items() for k in ([k] + [f"{k}.{x}" for x in keys(v)] if isinstance(v, dict) else [k])}
    assert keys({k: v for k, v in a.summary.items() if k != "fidelity"}) == \
        keys({k: v for k, v in b.summary.items() if k != "fidelity"})


def test_deterministic():
    sc = capsim.load_scenario(scenarios.path("fullscale"), ["horizon=1h", "warmup=10m"])
    a, b = capsim.run(sc, fidelity="flow"), capsim.run(sc, fidelity="flow")
    drop = lambda s: {k: v for k, v in s.items() if k != "wall_seconds"}  # noqa: E731
    assert drop(a.summary) == drop(b.summary)
    assert a.timeseries.equals(b.timeseries)        # (NaN columns compare equal here)


def test_fluid_hooks_feed_the_platform_cpu():
    """Process.add_fluid is what the controller reads: busy seconds x speed x (1 + helper) over vCPUs."""
    from tests.helpers import Driver
    sc = capsim.load_scenario(scenarios.path("validation/mm1"), ["instances.event_loop.helper_cpu=0.5"])
    d = Driver(sc)
    inst = d.fleet.instances[0] if d.fleet.instances else d.fleet.start(ready_after=0.0)
    inst.proc.add_fluid(4.0, 2.5)
    inst.add_fluid(10.0)
    assert inst.cpu_seconds(0.0) == pytest.approx(4.0 * 1.0 * 1.5)
    assert inst.loop_queue() == 2.5 and inst.accepted == 10.0


def test_overload_is_flagged_not_guessed():
    s = flow("validation/mm1", ["horizon=1200s", "warmup=0s", "workload.open_loop.0.rate=12/s"]).summary
    assert not s["fidelity"]["valid"]
    kinds = {w.split(":")[0] for w in s["fidelity"]["warnings"]}
    assert {"loop", "backlog"} <= kinds
    assert s["latency_ms"]["mean"] > 10_000          # the backlog grows ~0.2 s of work per second


def test_cli_fidelity_flow(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", str(scenarios.path("loadtest")), "--fidelity", "flow", "--out", str(out), "--quiet"]) == 0
    assert (out / "summary.json").exists() and (out / "report.html").exists()
    assert main(["run", "--fidelity", "flow", "--set", "flow.step=7s", "--out", str(out)]) == 2
    assert "flow.step" in capsys.readouterr().err


def test_flow_step_must_divide_the_interval_only_in_the_fast_mode():
    from capsim.scenario.problems import ScenarioError
    request = capsim.load_scenario(scenarios.path("launch"), ["metrics.interval=15s"])   # request level: any interval
    assert request.fidelity == "request" and request.metrics.interval == 15
    with pytest.raises(ScenarioError, match="flow.step: expected a divisor of metrics.interval"):
        capsim.load_scenario(scenarios.path("launch"), ["metrics.interval=15s", "fidelity=flow"])


def test_the_work_estimate_of_the_fast_mode_counts_steps_not_requests():
    month = capsim.load_scenario(scenarios.path("fullscale"), ["horizon=30d"])
    assert capsim.estimate(month).refusal() is None and "requests" in capsim.estimate(month).warning()
    fast = capsim.estimate(month.model_copy(update={"fidelity": "flow"}))
    assert fast.computed and fast.events == math.ceil(30 * 86400 / month.flow.step)
    assert fast.warning() is None and fast.requests == capsim.estimate(month).requests
