"""``report.html`` of ``capsim compare``, ``sweep`` and ``plan`` output folders (see ``pages``)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from capsim.experiments.compare import HEADLINE
from capsim.report import experiment_figures as xf
from capsim.report import sweep_figures as sf
from capsim.report.data import RunFiles
from capsim.report.html import Page, Tile
from capsim.report.labels import format_number, format_value, metric_label, metric_unit
from capsim.report.pages_run import add_figures, read_series
from capsim.report.tables import comparison_table, comparison_tiles

__all__ = ["compare_page", "sweep_page", "plan_page", "sweep_table"]

SWEEP_METRICS = [sf.COST, sf.P95, "latency_ms.mean", "server_error_rate", "rejected_rate", "instance_hours",
                 "slo.violation_minutes"]


def compare_page(folder) -> Page:
    folder = Path(folder)
    doc = json.loads((folder / "comparison.json").read_text())
    ms = doc["metrics"]
    how = "common random numbers, paired t" if doc.get("common_random_numbers") else "independent seeds, Welch t"
    page = Page(f"capsim compare: {doc['replications']} replications ({how})",
                f"A: {doc['a']}  |  B: {doc['b']}  |  {doc.get('warmup', '')}").tiles(comparison_tiles(ms))
    page.table("Headline metrics: B − A with 95% intervals", comparison_table(ms, list(HEADLINE)),
               f"A: {doc['a']}; B: {doc['b']}")
    page.figure("forest", xf.forest(doc))
    sides = {s: folder / s for s in ("a", "b")}
    runs = [RunFiles.read(p) for p in sides.values() if (p / "timeseries.csv").exists()]
    series = {f"{s.upper()}": read_series(p) for s, p in sides.items()}
    if runs and all(t is not None and len(t) for t in series.values()):
        page.figure("bands", xf.bands(series, runs[0]), time=True)
    tables = [pd.read_csv(p / "replications.csv") for p in sides.values() if (p / "replications.csv").exists()]
    if len(tables) == 2 and all({xf.COST, xf.P95} <= set(t.columns) for t in tables):
        page.figure("cost-vs-p95", xf.cost_vs_p95(*tables))
    if len(runs) == 2:
        page.figure("overlay", xf.overlay(*runs), time=True)
    names = [m for m in HEADLINE if m in ms] + sorted(m for m in ms if m not in HEADLINE)
    page.table("Every metric", comparison_table(ms, names), collapsed=True)
    return page


def sweep_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point: its parameters and the headline metrics' means, with units."""
    params = sf.sweep_params(table)
    pts = sf.sweep_points(table)
    out = pd.DataFrame({"point": pts["point"].astype(str)})
    for p in params:
        out[p] = pts[p].astype(str)
    for m in SWEEP_METRICS:
        if m in pts:
            unit, scale = metric_unit(m)
            out[metric_label(m)] = [format_value(v, unit, scale) for v in pts[m]]
    out["error"] = pts["error"].fillna("").astype(str)
    return out if out["error"].str.len().any() else out.drop(columns="error")


def _screen_table(path: Path) -> pd.DataFrame:
    """The fast-mode screening of a multi-fidelity sweep: each point's values, rank, validity and whether it was confirmed."""
    raw = sf.read_sweep(path)
    extra = [c for c in ("rank", "valid", "confirmed") if c in raw]
    marks = raw.drop_duplicates("point").set_index("point")[extra]
    out = sweep_table(raw.drop(columns=extra))
    for c in extra:
        out.insert(1 if c == "rank" else len(out.columns), c,
                   [("yes" if str(v).lower() == "true" else "no") if c != "rank" else str(v)
                    for v in marks.loc[out["point"].astype(int), c]])
    return out.sort_values("rank", key=lambda r: r.astype(int)).reset_index(drop=True)


def _sweep_tiles(table: pd.DataFrame) -> list[Tile]:
    pts = sf.sweep_points(table)
    params = sf.sweep_params(table)
    failed = int(pts["error"].notna().sum())
    tiles = [Tile("points", f"{len(pts)}", f"{len(pts) - failed} finished, {failed} failed",
                  "bad" if failed else "good")]
    for metric, label in ((sf.COST, "cheapest point"), (sf.P95, "lowest latency p95")):
        if metric in pts and pts[metric].notna().any():
            best = pts.loc[pts[metric].idxmin()]
            unit, scale = metric_unit(metric)
            tiles.append(Tile(label, format_value(best[metric], unit, scale),
                              ", ".join(f"{p}={best[p]}" for p in params)))
    return tiles


