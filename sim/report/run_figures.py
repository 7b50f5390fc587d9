"""Plotly figures of ONE simulation run, in the report's order.

Every function takes ``run``: anything with ``summary``, ``timeseries``, ``instances``,
``scaling_events`` and ``scenario`` (``capsim.Result`` or ``capsim.report.data.RunFiles``),
and returns a ``plotly.graph_objects.Figure`` with the scenario's calendar time on x
(``capsim.report.timeaxis``), the warm-up shaded grey, events and schedule actions marked. Missing optional columns (cache, sockets, sessions, db_*) leave a
trace out or show a note; they never raise.

- ``load_capacity``: arrivals/s and concurrent sessions; instances running, ready and
  desired (right axis, whole numbers) with the scaling events.
- ``fleet_cpu``, ``latency_by_endpoint``, ``latency_distribution``: see
  ``capsim.report.run_figures_detail``.
- ``latency``: p50, p95, p99 and mean latency (ms) against the SLO's latency limits
  (labels placed right on a log axis too).
- ``outcomes``: responses/s by outcome (stacked) and the server-error and rejected (429)
  shares (right axis).
- ``database``, ``cache_hit_rates``, ``utilisation_heatmap``, ``sockets``: see
  ``capsim.report.run_figures_infra``.
- ``cost``: cumulative cost and the running monthly projection (right axis).
- ``run_figures``: all of them, keyed in the report's order.
"""
from __future__ import annotations

import plotly.graph_objects as go

from capsim.models.request import OUTCOMES, REJECTED, SERVER_ERRORS
from capsim.report.data import scenario_value
from capsim.report.run_figures_infra import (cache_hit_rates, database, decorate, has, instance_axis, line, note,
                                             per_second, sockets, style, utilisation_heatmap, xs)
from capsim.report.run_figures_detail import fleet_cpu, latency_by_endpoint, latency_distribution
from capsim.report.timeaxis import limit_line, times
from capsim.scenario.slo import SLOConfig

__all__ = ["load_capacity", "fleet_cpu", "latency", "latency_by_endpoint", "latency_distribution", "outcomes",
           "database", "cache_hit_rates", "utilisation_heatmap", "sockets", "cost", "run_figures", "slo_lines",
           "OUTCOME_ORDER", "TIME_FIGURES"]

OUTCOME_ORDER = ("ok", "rate_limited", "pool_timeout", "db_refused", "circuit_open", "shed", "timeout",
                 "unavailable", "crashed", "terminated", "db_error")
OUTCOME_ORDER += tuple(o for o in OUTCOMES if o not in OUTCOME_ORDER)   # any outcome added later
_OUTCOME_COLORS = {"ok": "seagreen", "rate_limited": "gold", "pool_timeout": "darkorange",
                   "db_refused": "orangered", "circuit_open": "orchid", "shed": "slateblue",
                   "timeout": "firebrick", "unavailable": "dimgrey", "crashed": "black"}
# figures whose x axis is the run's time (they zoom together in a report)
TIME_FIGURES = ("load_capacity", "fleet_cpu", "latency", "latency_by_endpoint", "outcomes", "database", "cache",
                "cpu_heatmap", "memory_heatmap", "sockets", "cost")
_LATENCIES = (("latency_p50_ms", "p50"), ("latency_p95_ms", "p95"), ("latency_p99_ms", "p99"),
              ("latency_mean_ms", "mean"))
_INSTANCE_LINES = (("instances", "instances running", "solid"), ("instances_ready", "instances ready", "dot"),
                   ("instances_managed", "instances desired", "dash"))


# -- load and capacity ------------------------------------------------------------------
def _scaling_markers(fig: go.Figure, run, events) -> None:
    if not has(events, "time", "to"):
        return
    n = len(events)
    frm, why = events.get("from", [""] * n), events.get("reason", [""] * n)
    text = [f"{f} → {t}: {r}" for f, t, r in zip(frm, events["to"], why)]
    fig.add_trace(go.Scatter(x=times(run, events["time"].astype(float)), y=events["to"], mode="markers",
                             name="scaling events", yaxis="y2", text=text,
                             hovertemplate="scaling %{text}<extra></extra>",
                             marker=dict(symbol="diamond", size=10, color="firebrick")))


