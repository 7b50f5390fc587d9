"""Every kind of report loaded in headless Chromium: no JavaScript error, no empty figure.

Each report (run, replications, compare, sweep, plan, and a run report that loads a
shared plotly.js) is copied with two small scripts added: one first in <head> that
records uncaught errors, one at the end that, after load, writes what plotly drew
(traces, points, axis types and ranges per figure) and the result of zooming one time
figure into the DOM, which ``chromium --dump-dom`` prints. Skipped when no Chromium is
found, unless CAPSIM_REQUIRE_BROWSER (or CAPSIM_REQUIRE_IMAGES) is set, as in CI.
"""
from __future__ import annotations

import html
import json
import math
import os
import re
import subprocess

import pytest

from capsim.cli import main
from capsim.report.images import find_browser

SHORT = [a for s in ("horizon=40m", "warmup=5m") for a in ("--set", s)]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=15000", "--dump-dom"]
FIRST = """<script>window.__errors=[];window.addEventListener("error",function(e){
window.__errors.push(String(e.message||e.type)+" @ "+String(e.filename||"")+":"+String(e.lineno||""));});</script>"""
LAST = """<script>window.addEventListener("load",function(){setTimeout(function(){
var out={errors:window.__errors,plotly:typeof Plotly,figures:[],zoom:null};
var all=Array.prototype.slice.call(document.querySelectorAll(".plotly-graph-div"));
all.forEach(function(gd){var fl=gd._fullLayout||{};var pts=0;(gd._fullData||[]).forEach(function(t){
["y","z"].forEach(function(k){if(t[k]&&t[k].length)pts+=t[k].length;});});
function ax(a){return a?{type:a.type,range:a.range?[a.r2l(a.range[0]),a.r2l(a.range[1])]:null}:null;}
out.figures.push({id:gd.id,traces:(gd._fullData||[]).length,points:pts,svg:gd.querySelectorAll(".main-svg").length,
x:ax(fl.xaxis),y:ax(fl.yaxis),y2ticks:fl.yaxis2&&fl.yaxis2._vals?fl.yaxis2._vals.map(function(v){return v.x;}):null});});
var figs=Array.prototype.slice.call(document.querySelectorAll(".capsim-time .plotly-graph-div"));
function done(){var pre=document.createElement("pre");pre.id="capsim-check";pre.textContent=JSON.stringify(out);
document.body.appendChild(pre);}
if(figs.length<2){done();return;}
var a=figs[0]._fullLayout.xaxis,l0=a.r2l(a.range[0]),l1=a.r2l(a.range[1]);
var want=[a.l2r(l0+(l1-l0)/2),a.l2r(l1)];
Plotly.relayout(figs[0],{"xaxis.range":want}).then(function(){setTimeout(function(){
out.zoom={figures:figs.length,want:[l0+(l1-l0)/2,l1],got:figs.slice(1).map(function(g){
var b=g._fullLayout.xaxis;return [b.r2l(b.range[0]),b.r2l(b.range[1])];})};done();},500);},
function(e){out.errors.push("relayout: "+e);done();});},300);});</script>"""


@pytest.fixture(scope="module")
def browser():
    path = find_browser()
    if path is None:
        if os.environ.get("CAPSIM_REQUIRE_BROWSER") or os.environ.get("CAPSIM_REQUIRE_IMAGES"):
            pytest.fail("no Chromium found, and CAPSIM_REQUIRE_BROWSER/CAPSIM_REQUIRE_IMAGES asks for the browser test")
        pytest.skip("no Chrome/Chromium found (apt-get install -y chromium)")
    return path


