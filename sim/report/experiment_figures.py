"""Figures of experiments: replications, A/B comparisons, sweeps and capacity plans.

- ``cost_vs_p95(*sides)``: monthly cost against latency p95, one point per replication
  (paired replications of a CRN comparison joined by a thin line);
- ``overlay(a, b)``: A's and B's time series (replication 1) on shared axes;
- ``bands(sides, run)``: per interval, the mean over the replications and the band from the
  lowest to the highest replication, one colour per side;
- ``forest(comparison)``: paired differences B - A with 95% intervals, in % of A, titled
  with what A and B are;
- ``plan_costs(plan)``: the capacity plan's cheapest monthly cost per load level beside
  the seed's guesses.

Sweep figures: ``capsim.report.sweep_figures``. Inputs are the objects the experiments
return or what they write (tables and dicts), so ``capsim report`` can draw them again
from an output folder.
"""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from capsim.report.labels import format_p, format_value, metric_label, metric_unit
from capsim.report.run_figures_infra import instance_axis, note
from capsim.report.sweep_figures import COST, P95
from capsim.report.timeaxis import time_axis, time_title, times

__all__ = ["cost_vs_p95", "overlay", "bands", "forest", "plan_costs", "COST", "P95", "BAND_LABELS"]

LAYOUT = dict(template="plotly_white", height=420, legend=dict(orientation="h", y=-0.2))
OVERLAY = {"instances_ready": "ready instances", "latency_p95_ms": "latency p95 (ms)",
           "cpu_util": "CPU utilisation (%)", "cost_usd_cum": "cumulative cost ($)"}
# per-interval columns drawn as bands over replications: (label, scale)
BAND_LABELS = {"arrivals": ("arrivals per interval", 1.0), "instances_ready": ("ready instances", 1.0),
               "cpu_util": ("CPU utilisation (%)", 100.0), "latency_p95_ms": ("latency p95 (ms)", 1.0),
               "server_error_rate": ("server error rate (%)", 100.0), "rejected_rate": ("rejected, 429 (%)", 100.0)}
SIDE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _tall(fig: go.Figure, height: int, title: str) -> go.Figure:
    """A tall stack of panels: the legend between the title and the first panel (not hundreds of px below)."""
    top, bottom = 140, 80
    legend = dict(orientation="h", yanchor="bottom", xanchor="left", x=0, y=1 + 40 / (height - top - bottom))
    fig.update_layout(**{**LAYOUT, "height": height, "legend": legend}, margin=dict(t=top, b=bottom),
                      title=dict(text=title, y=1 - 25 / height, yanchor="top"))
    return fig


def _table(side) -> pd.DataFrame:
    return side.table if hasattr(side, "table") and not callable(side.table) else pd.DataFrame(side)


# -- replications ---------------------------------------------------------------------------
def cost_vs_p95(*sides, labels=None) -> go.Figure:
    """Monthly cost ($) against latency p95 (ms) per replication of each side (``Replications``
    or its ``table``); with two sides of equal length, pairs (same seed) are joined."""
    labels = list(labels or (["A", "B"] if len(sides) == 2 else [f"run {i + 1}" for i in range(len(sides))]))
    tables = [_table(s) for s in sides]
    fig = go.Figure()
    if len(tables) == 2 and len(tables[0]) == len(tables[1]) and len(tables[0]):
        for (_, ra), (_, rb) in zip(tables[0].iterrows(), tables[1].iterrows()):
            fig.add_trace(go.Scatter(x=[ra[P95], rb[P95]], y=[ra[COST], rb[COST]], mode="lines",
                                     line=dict(color="lightgrey", width=1), showlegend=False, hoverinfo="skip"))
    for k, (t, label) in enumerate(zip(tables, labels)):
        text = [f"replication {r}, seed {s}" for r, s in zip(t.get("replication", t.index + 1),
                                                             t.get("seed", [""] * len(t)))]
        fig.add_trace(go.Scatter(x=t[P95], y=t[COST], mode="markers", name=label, text=text,
                                 marker=dict(size=10, color=SIDE_COLORS[k % len(SIDE_COLORS)]),
                                 hovertemplate="%{text}<br>p95 %{x:.1f} ms<br>$%{y:.2f}/month<extra>" + label
                                 + "</extra>"))
    fig.update_layout(title="Cost against latency, one point per replication", xaxis_title="latency p95 (ms)",
                      yaxis_title="monthly cost ($)", **LAYOUT)
    return fig


