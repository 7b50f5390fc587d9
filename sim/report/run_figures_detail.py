"""Detail figures of one run (re-exported by ``capsim.report.run_figures``).

- ``fleet_cpu``: the fleet's CPU utilisation (the ``cpu_util`` column: the mean over ready
  instances) and the busiest instance's, against the autoscaling policy's CPU thresholds
  (threshold: ``cpu_up`` / ``cpu_down``; target: ``cpu_target``; hpa: the CPU target and its
  tolerance band; step: the alarm threshold; predictive: its CPU target).
- ``latency_by_endpoint``: latency p95 per endpoint and interval.
- ``latency_distribution``: the measured window's latency histogram (share of responses
  per bin, 10 bins a decade, log axis) with the p50, p95 and p99 marked.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from capsim.report.data import scenario_model
from capsim.report.run_figures_infra import decorate, has, line, note, style, xs
from capsim.report.timeaxis import limit_line

__all__ = ["fleet_cpu", "cpu_thresholds", "latency_by_endpoint", "latency_distribution", "endpoint_columns"]

_COLORS = qualitative.Plotly


def cpu_thresholds(run) -> list[tuple[float, str, str]]:
    """(CPU fraction, label, colour) of each CPU limit the run's policy acts on."""
    sc = scenario_model(run)
    a = getattr(sc, "autoscaler", None)
    out = []
    policy = getattr(a, "policy", None)
    if policy == "threshold":
        out += [(a.cpu_up, f"scale up above {100 * a.cpu_up:g}%", "firebrick"),
                (a.cpu_down, f"scale down below {100 * a.cpu_down:g}%", "seagreen")]
    elif policy == "target" and a.cpu_target is not None:
        out.append((a.cpu_target, f"target {100 * a.cpu_target:g}%", "firebrick"))
    elif policy == "hpa":
        for m in a.metrics:
            if m.type == "cpu":
                t = m.target / 100
                out += [(t, f"HPA target {m.target:g}%", "firebrick"),
                        (t * (1 + a.tolerance), f"target + {100 * a.tolerance:g}% tolerance", "darkorange"),
                        (t * (1 - a.tolerance), f"target − {100 * a.tolerance:g}% tolerance", "darkorange")]
    elif policy == "step" and a.metric == "cpu":
        out.append((a.threshold / 100, f"alarm {a.comparison} {a.threshold:g}%", "firebrick"))
    p = getattr(sc, "predictive", None)
    if p is not None and p.metric == "cpu":
        out.append((p.target, f"predictive target {100 * p.target:g}%", "slateblue"))
    return out


def fleet_cpu(run) -> go.Figure:
    """Fleet CPU (mean over ready instances) and the busiest instance's, against the policy's thresholds (%)."""
    ts, fig = run.timeseries, go.Figure()
    if has(ts, "cpu_util"):
        fig.add_trace(line(xs(run, ts), 100 * ts["cpu_util"].astype(float), "fleet CPU (mean of ready instances)",
                           "%{y:.1f}%", line=dict(color="black", width=2)))
    inst = getattr(run, "instances", None)
    if has(inst, "cpu_util", "t_end"):
        peak = inst.groupby("t_end", sort=True)["cpu_util"].max()
        fig.add_trace(line(xs(run, peak.index.to_frame(index=False)), 100 * peak.to_numpy(dtype=float),
                           "busiest instance", "%{y:.1f}%", line=dict(color="grey", width=1)))
    limits = cpu_thresholds(run)
    for value, label, color in limits:
        limit_line(fig, 100 * value, label, color, log=False)
    if not fig.data:
        note(fig, "no CPU data in this run")
    title = "Fleet CPU against the policy's thresholds" if limits else "Fleet CPU (no CPU thresholds in this policy)"
    style(fig, title, "CPU utilisation (%)", run=run)
    top = max([100.0] + [100 * v for v, _, _ in limits])
    fig.update_yaxes(range=[0, 1.05 * top], ticksuffix="%")
    return decorate(fig, run)


def endpoint_columns(ts: pd.DataFrame, stat: str = "p95") -> dict[str, str]:
    """{endpoint: column} of the per-endpoint latency columns (``latency_p95_ms_<endpoint>``)."""
    prefix = f"latency_{stat}_ms_"
    return {c[len(prefix):]: c for c in ts.columns if c.startswith(prefix)}


