"""``report.html`` for an output folder of ``capsim run``, ``compare``, ``sweep`` or ``plan``.

Every report is drawn from the files the command wrote, so ``capsim report DIR`` redraws
it at any time. The kind is recognised by the files: ``comparison.json`` (compare),
``sweep.csv`` (sweep), ``plan.json`` (plan), ``summary.json`` with a ``replications``
block (run --replications), else ``summary.json`` (run). Summary tables come first,
figures below.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from capsim.experiments.compare import HEADLINE
from capsim.report import experiment_figures as xf
from capsim.report.data import RunFiles
from capsim.report.html import Page
from capsim.report.run_figures import run_figures
from capsim.results.text import fidelity_lines, summary_lines

__all__ = ["report_kind", "build_page", "write_report", "run_page", "replications_page", "compare_page",
           "sweep_page", "plan_page"]


def report_kind(folder) -> str:
    folder = Path(folder)
    for kind, name in (("compare", "comparison.json"), ("sweep", "sweep.csv"), ("plan", "plan.json")):
        if (folder / name).exists():
            return kind
    summary = folder / "summary.json"
    if summary.exists():
        return "replications" if "replications" in json.loads(summary.read_text()) else "run"
    raise FileNotFoundError(f"{folder}: no summary.json, comparison.json, sweep.csv or plan.json "
                            "(expected an output folder of capsim run, compare, sweep or plan)")


def build_page(folder) -> Page:
    folder = Path(folder)
    return {"run": run_page, "replications": replications_page, "compare": compare_page, "sweep": sweep_page,
            "plan": plan_page}[report_kind(folder)](folder)


def write_report(folder, images: str | None = None) -> tuple[Path, list[Path], str | None]:
    """Write ``folder/report.html`` (and ``folder/images/*.png|svg`` when asked and possible).

    Returns (report path, images written, problem with images or None)."""
    folder = Path(folder)
    page = build_page(folder)
    path = page.write(folder / "report.html")
    if not images:
        return path, [], None
    from capsim.report.images import write_images
    written, problem = write_images(page.figures, folder / "images", images)
    return path, written, problem


# -- one run --------------------------------------------------------------------------------
def _slo_rows(block: dict | None) -> list[tuple[str, str]]:
    if not block:
        return []
    rows = []
    for name, o in block.get("objectives", {}).items():
        state = "met" if o.get("met") else "MISSED" if o.get("met") is False else "n/a"
        rows.append((f"objective {name}", f"{state}: {o.get('value')} against {o.get('limit')} "
                                          f"({o.get('violation_minutes')} min in violation)"))
    for name, t in block.get("thresholds", {}).items():
        rows.append((f"threshold {name}", f"{t['metric']} > {t['above']:g}: {t['violation_minutes']:g} min"))
    for name, a in block.get("alerts", {}).items():
        rows.append((f"alert {name}", f"{a['metric']} > {a['above']:g} for {a['for_seconds']:g} s: fired "
                                      f"{a['fired']} times, {a['firing_minutes']:g} min firing"))
    if "evaluated_on" in block:
        rows.append(("evaluated on", block["evaluated_on"]))
    return rows


def _run_section(page: Page, run: RunFiles, prefix: str = "") -> Page:
    simulated = int(run.timeseries["arrivals"].sum()) if "arrivals" in run.timeseries else None
    page.table(f"{prefix}Summary", summary_lines(run.summary, simulated),
               "Totals cover the measured window after the warm-up; the curves show the warm-up shaded.")
    if fidelity_lines(run.summary.get("fidelity")):
        page.table(f"{prefix}Fast mode: validity", fidelity_lines(run.summary["fidelity"]),
                   "Expected values from closed forms per step; where a check fired, the request level is the reference.")
    if run.summary.get("slo"):
        page.table(f"{prefix}Objectives and alerts", _slo_rows(run.summary["slo"]))
    for name, fig in run_figures(run).items():
        page.figure(f"{prefix.strip(': ').lower().replace(' ', '-')}{'-' if prefix else ''}{name}", fig)
    return page


def run_page(folder) -> Page:
    run = RunFiles.read(folder)
    desc = (run.scenario or {}).get("description", "")
    return _run_section(Page(f"capsim run: {run.summary['scenario']}", desc), run)


def _stats_table(block: dict) -> pd.DataFrame:
    names = [m for m in HEADLINE if m in block] + sorted(m for m in block if m not in HEADLINE)
    return pd.DataFrame([{"metric": m, **{k: block[m].get(k) for k in ("mean", "ci_low", "ci_high", "half_width",
                                                                         "n")}} for m in names])


def replications_page(folder) -> Page:
    folder = Path(folder)
    run = RunFiles.read(folder)
    info = run.summary.get("replication_info", {})
    page = Page(f"capsim run: {run.summary['scenario']}, {info.get('finished')} of {info.get('replications')} "
                "replications", info.get("warmup", ""))
    stats = _stats_table(run.summary["replications"])
    page.table("Headline metrics: mean and 95% interval (Student t) over the replications",
               stats[stats["metric"].isin(list(HEADLINE))], f"seeds: {info.get('seed_rule', '')}")
    page.table("Every metric", stats, collapsed=True)
    reps = pd.read_csv(folder / "replications.csv") if (folder / "replications.csv").exists() else pd.DataFrame()
    if {xf.COST, xf.P95} <= set(reps.columns):
        page.figure("cost-vs-p95", xf.cost_vs_p95(reps, labels=["replications"]))
    if not run.timeseries.empty:
        _run_section(page, run, "Replication 1: ")
    return page


# -- comparison, sweep, plan ----------------------------------------------------------------
def compare_page(folder) -> Page:
    folder = Path(folder)
    doc = json.loads((folder / "comparison.json").read_text())
    ms = doc["metrics"]
    head = pd.DataFrame([{"metric": m, **{k: ms[m].get(k) for k in ("a", "b", "diff", "ci_low", "ci_high",
                                                                      "p_value", "verdict")}}
                         for m in HEADLINE if m in ms])
    how = "common random numbers, paired t" if doc.get("common_random_numbers") else "independent seeds, Welch t"
    page = Page(f"capsim compare: {doc['replications']} replications ({how})",
                f"A: {doc['a']}  |  B: {doc['b']}  |  {doc.get('warmup', '')}")
    page.table("Headline metrics: B − A with 95% intervals", head)
    page.figure("forest", xf.forest(doc))
    sides = {s: folder / s for s in ("a", "b")}
    tables = [pd.read_csv(p / "replications.csv") for p in sides.values() if (p / "replications.csv").exists()]
    if len(tables) == 2 and all({xf.COST, xf.P95} <= set(t.columns) for t in tables):
        page.figure("cost-vs-p95", xf.cost_vs_p95(*tables))
    runs = [RunFiles.read(p) for p in sides.values() if (p / "timeseries.csv").exists()]
    if len(runs) == 2:
        page.figure("overlay", xf.overlay(*runs))
    page.table("Every metric", pd.DataFrame([{"metric": m, **v} for m, v in ms.items()]), collapsed=True)
    return page


def sweep_page(folder) -> Page:
    folder = Path(folder)
    table = pd.read_csv(folder / "sweep.csv")
    params = xf.sweep_params(table)
    wanted = [xf.COST, xf.P95, "error_rate", "instance_hours"]
    rows = table[table["metric"].isin(wanted)]
    wide = rows.pivot_table(index=["point"] + params, columns="metric", values="mean", aggfunc="first").reset_index()
    page = Page(f"capsim sweep: {', '.join(params)}", f"{table['point'].nunique()} points; means over replications")
    page.table("Points (means)", wide)
    errors = table.dropna(subset=["error"]).drop_duplicates("point")
    if len(errors):
        page.table("Points that failed", errors[["point"] + params + ["error"]])
    for name, fig in xf.sweep_figures(table).items():
        page.figure(name, fig)
    return page


def plan_page(folder) -> Page:
    folder = Path(folder)
    doc = json.loads((folder / "plan.json").read_text())
    s = doc["settings"]
    page = Page("capsim plan: cheapest configuration per load level",
                f"average response <= {s['latency_mean_ms']:g} ms and error rate <= {100 * s['error_rate']:g}% "
                f"on the upper 95% bound over {s['replications']} replications")
    if (folder / "plan.csv").exists():
        page.table("Cheapest configuration per level, beside the seed's guess", pd.read_csv(folder / "plan.csv"))
    page.figure("plan-costs", xf.plan_costs(doc))
    if (folder / "plan_tried.csv").exists():
        page.table("Every configuration tried", pd.read_csv(folder / "plan_tried.csv"), collapsed=True)
    return page
