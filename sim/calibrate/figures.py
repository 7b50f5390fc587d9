"""Figures of a calibration (plotly): fitted against empirical distributions, QQ plots, the
arrival curve, an Artillery report's quantiles and a metrics regression.

Each returns a ``plotly.graph_objects.Figure``; ``capsim calibrate`` puts them in
``calibration.html`` and a notebook can ``.show()`` them.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from capsim.calibrate.fit import frozen

__all__ = ["fit_figure", "arrival_figure", "hourly_figure", "artillery_figure", "metrics_figure", "QQ_POINTS"]

QQ_POINTS = 200


def _qq(values: np.ndarray, dist) -> tuple[np.ndarray, np.ndarray]:
    """(fitted quantiles, empirical quantiles) at ``QQ_POINTS`` plotting positions (i - 0.5) / n."""
    x = np.sort(values)
    n = len(x)
    idx = np.unique(np.linspace(0, n - 1, min(n, QQ_POINTS)).astype(int))
    p = (idx + 0.5) / n
    return dist.ppf(p), x[idx]


def fit_figure(fit, title: str) -> go.Figure:
    """Histogram of the sample (density, ms) with the fitted density, and its QQ plot."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("density", "QQ: fitted vs measured quantiles"))
    x = np.asarray(fit.values, dtype=float) if fit.values is not None else np.array([])
    fig.add_trace(go.Histogram(x=1e3 * x, histnorm="probability density", name="measured", nbinsx=50,
                               marker_color="#9ecae1"), 1, 1)
    dist = frozen(fit.dist)
    if dist is not None and len(x):
        grid = np.linspace(0, float(np.quantile(x, 0.995)), 300)
        fig.add_trace(go.Scatter(x=1e3 * grid, y=dist.pdf(grid) / 1e3, name=f"fitted {fit.family}",
                                 line={"color": "#d62728"}), 1, 1)
        q_fit, q_emp = _qq(x, dist)
        top = float(max(q_fit.max(), q_emp.max())) * 1e3
        fig.add_trace(go.Scatter(x=1e3 * q_fit, y=1e3 * q_emp, mode="markers", name="quantiles",
                                 marker={"size": 5, "color": "#1f77b4"}), 1, 2)
        fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="y = x",
                                 line={"dash": "dot", "color": "#888"}), 1, 2)
    lo, hi = fit.mean_ci
    fig.update_layout(title=f"{title}: {fit.family}, n={fit.n}, mean {1e3 * fit.mean:.3g} ms "
                            f"[{1e3 * lo:.3g}, {1e3 * hi:.3g}], KS D={fit.ks:.3f}", height=380,
                      legend={"orientation": "h"})
    fig.update_xaxes(title_text="ms", row=1, col=1)
    fig.update_xaxes(title_text=f"fitted {fit.family} quantile, ms", row=1, col=2)
    fig.update_yaxes(title_text="measured quantile, ms", row=1, col=2)
    return fig


def arrival_figure(arrivals, title: str) -> go.Figure:
    s = arrivals.series
    fig = go.Figure(go.Scatter(x=s.t, y=s.rate, mode="lines", line={"shape": "hv"}, name="requests/s"))
    fig.update_layout(title=f"{title}: arrivals per {arrivals.interval:g} s (mean {arrivals.mean_rate:.4g}/s)",
                      xaxis_title="s from the start", yaxis_title="requests/s", height=320)
    return fig