def latency_by_endpoint(run) -> go.Figure:
    """Latency p95 per endpoint and interval (ms; a log axis when they differ more than 30-fold)."""
    ts, fig = run.timeseries, go.Figure()
    cols = endpoint_columns(ts)
    for k, (name, col) in enumerate(cols.items()):
        if has(ts, col):
            fig.add_trace(line(xs(run, ts), ts[col], name, "%{y:.1f} ms", line=dict(color=_COLORS[k % len(_COLORS)],
                                                                                      width=1.5)))
    if not fig.data:
        note(fig, "no per-endpoint latency in this run (one endpoint: see Response time)")
    style(fig, "Latency p95 per endpoint", "latency p95 (ms)", run=run)
    if fig.data:
        values = ts[list(cols.values())].to_numpy(dtype=float)
        lo, hi = np.nanmin(np.where(values > 0, values, np.nan)), np.nanmax(values)
        fig.update_yaxes(type="log" if lo > 0 and hi / lo > 30 else "linear")
    return decorate(fig, run)


def _rebinned(hist: pd.DataFrame, column: str, per_decade: int = 10) -> pd.Series:
    """Counts of ``column`` in bins of 1/per_decade decade (by the buckets' upper bounds)."""
    upper = hist["upper_ms"].astype(float).clip(lower=1e-3)
    k = np.floor(np.log10(upper) * per_decade - 1e-9).astype(int)
    return hist[column].groupby(k).sum()


def latency_distribution(run) -> go.Figure:
    """Share of responses per latency bin (10 a decade, log axis), all responses and each endpoint."""
    hist, fig = getattr(run, "latency_histogram", None), go.Figure()
    summary = getattr(run, "summary", None) or {}
    if hist is None or not len(hist) or "responses" not in hist:
        style(fig, "Latency distribution", "share of responses (%)")
        return note(fig, "no latency histogram in this run (latency_histogram.csv)")
    per_decade = 10
    total = _rebinned(hist, "responses", per_decade)
    lo = 10 ** (total.index.to_numpy() / per_decade)
    hi = 10 ** ((total.index.to_numpy() + 1) / per_decade)
    share = 100 * total.to_numpy() / total.sum()
    fig.add_trace(go.Scatter(x=np.append(lo, hi[-1]), y=np.append(share, share[-1]), mode="lines", line_shape="hv",
                             fill="tozeroy", name="all responses", line=dict(color="#4c78a8", width=1),
                             fillcolor="rgba(76,120,168,0.35)",
                             hovertemplate="from %{x:.3g} ms: %{y:.2f}% of responses<extra></extra>"))
    eps = [c for c in hist.columns if c.startswith("endpoint:")]
    for k, col in enumerate(eps):
        counts = _rebinned(hist, col, per_decade).reindex(total.index, fill_value=0)
        if counts.sum():
            y = 100 * counts.to_numpy() / counts.sum()
            fig.add_trace(go.Scatter(x=np.append(lo, hi[-1]), y=np.append(y, y[-1]), mode="lines",
                                     line_shape="hv", name=col.split(":", 1)[1], visible="legendonly",
                                     line=dict(color=_COLORS[k % len(_COLORS)]),
                                     hovertemplate=col.split(":", 1)[1] + ": %{y:.2f}%<extra></extra>"))
    lat = summary.get("latency_ms") or {}
    for q, color in (("p50", "seagreen"), ("p95", "darkorange"), ("p99", "firebrick")):
        v = lat.get(q)
        if v is not None and v > 0 and math.isfinite(v):
            limit_line(fig, v, f"{q} {v:.3g} ms", color, log=True, axis="x")
    fig.update_layout(template="plotly_white", height=420, title="Latency distribution (measured window)",
                      hovermode="closest", legend=dict(orientation="h", y=-0.2),
                      margin=dict(t=60, b=90, l=70, r=70))
    fig.update_xaxes(type="log", title_text="latency (ms, log scale)")
    fig.update_yaxes(title_text="share of responses (%)", rangemode="tozero")
    return fig
