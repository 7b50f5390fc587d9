"""The time axis of run figures, and what is marked on it.

Time is shown on the scenario's calendar: ``workload.start`` is the wall-clock time at
t = 0, so an interval ending at t reads as ``start + t`` (``Mon 18:00``); without a
scenario, as simulated hours. Marked on every time figure: the warm-up (grey band), the
workload's events (orange bands, named) and the schedule's actions (dotted lines).

``limit_line`` draws a labelled horizontal line that stays right on a log axis (plotly
places an annotation on a log axis at ``log10(y)``, a shape at ``y``).
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from capsim.report.data import scenario_model, scenario_value

__all__ = ["start_of", "times", "time_title", "time_axis", "shade_warmup", "mark_calendar", "limit_line",
           "calendar_marks"]

DATE_HOVER = "%a %d %b %H:%M"


def start_of(run) -> pd.Timestamp | None:
    """The scenario's ``workload.start`` (wall-clock time at t = 0), or None when unknown."""
    value = scenario_value(run, "workload.start")
    try:
        return None if value is None else pd.Timestamp(value)
    except (TypeError, ValueError):
        return None


def times(run, seconds):
    """Simulated seconds (a Series, array or number) as x values: calendar times, else hours."""
    start = start_of(run)
    if start is None:
        return seconds / 3600.0
    if isinstance(seconds, (int, float)):
        return start + pd.Timedelta(seconds=float(seconds))
    return start + pd.to_timedelta(pd.Series(seconds, dtype=float).to_numpy(), unit="s")


def time_title(run) -> str:
    start = start_of(run)
    return "simulated time (h)" if start is None else f"time (the scenario's calendar from {start:%a %d %b %Y %H:%M})"


def time_axis(fig: go.Figure, run, **where) -> go.Figure:
    """Title and formats of the time axis (``where``: row/col of a subplot)."""
    if start_of(run) is None:
        fig.update_xaxes(hoverformat=".2f", **where)
    else:
        fig.update_xaxes(type="date", hoverformat=DATE_HOVER, tickformat="%a %H:%M\n%d %b", **where)
    return fig


def shade_warmup(fig: go.Figure, run, layer: str = "below", **where) -> go.Figure:
    """A light grey band labelled "warm-up" over the rows flagged ``warmup``."""
    ts = run.timeseries
    if ts is None or not len(ts) or not {"warmup", "t_start", "t_end"} <= set(ts.columns):
        return fig
    flagged = ts[ts["warmup"].astype(str).str.lower().isin(["true", "1", "1.0"])]
    if len(flagged):
        fig.add_vrect(x0=times(run, float(flagged["t_start"].min())), x1=times(run, float(flagged["t_end"].max())),
                      fillcolor="lightgrey", opacity=0.35, line_width=0, layer=layer,
                      annotation_text="warm-up", annotation_position="top left", **where)
    return fig


def calendar_marks(run) -> tuple[list[tuple[float, float, str]], list[tuple[float, str]]]:
    """(events as (start s, end s, label), schedule actions as (time s, label)) within the horizon."""
    sc = scenario_model(run)
    if sc is None:
        return [], []
    horizon = sc.horizon
    events = []
    if sc.workload.sessions is not None:
        from capsim.models.workload import Calendar
        cal = Calendar(sc.workload.start, sc.workload.sessions.events)
        for e, (a, b, mult) in zip(sc.workload.sessions.events, cal.events):
            if b > 0 and a < horizon:
                events.append((max(a, 0.0), min(b, horizon), f"{e.name} x{mult:g}"))
    actions = []
    if sc.schedule is not None and sc.schedule.actions:
        from capsim.models.autoscaling.scheduled import Schedule
        schedule = Schedule(list(sc.schedule.actions), sc.workload.start, 1, 1)
        for t, a in schedule.occurrences(horizon):
            parts = [f"{k.split('_')[0]} {getattr(a, k)}" for k in ("min_instances", "max_instances", "desired")
                     if getattr(a, k) is not None]
            actions.append((t, "schedule: " + ", ".join(parts)))
    return events, actions


def mark_calendar(fig: go.Figure, run, labels: bool = True, **where) -> go.Figure:
    """Orange bands over the workload's events and dotted lines at the schedule's actions."""
    events, actions = calendar_marks(run)
    for a, b, label in events:
        fig.add_vrect(x0=times(run, a), x1=times(run, b), fillcolor="orange", opacity=0.12, line_width=0,
                      layer="below", annotation_text=label if labels else None, annotation_position="top right",
                      annotation_font_color="darkorange", **where)
    for t, label in actions:
        x = times(run, t)
        fig.add_vline(x=x.isoformat() if isinstance(x, pd.Timestamp) else x,
                      line=dict(color="slateblue", dash="dot", width=1), **where)
        if labels:
            fig.add_annotation(x=x, y=1, yref="paper", text=label, showarrow=False, xanchor="left",
                               font=dict(color="slateblue", size=10), yanchor="bottom")
    return fig


def limit_line(fig: go.Figure, value: float, label: str, color: str, log: bool, axis: str = "y",
               position: str = "right", **where) -> go.Figure:
    """A dashed line at ``value`` with its label, right on linear and log axes (``axis``: "y" or "x")."""
    line = dict(dash="dash", color=color, width=1)
    at = math.log10(value) if log and value > 0 else value      # annotations on log axes take log10
    if axis == "y":
        fig.add_hline(y=value, line=line, **where)
        fig.add_annotation(x=1 if position == "right" else 0, xref="x domain", y=at, yref="y", text=label, showarrow=False, xanchor=position, yanchor="bottom",
                           font=dict(color=color))
    else:
        fig.add_vline(x=value, line=line, **where)
        fig.add_annotation(x=at, xref="x", y=1, yref="y domain", text=label, showarrow=False, xanchor="left",
                           yanchor="top", textangle=-90, font=dict(color=color))
    return fig
