"""The run and replications pages of ``capsim.report.pages`` (and what every page shares)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from capsim.experiments.compare import HEADLINE
from capsim.report import experiment_figures as xf
from capsim.report.data import RunFiles
from capsim.report.html import Page
from capsim.report.run_figures import TIME_FIGURES, run_figures
from capsim.report.tables import (endpoint_table, replication_tiles, resource_table, run_tiles, scaling_table,
                                  slo_rows, stats_table)
from capsim.results.text import fidelity_lines, summary_lines

__all__ = ["run_page", "replications_page", "add_figures", "read_series"]


def add_figures(page: Page, figures: dict, prefix: str = "", time_keys=()) -> Page:
    """Add each figure that has something to draw; name the others in a note."""
    empty = []
    for name, fig in figures.items():
        if any(_has_points(t) for t in fig.data):
            page.figure(f"{prefix}{name}", fig, time=name in time_keys)
        else:
            notes = [a.text for a in fig.layout.annotations if a.xref == "paper" and a.x == 0.5]
            empty.append(f"{fig.layout.title.text or name}" + (f" ({notes[0]})" if notes else ""))
    if empty:
        page.text(f"{prefix}Not shown", "Nothing to draw in this run: " + "; ".join(empty) + ".")
    return page


def _has_points(trace) -> bool:
    """The trace has at least one number to draw (in y, or z for a heatmap)."""
    for key in ("y", "z"):
        values = getattr(trace, key, None)
        if values is not None:
            flat = pd.Series(np.asarray(values, dtype=object).ravel())
            if pd.to_numeric(flat, errors="coerce").notna().any():
                return True
    return False


def _run_section(page: Page, run: RunFiles, prefix: str = "") -> Page:
    simulated = int(run.timeseries["arrivals"].sum()) if "arrivals" in run.timeseries else None
    slug = f"{prefix.strip(': ').lower().replace(' ', '-')}-" if prefix else ""
    page.table(f"{prefix}Summary", summary_lines(run.summary, simulated),
               "Totals cover the measured window after the warm-up; the curves show the warm-up shaded.")
    if fidelity_lines(run.summary.get("fidelity")):
        page.table(f"{prefix}Fast mode: validity", fidelity_lines(run.summary["fidelity"]),
                   "Expected values from closed forms per step; where a check fired, the request level is the reference.")
    if run.summary.get("slo"):
        page.table(f"{prefix}Objectives and alerts", slo_rows(run.summary["slo"]), run.summary["slo"].get(
            "evaluated_on", ""))
    if run.summary.get("latency_by_endpoint_ms"):
        page.table(f"{prefix}Latency per endpoint (measured window)", endpoint_table(run.summary),
                   "Every response of the endpoint, whatever its outcome (a 429 is fast).")
    page.table(f"{prefix}Resources: utilisation and queues (measured window)", resource_table(run),
               "Mean over the measured intervals and the peak interval.")
    events = scaling_table(run)
    page.table(f"{prefix}Scaling events ({len(events)})", events if len(events) else [("events", "none")],
               "Times on the scenario's calendar; warm-up events included.", collapsed=len(events) > 12)
    return add_figures(page, run_figures(run), slug, TIME_FIGURES)


def run_page(folder) -> Page:
    run = RunFiles.read(folder)
    desc = (run.scenario or {}).get("description", "")
    page = Page(f"capsim run: {run.summary['scenario']}", desc).tiles(run_tiles(run.summary))
    return _run_section(page, run)


def read_series(folder) -> pd.DataFrame | None:
    path = Path(folder) / "replications_timeseries.csv"
    return pd.read_csv(path) if path.exists() else None


def replications_page(folder) -> Page:
    folder = Path(folder)
    run = RunFiles.read(folder)
    info = run.summary.get("replication_info", {})
    block = run.summary["replications"]
    page = Page(f"capsim run: {run.summary['scenario']}, {info.get('finished')} of {info.get('replications')} "
                "replications", info.get("warmup", "")).tiles(replication_tiles(block))
    page.table("Headline metrics: mean and 95% interval (Student t) over the replications",
               stats_table(block, list(HEADLINE)), f"seeds: {info.get('seed_rule', '')}")
    page.table("Every metric", stats_table(block, [m for m in HEADLINE if m in block]
                                           + sorted(m for m in block if m not in HEADLINE)), collapsed=True)
    series = read_series(folder)
    if series is not None and len(series):
        page.figure("bands", xf.bands({"replications": series}, run), time=True)
    reps = pd.read_csv(folder / "replications.csv") if (folder / "replications.csv").exists() else pd.DataFrame()
    if {xf.COST, xf.P95} <= set(reps.columns):
        page.figure("cost-vs-p95", xf.cost_vs_p95(reps, labels=["replications"]))
    if not run.timeseries.empty:
        _run_section(page, run, "Replication 1: ")
    return page