def overlay(a, b, columns=tuple(OVERLAY), labels=("A", "B")) -> go.Figure:
    """Time series of two runs (``capsim.Result`` / ``RunFiles``) overlaid, one panel per column."""
    columns = [c for c in columns if c in a.timeseries or c in b.timeseries]
    fig = make_subplots(rows=len(columns), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[OVERLAY.get(c, c) for c in columns])
    for run, label, dash, color in ((a, labels[0], "solid", "#1f77b4"), (b, labels[1], "dash", "#d62728")):
        ts = run.timeseries
        for row, c in enumerate(columns, start=1):
            if c not in ts:
                continue
            scale = 100.0 if c == "cpu_util" else 1.0
            fig.add_trace(go.Scatter(x=times(a, ts["t_end"].astype(float)), y=ts[c] * scale, name=label,
                                     legendgroup=label, showlegend=row == 1, line=dict(dash=dash, color=color),
                                     line_shape="hv" if c.startswith("instances") else "linear"), row=row, col=1)
    for row, c in enumerate(columns, start=1):
        if c.startswith("instances"):
            top = max(float(r.timeseries[c].max()) for r in (a, b) if c in r.timeseries)
            fig.update_yaxes(**instance_axis(top), row=row, col=1)
    time_axis(fig, a)
    fig.update_xaxes(title_text=time_title(a), row=len(columns), col=1)
    named = tuple(labels) != ("A", "B")
    return _tall(fig, 220 * len(columns) + 220,
                 f"A: {labels[0]} and B: {labels[1]}, replication 1" if named else "A and B, replication 1")


def bands(sides: dict, run, columns=tuple(BAND_LABELS)) -> go.Figure:
    """Per interval: the mean over the replications (line) and the range from the lowest to the highest
    replication (band), one colour per side. ``sides``: {label: DataFrame with replication, t_end and
    the columns} (``replications_timeseries.csv``); ``run``: where the calendar comes from."""
    columns = [c for c in columns if any(c in t for t in sides.values())]
    if not columns:
        return note(go.Figure(layout=LAYOUT), "no per-replication time series")
    fig = make_subplots(rows=len(columns), cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=[BAND_LABELS.get(c, (c, 1))[0] for c in columns])
    for k, (label, t) in enumerate(sides.items()):
        color = SIDE_COLORS[k % len(SIDE_COLORS)]
        n = t["replication"].nunique() if "replication" in t else 0
        for row, c in enumerate(columns, start=1):
            if c not in t:
                continue
            scale = BAND_LABELS.get(c, (c, 1.0))[1]
            g = t.groupby("t_end", sort=True)[c].agg(["mean", "min", "max"]) * scale
            x = times(run, g.index.to_numpy(dtype=float))
            fig.add_trace(go.Scatter(x=x, y=g["max"], mode="lines", line=dict(width=0), showlegend=False,
                                     legendgroup=label, hoverinfo="skip"), row=row, col=1)
            fig.add_trace(go.Scatter(x=x, y=g["min"], mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor=_rgba(color, 0.18), showlegend=False, legendgroup=label,
                                     hoverinfo="skip"), row=row, col=1)
            fig.add_trace(go.Scatter(x=x, y=g["mean"], mode="lines", name=f"{label} (mean of {n}; band: range)",
                                     legendgroup=label, showlegend=row == 1, line=dict(color=color, width=1.5),
                                     hovertemplate=f"{label}: %{{y:.3g}}<extra></extra>"), row=row, col=1)
            if c.startswith("instances"):
                fig.update_yaxes(**instance_axis(float(g["max"].max())), row=row, col=1)
    time_axis(fig, run)
    fig.update_xaxes(title_text=time_title(run), row=len(columns), col=1)
    for row, c in enumerate(columns, start=1):
        if c.endswith("_rate"):
            fig.update_yaxes(rangemode="tozero", row=row, col=1)
    fig.update_layout(hovermode="x unified")
    return _tall(fig, 200 * len(columns) + 220,
                 "Over the replications: mean per interval, band from the lowest to the highest")


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


# -- comparison -----------------------------------------------------------------------------
def _metrics(comparison) -> dict:
    return comparison.metrics() if hasattr(comparison, "metrics") else dict(comparison.get("metrics", comparison))


