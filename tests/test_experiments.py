"""Replications, common random numbers, A/B comparison, sweeps and the capacity plan."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from capsim.cli import main
from capsim.experiments.compare import compare, verdict
from capsim.experiments.replications import independent_seeds, replicate, replication_seeds
from capsim.experiments.sweep import sweep
from capsim.experiments.sweep import split_values
from capsim.scenario.loader import load
from capsim.experiments.plan import capacity_plan, cpu_per_request
from capsim.experiments.intervals import flatten, mean_ci, paired_diff, unpaired_diff

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = str(ROOT / "scenarios" / "launch.yaml")
TINY = ["horizon=10m", "warmup=2m", "workload.sessions.daily_curve=flat", "workload.sessions.peak_users=60",
        "workload.sessions.session_length=2m"]


def tiny(*more):
    return load(LAUNCH, TINY + list(more))


def strict_json(path):
    def no_nan(token):
        raise AssertionError(f"{path} contains {token}")
    return json.loads(Path(path).read_text(), parse_constant=no_nan)


# -- statistics ----------------------------------------------------------------------------
def test_seeds_are_spawned_from_the_base_seed():
    children = np.random.SeedSequence(7).spawn(3)
    assert replication_seeds(7, 3) == [int(c.generate_state(1)[0]) for c in children]
    assert replication_seeds(7, 5)[:3] == replication_seeds(7, 3)          # R can grow
    assert not set(independent_seeds(7, 3)) & set(replication_seeds(7, 3))


def test_mean_ci_is_student_t():
    x = [3.0, 5.0, 4.0, 8.0]
    c = mean_ci(x)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert c["mean"] == 5.0 and c["n"] == 4
    assert c["half_width"] == pytest.approx(half) and c["ci_low"] == pytest.approx(5 - half)
    assert mean_ci([2.0, 2.0, 2.0]) == {"mean": 2.0, "ci_low": 2.0, "ci_high": 2.0, "half_width": 0.0, "n": 3}
    assert mean_ci([1.0, None, float("nan")])["n"] == 1 and mean_ci([])["mean"] is None


def test_paired_difference_matches_scipy_and_degenerate_cases_have_no_nan():
    a, b = [1.0, 2.0, 3.5, 4.0], [1.5, 2.9, 3.9, 5.1]
    d = paired_diff(a, b)
    assert d["diff"] == pytest.approx(np.mean(np.subtract(b, a)))
    assert d["p_value"] == pytest.approx(stats.ttest_rel(b, a).pvalue)
    zero = paired_diff(a, a)
    assert (zero["diff"], zero["ci_low"], zero["ci_high"], zero["p_value"]) == (0.0, 0.0, 0.0, 1.0)
    const = paired_diff(a, [v + 7 for v in a])
    assert (const["diff"], const["ci_low"], const["ci_high"], const["p_value"]) == (7.0, 7.0, 7.0, 0.0)
    w = unpaired_diff(a, b)
    assert w["p_value"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert verdict("monthly_cost_usd", paired_diff([10.0, 10.2, 9.9], [6.9, 7.0, 6.9])).startswith("B costs $3.10/month less (95% CI")
    assert verdict("latency_ms.mean", paired_diff([1.0, 2.0, 3.0], [1.1, 1.9, 3.05])) == "no significant difference"
    assert verdict("server_error_rate", zero) == "no difference (identical in every replication)"


def test_intervals_are_the_textbook_t_intervals():
    """The formulas the hand-written code used to compute, as an independent check of scipy's intervals."""
    a, b = [1.0, 2.0, 3.5, 4.0], [1.5, 2.9, 3.9, 5.1]
    d = np.subtract(b, a)
    half = stats.t.ppf(0.975, 3) * np.std(d, ddof=1) / math.sqrt(4)
    p = paired_diff(a, b)
    assert p["ci_low"] == pytest.approx(d.mean() - half, rel=1e-12) and p["half_width"] == pytest.approx(half, rel=1e-12)
    x, y = np.array(a), np.array([1.5, 2.9, 3.9, 5.1, 7.0])
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(vx + vy)
    w = unpaired_diff(x, y)
    assert w["diff"] == pytest.approx(y.mean() - x.mean()) and w["half_width"] == pytest.approx(half, rel=1e-12)
    assert w["ci_high"] == pytest.approx(y.mean() - x.mean() + half, rel=1e-12)
    one_sided = unpaired_diff([2.0, 2.0, 2.0], [1.0, 2.0, 4.0])       # A without spread: df = n_B - 1
    assert one_sided["half_width"] == pytest.approx(stats.t.ppf(0.975, 2) * np.std([1, 2, 4], ddof=1) / math.sqrt(3))


