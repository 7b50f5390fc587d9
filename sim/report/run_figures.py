"""Plotly figures of ONE simulation run, in the report's order.

Every function takes ``run``: anything with ``summary``, ``timeseries``, ``instances``,
``scaling_events`` and ``scenario`` (``capsim.Result`` or ``capsim.report.data.RunFiles``),
and returns a ``plotly.graph_objects.Figure`` with simulated time in hours on x and the
warm-up shaded grey. Missing optional columns (cache, sockets, sessions, db_*) leave a
trace out or show a note; they never raise.

- ``load_capacity``: arrivals/s and concurrent sessions; instances running, ready and
  desired (right axis) with the scaling events.
- ``latency``: p50, p95, p99 and mean latency (ms) against the SLO's latency limits.
- ``outcomes``: responses/s by outcome (stacked) and the error share (right axis).
- ``database``, ``cache_hit_rates``, ``utilisation_heatmap``, ``sockets``: see
  ``capsim.report.run_figures_infra``.
- ``cost``: cumulative cost and the running monthly projection (right axis).
- ``run_figures``: all of them, keyed in the report's order.
"""
from __future__ import annotations

import plotly.graph_objects as go

from capsim.models.request import OUTCOMES
from capsim.report.data import scenario_value
from capsim.report.run_figures_infra import (cache_hit_rates, database, has, hours, line, note, per_second, shade_warmup,
                                          sockets, style, utilisation_heatmap)
from capsim.scenario.slo import SLOConfig

__all__ = ["load_capacity", "latency", "outcomes", "database", "cache_hit_rates", "utilisation_heatmap",
           "sockets", "cost", "run_figures", "slo_lines", "OUTCOME_ORDER"]

OUTCOME_ORDER = ("ok", "rate_limited", "pool_timeout", "db_refused", "circuit_open", "shed", "timeout",
                 "unavailable", "crashed", "terminated", "db_error")
OUTCOME_ORDER += tuple(o for o in OUTCOMES if o not in OUTCOME_ORDER)   # any outcome added later
_OUTCOME_COLORS = {"ok": "seagreen", "rate_limited": "gold", "pool_timeout": "darkorange",
                   "db_refused": "orangered", "circuit_open": "orchid", "shed": "slateblue",
                   "timeout": "firebrick", "unavailable": "dimgrey", "crashed": "black"}
_LATENCIES = (("latency_p50_ms", "p50"), ("latency_p95_ms", "p95"), ("latency_p99_ms", "p99"),
              ("latency_mean_ms", "mean"))
_INSTANCE_LINES = (("instances", "instances running", "solid"), ("instances_ready", "instances ready", "dot"),
                   ("instances_managed", "instances desired", "dash"))


# -- load and capacity ------------------------------------------------------------------
def _scaling_markers(fig: go.Figure, events) -> None:
    if not has(events, "time", "to"):
        return
    n = len(events)
    frm, why = events.get("from", [""] * n), events.get("reason", [""] * n)
    text = [f"{f} → {t}: {r}" for f, t, r in zip(frm, events["to"], why)]
    fig.add_trace(go.Scatter(x=events["time"].astype(float) / 3600, y=events["to"], mode="markers",
                             name="scaling events", yaxis="y2", text=text,
                             hovertemplate="scaling %{text}<extra></extra>",
                             marker=dict(symbol="diamond", size=10, color="firebrick")))


def load_capacity(run) -> go.Figure:
    """Arrivals/s and concurrent sessions (left); instances and scaling events (right)."""
    ts, fig = run.timeseries, go.Figure()
    x = hours(ts)
    if has(ts, "arrivals", "t_start"):
        fig.add_trace(line(x, per_second(ts, "arrivals"), "arrivals", "%{y:.1f} req/s"))
    if has(ts, "sessions"):
        fig.add_trace(line(x, ts["sessions"], "concurrent sessions", "%{y:.0f} users"))
    for col, name, dash in _INSTANCE_LINES:
        if has(ts, col):
            fig.add_trace(line(x, ts[col], name, "%{y:.0f}", yaxis="y2", line_shape="hv", line_dash=dash))
    _scaling_markers(fig, getattr(run, "scaling_events", None))
    style(fig, "Load and capacity", "arrivals (req/s) · sessions (users)", y2title="instances")
    fig.update_layout(yaxis=dict(rangemode="tozero"), yaxis2=dict(rangemode="tozero", dtick=1))
    return shade_warmup(fig, ts)


# -- latency ----------------------------------------------------------------------------
def _slo_config(run, slo) -> SLOConfig:
    found = slo if slo is not None else scenario_value(run, "slo")
    if isinstance(found, SLOConfig):
        return found
    return SLOConfig.model_validate(found) if isinstance(found, dict) else SLOConfig()


def slo_lines(config: SLOConfig) -> list[tuple[float, str, str]]:
    """(limit in ms, label, colour) of every objective, threshold and alert on a latency column."""
    short = dict(_LATENCIES)
    out = []
    if config.objectives.latency_mean_ms is not None:
        limit = config.objectives.latency_mean_ms
        out.append((limit, f"objective: mean < {limit:g} ms", "seagreen"))
    out += [(t.above, f"threshold {t.name}: {short[t.metric]} > {t.above:g} ms", "darkorange")
            for t in config.thresholds if t.metric in short]
    out += [(a.above, f"alert {a.name}: {short[a.metric]} > {a.above:g} ms for {a.for_ / 60:g} min", "firebrick")
            for a in config.alerts if a.metric in short]
    return out


