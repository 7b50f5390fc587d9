"""report.html for run, replications, compare, sweep and plan; experiment figures; the page itself.

Every report is checked for: plotly.js embedded once and no network reference (opens
offline), and each figure's data in the page equal to the figure built in memory.
"""
import json
import math
import os
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import capsim
import capsim.report as rep
from capsim.cli import main
from capsim.experiments.plan import LEVELS
from capsim.report.html import Page, figure_data

SHORT = ["horizon=40m", "warmup=5m"]
BUNDLE = "* plotly.js v"      # the banner of the embedded plotly.js bundle


def _same(a, b) -> bool:
    """Trace values equal (numbers with NaN, or anything else exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, np.ndarray, pd.Series)) and isinstance(b, (list, tuple, np.ndarray, pd.Series)):
        x, y = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        if x.shape != y.shape:
            return False
        return all(_same(u, v) for u, v in zip(x.ravel(), y.ravel()))
    if isinstance(a, (int, float, np.number)) and isinstance(b, (int, float, np.number)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0)
    return a == b


def _fig_traces(fig) -> list[dict]:
    """A figure's traces as plotly would serialise them (for comparison with the page)."""
    return figure_data(Page("x").figure("f", fig).render(), "f")


def assert_page_holds(html: str, figures: dict) -> None:
    assert html.count(BUNDLE) == 1, "plotly.js must be embedded exactly once"
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?(https?:)?//", html), "the report must open offline"
    for name, fig in figures.items():
        assert _same(figure_data(html, name), _fig_traces(fig)), name


# -- the page -------------------------------------------------------------------------------
def test_page_embeds_plotly_once_and_holds_each_figures_data():
    f1 = go.Figure(go.Scatter(x=[0, 1, 2], y=[1.5, float("nan"), 3.0], name="a"))
    f2 = go.Figure(go.Heatmap(z=np.array([[1.0, 2.0], [np.nan, 4.0]])))
    page = Page("t <b>", "sub").table("Summary", [("requests", 10), ("name", "a<b")]).figure("one", f1) \
        .figure("two", f2)
    html = page.render()
    assert_page_holds(html, {"one": f1, "two": f2})
    assert "t &lt;b&gt;" in html and "a&lt;b" in html            # text is escaped
    z = figure_data(html, "two")[0]["z"]
    assert z.shape == (2, 2) and np.isnan(z[1, 0]) and z[1, 1] == 4.0


def test_page_tables_from_dataframes():
    html = Page("t").table("T", pd.DataFrame({"metric": ["cost"], "mean": [1.25]})).render()
    assert "<th>metric</th>" in html and '<td class="num">1.25</td>' in html


# -- run and replications reports -------------------------------------------------------------
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--quiet", "--out", str(out)] + [a for s in SHORT for a in ("--set", s)]) == 0
    return out


def test_run_writes_a_report_with_every_run_figure(run_folder):
    html = (run_folder / "report.html").read_text()
    figures = rep.run_figures(rep.RunFiles.read(run_folder))
    assert_page_holds(html, figures)
    assert html.index("<h2>Summary</h2>") < html.index('id="fig-load_capacity"')   # the summary first
    assert rep.report_kind(run_folder) == "run"


def test_report_files_equal_the_in_memory_result(run_folder):
    """Figures from the folder read back equal figures from a fresh run with the same seed."""
    result = capsim.run(capsim.load_scenario(str(run_folder / "scenario.json")))
    files = rep.RunFiles.read(run_folder)
    for name in ("load_capacity", "latency", "cost", "cpu_heatmap"):
        a, b = _fig_traces(rep.run_figures(result)[name]), _fig_traces(rep.run_figures(files)[name])
        assert _same(a, b), name


def test_replications_report(tmp_path, capsys):
    out = tmp_path / "reps"
    args = ["run", "-r", "3", "--workers", "1", "--quiet", "--out", str(out)] + [a for s in SHORT for a in ("--set", s)]
    assert main(args) == 0
    html = (out / "report.html").read_text()
    table = pd.read_csv(out / "replications.csv")
    fig = rep.cost_vs_p95(table, labels=["replications"])
    assert_page_holds(html, {"cost-vs-p95": fig, "replication-1-latency": rep.latency(rep.RunFiles.read(out))})
    pts = [t for t in fig.data if t.mode == "markers"][0]
    assert list(pts.x) == list(table["latency_ms.p95"]) and list(pts.y) == list(table["monthly_cost_usd"])
    assert len(pts.x) == 3