def test_flatten_keeps_numeric_leaves():
    flat = flatten({"a": {"b": 1, "c": None, "d": "text", "e": True}, "f": 2.5, "g": [1, 2]})
    assert flat.keys() == {"a.b", "a.c", "a.e", "f"} and flat["a.e"] == 1.0 and math.isnan(flat["a.c"])


# -- replications ------------------------------------------------------------------------------
def test_replicate_reports_every_metric_with_an_interval():
    sc = tiny()
    reps = replicate(sc, 3, seed=11, workers=1, progress=False)
    assert reps.seeds == replication_seeds(11, 3)
    assert [s["seed"] for s in reps.summaries] == reps.seeds
    lat = [s["latency_ms"]["mean"] for s in reps.summaries]
    assert reps.stats["latency_ms.mean"] == mean_ci(lat)
    assert {"requests.total", "server_error_rate", "rejected_rate", "slo.violation_minutes", "slo.alerts_fired",
            "monthly_cost_usd"} <= set(reps.stats)
    assert "seed" not in reps.stats and "wall_seconds" not in reps.stats
    assert len(reps.table) == 3 and list(reps.table["seed"]) == reps.seeds


def test_run_replications_cli_writes_csv_and_summary_block(capsys, tmp_path):
    argv = ["run", LAUNCH, *sum((["--set", o] for o in TINY), []), "--replications", "3", "--workers", "1",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "warm-up deletion: the first 2m of each replication are left out" in out
    assert "latency mean (ms)" in out and "95% CI" in out
    table = pd.read_csv(tmp_path / "replications.csv")
    assert len(table) == 3 and {"replication", "seed", "latency_ms.p95", "slo.violation_minutes"} <= set(table)
    summary = strict_json(tmp_path / "summary.json")
    block = summary["replications"]["latency_ms.p95"]
    assert set(block) == {"mean", "ci_low", "ci_high", "half_width", "n"} and block["n"] == 3
    assert block["mean"] == pytest.approx(table["latency_ms.p95"].mean())
    assert summary["replication_info"]["seeds"] == list(table["seed"])
    assert "warm-up" in summary["replication_info"]["warmup"]
    assert (tmp_path / "timeseries.csv").exists()


# -- common random numbers and A/B -----------------------------------------------------------------
@pytest.mark.parametrize("change", [["instances.count=3"],
                                    ["autoscaler={policy: threshold, min_instances: 1, max_instances: 4}"]])
def test_crn_same_users_and_requests_in_every_replication(change):
    c = compare(tiny(), tiny(*change), 3, seed=5, workers=1, progress=False)
    for sa, sb in zip(c.a.summaries, c.b.summaries):
        assert sa["seed"] == sb["seed"]
        assert sa["requests"]["total"] == sb["requests"]["total"]
        assert sa["sessions"]["started"] == sb["sessions"]["started"]
    assert len({s["requests"]["total"] for s in c.a.summaries}) == 3        # replications differ


def test_a_a_comparison_is_exactly_zero(tmp_path):
    c = compare(tiny(), tiny(), 3, seed=2, workers=1, progress=False)
    for m, d in c.metrics().items():
        assert d["diff"] in (0.0, None), m
        if d["diff"] is not None:
            assert (d["ci_low"], d["ci_high"], d["p_value"]) == (0.0, 0.0, 1.0), m
    c.write(tmp_path)
    doc = strict_json(tmp_path / "comparison.json")
    assert doc["metrics"]["latency_ms.mean"]["verdict"] == "no difference (identical in every replication)"


def test_crn_interval_is_narrower_than_independent_seeds():
    a, b = tiny("instances.count=1"), tiny("instances.count=2")
    with_crn = compare(a, b, 4, seed=0, progress=False).metrics()["latency_ms.mean"]
    without = compare(a, b, 4, seed=0, crn=False, progress=False).metrics()["latency_ms.mean"]
    assert with_crn["method"] == "paired t" and without["method"] == "Welch t"
    assert with_crn["half_width"] < without["half_width"]


def test_compare_cli_with_set_b_writes_json_and_csv(capsys, tmp_path):
    sets = sum((["--set", o] for o in TINY), [])
    assert main(["compare", LAUNCH, *sets, "--set-b", "instances.count=2", "-r", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "B: " in out and "instances.count=2" in out and "common random numbers" in out
    assert "B costs $7.00/month more (95% CI 7.00–7.00)" in out
    doc = strict_json(tmp_path / "comparison.json")
    for m in ("monthly_cost_usd", "instance_hours", "latency_ms.mean", "latency_ms.p95", "latency_ms.p99",
              "server_error_rate", "rejected_rate", "slo.violation_minutes", "slo.alerts_fired"):
        assert {"a", "b", "diff", "ci_low", "ci_high", "p_value"} <= set(doc["metrics"][m]), m
    assert doc["metrics"]["monthly_cost_usd"]["diff"] == 7.0
    csv = pd.read_csv(tmp_path / "comparison.csv")
    assert {"metric", "a", "b", "diff", "ci_low", "ci_high", "p_value", "verdict"} <= set(csv)
    # two files, --no-crn
    path_b = tmp_path / "b.yaml"
    path_b.write_text(Path(LAUNCH).read_text().replace("count: 1 ", "count: 2 "))
    out = tmp_path / "nocrn"
    assert main(["compare", LAUNCH, str(path_b), *sets, "-r", "2", "--no-crn", "--workers", "1",
                 "--out", str(out)]) == 0
    assert "independent seeds for B" in capsys.readouterr().out
    assert json.loads((out / "comparison.json").read_text())["common_random_numbers"] is False


def test_compare_without_out_writes_to_the_default_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = ["--set", "horizon=20m", "--set", "warmup=2m"]
    assert main(["compare", str(Path(LAUNCH).resolve()), *sets, "--set-b", "instances.count=2", "-r", "2",
                 "--workers", "1"]) == 0
    folder = tmp_path / "capsim-out" / "launch-compare"
    assert {"comparison.json", "comparison.csv", "report.html", "a", "b"} <= {p.name for p in folder.iterdir()}
    assert "report     capsim-out/launch-compare/report.html" in capsys.readouterr().out


# -- sweeps --------------------------------------------------------------------------------------
def test_split_values_respects_brackets_and_quotes():
    assert split_values("100,250, 500") == ["100", "250", "500"]
    assert split_values("{policy: hpa, max_instances: 3},null,'a,b'") == [
        "{policy: hpa, max_instances: 3}", "null", "'a,b'"]


def test_sweep_grid_tidy_table_and_bad_point(tmp_path):
    table = sweep(tiny(), {"instances.count": [1, 2], "autoscaler": [None, {"policy": "nope"}]}, 2, seed=3,
                  out=tmp_path, workers=1, progress=False)
    assert list(table.columns) == ["instances.count", "autoscaler", "point", "metric", "mean", "ci_low", "ci_high",
                                   "half_width", "n", "error"]
    assert sorted(table["point"].unique()) == [0, 1, 2, 3]
    bad = table[table["point"].isin([1, 3])]
    assert len(bad) == 2 and bad["metric"].isna().all() and bad["error"].str.contains("autoscaler.policy").all()
    good = table[table["point"] == 2].set_index("metric")
    assert good.loc["monthly_cost_usd", "mean"] == 14.0 and good.loc["latency_ms.mean", "n"] == 2
    assert (tmp_path / "sweep.csv").exists()
    assert len((tmp_path / "sweep_points.jsonl").read_text().splitlines()) == 4
    pytest.importorskip("pyarrow")
    back = pd.read_parquet(tmp_path / "sweep.parquet")
    assert len(back) == len(table)


def test_sweep_interrupted_then_resumed_redoes_nothing(tmp_path):
    params = {"instances.count": [1, 2, 3]}
    full = sweep(tiny(), params, 2, seed=4, workers=1, progress=False)
    seen = []

    def stop_after_two(j, result):
        seen.append(j)
        if len(seen) == 2:
            raise KeyboardInterrupt

    part = sweep(tiny(), params, 2, seed=4, out=tmp_path, workers=1, progress=False, on_result=stop_after_two)
    assert part.attrs["interrupted"] and part.attrs["jobs_run"] == 2
    assert len((tmp_path / "sweep_points.jsonl").read_text().splitlines()) == 2
    partial_csv = pd.read_csv(tmp_path / "sweep.csv")
    assert set(partial_csv["point"]) == {0, 1, 2}                    # written, with what finished
    ran = []
    done = sweep(tiny(), params, 2, seed=4, out=tmp_path, resume=True, workers=1, progress=False,
                 on_result=lambda j, r: ran.append(j))
    assert len(ran) == 4 and done.attrs["jobs_resumed"] == 2 and not done.attrs["interrupted"]
    pd.testing.assert_frame_equal(done.drop(columns="error"), full.drop(columns="error"))


def test_sweep_cli_params_parsed_as_yaml(capsys, tmp_path):
    sets = sum((["--set", o] for o in TINY), [])
    code = main(["sweep", LAUNCH, *sets, "--param", "instances.count=1,2",
                 "--param", "autoscaler=null,{policy: hpa, min_instances: 1, max_instances: 2}",
                 "-r", "2", "--workers", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    table = pd.read_csv(tmp_path / "sweep.csv", keep_default_na=False)
    assert set(table["instances.count"]) == {1, 2}
    assert set(table["autoscaler"]) == {"null", '{"policy": "hpa", "min_instances": 1, "max_instances": 2}'}
    assert "cost $/month" in out
    assert main(["sweep", LAUNCH, "--param", "instances.count"]) == 2


# -- capacity plan ---------------------------------------------------------------------------------
def test_plan_stops_at_the_smallest_passing_count():
    sc = load(LAUNCH)
    assert cpu_per_request(sc) == pytest.approx(0.00295, rel=0.01)
    levels = [("tiny", 40, 20, 1, 7.0), ("busy", 800, 400, 6, 42.0)]
    plan = capacity_plan(sc, levels=levels, plans=["standard"], replications=2, measured=120.0, warmup=120.0,
                         workers=2, progress=False)
    tiny_level, busy = plan.answer
    assert tiny_level["cheapest"]["count"] == 1 and tiny_level["cheapest"]["monthly_cost_usd"] == 7.0
    tried = [t for t in plan.tried if t["level"] == "busy"]
    counts = [t["count"] for t in tried]
    assert counts == list(range(1, busy["cheapest"]["count"] + 1))     # upwards, stopping at the first pass
    assert tried[0]["note"].startswith("skipped: CPU demand 1.18 s/s >= 1 event-loop")  # 400 rps x 2.95 ms on one loop
    assert [t["passed"] for t in tried] == [False] * (len(tried) - 1) + [True]
    text = plan.format()
    assert "average response <= 200 ms and server error rate <= 1%" in text and "busy" in text


def test_plan_cli_prints_the_table_beside_the_seeds_guess(capsys, tmp_path):
    code = main(["plan", "--levels", "light", "--plans", "standard", "--horizon", "2m", "-r", "2",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "light" in out and "1 x std $7" in out and "1 x standard  $7/month" in out
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert plan.loc[0, "cheapest_count"] == 1 and plan.loc[0, "seed_instances"] == 1
    assert main(["plan", "--levels", "huge"]) == 2 and "levels: light, medium" in capsys.readouterr().err


def test_switching_policy_alone_gets_a_hint(capsys, tmp_path):
    growth = str(ROOT / "scenarios" / "growth.yaml")
    assert main(["compare", growth, "--set-b", "autoscaler.policy=hpa"]) == 2
    assert "replace the whole section" in capsys.readouterr().err


# -- multi-fidelity: screen in the fast mode, confirm at the request level ---------------------------
def test_sweep_screens_every_point_and_confirms_the_best(tmp_path):
    out = tmp_path / "sw"
    table = sweep(LAUNCH, {"instances.count": [1, 2, 3]}, replications=2, overrides=["horizon=15m", "warmup=5m"],
                  out=out, workers=1, progress=False, screen="flow", confirm=1, rank=["monthly_cost_usd"])
    screen = table.attrs["screen"]
    assert sorted(screen["point"].unique()) == [0, 1, 2] and set(screen["valid"]) <= {True, False}
    ranks = screen.drop_duplicates("point").set_index("point")
    valid = ranks[ranks["valid"]]
    best = valid["rank"].idxmin() if len(valid) else ranks["rank"].idxmin()
    assert table.attrs["confirmed"] == [best] and ranks.loc[best, "confirmed"]
    if len(valid):
        assert ranks.loc[best, "instances.count"] == valid["instances.count"].min()   # cheapest valid first
    assert set(table["point"]) == {best}                               # only the confirmed point, with 2 replications
    assert table[table["metric"] == "monthly_cost_usd"]["n"].iloc[0] == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"sweep.csv", "sweep_screen.csv"} <= set(manifest["files"])
    from capsim.report import write_report
    html = write_report(out)[0].read_text()
    assert "Screened in the fast mode" in html and "Confirmed at the request level (1 points" in html


def test_plan_screens_in_the_fast_mode_and_confirms_at_the_request_level():
    levels = [("tiny", 40, 20, 1, 7.0)]
    plan = capacity_plan(LAUNCH, levels=levels, plans=["standard"], max_instances=2, replications=2,
                         measured=120.0, warmup=120.0, workers=1, progress=False, screen="flow", confirm=1)
    fids = [t["fidelity"] for t in plan.tried]
    assert fids.count("flow") == 2 and fids.count("request") == 1        # counts 1 and 2 screened, 1 confirmed
    confirmed = next(t for t in plan.tried if t["fidelity"] == "request")
    assert plan.answer[0]["cheapest"]["count"] == confirmed["count"] == 1 and confirmed["passed"]
    assert plan.settings["screen"]["screened"] == 2 and "multi-fidelity" in plan.format()