def sweep_page(folder) -> Page:
    folder = Path(folder)
    table = sf.read_sweep(folder / "sweep.csv")
    params = sf.sweep_params(table)
    n = table["point"].nunique()
    page = Page(f"capsim sweep: {', '.join(params)}", f"{n} points; means over replications").tiles(
        _sweep_tiles(table))
    screen = folder / "sweep_screen.csv"
    page.table(f"Points (means over replications; all {n})" if not screen.exists() else
               f"Confirmed at the request level ({n} points; means over replications)", sweep_table(table))
    if screen.exists():
        page.table("Screened in the fast mode (every point once; expected values)", _screen_table(screen),
                   "Ranked by the sweep's --rank metrics; points the fast mode flagged outside its validity "
                   "(valid: no) come after the others; the best were confirmed above.")
    errors = table.dropna(subset=["error"]).drop_duplicates("point")
    if len(errors):
        page.table("Points that failed", errors[["point"] + params + ["error"]].astype(str))
    return add_figures(page, sf.sweep_figures(table))


def _plan_tiles(doc: dict) -> list[Tile]:
    tiles = []
    for a in doc["levels"]:
        best = a.get("cheapest")
        tiles.append(Tile(f"{a['level']} ({format_number(a['users'])} users)",
                          format_value(best["monthly_cost_usd"], "$") + "/month" if best else "none",
                          f"{best['count']} x {best['plan']}; the guide: {a['seed_instances']} x standard "
                          f"(${a['seed_cost']:.0f})" if best else "no configuration passed",
                          "good" if best else "bad"))
    return tiles


def _plan_table(path: Path) -> pd.DataFrame:
    t = pd.read_csv(path)
    out = pd.DataFrame({"level": t["level"], "users": t["users"].map(format_number),
                        "requests/s": t["rps"].map(format_number),
                        "the guide": [f"{int(n)} x standard (${c:.0f})" for n, c in zip(t["seed_instances"],
                                                                                      t["seed_cost"])]})
    for col in [c for c in t.columns if c.endswith("_count") and not c.startswith("cheapest")]:
        plan = col[: -len("_count")]
        out[plan] = [("none" if pd.isna(n) else f"{int(n)} (${c:.0f})") for n, c in
                     zip(t[col], t[f"{plan}_monthly_cost_usd"])]
    out["cheapest"] = [("none" if pd.isna(n) else f"{int(n)} x {p}: ${c:.2f}/month") for n, p, c in
                       zip(t["cheapest_count"], t["cheapest_plan"], t["cheapest_monthly_cost_usd"])]
    return out


def _tried_table(path: Path) -> pd.DataFrame:
    t = pd.read_csv(path)
    cols = {"level": ("level", None), "users": ("users", ""), "plan": ("plan", None), "count": ("instances", ""),
            "monthly_cost_usd": ("cost per month", "$"), "passed": ("passed", None),
            "latency_mean_ms": ("average response", "ms"), "latency_mean_ms_ci_high": ("its 95% upper bound", "ms"),
            "error_rate": ("error rate", "%"), "error_rate_ci_high": ("its 95% upper bound ", "%"),
            "rejected_rate": ("rejected (429)", "%"), "note": ("note", None)}
    out = pd.DataFrame()
    for c, (label, unit) in cols.items():
        if c in t:
            out[label] = t[c].astype(object).where(t[c].notna(), "").astype(str) if unit is None else [
                format_value(v, unit, 100.0 if unit == "%" else 1.0) for v in t[c]]
    return out


def plan_page(folder) -> Page:
    folder = Path(folder)
    doc = json.loads((folder / "plan.json").read_text())
    s = doc["settings"]
    page = Page("capsim plan: cheapest configuration per load level",
                f"average response <= {s['latency_mean_ms']:g} ms and {s.get('error_rate_counts', 'error rate')} <= "
                f"{100 * s['error_rate']:g}% on the upper 95% bound over {s['replications']} replications"
                ).tiles(_plan_tiles(doc))
    if (folder / "plan.csv").exists():
        page.table("Cheapest configuration per level, beside the guide's", _plan_table(folder / "plan.csv"),
                   "Per plan: the smallest passing instance count and its monthly cost.")
    page.figure("plan-costs", xf.plan_costs(doc))
    if (folder / "plan_tried.csv").exists():
        page.table("Every configuration tried", _tried_table(folder / "plan_tried.csv"), collapsed=True)
    return page