# -- comparison -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compare_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    code = main(["compare", "scenarios/launch.yaml", "-r", "3", "--workers", "1", "--quiet", "--out", str(out)]
                + [a for s in SHORT for a in ("--set", s)] + ["--set-b", "instances.count=2"])
    assert code == 0
    return out


def test_compare_report_holds_forest_overlay_and_scatter(compare_folder):
    html = (compare_folder / "report.html").read_text()
    doc = json.loads((compare_folder / "comparison.json").read_text())
    a, b = (rep.RunFiles.read(compare_folder / s) for s in ("a", "b"))
    ta, tb = (pd.read_csv(compare_folder / s / "replications.csv") for s in ("a", "b"))
    assert_page_holds(html, {"forest": rep.forest(doc), "overlay": rep.overlay(a, b), "cost-vs-p95":
                             rep.cost_vs_p95(ta, tb)})
    assert rep.report_kind(compare_folder) == "compare"


def test_forest_plots_differences_in_percent_of_a_with_their_intervals(compare_folder):
    doc = json.loads((compare_folder / "comparison.json").read_text())
    fig = rep.forest(doc)
    ms, tr = doc["metrics"], fig.data[0]
    from capsim.experiments.compare import HEADLINE
    from capsim.report.labels import metric_label
    for label, x, plus, minus in zip(tr.y, tr.x, tr.error_x.array, tr.error_x.arrayminus):
        m = next(k for k in HEADLINE if metric_label(k) == label)
        d = ms[m]
        scale = 100.0 / abs(d["a"]) if d["a"] else 0.0
        assert x == pytest.approx(d["diff"] * scale)
        assert x + plus == pytest.approx(d["ci_high"] * scale) and x - minus == pytest.approx(d["ci_low"] * scale)
    # two instances instead of one: cost doubles, so the cost marker sits at +100 %
    cost = list(tr.y).index("monthly cost ($/month)")
    assert tr.x[cost] == pytest.approx(100.0, rel=1e-3)


def test_forest_of_an_a_a_comparison_is_all_zero():
    sc = capsim.load_scenario("scenarios/launch.yaml", SHORT)
    cmp = capsim.compare(sc, sc, replications=2, workers=1, progress=False)
    tr = rep.forest(cmp).data[0]
    assert len(tr.x) >= 5 and all(x == 0 for x in tr.x)
    assert all(v == 0 for v in list(tr.error_x.array) + list(tr.error_x.arrayminus))


def test_overlay_traces_are_each_sides_columns(compare_folder):
    a, b = (rep.RunFiles.read(compare_folder / s) for s in ("a", "b"))
    fig = rep.overlay(a, b, columns=("instances_ready", "latency_p95_ms"), labels=("one", "two"))
    by = {(t.name, t.yaxis): t for t in fig.data}
    assert _same(list(by[("one", "y2")].y), list(a.timeseries["latency_p95_ms"]))
    assert _same(list(by[("two", "y")].y), list(b.timeseries["instances_ready"]))
    assert set(by[("two", "y")].y) == {2}


# -- sweeps ---------------------------------------------------------------------------------
def _table(points):
    """A hand-made tidy sweep table: points = [(count, policy, cost, p95)]."""
    rows = []
    for i, (count, policy, cost, p95) in enumerate(points):
        for metric, v in (("monthly_cost_usd", cost), ("latency_ms.p95", p95)):
            rows.append({"instances.count": count, "policy": policy, "point": i, "metric": metric, "mean": v,
                         "ci_low": v - 1, "ci_high": v + 2, "half_width": 1.5, "n": 3, "error": None})
    return pd.DataFrame(rows)


