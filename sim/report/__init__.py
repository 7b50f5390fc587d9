"""Figures and HTML reports.

Figure functions return plotly ``Figure`` objects, so notebooks show the same pictures
as the reports::

    import capsim, capsim.report as rep
    result = capsim.run(capsim.load_scenario("scenarios/launch.yaml", ["horizon=6h"]))
    rep.latency(result).show()
    rep.run_figures(result)            # every run figure, in report order

    rep.write_report("capsim-out/launch")       # report.html from an output folder

Run figures take a ``capsim.Result`` or ``RunFiles.read(folder)``; experiment figures take
what ``capsim.replicate`` / ``capsim.experiments.compare`` / ``capsim.experiments.sweep`` / ``capsim.capacity_plan`` return
or what they write.
"""
from __future__ import annotations

from capsim.report.data import RunFiles
from capsim.report.experiment_figures import bands, cost_vs_p95, forest, overlay, plan_costs
from capsim.report.html import Page, Tile, figure_data, shared_plotly_js
from capsim.report.images import find_browser, image_support, write_images
from capsim.report.pages import build_page, report_kind, write_report
from capsim.report.run_figures import (cache_hit_rates, cost, database, fleet_cpu, latency, latency_by_endpoint,
                                       latency_distribution, load_capacity, outcomes, run_figures, sockets,
                                       utilisation_heatmap)
from capsim.report.sweep_figures import pareto, pareto_front, read_sweep, sweep_curves, sweep_figures

__all__ = ["RunFiles", "load_capacity", "fleet_cpu", "latency", "latency_by_endpoint", "latency_distribution",
           "outcomes", "database", "cache_hit_rates", "utilisation_heatmap", "sockets", "cost", "run_figures",
           "cost_vs_p95", "overlay", "bands", "forest", "sweep_curves", "pareto", "pareto_front", "sweep_figures",
           "read_sweep", "plan_costs", "Page", "Tile", "figure_data", "shared_plotly_js", "build_page",
           "report_kind", "write_report", "find_browser", "image_support", "write_images"]
