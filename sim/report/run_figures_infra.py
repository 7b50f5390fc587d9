"""Infrastructure figures of one run (re-exported by ``capsim.report.run_figures``).

- ``database``: pool connections in use / waiters per instance; server connections
  against ``max_connections`` and database utilisation.
- ``cache_hit_rates``: hit rate per cache class and overall (%).
- ``utilisation_heatmap``: CPU or memory utilisation, instance x time (%).
- ``sockets``: sockets per instance and the max - min imbalance.

Also the helpers every run figure shares (layout, warm-up shading, notes).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from capsim.report.data import scenario_value
from capsim.report.timeaxis import mark_calendar, shade_warmup, time_axis, time_title, times

__all__ = ["database", "cache_hit_rates", "utilisation_heatmap", "sockets", "HEATMAP_METRICS", "xs", "has", "line",
           "style", "decorate", "note", "per_second", "instance_axis"]

HEIGHT = 420
HEATMAP_METRICS = {"cpu_util": "CPU utilisation", "memory_util": "memory utilisation"}
_COLORS = qualitative.Plotly


# -- shared helpers ---------------------------------------------------------------------
def has(df: pd.DataFrame | None, *columns: str) -> bool:
    """``df`` has every column in ``columns`` with at least one value."""
    return df is not None and len(df) > 0 and all(c in df and df[c].notna().any() for c in columns)


def xs(run, df: pd.DataFrame, column: str = "t_end"):
    """The time axis values of ``df``'s rows (``timeaxis.times``); all NaN when ``df`` has no ``column``."""
    if column not in df:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return times(run, df[column].astype(float))


def per_second(df: pd.DataFrame, column: str) -> pd.Series:
    """``column`` divided by the interval length (a count per interval -> a rate)."""
    return df[column].astype(float) / (df["t_end"].astype(float) - df["t_start"].astype(float))


def line(x, y, name: str, fmt: str, **kw) -> go.Scatter:
    """A line trace whose hover reads ``name: value unit`` (``fmt``: e.g. ``%{y:.1f} req/s``)."""
    return go.Scatter(x=x, y=y, name=name, mode="lines", hovertemplate=f"{name}: {fmt}<extra></extra>", **kw)


def style(fig: go.Figure, title: str, ytitle: str, y2title: str | None = None, height: int = HEIGHT,
          run=None) -> go.Figure:
    """The common template: white, ``height``, horizontal legend at the bottom, the run's time on x."""
    fig.update_layout(template="plotly_white", height=height, title=title, hovermode="x unified",
                      legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0),
                      margin=dict(t=60, b=90, l=70, r=70))
    fig.update_xaxes(title_text=time_title(run))
    time_axis(fig, run)
    fig.update_layout(yaxis_title=ytitle)
    if y2title is not None:
        fig.update_layout(yaxis2=dict(title=y2title, overlaying="y", side="right", showgrid=False, tickmode="auto"))
    return fig


def decorate(fig: go.Figure, run, layer: str = "below", labels: bool = True, **where) -> go.Figure:
    """Warm-up band, event bands and schedule lines (``timeaxis``) on a time figure."""
    shade_warmup(fig, run, layer=layer, **where)
    return mark_calendar(fig, run, labels=labels, **where)


def note(fig: go.Figure, text: str) -> go.Figure:
    """A centred message on a figure that has nothing (or not everything) to show."""
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(size=14, color="grey"))
    return fig


def instance_axis(top) -> dict:
    """Axis settings for instance counts up to ``top``: whole numbers from 0 (a tick each up to 12)."""
    top = 1 if top is None or top != top else max(1, int(top))
    ticks = dict(tickmode="linear", tick0=0, dtick=1) if top <= 12 else dict(tickmode="auto")
    return dict(rangemode="tozero", tickformat="d", range=[0, top + 0.5], **ticks)


def _instances(run, column: str) -> pd.DataFrame | None:
    inst = getattr(run, "instances", None)
    return inst if has(inst, "t_end", "instance", column) else None


# -- database ---------------------------------------------------------------------------
def _pool_traces(fig: go.Figure, run) -> None:
    inst = _instances(run, "pool_in_use")
    if inst is None:           # no per-instance pool columns: the fleet totals
        ts = run.timeseries
        for col, name, dash in (("pool_in_use", "pool in use (all instances)", None),
                                ("pool_waiters", "pool waiters (all instances)", "dot")):
            if has(ts, col):
                fig.add_trace(line(xs(run, ts), ts[col], name, "%{y:.0f}", line_dash=dash), row=1, col=1)
        return
    for k, (iid, g) in enumerate(inst.sort_values("t_end").groupby("instance", sort=True)):
        color, x = _COLORS[k % len(_COLORS)], xs(run, g)
        fig.add_trace(line(x, g["pool_in_use"], f"instance {iid} in use", "%{y:.0f}", legendgroup=f"i{iid}",
                           line_color=color), row=1, col=1)
        if "pool_waiters" in g:
            fig.add_trace(line(x, g["pool_waiters"], f"instance {iid} waiters", "%{y:.0f}",
                               legendgroup=f"i{iid}", line=dict(color=color, dash="dot")), row=1, col=1)