def test_pareto_front_keeps_exactly_the_non_dominated_points():
    t = _table([(1, "a", 7, 90), (2, "a", 14, 40), (3, "a", 21, 41), (2, "b", 14, 60), (4, "b", 28, 20),
                (5, "b", 35, 20)])
    front = rep.pareto_front(t.pivot_table(index="point", columns="metric", values="mean"))
    assert list(front.index) == [0, 1, 4]
    fig = rep.pareto(t)          # no load parameter (workload.*): one front over every point
    assert list(fig.data[1].y) == [7, 14, 28] and list(fig.data[1].x) == [90, 40, 20]
    assert len(fig.data[0].x) == 6


def test_pareto_fronts_per_load_level_and_null_points_kept(tmp_path):
    """The README's sweep: users x (no autoscaler, hpa). A cheap point at 100 users must not hide the
    configurations of 1000 users, and the points whose autoscaler is null must all be there."""
    from capsim.experiments.sweep import write_sweep
    points = [(100, None, 7, 20), (100, {"policy": "hpa"}, 7, 21), (1000, None, 7, 900), (1000, {"policy": "hpa"}, 21, 30)]
    rows = []
    for i, (users, auto, cost, p95) in enumerate(points):
        for metric, v in (("monthly_cost_usd", cost), ("latency_ms.p95", p95)):
            rows.append({"workload.sessions.peak_users": users, "autoscaler": "null" if auto is None else json.dumps(auto),
                         "point": i, "metric": metric, "mean": v, "ci_low": v, "ci_high": v, "half_width": 0.0,
                         "n": 2, "error": None})
    write_sweep(pd.DataFrame(rows), tmp_path)
    table = rep.read_sweep(tmp_path / "sweep.csv")
    assert set(table["autoscaler"]) == {"null", '{"policy": "hpa"}'} and table["point"].nunique() == 4
    fig = rep.pareto(table)
    fronts = {t.name: (list(t.x), list(t.y)) for t in fig.data if t.name.endswith("Pareto front")}
    assert fronts == {"workload.sessions.peak_users=100: Pareto front": ([20], [7]),
                      "workload.sessions.peak_users=1000: Pareto front": ([900, 30], [7, 21])}
    from capsim.report.pages_experiments import sweep_table
    shown = sweep_table(table)
    assert len(shown) == 4 and list(shown["autoscaler"]).count("null") == 2
    (tmp_path / "sweep_points.jsonl").write_text("")
    html = rep.build_page(tmp_path).render()
    assert html.count("<td>null</td>") == 2 and "all 4" in html


def test_sweep_curves_show_means_and_intervals_per_group():
    t = _table([(1, "a", 7, 90), (2, "a", 14, 40), (1, "b", 8, 80), (2, "b", 15, 30)])
    fig = rep.sweep_curves(t, "instances.count", "monthly_cost_usd", by="policy")
    assert [tr.name for tr in fig.data] == ["policy=a", "policy=b"]
    assert list(fig.data[1].y) == [8, 15] and list(fig.data[1].x) == ["1", "2"]
    assert list(fig.data[0].error_y.array) == [2, 2] and list(fig.data[0].error_y.arrayminus) == [1, 1]


def test_sweep_report(tmp_path):
    out = tmp_path / "sweep"
    code = main(["sweep", "scenarios/launch.yaml", "--param", "instances.count=1,2", "-r", "2", "--workers", "1",
                 "--quiet", "--out", str(out)] + [a for s in SHORT for a in ("--set", s)])
    assert code == 0
    table = rep.read_sweep(out / "sweep.csv")
    html = (out / "report.html").read_text()
    assert_page_holds(html, rep.sweep_figures(table))
    cost = rep.sweep_figures(table)["sweep_cost"].data[0]
    means = table[table.metric == "monthly_cost_usd"].sort_values("instances.count")["mean"]
    assert list(cost.y) == pytest.approx(list(means)) and cost.y[1] == pytest.approx(2 * cost.y[0], rel=1e-3)


