"""SLOs, monitoring thresholds and alerts on hand-made time series: exact minutes and counts."""
import json

import pytest
from pydantic import ValidationError

from capsim.models.request import OUTCOMES, REJECTED, SERVER_ERRORS
from capsim.cli import main
from capsim.results.slo import evaluate, format_slo, slo_of
from capsim.scenario.loader import load_slo
from capsim.scenario.slo import AlertRule, Objectives, SLOConfig, Threshold


def row(i, latency=10.0, errors=0, done=100, ready=1, warmup=False, minutes=1.0, t0=None, outcome="pool_timeout"):
    """Interval i (1 minute by default): ``done`` responses, ``errors`` of them not ok."""
    start = 60.0 * i if t0 is None else t0
    r = {"t_start": start, "t_end": start + 60.0 * minutes, "warmup": warmup, "arrivals": done,
         "completed": done, "latency_mean_ms": latency, "latency_p95_ms": 2 * latency, "instances_ready": ready}
    r.update({f"n_{o}": 0 for o in OUTCOMES})
    r["n_ok"] = done - errors
    r[f"n_{outcome}"] += errors
    return r


def trace(flags, **bad):
    """One row per flag: ``bad`` values where the flag is 1, defaults elsewhere."""
    return [row(i, **(bad if f else {})) for i, f in enumerate(flags)]


ONLY_ALERT = SLOConfig(thresholds=[], alerts=[AlertRule(name="errors", metric="error_rate", above=0.05, for_=300)])


def test_defaults_are_the_seed_guides():
    c = SLOConfig()
    assert (c.objectives.latency_mean_ms, c.objectives.error_rate, c.objectives.uptime) == (200.0, 0.0001, 0.999)
    assert [(t.metric, t.above) for t in c.thresholds] == [("latency_mean_ms", 500.0), ("error_rate", 0.01)]
    assert [(a.metric, a.above, a.for_) for a in c.alerts] == [("error_rate", 0.05, 300.0),
                                                               ("latency_mean_ms", 2000.0, 600.0)]


def test_alert_fires_at_the_fifth_consecutive_minute_not_the_fourth():
    four = evaluate(trace([1, 1, 1, 1, 0, 0], errors=10), ONLY_ALERT)["alerts"]["errors"]
    assert four["fired"] == 0 and four["firing_minutes"] == 0
    five = evaluate(trace([0, 1, 1, 1, 1, 1, 0], errors=10), ONLY_ALERT)["alerts"]["errors"]
    assert five["fired"] == 1
    assert five["fired_at_seconds"] == [360.0]       # end of minute 5 of the run that started at 60 s
    assert five["firing_minutes"] == 0.0              # it cleared right after
    seven = evaluate(trace([1] * 7, errors=10), ONLY_ALERT)["alerts"]["errors"]
    assert seven["fired"] == 1 and seven["firing_minutes"] == 2.0


def test_alert_fires_again_only_after_the_condition_cleared():
    flags = [1] * 6 + [0] + [1] * 5 + [1] * 3 + [0, 1, 1]
    out = evaluate(trace(flags, errors=6), ONLY_ALERT)["alerts"]["errors"]
    assert out["fired"] == 2
    assert out["fired_at_seconds"] == [300.0, 720.0]
    assert out["firing_minutes"] == 1.0 + 3.0


def test_exactly_at_the_threshold_does_not_violate():
    rows = trace([1] * 6, errors=5)                  # 5/100 = exactly 5%
    assert evaluate(rows, ONLY_ALERT)["alerts"]["errors"]["fired"] == 0
    rows = trace([1] * 6, errors=6)
    assert evaluate(rows, ONLY_ALERT)["alerts"]["errors"]["fired"] == 1
    slo = evaluate([row(0, latency=500.0), row(1, latency=500.01), row(2, latency=200.0)])
    assert slo["thresholds"]["slow_responses"]["violation_minutes"] == 1.0
    assert slo["objectives"]["latency_mean_ms"]["violation_minutes"] == 2.0     # 500 and 500.01, not 200


def test_violation_minutes_thresholds_and_objectives_exact():
    rows = [row(0), row(1, latency=600.0), row(2, errors=2), row(3, ready=0, errors=100),
            row(4, latency=2500.0), row(5)]
    slo = evaluate(rows)
    ob = slo["objectives"]
    assert ob["latency_mean_ms"]["violation_minutes"] == 2.0
    assert ob["error_rate"]["violation_minutes"] == 2.0           # 2% and 100%
    assert ob["uptime"]["violation_minutes"] == 1.0 and ob["uptime"]["value"] == pytest.approx(5 / 6)
    assert ob["uptime"]["met"] is False
    assert slo["violation_minutes"] == 4.0                         # minutes 1, 2, 3, 4
    assert slo["thresholds"]["slow_responses"]["violation_minutes"] == 2.0
    assert slo["thresholds"]["high_error_rate"]["violation_minutes"] == 2.0
    assert slo["threshold_minutes"] == 4.0
    assert slo["alerts_fired"] == 0
    assert ob["error_rate"]["value"] == pytest.approx(102 / 600)
    lat = (10 * 100 * 3 + 600 * 100 + 10 * 100 + 2500 * 100) / 600
    assert ob["latency_mean_ms"]["value"] == pytest.approx(lat)
    assert slo["objectives_met"] is False