def _server_traces(fig: go.Figure, run) -> None:
    ts, limit = run.timeseries, scenario_value(run, "database.max_connections", None)
    if has(ts, "db_connections"):
        fig.add_trace(line(xs(run, ts), ts["db_connections"], "server connections", "%{y:.0f}", line_color="black"),
                      row=2, col=1, secondary_y=False)
    if limit is not None:   # headroom above the limit line
        top = max(float(limit), float(ts["db_connections"].max()) if has(ts, "db_connections") else 0.0)
        fig.update_yaxes(range=[0, 1.12 * top], row=2, col=1, secondary_y=False)
        fig.add_hline(y=float(limit), line_dash="dash", line_color="firebrick", row=2, col=1,
                      annotation_text=f"max_connections {limit:g}", annotation_position="bottom right")
    if has(ts, "db_util"):
        fig.add_trace(line(xs(run, ts), ts["db_util"], "database utilisation", "%{y:.1%}",
                           line=dict(color="grey", width=1)), row=2, col=1, secondary_y=True)
    else:
        fig.add_annotation(text="database utilisation not tracked (no concurrency limit)", showarrow=False,
                           xref="x2 domain", yref="y2 domain", x=0.99, y=0.6, xanchor="right",
                           font=dict(color="grey"))


def database(run) -> go.Figure:
    """Pool connections per instance (row 1); server connections and utilisation (row 2)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        specs=[[{}], [{"secondary_y": True}]],
                        subplot_titles=("connection pool per instance", "database server"))
    _pool_traces(fig, run)
    _server_traces(fig, run)
    style(fig, "Database connections", "pool connections", height=HEIGHT + 140, run=run)
    fig.update_xaxes(title_text=None, row=1, col=1)
    fig.update_yaxes(title_text="server connections", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="utilisation", tickformat=".0%", range=[0, 1], row=2, col=1,
                     secondary_y=True, showgrid=False)
    pool = [np.nanmax(np.asarray(t.y, dtype=float)) for t in fig.data
            if t.name.startswith(("instance", "pool")) and t.y is not None and len(t.y)]
    fig.update_yaxes(**instance_axis(max(pool, default=1.0)), row=1, col=1)
    return decorate(fig, run, labels=False, row="all", col=1)


# -- cache ------------------------------------------------------------------------------
def cache_hit_rates(run) -> go.Figure:
    """Hit rate per cache class and overall (thicker), in %."""
    ts, fig = run.timeseries, go.Figure()
    classes = sorted(c for c in ts.columns if c.startswith("cache_hit_rate_") and has(ts, c))
    for col in classes:
        name = col.removeprefix("cache_hit_rate_").replace("_", " ")
        fig.add_trace(line(xs(run, ts), 100 * ts[col], name, "%{y:.1f}%", line_width=1.5))
    if has(ts, "cache_hit_rate"):
        fig.add_trace(line(xs(run, ts), 100 * ts["cache_hit_rate"], "overall", "%{y:.1f}%",
                           line=dict(color="black", width=3.5)))
    if not fig.data:
        note(fig, "no cache in this run")
    style(fig, "Cache hit rates", "hit rate (%)", run=run)
    fig.update_yaxes(range=[0, 100])
    return decorate(fig, run)


# -- utilisation heatmap ----------------------------------------------------------------
def _grid(run, metric: str) -> pd.DataFrame | None:
    inst = _instances(run, metric)
    if inst is None:
        return None
    grid = inst.pivot_table(index="instance", columns="t_end", values=metric, aggfunc="mean", dropna=False)
    if has(run.timeseries, "t_end"):   # every interval, even one in which no instance reported
        grid = grid.reindex(columns=sorted(run.timeseries["t_end"].astype(float)))
    return 100.0 * grid.sort_index()


def utilisation_heatmap(run, metric: str = "cpu_util") -> go.Figure:
    """``metric`` (cpu_util or memory_util) per instance (y) and interval (x), 0-100 %."""
    if metric not in HEATMAP_METRICS:
        raise ValueError(f"metric must be one of {sorted(HEATMAP_METRICS)}, got {metric!r}")
    label, fig, grid = HEATMAP_METRICS[metric], go.Figure(), _grid(run, metric)
    if grid is None:
        style(fig, f"{label} per instance", "instance", run=run)
        return note(fig, "no per-instance data in this run")
    names = [f"instance {i}" for i in grid.index]
    fig.add_trace(go.Heatmap(z=grid.to_numpy(dtype=float), x=times(run, np.asarray(grid.columns, float)), y=names,
                             zmin=0, zmax=100, colorscale="Viridis", colorbar=dict(title="%"),
                             hoverongaps=False, name=label,
                             hovertemplate="%{y}<br>%{x}<br>" + label + ": %{z:.1f}%<extra></extra>"))
    style(fig, f"{label} per instance (%; blank: not running)", "instance",
          height=max(HEIGHT, 160 + 22 * len(names)), run=run)
    fig.update_layout(hovermode="closest")
    return decorate(fig, run, layer="above", labels=False)


# -- sockets ----------------------------------------------------------------------------
def sockets(run) -> go.Figure:
    """Open sockets per instance, and the max - min spread across instances (stickiness)."""
    ts, fig, inst = run.timeseries, go.Figure(), _instances(run, "sockets")
    if inst is not None:
        for k, (iid, g) in enumerate(inst.sort_values("t_end").groupby("instance", sort=True)):
            fig.add_trace(line(xs(run, g), g["sockets"], f"instance {iid}", "%{y:.0f} sockets",
                               line_color=_COLORS[k % len(_COLORS)]))
    if has(ts, "sockets_max", "sockets_min"):
        fig.add_trace(line(xs(run, ts), ts["sockets_max"] - ts["sockets_min"], "imbalance (max − min)",
                           "%{y:.0f} sockets", line=dict(color="black", dash="dash")))
    if not fig.data:
        note(fig, "no sockets in this run")
    style(fig, "WebSocket connections per instance", "open sockets", run=run)
    fig.update_yaxes(rangemode="tozero", tickformat="d")
    return decorate(fig, run)