# -- capacity plan --------------------------------------------------------------------------
def test_plan_costs_from_a_plan():
    plan = {"levels": [
        {"level": "light", "users": 100, "seed_instances": 1, "seed_cost": 7.0,
         "by_plan": {"standard": {"count": 1, "monthly_cost_usd": 7.0}, "pro": {"count": 1, "monthly_cost_usd": 25.0}},
         "cheapest": {"plan": "standard", "count": 1, "monthly_cost_usd": 7.0}},
        {"level": "heavy", "users": 1000, "seed_instances": 6, "seed_cost": 42.0,
         "by_plan": {"standard": {"count": None}, "pro": {"count": 3, "monthly_cost_usd": 75.0}},
         "cheapest": {"plan": "pro", "count": 3, "monthly_cost_usd": 75.0}}]}
    fig = rep.plan_costs(plan)
    by = {t.name: t for t in fig.data}
    assert list(by["seed's guess"].y) == [7.0, 42.0] and list(by["cheapest passing"].y) == [7.0, 75.0]
    assert list(by["standard"].y) == [7.0, None] and list(by["pro"].x) == [100, 1000]


def test_plan_report(tmp_path):
    out = tmp_path / "plan"
    code = main(["plan", "--levels", "light", "--max-instances", "2", "--plans", "standard", "-r", "2",
                 "--horizon", "2m", "--warmup", "1m", "--workers", "1", "--quiet", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "plan.json").read_text())
    html = (out / "report.html").read_text()
    assert_page_holds(html, {"plan-costs": rep.plan_costs(doc)})
    assert doc["levels"][0]["users"] == LEVELS[0][1]


# -- the report command and images ------------------------------------------------------------
def test_report_command_redraws_and_explains_bad_folders(run_folder, tmp_path, capsys):
    (run_folder / "report.html").unlink()
    assert main(["report", str(run_folder)]) == 0
    assert (run_folder / "report.html").exists()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "expected an output folder of capsim run, compare, sweep or plan" in err


def test_images_without_a_browser_are_explained_not_raised(run_folder, monkeypatch, capsys):
    monkeypatch.setattr("capsim.report.images.find_browser", lambda: None)
    assert rep.image_support() is not None
    assert main(["report", str(run_folder), "--images", "png"]) == 1     # asked-for files not written
    err = capsys.readouterr().err
    assert "Chrome or Chromium" in err and "apt-get install -y chromium" in err and "Traceback" not in err
    assert (run_folder / "report.html").exists()


