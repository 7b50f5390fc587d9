"""The work estimate before a run: close to what runs do, and enormous scenarios refused with
their numbers unless forced (issue 13 item 7)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import capsim
from capsim.engine.estimate import LIMITS, TooMuchWork, check, estimate
from capsim.scenario.loader import load

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "scenarios" / "launch.yaml"


@pytest.mark.parametrize("name, overrides", [
    ("launch.yaml", ["horizon=3h", "warmup=10m"]),                 # sessions over the night's low curve
    ("loadtest.yaml", []),                                          # Artillery phases with a flow
    ("launch.yaml", ["horizon=2h", "warmup=10m", "workload.sessions.daily_curve=flat",
                     "workload.open_loop=[{rate: 20/s}]"]),
])
def test_the_estimate_is_close_to_the_requests_a_run_makes(name, overrides):
    """Expected requests against one run's arrivals: Poisson noise is < 1% at these counts, the
    estimate's simplifications (sessions ramping up from none, Little's law) within 25%."""
    sc = load(ROOT / "scenarios" / name, overrides)
    r = capsim.run(sc, seed=4)
    arrivals = sum(row["arrivals"] for row in r.rows)
    work = estimate(sc)
    assert 0.75 * arrivals <= work.requests <= 1.25 * arrivals, (work.requests, arrivals)
    assert work.events > work.requests and work.memory_bytes > 0 and work.refusal() is None


@pytest.mark.parametrize("override, what", [
    ("workload.sessions.peak_users=1e9", "requests"),
    ("instances.count=1000000", "memory"),
    ("metrics.interval=1ms", "memory"),
    ("workload.endpoints.general.queries=1000000", "events"),
])
def test_enormous_but_valid_work_is_refused_with_the_numbers(override, what):
    """These started without a word and ran out of memory."""
    sc = load(LAUNCH, [override])
    t = time.perf_counter()
    with pytest.raises(TooMuchWork) as info:
        capsim.run(sc)
    text = str(info.value)
    assert time.perf_counter() - t < 5                      # refused before anything is built
    assert "too much work: about" in text and "requests" in text and "of memory" in text and "--force" in text
    assert what in text.split("beyond the limit")[1]
    assert check(sc, force=True).refusal() == text.split(": ", 1)[1]


def test_limits_and_warnings():
    assert estimate(load(LAUNCH)).warning() is None
    big = load(LAUNCH, ["workload.sessions.peak_users=1000", "horizon=1w"])
    work = estimate(big)
    assert work.refusal() is None and work.warning().startswith("a long run: about")
    assert LIMITS["requests"] > work.requests > 2e7
