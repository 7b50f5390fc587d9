"""Figures of experiments: replications, A/B comparisons, sweeps and capacity plans.

- ``cost_vs_p95(*sides)``: monthly cost against latency p95, one point per replication
  (paired replications of a CRN comparison joined by a thin line);
- ``overlay(a, b)``: A's and B's time series (replication 1) on shared axes;
- ``forest(comparison)``: paired differences B - A with 95% intervals, in % of A;
- ``sweep_curves(table, param)``: a metric's mean and interval against the swept parameter;
- ``pareto(table)``: every sweep point's cost against p95, the non-dominated ones joined;
- ``plan_costs(plan)``: the capacity plan's cheapest monthly cost per load level beside
  the seed's guesses.

Inputs are the objects the experiments return or what they write (tables and dicts), so
``capsim report`` can draw them again from an output folder.
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from capsim.report.data import time_hours
from capsim.report.run_figures_infra import note
from capsim.experiments.sweep import STAT_COLUMNS

__all__ = ["cost_vs_p95", "overlay", "forest", "sweep_curves", "pareto", "pareto_front", "plan_costs",
           "sweep_figures", "COST", "P95"]

COST, P95 = "monthly_cost_usd", "latency_ms.p95"
LAYOUT = dict(template="plotly_white", height=420, legend=dict(orientation="h", y=-0.2))
OVERLAY = {"instances_ready": "ready instances", "latency_p95_ms": "latency p95 (ms)",
           "cpu_util": "CPU utilisation", "cost_usd_cum": "cumulative cost ($)"}


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
    for t, label in zip(tables, labels):
        text = [f"replication {r}, seed {s}" for r, s in zip(t.get("replication", t.index + 1),
                                                             t.get("seed", [""] * len(t)))]
        fig.add_trace(go.Scatter(x=t[P95], y=t[COST], mode="markers", name=label, text=text, marker=dict(size=10),
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
            fig.add_trace(go.Scatter(x=time_hours(ts), y=ts[c], name=label, legendgroup=label,
                                     showlegend=row == 1, line=dict(dash=dash, color=color),
                                     line_shape="hv" if c.startswith("instances") else "linear"), row=row, col=1)
    fig.update_xaxes(title_text="simulated time (h)", row=len(columns), col=1)
    fig.update_layout(**{**LAYOUT, "height": 220 * len(columns) + 100},
                      title=f"{labels[0]} and {labels[1]}, replication 1")
    return fig


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
    text = [f"A {_num(ms[m]['a'])}, B {_num(ms[m]['b'])}<br>B − A {_num(ms[m]['diff'])} "
            f"[{_num(ms[m].get('ci_low'))}, {_num(ms[m].get('ci_high'))}]<br>p = {_num(ms[m].get('p_value'))}<br>"
            f"{ms[m].get('verdict', '')}" for m in shown]
    fig = go.Figure(go.Scatter(
        x=x, y=[HEADLINE[m][0] if m in HEADLINE else m for m in shown], mode="markers", text=text,
        marker=dict(size=11, color=["#d62728" if s else "#7f7f7f" for s in sig]),
        error_x=dict(type="data", symmetric=False, array=[(h - v) if h is not None else 0 for h, v in zip(hi, x)],
                     arrayminus=[(v - lo_) if lo_ is not None else 0 for lo_, v in zip(lo, x)]),
        hovertemplate="%{y}: %{x:.2f}% of A<br>%{text}<extra></extra>", name="B − A"))
    fig.add_vline(x=0, line=dict(color="black", width=1))
    note = ("not shown (A's mean is 0): " + ", ".join(skipped)) if skipped else ""
    fig.update_layout(title="B − A with 95% confidence intervals (red: interval excludes 0)",
                      xaxis_title="difference, % of A's mean" + (f"<br><sub>{note}</sub>" if note else ""),
                      yaxis=dict(autorange="reversed"), **{**LAYOUT, "height": 120 + 45 * max(len(shown), 1)})
    return fig


def _num(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.4g}"


# -- sweeps ---------------------------------------------------------------------------------
def sweep_params(table: pd.DataFrame) -> list[str]:
    fixed = {"point", "metric", "error", *STAT_COLUMNS}
    return [c for c in table.columns if c not in fixed]


def _sorted_values(values: pd.Series) -> list:
    vals = list(dict.fromkeys(values))
    try:
        return sorted(vals, key=float)
    except (TypeError, ValueError):
        return vals


def sweep_curves(table: pd.DataFrame, param: str, metric: str = COST, by: str | None = None) -> go.Figure:
    """``metric``'s mean with its 95% interval against ``param``, one line per value of ``by``."""
    rows = table[table["metric"] == metric]
    groups = [(None, rows)] if by is None else [(v, rows[rows[by] == v]) for v in _sorted_values(rows[by])]
    fig = go.Figure()
    for value, g in groups:
        g = g.assign(_x=pd.Categorical(g[param], _sorted_values(rows[param]), ordered=True)).sort_values("_x")
        fig.add_trace(go.Scatter(
            x=[str(v) for v in g[param]], y=g["mean"], mode="lines+markers",
            name=metric if value is None else f"{by}={value}",
            error_y=dict(type="data", symmetric=False, array=g["ci_high"] - g["mean"],
                         arrayminus=g["mean"] - g["ci_low"])))
    fig.update_layout(title=f"{metric} against {param} (mean, 95% CI)", xaxis_title=param, yaxis_title=metric,
                      xaxis_type="category", **LAYOUT)
    return fig