def load(browser, report, tmp_path) -> dict:
    """What plotly drew in ``report`` (a copy with the probes is loaded from the same folder)."""
    text = report.read_text(encoding="utf-8")
    probe = report.with_name("probe.html")
    probe.write_text(text.replace("<head>", "<head>" + FIRST, 1).replace("</body>", LAST + "</body>", 1),
                     encoding="utf-8")
    profile = tmp_path / f"profile-{report.parent.name}"
    proc = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", probe.as_uri()],
                          capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="capsim-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page did not finish loading: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def assert_clean(out: dict, figures: int) -> None:
    assert out["plotly"] == "object", "plotly.js did not load"
    assert out["errors"] == [], out["errors"]
    assert len(out["figures"]) >= figures
    for f in out["figures"]:
        assert f["traces"] > 0 and f["points"] > 0 and f["svg"] > 0, f"empty figure: {f}"
    if out["zoom"] is not None:           # zooming one time figure zoomed every other one
        want = out["zoom"]["want"]
        for got in out["zoom"]["got"]:
            assert got == pytest.approx(want, rel=1e-9, abs=1.0), out["zoom"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    runs = {
        "run": ["run", "--out", str(root / "run"), *SHORT],
        "shared": ["run", "--out", str(root / "shared"), "--plotly-js", str(root), *SHORT],
        "replications": ["run", "-r", "2", "--workers", "1", "--out", str(root / "replications"), *SHORT],
        "compare": ["compare", "scenarios/launch.yaml", "-r", "2", "--workers", "1", "--out", str(root / "compare"),
                    *SHORT, "--set-b", "instances.count=2"],
        "sweep": ["sweep", "scenarios/launch.yaml", "--param", "instances.count=1,2",
                  "--param", "autoscaler=null,{policy: hpa, min_instances: 1, max_instances: 2}", "-r", "2",
                  "--workers", "1", "--out", str(root / "sweep"), *SHORT],
        "plan": ["plan", "--levels", "light", "--max-instances", "2", "--plans", "standard", "-r", "2",
                 "--horizon", "2m", "--warmup", "1m", "--workers", "1", "--out", str(root / "plan")],
    }
    for name, argv in runs.items():
        assert main([*argv, "--quiet"]) == 0, name
    return root


@pytest.mark.parametrize("kind,figures", [("run", 8), ("shared", 8), ("replications", 9), ("compare", 4),
                                          ("sweep", 3), ("plan", 1)])
def test_report_loads_without_errors_or_empty_figures(browser, reports, tmp_path, kind, figures):
    out = load(browser, reports / kind / "report.html", tmp_path)
    assert_clean(out, figures)
    if kind in ("run", "replications", "compare"):
        assert out["zoom"] is not None and out["zoom"]["figures"] >= 2


def test_latency_log_axis_stops_near_the_highest_limit(browser, reports, tmp_path):
    """The default SLO's highest latency line is the 2000 ms alert: a log axis that ends near
    log10(2000) = 3.3, not at 10^200 (where an annotation at y=200 would land, unconverted)."""
    out = load(browser, reports / "run" / "report.html", tmp_path)
    fig = next(f for f in out["figures"] if f["id"] == "fig-latency")
    assert fig["y"]["type"] == "log"
    low, high = fig["y"]["range"]
    assert math.log10(2000) <= high < math.log10(2000) + 0.5 and low > -2


def test_instance_axis_ticks_are_whole_numbers(browser, reports, tmp_path):
    out = load(browser, reports / "run" / "report.html", tmp_path)
    ticks = next(f for f in out["figures"] if f["id"] == "fig-load_capacity")["y2ticks"]
    assert ticks and all(float(t).is_integer() for t in ticks) and len(set(ticks)) == len(ticks), ticks


def test_shared_plotly_js_is_one_file_beside_the_reports(reports):
    page = (reports / "shared" / "report.html").read_text(encoding="utf-8")
    copies = list(reports.glob("plotly-*.min.js"))
    assert len(copies) == 1 and f'src="../{copies[0].name}"' in page
    assert "* plotly.js v" not in page and len(page) < 2_000_000
    assert (reports / "run" / "report.html").read_text(encoding="utf-8").count("* plotly.js v") == 1
