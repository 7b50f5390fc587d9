"""Reproducibility and common random numbers.

* The same scenario and seed give the identical summary (except ``wall_seconds``) and
  the identical time series; different seeds give different results.
* Stream independence (common random numbers): every random source has its own named
  stream and all of a request's draws are made at arrival, so scenarios that differ only
  in capacity (instance count, load-balancer policy, pool size) see exactly the same
  requests: same arrival times, endpoints, clients and service-time draws. Adding an
  open-loop source does not change the session workload (its starts, request times,
  endpoints and clients).
"""
from __future__ import annotations

import math

import pandas as pd
import pytest

import capsim
from capsim.engine.model import Model
from capsim.scenario.config import Scenario

# sessions (default endpoints: CPU, pool and queries), light enough to be quick, and an
# open-loop source, so both kinds of source are exercised
BASE = {"horizon": 1800, "warmup": 300,
        "workload": {"sessions": {"peak_users": 150, "daily_curve": "flat"}},
        "instances": {"count": 1}}


def scenario(**changes) -> Scenario:
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = d
        for key in path:
            node[key] = dict(node.get(key, {}))
            node = node[key]
        node[last] = value
    return Scenario.model_validate(d)


OPEN = [{"name": "extra", "rate": 20.0}]


def _strip(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "wall_seconds"}


def _same(a, b) -> bool:
    """Equality where NaN equals NaN (summaries hold None for NaN; rows may hold NaN)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_same_seed_same_results():
    sc = scenario(workload__open_loop=OPEN)
    r1, r2 = capsim.run(sc, seed=5), capsim.run(sc, seed=5)
    assert _strip(r1.summary) == _strip(r2.summary)
    assert len(r1.rows) == len(r2.rows) and all(_same(a, b) for a, b in zip(r1.rows, r2.rows))
    pd.testing.assert_frame_equal(r1.timeseries, r2.timeseries)
    # the scenario's own seed is the default
    r3 = capsim.run(scenario(workload__open_loop=OPEN, seed=5))
    assert _strip(r3.summary) == _strip(r1.summary)


def test_different_seeds_differ():
    sc = scenario(workload__open_loop=OPEN)
    a, b = capsim.run(sc, seed=5).summary, capsim.run(sc, seed=6).summary
    assert a["seed"] != b["seed"]
    assert a["requests"]["total"] != b["requests"]["total"]
    assert a["latency_ms"] != b["latency_ms"]
    assert a["sessions"]["started"] != b["sessions"]["started"]


class Recorder(Model):
    """A Model that logs every request it routes, with all of its random draws."""

    def __init__(self, scenario, seed=None):
        self.log: list[tuple] = []
        super().__init__(scenario, seed)

    def route(self, req, inst=None, session=None) -> None:
        self.log.append((req.t0, req.endpoint, req.client, req.cpu_pre, req.cpu_post,
                         tuple(req.queries) if req.queries is not None else None))
        super().route(req, inst, session)


def _record(sc: Scenario, seed: int = 3) -> Recorder:
    return Recorder(sc, seed).run()


@pytest.mark.parametrize("base, change", [
    ({}, {"instances__count": 3}),
    ({"instances__count": 2}, {"instances__count": 2, "load_balancer": {"policy": "least_connections"}}),
    ({"instances__count": 2}, {"instances__count": 2, "load_balancer": {"policy": "random"}}),
    ({}, {"database": {"pool": {"max": 1, "acquire_timeout": 0.005}}}),
], ids=["instances", "least_connections", "random_lb", "tiny_pool"])
def test_capacity_changes_keep_the_same_requests(base, change):
    """Common random numbers: only capacity differs, so every request is the same."""
    a = _record(scenario(workload__open_loop=OPEN, **base))
    b = _record(scenario(workload__open_loop=OPEN, **change))
    assert len(a.log) > 10_000 and a.log == b.log
    sa, sb = (capsim.results.result.summarize(m) for m in (a, b))
    assert sa["requests"]["total"] == sb["requests"]["total"]
    assert sa["sessions"] == sb["sessions"]
    # the change does change the outcome (the comparison is not vacuous)
    if "database" in change:
        assert sb["requests"]["pool_timeout"] > 0 == sa["requests"]["pool_timeout"]
    else:
        assert sa["latency_ms"] != sb["latency_ms"]


def test_open_loop_source_does_not_shift_the_sessions():
    """Adding an open-loop source leaves the session workload alone: the same session
    starts, and the same session requests (time, endpoint, client)."""
    alone = _record(scenario())
    both = _record(scenario(workload__open_loop=OPEN))
    assert alone.sessions.started == both.sessions.started
    assert capsim.results.result.summarize(alone)["sessions"] == capsim.results.result.summarize(both)["sessions"]
    sessions_alone = [r[:3] for r in alone.log]
    sessions_both = [r[:3] for r in both.log if r[2] is not None]      # open-loop: client None
    assert sessions_alone == sessions_both
    assert len(both.log) > len(alone.log)


def test_open_loop_source_keeps_session_service_draws():
    """Stronger CRN: the session requests also keep their CPU and query-time draws."""
    alone = _record(scenario())
    both = _record(scenario(workload__open_loop=OPEN))
    assert alone.log == [r for r in both.log if r[2] is not None]