def test_every_server_error_counts_and_a_429_does_not():
    for outcome in SERVER_ERRORS:
        slo = evaluate([row(0, errors=3, outcome=outcome)])
        assert slo["objectives"]["error_rate"]["value"] == pytest.approx(0.03), outcome
        assert slo["rejected_rate"] == 0.0
    slo = evaluate([row(0, errors=3, outcome="rate_limited")])
    assert slo["objectives"]["error_rate"]["value"] == 0.0 and slo["objectives"]["error_rate"]["met"] is True
    assert slo["rejected_rate"] == pytest.approx(0.03)
    assert slo["error_rate_counts"].startswith("server errors only") and slo["count_rejected"] is False
    assert set(SERVER_ERRORS) | set(REJECTED) == set(OUTCOMES) - {"ok"} and not set(SERVER_ERRORS) & set(REJECTED)


def test_count_rejected_counts_429s_in_objectives_thresholds_and_alerts():
    """Six minutes with 4% server errors and 4% 429s: 4% alone stays under the 5% alert, 8% fires it."""
    rows = []
    for i in range(6):
        r = row(i, errors=4, outcome="db_refused")
        r["n_ok"] -= 4
        r["n_rate_limited"] = 4
        rows.append(r)
    server = evaluate(rows)
    both = evaluate(rows, SLOConfig(count_rejected=True))
    assert server["objectives"]["error_rate"]["value"] == pytest.approx(0.04)
    assert both["objectives"]["error_rate"]["value"] == pytest.approx(0.08)
    assert server["alerts"]["high_error_rate"]["fired"] == 0 and both["alerts"]["high_error_rate"]["fired"] == 1
    assert server["thresholds"]["high_error_rate"]["violation_minutes"] == 6.0   # 4% > 1% either way
    assert server["rejected_rate"] == both["rejected_rate"] == pytest.approx(0.04)
    assert both["error_rate_counts"] == "server errors and rate-limited responses (429)"
    assert "error rate (5xx + 429)" in format_slo(both) and "server error rate" in format_slo(server)
    # the explicit metrics mean the same whatever the setting
    only_429 = SLOConfig(thresholds=[Threshold(name="r", metric="rejected_rate", above=0.03),
                                     Threshold(name="s", metric="server_error_rate", above=0.05)], alerts=[])
    for cfg in (only_429, only_429.model_copy(update={"count_rejected": True})):
        t = evaluate(rows, cfg)["thresholds"]
        assert (t["r"]["violation_minutes"], t["s"]["violation_minutes"]) == (6.0, 0.0)


def test_warmup_rows_and_empty_intervals_are_left_out():
    rows = [row(0, warmup=True, latency=9999.0, errors=100)] + trace([0, 0, 0])
    rows.append({**row(3), "completed": 0, "latency_mean_ms": float("nan"), "n_ok": 0})
    slo = evaluate(rows)
    assert slo["violation_minutes"] == 0.0 and slo["objectives_met"] is True
    assert slo["evaluated_on"].startswith("4 measured intervals (4.0 min)")


def test_split_interval_counts_by_its_length():
    rows = [row(0, t0=0.0, minutes=0.5, errors=10), row(0, t0=30.0, minutes=0.5, errors=10)]
    slo = evaluate(rows, SLOConfig(alerts=[AlertRule(name="a", metric="error_rate", above=0.05, for_=60)]))
    assert slo["thresholds"]["high_error_rate"]["violation_minutes"] == 1.0
    assert slo["alerts"]["a"]["fired"] == 1 and slo["alerts"]["a"]["fired_at_seconds"] == [60.0]


def test_gap_between_rows_breaks_an_alerts_run():
    rows = [row(0, errors=10), row(1, errors=10), row(3, errors=10), row(4, errors=10)]
    rule = SLOConfig(alerts=[AlertRule(name="a", metric="error_rate", above=0.05, for_=180)])
    assert evaluate(rows, rule)["alerts"]["a"]["fired"] == 0


def test_custom_config_validation_and_file(tmp_path):
    with pytest.raises(ValidationError):
        SLOConfig(alerts=[AlertRule(name="x", metric="error_rate", above=1, for_=60)] * 2)
    with pytest.raises(ValidationError):
        Threshold(name="x", metric="latency_max", above=1)
    path = tmp_path / "slo.yaml"
    path.write_text("slo:\n  objectives: {latency_mean_ms: 50, uptime: null}\n  thresholds: []\n"
                    "  alerts:\n    - {name: p95, metric: latency_p95_ms, above: 100, for: 2m}\n")
    cfg = load_slo(path)
    assert cfg.objectives == Objectives(latency_mean_ms=50, uptime=None)
    assert cfg.alerts[0].for_ == 120.0
    slo = evaluate(trace([1, 1, 1], latency=60.0), cfg)
    assert set(slo["objectives"]) == {"latency_mean_ms", "error_rate"}
    assert slo["alerts"]["p95"]["fired"] == 1 and slo["violation_minutes"] == 3.0
    assert "avg latency MISSED" in format_slo(slo)


def test_scenario_slo_field_used_when_present():
    class WithSLO:
        slo = SLOConfig(thresholds=[])
    assert slo_of(WithSLO()).thresholds == []
    assert slo_of(object()) == SLOConfig()
    assert slo_of(WithSLO(), SLOConfig()) == SLOConfig()


def test_run_writes_the_slo_block_and_slo_file_errors(capsys, tmp_path):
    out = tmp_path / "o"
    bad = tmp_path / "bad.yaml"
    bad.write_text("objectives: {latency_mean_ms: -1}\n")
    assert main(["run", "--set", "horizon=6m", "--set", "warmup=1m", "--slo", str(bad), "--out", str(out)]) == 2
    assert "latency_mean_ms" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text("thresholds: []\nalerts: []\n")
    assert main(["run", "--set", "horizon=6m", "--set", "warmup=1m", "--slo", str(good), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "min in violation" in text
    slo = json.loads((out / "summary.json").read_text())["slo"]
    assert slo["thresholds"] == {} and slo["alerts"] == {} and slo["evaluated_on"].startswith("5 measured")
