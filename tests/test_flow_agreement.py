"""Cross-validation: the fast mode against the request level (capsim.experiments.agreement).

Tolerances (the issue's): instance-hours and cost 3%, mean latency 10%, p95 15%, shares of
server errors, timeouts and 429s 1 point, each widened by the request level's own 95%
half-width over its replications (R = 3-4 here: for these horizons the half-width of the
mean latency is 1-4%, of the shares below 0.3 point). Only where the fast mode calls itself
valid. The default run has two short cases; ``-m slow`` runs every shipped scenario (short
horizons, the evening peak) and seeded generated ones.
"""
from __future__ import annotations

import numpy as np
import pytest

import capsim
from capsim import scenarios
from capsim.experiments.agreement import agreement, format_agreement
from capsim.experiments.replications import replicate

PEAK = "workload.start=2026-01-05T19:00:00"


def agrees(sc, replications: int = 3):
    flow = capsim.run(sc, fidelity="flow").summary
    reps = replicate(sc.model_copy(update={"fidelity": "request"}), replications, workers=1, progress=False)
    rows = agreement(flow, reps.summaries)
    return flow, rows


def check(sc, replications=3):
    flow, rows = agrees(sc, replications)
    assert flow["fidelity"]["valid"], flow["fidelity"]["warnings"]
    assert all(r["ok"] is not False for r in rows), "\n" + format_agreement(rows)


def load(name, overrides):
    return capsim.load_scenario(scenarios.path(name), overrides)


def test_webtier_light():
    check(load("bench/webtier", ["horizon=300s", "instances.count=3", "workload.open_loop.0.rate=150/s"]))


def test_launch_evening_peak():
    check(load("launch", ["horizon=40m", "warmup=10m", PEAK]), replications=3)


KNOWN_GAP = ("fullscale at its peak (5 Pro instances x 2 processes, lognormal handler CPU of the derived 8.4 ms, "
             "20-30% busy): the fast mode's mean latency is 10-21% above the request level's while it reports itself "
             "valid (p95 within 6%); measured after the shipped studies were reworked, cause not found yet")


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param("fullscale", marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAP)),
                                  "growth", "launch"])
def test_shipped_scenarios_at_the_peak(name):
    """Where the fast mode says it is valid it agrees; where it does not, it must have said so."""
    flow, rows = agrees(load(name, ["horizon=1h", "warmup=20m", PEAK]), replications=4)
    if not flow["fidelity"]["valid"]:
        assert flow["fidelity"]["warnings"] and flow["fidelity"]["flagged_seconds"] > 0
        return
    assert all(r["ok"] is not False for r in rows), "\n" + format_agreement(rows)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["validation/mm1", "validation/mmc"])
def test_validation_queues(name):
    # rho = 0.8 and 0.85: beyond the validity limit, so compared without it (Poisson arrivals: formulas exact)
    flow, rows = agrees(load(name, ["horizon=6000s"]), replications=4)
    assert all(r["ok"] is not False for r in rows), "\n" + format_agreement(rows)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known limit: an Artillery flow's next request arrives as the previous one "
                                       "leaves, so it waits less than a Poisson arrival; the fast mode's p95 is ~20% high")
def test_loadtest_flow_chaining():
    check(load("loadtest", []), replications=4)


def generated(seed: int):
    """A seeded web tier: 1-6 instances, 1-2 processes, CPU, database share and load with rho <= 0.5."""
    rng = np.random.default_rng(seed)
    n, procs = int(rng.integers(1, 7)), int(rng.integers(1, 3))
    cpu = float(rng.uniform(0.002, 0.006))
    p_db = float(rng.uniform(0.1, 0.8))
    rho = float(rng.uniform(0.15, 0.5))
    rate = rho * n * procs / (2 * cpu)
    return load("bench/webtier", [f"instances.count={n}", f"instances.processes={procs}", "instances.plan=pro",
                                  f"workload.endpoints.api.cpu_pre={{dist: exponential, mean: {cpu}}}",
                                  f"workload.endpoints.api.cpu_post={{dist: exponential, mean: {cpu}}}",
                                  f"workload.endpoints.api.db_probability={p_db}",
                                  f"workload.open_loop.0.rate={rate}/s", "horizon=300s"])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_generated(seed):
    check(generated(seed), replications=3)