def test_images_are_written_where_a_renderer_exists(tmp_path):
    problem = rep.image_support()
    if problem and not os.environ.get("CAPSIM_REQUIRE_IMAGES"):
        pytest.skip(problem)     # .ci/run installs Chromium and sets CAPSIM_REQUIRE_IMAGES=1
    assert problem is None
    figs = {"one": go.Figure(go.Scatter(y=[1, 3, 2])), "two": go.Figure(go.Bar(y=[2, 1]))}
    png, problem = rep.write_images(figs, tmp_path, "png")
    assert problem is None and [p.name for p in png] == ["one.png", "two.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in png)
    svg, problem = rep.write_images(figs, tmp_path, "svg")
    assert problem is None and all(b"<svg" in p.read_bytes()[:400] for p in svg)
    with pytest.raises(ValueError, match="expected one of png, svg"):
        rep.write_images(figs, tmp_path, "gif")


# -- shared plotly.js, tiles, tables (issue 12 items 6 and 7) ----------------------------------
def test_shared_plotly_js_written_once_and_never_overwritten(run_folder, tmp_path):
    shared = tmp_path / "js"
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        for name in ("summary.json", "timeseries.csv", "instances.csv", "scaling_events.csv", "scenario.json",
                     "latency_histogram.csv", "manifest.json"):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes((run_folder / name).read_bytes())
    from capsim.report.html import PLOTLY_VERSION
    other = shared / "plotly-0.0.1.min.js"          # another version's copy, used by older reports
    other.parent.mkdir()
    other.write_text("old")
    for out in (one, two):
        assert main(["report", str(out), "--plotly-js", str(shared)]) == 0
    copies = sorted(p.name for p in shared.iterdir())
    assert copies == ["plotly-0.0.1.min.js", f"plotly-{PLOTLY_VERSION}.min.js"] and other.read_text() == "old"
    assert (shared / f"plotly-{PLOTLY_VERSION}.min.js").read_text().count("* plotly.js v") == 1
    for out in (one, two):
        html = (out / "report.html").read_text()
        assert f'<script charset="utf-8" src="../js/plotly-{PLOTLY_VERSION}.min.js"></script>' in html
        assert BUNDLE not in html and len(html) < len((run_folder / "report.html").read_text()) / 2
        assert not re.search(r"<(script|link)[^>]+(src|href)=[\"']?(https?:)?//", html)


def test_run_report_tiles_and_tables(run_folder):
    html = (run_folder / "report.html").read_text()
    s = json.loads((run_folder / "summary.json").read_text())
    tiles = re.findall(r'<div class="tile (\w+)"><div class="label">([^<]*)</div><div class="value">([^<]*)</div>',
                       html)
    by = {label: (state, value) for state, label, value in tiles}
    assert list(by) == ["cost per month", "latency p95", "server error rate", "instance-hours", "SLO"]
    assert by["cost per month"][1] == f"${s['monthly_cost_usd']:,.2f}"
    assert by["latency p95"][1] == f"{s['latency_ms']['p95']:.3g} ms"
    assert by["SLO"] == (("good", "met") if s["slo"]["objectives_met"] else ("bad", "missed"))
    assert html.index('class="tiles"') < html.index("<h2>Summary</h2>")
    for heading in ("Latency per endpoint", "Resources: utilisation and queues", "Scaling events"):
        assert heading in html
    assert not re.search(r"\d\.\d+e[-+]\d\d", html.split("<script")[0]), "no exponents in the tables"


def test_numbers_read_without_exponents():
    from capsim.report.labels import format_number, format_value, metric_label
    assert format_value(7.58928e-08, "%", 100.0) == "0.00001%" and format_value(1e-10, "%", 100.0) == "< 0.00001%"
    assert format_value(0.000123, "%", 100.0) == "0.0123%"
    assert format_value(0.246375, "%", 100.0) == "24.6%" and format_value(7.0, "$/month") == "$7.00/month"
    assert format_number(7.58928e-08) == "< 0.001" and format_number(123456.7) == "123,457"
    assert format_number(12.345) == "12.3" and format_number(None) == "n/a"
    assert metric_label("latency_ms.p95") == "latency p95 (ms)" and metric_label("server_error_rate").endswith("(%)")
    assert metric_label("latency_by_endpoint_ms.toybox.p95") == "latency by endpoint · toybox · p95 (ms)"


def test_forest_names_a_and_b(compare_folder):
    doc = json.loads((compare_folder / "comparison.json").read_text())
    title = rep.forest(doc).layout.title.text
    assert f"A: {doc['a']}" in title and f"B: {doc['b']}" in title and "instances.count=2" in doc["b"]


def test_image_version_problems_name_the_package_to_upgrade():
    from capsim.report.images import version_problem
    old = version_problem("5.24.1", "1.5.1")
    assert "plotly 5.24.1 cannot drive kaleido 1.5.1" in old and "pip install -U 'plotly>=6.1.1'" in old
    assert "Chrome" not in old
    assert "kaleido 1.0.0 is too old" in version_problem("7.1.0", "1.0.0")
    assert version_problem("6.1.1", "1.1.0") is None and version_problem("7.1.0", "1.5.1") is None
    assert version_problem("6.0.1", "1.5.1") and version_problem("6.1.0rc1", "1.5.1")


def test_an_export_failure_that_is_not_the_browser_is_not_blamed_on_it(tmp_path):
    problem = rep.image_support()
    if problem and not os.environ.get("CAPSIM_REQUIRE_IMAGES"):
        pytest.skip(problem)

    class Broken(go.Figure):
        def to_image(self, *a, **kw):           # capsim encodes, then writes the bytes atomically
            raise ValueError("cannot encode this figure")
    written, problem = rep.write_images({"ok": go.Figure(go.Scatter(y=[1, 2])), "bad": Broken()}, tmp_path, "png")
    assert [p.name for p in written] == ["ok.png"]
    assert "ValueError: cannot encode this figure" in problem and "none was found" not in problem