def hourly_figure(arrivals, title: str) -> go.Figure:
    """The weekday curve (and weekend hours) per hour of day, as multipliers of the busiest hour."""
    fig = go.Figure()
    h = arrivals.hourly_rates
    peak = arrivals.peak_rate or (float(h.rate.max()) if h is not None and len(h) else 1.0)
    if h is not None:
        for weekend, name, color in ((False, "weekday hours", "#1f77b4"), (True, "weekend hours", "#ff7f0e")):
            part = h[h.weekend == weekend]
            if len(part):
                fig.add_trace(go.Scatter(x=part.start.dt.hour, y=part.rate / peak, mode="markers", name=name,
                                         marker={"size": 5, "color": color, "opacity": 0.5}))
    if arrivals.hourly is not None:
        fig.add_trace(go.Scatter(x=list(range(24)), y=arrivals.hourly, mode="lines+markers",
                                 name="daily_curve (weekday mean)", line={"color": "#1f77b4"}))
        if arrivals.weekend_multiplier is not None:
            fig.add_trace(go.Scatter(x=list(range(24)), y=[c * arrivals.weekend_multiplier for c in arrivals.hourly],
                                     mode="lines", name=f"x weekend_multiplier {arrivals.weekend_multiplier:.3f}",
                                     line={"color": "#ff7f0e", "dash": "dash"}))
    fig.update_layout(title=f"{title}: the hourly arrival curve", xaxis_title="hour of day",
                      yaxis_title="rate / busiest weekday hour", height=360)
    return fig


def artillery_figure(run, svc, title: str) -> go.Figure:
    p = run.periods
    fig = make_subplots(rows=1, cols=2, subplot_titles=("per period", "quiet periods: quantiles vs the fit"),
                        specs=[[{"secondary_y": True}, {}]])
    fig.add_trace(go.Bar(x=p.start, y=p.rate, name="requests/s", marker_color="#c6dbef"), 1, 1, secondary_y=False)
    for col, name in (("rt_p50", "p50"), ("rt_p95", "p95"), ("rt_p99", "p99")):
        if col in p:
            fig.add_trace(go.Scatter(x=p.start, y=1e3 * p[col], name=f"{name} ms"), 1, 1, secondary_y=True)
    dist = frozen(svc.cpu.dist)
    quiet = svc.quiet
    for col, prob in (("rt_p50", 0.5), ("rt_p75", 0.75), ("rt_p90", 0.9), ("rt_p95", 0.95), ("rt_p99", 0.99)):
        if col in quiet and dist is not None:
            fig.add_trace(go.Scatter(x=[1e3 * (float(dist.ppf(prob)) + svc.outside)] * len(quiet), y=1e3 * quiet[col],
                                     mode="markers", name=f"{col[3:]}", marker={"size": 7}), 1, 2)
    top = float(1e3 * quiet[[c for c in quiet if c.startswith("rt_p")]].max().max()) if len(quiet) else 1.0
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="y = x", line={"dash": "dot", "color": "#888"}),
                  1, 2)
    fig.update_layout(title=f"{title}: Artillery {run.layout} report, {len(p)} periods", height=400)
    fig.update_xaxes(title_text="s from the start", row=1, col=1)
    fig.update_yaxes(title_text="requests/s", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="response time, ms", row=1, col=1, secondary_y=True)
    fig.update_xaxes(title_text="fitted quantile + outside, ms", row=1, col=2)
    fig.update_yaxes(title_text="measured, ms", row=1, col=2)
    return fig


def metrics_figure(mf, title: str) -> go.Figure:
    f, dt = mf.run.frame, mf.run.interval
    fig = make_subplots(rows=1, cols=2, subplot_titles=("CPU-seconds per interval", "memory MB per instance"))
    if "cpu" in f:
        y = f.cpu * mf.vcpus * f.instances * dt
        fig.add_trace(go.Scatter(x=f.requests, y=y, mode="markers", name="intervals"), 1, 1)
        r = mf.cpu_per_request
        if r is not None:
            xs = np.array([f.requests.min(), f.requests.max()])
            fig.add_trace(go.Scatter(x=xs, y=r.intercept + r.slope * xs, name=f"{1e3 * r.slope:.3g} ms per request"),
                          1, 1)
    if "memory" in f:
        x = f.requests / (f.instances * dt)
        fig.add_trace(go.Scatter(x=x, y=f.memory * mf.memory_mb, mode="markers", name="memory"), 1, 2)
    fig.update_xaxes(title_text="requests per interval", row=1, col=1)
    fig.update_xaxes(title_text="requests/s per instance", row=1, col=2)
    fig.update_yaxes(title_text="CPU-seconds", row=1, col=1)
    fig.update_yaxes(title_text="MB", row=1, col=2)
    fig.update_layout(title=f"{title}: {len(f)} intervals of {dt:g} s", height=380)
    return fig