def pareto_front(points: pd.DataFrame, cost: str = COST, latency: str = P95) -> pd.DataFrame:
    """The points no other point beats on both cost and latency (lower is better), by cost."""
    pts = points.dropna(subset=[cost, latency]).sort_values([cost, latency])
    best, keep = math.inf, []
    for i, r in pts.iterrows():
        if r[latency] < best:
            best = r[latency]
            keep.append(i)
    return pts.loc[keep]


def pareto(table: pd.DataFrame, cost: str = COST, latency: str = P95) -> go.Figure:
    """Each sweep point's mean cost against mean latency; the cost–latency Pareto front joined."""
    params = sweep_params(table)
    wide = table.pivot_table(index="point", columns="metric", values="mean", aggfunc="first")
    labels = table.drop_duplicates("point").set_index("point")[params]
    pts = wide.join(labels)
    if cost not in pts or latency not in pts:
        return _empty(f"no {cost} / {latency} in this sweep")
    pts["label"] = [", ".join(f"{p}={r[p]}" for p in params) for _, r in pts.iterrows()]
    front = pareto_front(pts, cost, latency)
    fig = go.Figure([
        go.Scatter(x=pts[latency], y=pts[cost], mode="markers", name="sweep points", text=pts["label"],
                   marker=dict(size=9, color="#7f7f7f"),
                   hovertemplate="%{text}<br>p95 %{x:.1f} ms<br>$%{y:.2f}/month<extra></extra>"),
        go.Scatter(x=front[latency], y=front[cost], mode="lines+markers", name="Pareto front", text=front["label"],
                   line=dict(color="#d62728"), marker=dict(size=11),
                   hovertemplate="%{text}<br>p95 %{x:.1f} ms<br>$%{y:.2f}/month<extra></extra>")])
    fig.update_layout(title="Cost against latency: the points nothing beats on both", xaxis_title="latency p95 (ms)",
                      yaxis_title="monthly cost ($)", **LAYOUT)
    return fig


def sweep_figures(table: pd.DataFrame) -> dict[str, go.Figure]:
    """Cost and p95 against the first parameter (a line per value of the second), and the front."""
    params = sweep_params(table)
    if not params or table["metric"].isna().all():
        return {"sweep": _empty("no finished sweep points")}
    param, by = params[0], (params[1] if len(params) > 1 else None)
    return {"sweep_cost": sweep_curves(table, param, COST, by), "sweep_p95": sweep_curves(table, param, P95, by),
            "pareto": pareto(table)}


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