def forest(comparison, metrics=None) -> go.Figure:
    """Paired differences B - A with their 95% intervals, in % of A's mean (hover: absolute values).

    ``comparison``: a ``Comparison``, ``comparison.json`` as a dict, or its ``metrics``.
    Metrics whose A mean is 0 cannot be shown relative to it and are listed below the plot."""
    from capsim.experiments.compare import HEADLINE
    ms = _metrics(comparison)
    names = [m for m in (metrics or HEADLINE) if m in ms and ms[m].get("diff") is not None]
    shown, skipped = [], []
    for m in names:     # A = 0 and B = A: shown at 0; A = 0 and B != A: no relative scale
        (shown if ms[m]["a"] or not ms[m]["diff"] else skipped).append(m)

    def rel(m, k):
        v, a = ms[m].get(k), ms[m]["a"]
        return None if v is None else (100.0 * v / abs(a) if a else 0.0)
    x = [rel(m, "diff") for m in shown]
    lo = [rel(m, "ci_low") for m in shown]
    hi = [rel(m, "ci_high") for m in shown]
    sig = [lo_ is not None and (lo_ > 0 or hi_ < 0) for lo_, hi_ in zip(lo, hi)]
    text = [_hover(m, ms[m]) for m in shown]
    fig = go.Figure(go.Scatter(
        x=x, y=[metric_label(m) for m in shown], mode="markers", text=text,
        marker=dict(size=11, color=["#d62728" if s else "#7f7f7f" for s in sig]),
        error_x=dict(type="data", symmetric=False, array=[(h - v) if h is not None else 0 for h, v in zip(hi, x)],
                     arrayminus=[(v - lo_) if lo_ is not None else 0 for lo_, v in zip(lo, x)]),
        hovertemplate="%{y}: %{x:.2f}% of A<br>%{text}<extra></extra>", name="B − A"))
    fig.add_vline(x=0, line=dict(color="black", width=1))
    note = ("not shown (A's mean is 0): " + ", ".join(skipped)) if skipped else ""
    a_label, b_label = _labels(comparison)
    fig.update_layout(title=f"B − A with 95% confidence intervals (red: interval excludes 0)<br><sub>A: "
                            f"{html.escape(a_label)}<br>B: {html.escape(b_label)}</sub>",
                      xaxis_title="difference, % of A's mean" + (f"<br><sub>{note}</sub>" if note else ""),
                      yaxis=dict(autorange="reversed"), margin=dict(t=110),
                      **{**LAYOUT, "height": 180 + 45 * max(len(shown), 1)})
    return fig


def _labels(comparison) -> tuple[str, str]:
    """What A and B are: a Comparison's labels, or comparison.json's ``a`` and ``b``."""
    if hasattr(comparison, "label_a"):
        return comparison.label_a, comparison.label_b
    if isinstance(comparison, dict) and "a" in comparison and isinstance(comparison["a"], str):
        return comparison["a"], comparison["b"]
    return "A", "B"


def _hover(m: str, d: dict) -> str:
    unit, scale = metric_unit(m)
    f = lambda v: format_value(v, unit, scale)  # noqa: E731
    return (f"A {f(d['a'])}, B {f(d['b'])}<br>B − A {f(d['diff'])} [{f(d.get('ci_low'))}, {f(d.get('ci_high'))}]"
            f"<br>p = {format_p(d.get('p_value'))}<br>{d.get('verdict', '')}")


# -- capacity plan --------------------------------------------------------------------------
def plan_costs(plan) -> go.Figure:
    """Monthly cost per load level: the cheapest configuration found, each plan's, and the seed's guess.

    ``plan``: a ``capsim.experiments.plan.Plan`` or ``plan.json`` as a dict."""
    levels = plan.answer if hasattr(plan, "answer") else plan["levels"]
    users = [a["users"] for a in levels]
    names = [a["level"] for a in levels]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=users, y=[a["seed_cost"] for a in levels], name="seed's guess", mode="lines+markers",
                             text=[f"{n}: {a['seed_instances']} x standard" for n, a in zip(names, levels)],
                             line=dict(dash="dot", color="black"), hovertemplate="%{text}<br>$%{y:.0f}/month"))
    plans = list(dict.fromkeys(p for a in levels for p in a["by_plan"]))
    for p in plans:
        cells = [a["by_plan"].get(p) or {} for a in levels]
        fig.add_trace(go.Scatter(x=users, y=[c.get("monthly_cost_usd") for c in cells], name=p, mode="markers",
                                 text=[f"{n}: {c.get('count')} x {p}" for n, c in zip(names, cells)],
                                 hovertemplate="%{text}<br>$%{y:.0f}/month", marker=dict(size=9)))
    best = [a.get("cheapest") or {} for a in levels]
    fig.add_trace(go.Scatter(x=users, y=[b.get("monthly_cost_usd") for b in best], name="cheapest passing",
                             mode="lines+markers", line=dict(color="#d62728", width=3),
                             text=[f"{n}: {b.get('count')} x {b.get('plan')}" for n, b in zip(names, best)],
                             hovertemplate="%{text}<br>$%{y:.0f}/month"))
    fig.update_layout(title="Monthly cost against users: cheapest configuration meeting the objectives",
                      xaxis_title="concurrent users", yaxis_title="monthly cost ($)", **LAYOUT)
    return fig


def _empty(message: str) -> go.Figure:
    return note(go.Figure(layout=LAYOUT), message)
