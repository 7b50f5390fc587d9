"""``report.html`` for an output folder of ``capsim run``, ``compare``, ``sweep`` or ``plan``.

Every report is drawn from the files the command wrote, so ``capsim report DIR`` redraws
it at any time. The kind is recognised by the files: ``comparison.json`` (compare),
``sweep.csv`` (sweep), ``plan.json`` (plan), ``summary.json`` with a ``replications``
block (run --replications), else ``summary.json`` (run). KPI tiles come first, then the
summary tables, then the figures; a figure with nothing to draw is left out and named in
a note. Time figures zoom together. ``plotly_js``: a folder holding one shared copy of
plotly.js for every report written with it (default: embedded, a self-contained page).
The run pages: ``capsim.report.pages_run``; compare, sweep and plan: ``capsim.report.pages_experiments``.
"""
from __future__ import annotations

import json
from pathlib import Path

from capsim.report.html import Page
from capsim.report.pages_experiments import compare_page, plan_page, sweep_page
from capsim.report.pages_run import replications_page, run_page

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


def write_report(folder, images: str | None = None, plotly_js=None) -> tuple[Path, list[Path], str | None]:
    """Write ``folder/report.html`` (and ``folder/images/*.png|svg`` when asked and possible).

    ``plotly_js``: a folder for one shared copy of plotly.js (None: embedded in the page).
    Returns (report path, images written, problem with images or None)."""
    folder = Path(folder)
    page = build_page(folder)
    path = page.write(folder / "report.html", shared_js_folder=plotly_js)
    if not images:
        return path, [], None
    from capsim.report.images import write_images
    written, problem = write_images(page.figures, folder / "images", images)
    return path, written, problem