def latency(run, slo: SLOConfig | None = None, log_y: bool | None = None) -> go.Figure:
    """p50, p95, p99 and mean latency (ms) with dashed lines at the SLO's latency limits.

    ``log_y`` None: a log axis when the highest limit is over 10x the highest p99, so
    neither the curves nor the lines are squashed."""
    ts, fig = run.timeseries, go.Figure()
    for col, name in _LATENCIES:
        if has(ts, col):
            fig.add_trace(line(hours(ts), ts[col], name, "%{y:.1f} ms", line_width=3 if name == "mean" else 1.5))
    for limit, label, color in slo_lines(_slo_config(run, slo)):
        fig.add_hline(y=limit, line_dash="dash", line_color=color, line_width=1,
                      annotation_text=label, annotation_position="top right", annotation_font_color=color)
    if not fig.data:
        note(fig, "no completed requests in this run")
    style(fig, "Response time", "latency (ms)")
    if log_y is None:
        limits = [limit for limit, _, _ in slo_lines(_slo_config(run, slo))]
        top = ts[[c for c, _ in _LATENCIES if has(ts, c)]].max().max() if fig.data else float("nan")
        log_y = bool(limits) and top == top and top > 0 and max(limits) > 10 * top
    fig.update_yaxes(type="log" if log_y else "linear")
    return shade_warmup(fig, ts)


# -- outcomes ---------------------------------------------------------------------------
def _shown_outcomes(ts) -> list[str]:
    return [o for o in OUTCOME_ORDER
            if f"n_{o}" in ts and (o == "ok" or ts[f"n_{o}"].fillna(0).gt(0).any())]


def outcomes(run) -> go.Figure:
    """Responses/s by outcome (stacked; outcomes that occurred) and the error share (right)."""
    ts, fig = run.timeseries, go.Figure()
    x = hours(ts) if has(ts, "t_end", "t_start") else None
    for o in _shown_outcomes(ts) if x is not None else []:
        fig.add_trace(line(x, per_second(ts, f"n_{o}"), o.replace("_", " "), "%{y:.2f} resp/s",
                           stackgroup="outcomes", line_width=0.5, line_color=_OUTCOME_COLORS.get(o)))
    if x is not None and has(ts, "n_ok", "completed"):
        done = ts["completed"].astype(float)
        share = 1 - ts["n_ok"].astype(float) / done.where(done > 0)
        fig.add_trace(line(x, share, "error share", "%{y:.2%}", yaxis="y2", line=dict(color="black", width=1.5)))
    if not fig.data:
        note(fig, "no outcome counts in this run")
    style(fig, "Responses by outcome", "responses (per s)", y2title="error share (non-ok / completed)")
    fig.update_layout(yaxis2=dict(tickformat=".1%", rangemode="tozero"))
    return shade_warmup(fig, ts)


# -- cost -------------------------------------------------------------------------------
def _monthly_note(fig: go.Figure, summary: dict) -> None:
    monthly = (summary or {}).get("monthly_cost_usd")
    if monthly is not None:
        method = summary.get("monthly_cost_method", "?")
        fig.add_annotation(text=f"monthly projection ${monthly:,.2f} (method: {method})", showarrow=False,
                           xref="paper", yref="paper", x=0.99, y=0.02, xanchor="right", yanchor="bottom",
                           bgcolor="rgba(255,255,255,0.8)")


def cost(run) -> go.Figure:
    """Cumulative cost ($, left) and the running monthly projection ($/month, right)."""
    ts, fig = run.timeseries, go.Figure()
    if has(ts, "cost_usd_cum", "t_end"):
        x, cum = hours(ts), ts["cost_usd_cum"].astype(float)
        month_h = float(scenario_value(run, "pricing.hours_per_month", 730))
        t = ts["t_end"].astype(float)
        fig.add_trace(line(x, cum, "cumulative cost", "$%{y:.4f}"))
        fig.add_trace(line(x, cum / t.where(t > 0) * month_h * 3600, "monthly projection (running)",
                           "$%{y:,.2f}/month", yaxis="y2", line_dash="dash"))
    else:
        note(fig, "no cost data in this run")
    _monthly_note(fig, getattr(run, "summary", None))
    style(fig, "Cost", "cumulative cost ($)", y2title="monthly projection ($/month)")
    fig.update_layout(yaxis=dict(rangemode="tozero", tickprefix="$"),
                      yaxis2=dict(rangemode="tozero", tickprefix="$"))
    return shade_warmup(fig, ts)


# -- all --------------------------------------------------------------------------------
def run_figures(run, slo: SLOConfig | None = None) -> dict[str, go.Figure]:
    """Every figure of one run, keyed in the report's order."""
    return {"load_capacity": load_capacity(run), "latency": latency(run, slo), "outcomes": outcomes(run),
            "database": database(run), "cache": cache_hit_rates(run),
            "cpu_heatmap": utilisation_heatmap(run, "cpu_util"),
            "memory_heatmap": utilisation_heatmap(run, "memory_util"),
            "sockets": sockets(run), "cost": cost(run)}
