"""Figures of a parameter sweep (``capsim.experiments.sweep``'s tidy table or ``sweep.csv``).

- ``sweep_curves(table, param)``: a metric's mean and interval against the swept parameter,
  one line per value of another;
- ``pareto(table)``: every point's cost against p95; the Pareto front (the points nothing
  beats on both) is drawn per *load level*: points are compared only with points at the
  same values of the load parameters (``workload.*``), so a cheap point at a light load
  never hides a configuration that serves a heavy one (no load parameter: one front).

``read_sweep(path)`` reads ``sweep.csv`` back with every parameter value as written:
``null`` (no autoscaler, say) stays the text ``null``, not a missing value that pandas'
pivots and groupings would drop.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from capsim.experiments.sweep import STAT_COLUMNS
from capsim.report.labels import metric_label, metric_unit
from capsim.report.run_figures_infra import note

__all__ = ["read_sweep", "sweep_params", "sweep_points", "front_groups", "sweep_curves", "pareto_front", "pareto",
           "sweep_figures", "COST", "P95"]

COST, P95 = "monthly_cost_usd", "latency_ms.p95"
LAYOUT = dict(template="plotly_white", height=420, legend=dict(orientation="h", y=-0.2))
_COLORS = qualitative.Plotly


def sweep_params(table: pd.DataFrame) -> list[str]:
    fixed = {"point", "metric", "error", *STAT_COLUMNS}
    return [c for c in table.columns if c not in fixed]


def read_sweep(path) -> pd.DataFrame:
    """``sweep.csv`` as written: parameter values as text (``null`` kept), statistics as numbers."""
    path = Path(path)
    raw = pd.read_csv(path, keep_default_na=False, dtype=str)
    out = raw.copy()
    for c in ["point", *STAT_COLUMNS]:
        out[c] = pd.to_numeric(raw[c].replace("", None), errors="coerce")
    out["point"] = out["point"].astype(int)
    out["metric"] = raw["metric"].replace("", None)
    out["error"] = raw["error"].replace("", None)
    for p in sweep_params(raw):      # numeric parameters stay numeric when every value is a number
        numbers = pd.to_numeric(raw[p], errors="coerce")
        if numbers.notna().all():
            out[p] = numbers
    return out


def sweep_points(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point: its parameter values and each metric's mean (columns named by metric)."""
    params = sweep_params(table)
    labels = table.drop_duplicates("point").set_index("point")[params + ["error"]]
    done = table.dropna(subset=["metric"])
    wide = done.pivot(index="point", columns="metric", values="mean") if len(done) else pd.DataFrame()
    return labels.join(wide).reset_index()


def front_groups(params: list[str]) -> list[str]:
    """The parameters that set the load level, ``workload.*``: a Pareto front per combination of their
    values (none: one front over every point)."""
    return [p for p in params if p.startswith("workload.")]


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
    unit, scale = metric_unit(metric)
    fig = go.Figure()
    for value, g in groups:
        g = g.assign(_x=pd.Categorical(g[param], _sorted_values(rows[param]), ordered=True)).sort_values("_x")
        fig.add_trace(go.Scatter(
            x=[str(v) for v in g[param]], y=g["mean"] * scale, mode="lines+markers",
            name=metric_label(metric) if value is None else f"{by}={value}",
            error_y=dict(type="data", symmetric=False, array=(g["ci_high"] - g["mean"]) * scale,
                         arrayminus=(g["mean"] - g["ci_low"]) * scale)))
    label = metric_label(metric)
    fig.update_layout(title=f"{label} against {param} (mean, 95% CI)", xaxis_title=param, yaxis_title=label,
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
    """Each sweep point's mean cost against mean latency; one Pareto front per load level."""
    params = sweep_params(table)
    pts = sweep_points(table)
    if cost not in pts or latency not in pts:
        return note(go.Figure(layout=LAYOUT), f"no {cost} / {latency} in this sweep")
    pts["label"] = [", ".join(f"{p}={r[p]}" for p in params) for _, r in pts.iterrows()]
    groups = front_groups(params)
    fig = go.Figure()
    hover = "%{text}<br>p95 %{x:.1f} ms<br>$%{y:.2f}/month<extra></extra>"
    parts = [((), pts)] if not groups else list(pts.groupby(groups, sort=False, dropna=False))
    for k, (level, g) in enumerate(parts):
        level = level if isinstance(level, tuple) else (level,)
        name = ", ".join(f"{p}={v}" for p, v in zip(groups, level)) or "all points"
        color = _COLORS[k % len(_COLORS)]
        front = pareto_front(g, cost, latency)
        fig.add_trace(go.Scatter(x=g[latency], y=g[cost], mode="markers", name=f"{name}: points", text=g["label"],
                                 legendgroup=name, marker=dict(size=9, color=color, opacity=0.45),
                                 hovertemplate=hover))
        fig.add_trace(go.Scatter(x=front[latency], y=front[cost], mode="lines+markers", name=f"{name}: Pareto front",
                                 text=front["label"], legendgroup=name, line=dict(color=color),
                                 marker=dict(size=11, color=color), hovertemplate=hover))
    per = f" (one front per {', '.join(groups)})" if groups else ""
    fig.update_layout(title=f"Cost against latency: the points nothing beats on both{per}",
                      xaxis_title="latency p95 (ms)", yaxis_title="monthly cost ($)", **LAYOUT)
    return fig


def sweep_figures(table: pd.DataFrame) -> dict[str, go.Figure]:
    """Cost and p95 against the first parameter (a line per value of the second), and the fronts."""
    params = sweep_params(table)
    if not params or table["metric"].isna().all():
        return {"sweep": note(go.Figure(layout=LAYOUT), "no finished sweep points")}
    param, by = params[0], (params[1] if len(params) > 1 else None)
    return {"sweep_cost": sweep_curves(table, param, COST, by), "sweep_p95": sweep_curves(table, param, P95, by),
            "pareto": pareto(table)}