def load_capacity(run) -> go.Figure:
    """Arrivals/s and concurrent sessions (left); instances and scaling events (right)."""
    ts, fig = run.timeseries, go.Figure()
    x = xs(run, ts)
    if has(ts, "arrivals", "t_start"):
        fig.add_trace(line(x, per_second(ts, "arrivals"), "arrivals", "%{y:.1f} req/s"))
    if has(ts, "sessions"):
        fig.add_trace(line(x, ts["sessions"], "concurrent sessions", "%{y:.0f} users"))
    for col, name, dash in _INSTANCE_LINES:
        if has(ts, col):
            fig.add_trace(line(x, ts[col], name, "%{y:.0f}", yaxis="y2", line_shape="hv", line_dash=dash))
    _scaling_markers(fig, run, getattr(run, "scaling_events", None))
    style(fig, "Load and capacity", "arrivals (req/s) · sessions (users)", y2title="instances", run=run)
    fig.update_layout(yaxis=dict(rangemode="tozero"))
    cols = [c for c, _, _ in _INSTANCE_LINES if has(ts, c)]
    fig.update_layout(yaxis2=instance_axis(ts[cols].max().max() if cols else None))
    return decorate(fig, run)


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
            fig.add_trace(line(xs(run, ts), ts[col], name, "%{y:.1f} ms", line_width=3 if name == "mean" else 1.5))
    lines = slo_lines(_slo_config(run, slo))
    if log_y is None:
        top = ts[[c for c, _ in _LATENCIES if has(ts, c)]].max().max() if fig.data else float("nan")
        log_y = bool(lines) and top == top and top > 0 and max(v for v, _, _ in lines) > 10 * top
    for limit, label, color in lines:      # labels at log10(limit) on a log axis (plotly's convention)
        limit_line(fig, limit, label, color, log=log_y)
    if not fig.data:
        note(fig, "no completed requests in this run")
    style(fig, "Response time", "latency (ms)", run=run)
    fig.update_yaxes(type="log" if log_y else "linear")
    return decorate(fig, run)


# -- outcomes ---------------------------------------------------------------------------
def _shown_outcomes(ts) -> list[str]:
    return [o for o in OUTCOME_ORDER
            if f"n_{o}" in ts and (o == "ok" or ts[f"n_{o}"].fillna(0).gt(0).any())]


def outcomes(run) -> go.Figure:
    """Responses/s by outcome (stacked; outcomes that occurred); server-error and 429 shares (right)."""
    ts, fig = run.timeseries, go.Figure()
    x = xs(run, ts) if has(ts, "t_end", "t_start") else None
    for o in _shown_outcomes(ts) if x is not None else []:
        fig.add_trace(line(x, per_second(ts, f"n_{o}"), o.replace("_", " "), "%{y:.2f} resp/s",
                           stackgroup="outcomes", line_width=0.5, line_color=_OUTCOME_COLORS.get(o)))
    if x is not None and has(ts, "completed"):
        done = ts["completed"].astype(float).where(ts["completed"] > 0)
        for name, outs, style_ in (("server error share", SERVER_ERRORS, dict(color="black", width=1.5)),
                                   ("rejected (429) share", REJECTED, dict(color="black", width=1, dash="dot"))):
            cols = [f"n_{o}" for o in outs if f"n_{o}" in ts]
            if cols:
                share = ts[cols].astype(float).sum(axis=1) / done
                fig.add_trace(line(x, share, name, "%{y:.2%}", yaxis="y2", line=style_))
    if not fig.data:
        note(fig, "no outcome counts in this run")
    style(fig, "Responses by outcome", "responses (per s)", y2title="share of responses", run=run)
    fig.update_layout(yaxis2=dict(tickformat=".1%", rangemode="tozero"))
    return decorate(fig, run)


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
        x, cum = xs(run, ts), ts["cost_usd_cum"].astype(float)
        month_h = float(scenario_value(run, "pricing.hours_per_month", 730))
        t = ts["t_end"].astype(float)
        fig.add_trace(line(x, cum, "cumulative cost", "$%{y:.4f}"))
        fig.add_trace(line(x, cum / t.where(t > 0) * month_h * 3600, "monthly projection (running)",
                           "$%{y:,.2f}/month", yaxis="y2", line_dash="dash"))
    else:
        note(fig, "no cost data in this run")
    _monthly_note(fig, getattr(run, "summary", None))
    style(fig, "Cost", "cumulative cost ($)", y2title="monthly projection ($/month)", run=run)
    fig.update_layout(yaxis=dict(rangemode="tozero", tickprefix="$"),
                      yaxis2=dict(rangemode="tozero", tickprefix="$"))
    return decorate(fig, run)


# -- all --------------------------------------------------------------------------------
def run_figures(run, slo: SLOConfig | None = None) -> dict[str, go.Figure]:
    """Every figure of one run, keyed in the report's order."""
    return {"load_capacity": load_capacity(run), "fleet_cpu": fleet_cpu(run), "latency": latency(run, slo),
            "latency_by_endpoint": latency_by_endpoint(run), "latency_distribution": latency_distribution(run),
            "outcomes": outcomes(run), "database": database(run), "cache": cache_hit_rates(run),
            "cpu_heatmap": utilisation_heatmap(run, "cpu_util"),
            "memory_heatmap": utilisation_heatmap(run, "memory_util"),
            "sockets": sockets(run), "cost": cost(run)}

