"""Server errors (5xx-like) and rate-limit rejections (429) are counted apart (issue 12 item 1).

Exact small traces on the metrics, then the summary, the objectives, the comparison's
headline and the plan's judgement on runs where the guide's rate limits reject requests.
"""
import pytest

import capsim
from capsim.cli import main
from capsim.engine.metrics import Metrics
from capsim.experiments.compare import HEADLINE
from capsim.experiments.plan import judged_error_rate
from capsim.models.request import OK, OUTCOMES, POOL_TIMEOUT, RATE_LIMITED, REJECTED, SERVER_ERRORS, Request
from capsim.results.slo import evaluate

SHORT = ["horizon=40m", "warmup=5m"]


class Clock:
    now = 0.0


def _finish(m: Metrics, clock: Clock, t0: float, t1: float, endpoint: int, outcome: int) -> None:
    req = Request(t0, endpoint, 0.0, 0.0, None, None, None)
    clock.now = t0
    m.arrive(req)
    clock.now = t1
    assert m.done(req, outcome)


def test_interval_columns_and_totals_per_outcome_class_and_endpoint():
    """Three responses by hand: a ok 10 ms, a 429 after 1 ms, b pool timeout after 30 ms."""
    clock = Clock()
    m = Metrics(clock, interval=60.0, warmup=0.0, horizon=120.0, probes=[], endpoints=["a", "b"])
    _finish(m, clock, 1.0, 1.010, 0, OK)
    _finish(m, clock, 2.0, 2.001, 0, RATE_LIMITED)
    _finish(m, clock, 3.0, 3.030, 1, POOL_TIMEOUT)
    m.close(0.0, 60.0)
    row = m.rows[0]
    assert (row["n_ok"], row["n_rate_limited"], row["n_pool_timeout"], row["completed"]) == (1, 1, 1, 3)
    assert (row["server_errors"], row["rejected"]) == (1, 1)
    assert row["server_error_rate"] == pytest.approx(1 / 3) and row["rejected_rate"] == pytest.approx(1 / 3)
    assert row["latency_mean_ms_a"] == pytest.approx(5.5) and row["latency_mean_ms_b"] == pytest.approx(30.0)
    assert row["latency_p95_ms_a"] == pytest.approx(10.0, rel=0.005)    # the histogram's 0.5% bound
    assert row["latency_p95_ms_b"] == pytest.approx(30.0, rel=0.005)
    assert row["latency_mean_ms"] == pytest.approx((10 + 1 + 30) / 3)
    # the next interval starts empty; the totals keep the first
    _finish(m, clock, 61.0, 61.002, 1, OK)
    m.close(60.0, 120.0)
    assert m.rows[1]["completed"] == 1 and m.rows[1]["latency_mean_ms_a"] != m.rows[1]["latency_mean_ms_a"]
    assert list(m.total_count) == [2 if o == "ok" else 1 if o in ("rate_limited", "pool_timeout") else 0
                                   for o in OUTCOMES]
    a, b = m.latency_ms(endpoints=["a"]), m.latency_ms(endpoints=["b"])
    assert (a["count"], b["count"]) == (2, 2)
    assert a["mean"] == pytest.approx(5.5) and b["mean"] == pytest.approx(16.0)
    assert m.latency_ms(["ok"], ["b"])["mean"] == pytest.approx(2.0)
    assert m.histogram(endpoints=["a"]).sum() == 2


def test_classes_partition_the_failures():
    assert set(SERVER_ERRORS) | set(REJECTED) == set(OUTCOMES) - {"ok"}
    assert not set(SERVER_ERRORS) & set(REJECTED) and REJECTED == ("rate_limited",)


@pytest.fixture(scope="module")
def limited():
    """The guide's launch scenario: its presence tier rejects a share of requests, no server errors."""
    return capsim.run(capsim.load_scenario("scenarios/launch.yaml", SHORT))


def test_summary_reports_server_errors_and_rejections_apart(limited):
    s, req, err = limited.summary, limited.summary["requests"], limited.summary["errors"]
    assert err["rejected"] == req["rate_limited"] > 0
    assert err["server"] == sum(req[o] for o in SERVER_ERRORS)
    assert s["server_error_rate"] == pytest.approx(err["server"] / req["completed"], abs=1e-6)
    assert s["rejected_rate"] == pytest.approx(err["rejected"] / req["completed"], abs=1e-6)
    assert "error_rate" not in s                        # no figure that sums the two silently
    text = limited.format()
    assert "rejected by rate limits" in text and f"({err['rejected']:,} responses 429)" in text
    ts = limited.timeseries
    assert (ts["rejected"] == ts["n_rate_limited"]).all()
    eps = s["latency_by_endpoint_ms"]
    assert set(eps) == set(limited.scenario.workload.endpoints)
    assert sum(e["count"] for e in eps.values()) == req["completed"]
    mean = sum(e["count"] * e["mean"] for e in eps.values()) / req["completed"]
    assert mean == pytest.approx(s["latency_ms"]["mean"], rel=1e-3)   # rounding of each mean to 0.001 ms


def test_objectives_count_server_errors_unless_told_to_count_429s(limited):
    slo = evaluate(limited.rows, limited.scenario.slo)
    rejected = limited.summary["rejected_rate"]
    assert slo["objectives"]["error_rate"]["value"] == pytest.approx(limited.summary["server_error_rate"], abs=1e-6)
    assert slo["rejected_rate"] == pytest.approx(rejected, abs=1e-6) and rejected > 0.01
    both = evaluate(limited.rows, limited.scenario.slo.model_copy(update={"count_rejected": True}))
    assert both["objectives"]["error_rate"]["value"] == pytest.approx(
        limited.summary["server_error_rate"] + rejected, abs=1e-6)
    assert both["objectives"]["error_rate"]["met"] is False          # 429s above the 0.01% objective
    assert both["violation_minutes"] > slo["violation_minutes"]


def test_scenario_setting_reaches_the_run_command(tmp_path, capsys):
    import json
    sets = [a for s in SHORT for a in ("--set", s)]
    assert main(["run", *sets, "--quiet", "--out", str(tmp_path / "a")]) == 0
    assert main(["run", *sets, "--set", "slo.count_rejected=true", "--quiet", "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / x / "summary.json").read_text())["slo"] for x in "ab")
    assert a["count_rejected"] is False and b["count_rejected"] is True
    assert a["error_rate_counts"].startswith("server errors only")
    assert b["objectives"]["error_rate"]["value"] > a["objectives"]["error_rate"]["value"]


def test_comparison_headline_has_both_rates():
    assert {"server_error_rate", "rejected_rate"} <= set(HEADLINE) and "error_rate" not in HEADLINE
    sc = capsim.load_scenario("scenarios/launch.yaml", SHORT)
    two = capsim.load_scenario("scenarios/launch.yaml", SHORT + ["instances.count=2"])
    ms = capsim.compare(sc, two, replications=2, workers=1, progress=False).metrics()
    # one more instance adds no rejections (the limits are per client) and no server errors
    assert ms["server_error_rate"]["verdict"] == "no difference (identical in every replication)"
    assert ms["rejected_rate"]["a"] > 0


def test_plan_judges_server_errors_by_default():
    s = {"server_error_rate": 0.001, "rejected_rate": 0.25}
    assert judged_error_rate(s) == 0.001 and judged_error_rate(s, count_rejected=True) == pytest.approx(0.251)
    assert judged_error_rate({"server_error_rate": None, "rejected_rate": 0.0}) is None
