"""A per-interval metrics CSV (e.g. Render's metrics export): time, requests, CPU %, memory %,
instances per interval, and what they let capsim fit.

Columns (found by name, or mapped with ``--col FIELD=COLUMN``): ``t`` (the interval's start:
ISO 8601 or epoch s/ms, as for request logs), ``requests`` (requests in the interval),
``cpu`` (CPU % as the platform shows it: the processes' CPU over the instances' vCPUs, 0-100,
averaged over the instances), ``memory`` (memory %, 0-100, averaged over the instances) and
``instances`` (running; default 1). The interval is the median step between rows.

Fits:

- CPU per request: ordinary least squares of CPU-seconds per interval (``cpu``/100 x vCPUs of
  the base scenario's plan x ``instances`` x interval) on requests per interval
  (``scipy.stats.linregress``): the slope is the platform CPU per request (handler, the event
  loop's own work and helper threads together), with its 95% t interval; the intercept is CPU
  the instances use without requests;
- memory: least squares of memory MB per instance (``memory``/100 x the plan's memory) on
  requests per second per instance: the intercept is the resident memory without load
  (``memory_base_mb`` per process);
- the arrival curve (``capsim.calibrate.arrivals``) from requests per interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from capsim.calibrate.arrivals import ArrivalFit, curve_from_counts
from capsim.calibrate.columns import Mapping
from capsim.calibrate.errors import InputError, InputProblem
from capsim.calibrate.read_log import bad_values, numbers, parse_times, read_table

__all__ = ["MetricsRun", "read_metrics", "Regression", "regress", "metrics_fits", "MetricsFits", "NAMES",
           "looks_like_metrics"]

NAMES = {"t": ("t", "time", "timestamp", "date", "start"), "requests": ("requests", "request_count", "count", "http_requests"),
         "cpu": ("cpu", "cpu_pct", "cpu_percent", "cpu_util"), "memory": ("memory", "memory_pct", "mem", "mem_pct",
                                                                           "memory_percent"),
         "instances": ("instances", "instance_count", "replicas")}
MIN_INTERVALS = 3


@dataclass
class MetricsRun:
    source: str
    frame: pd.DataFrame              # t (s from the start), requests, cpu (0-1), memory (0-1), instances, line
    interval: float
    start: pd.Timestamp | None


def looks_like_metrics(header) -> bool:
    h = {c.lower() for c in header}
    return bool(h & set(NAMES["requests"])) and bool(h & set(NAMES["cpu"]) or h & set(NAMES["memory"]))


def _column(header, field_, mapping: Mapping) -> str | None:
    if field_ in mapping.columns and mapping.columns[field_][0] in header:
        return mapping.columns[field_][0]          # --col applies to the inputs that have that column
    lower = {c.lower(): c for c in header}
    for name in NAMES[field_]:
        if name in lower:
            return lower[name]
    return None


def read_metrics(path, mapping: Mapping | None = None) -> MetricsRun:
    mapping = mapping or Mapping()
    raw = read_table(path)
    header = [c for c in raw.columns if c != "__line"]
    file = str(path)
    cols = {f: _column(header, f, mapping) for f in NAMES}
    missing = [f for f in ("t", "requests") if cols[f] is None]
    if missing or (cols["cpu"] is None and cols["memory"] is None):
        need = missing + ([] if cols["cpu"] or cols["memory"] else ["cpu or memory"])
        raise InputError.one(file, f"a metrics CSV needs columns for {', '.join(need)} (or --col FIELD=COLUMN); "
                                   f"the file's columns are {', '.join(header)}")
    problems: list[InputProblem] = []
    unit = mapping.columns["t"][1] if cols["t"] == mapping.columns.get("t", (None,))[0] else None
    times, start = parse_times(file, raw, {"t": (cols["t"], unit)}, mapping, problems)
    frame = pd.DataFrame({"t": times.get("t", pd.Series(np.nan, index=raw.index))})
    frame["requests"] = numbers(file, raw, cols["requests"], "requests", "a count >= 0", problems)
    for f in ("cpu", "memory"):
        if cols[f] is not None:
            x = numbers(file, raw, cols[f], f, "a percentage 0-100", problems)
            bad = (x < 0) | (x > 100)
            if bad.any():
                problems.append(bad_values(file, raw, bad, cols[f], f, "a percentage 0-100 (of the instances' "
                                           "vCPUs or memory, averaged over the instances)"))
            frame[f] = x / 100.0
    frame["instances"] = (numbers(file, raw, cols["instances"], "instances", "a count >= 1", problems)
                          if cols["instances"] else 1.0)
    neg = frame.requests < 0
    if neg.any():
        problems.append(bad_values(file, raw, neg, cols["requests"], "requests", "a count >= 0"))
    if problems:
        raise InputError(problems)
    frame["line"] = raw["__line"].to_numpy()
    frame = frame.dropna(subset=["t"]).sort_values("t").reset_index(drop=True)
    if len(frame) < MIN_INTERVALS:
        raise InputError.one(file, f"{len(frame)} intervals: the metrics fits need at least {MIN_INTERVALS}")
    step = float(np.median(np.diff(frame.t)))
    if step <= 0:
        raise InputError.one(file, "expected one row per interval with increasing times", None,
                             f"column {cols['t']!r} (t)")
    return MetricsRun(file, frame, step, start)


@dataclass(frozen=True)
class Regression:
    slope: float
    slope_ci: tuple[float, float]
    intercept: float
    intercept_ci: tuple[float, float]
    r2: float
    n: int


def regress(x, y) -> Regression | None:
    """Ordinary least squares y = a + b x with 95% t intervals (None: x does not vary)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < MIN_INTERVALS or np.ptp(x) <= 0:
        return None
    r = stats.linregress(x, y)
    t = stats.t.ppf(0.975, len(x) - 2)
    return Regression(float(r.slope), (r.slope - t * r.stderr, r.slope + t * r.stderr), float(r.intercept),
                      (r.intercept - t * r.intercept_stderr, r.intercept + t * r.intercept_stderr),
                      float(r.rvalue ** 2), len(x))


@dataclass
class MetricsFits:
    run: MetricsRun
    cpu_per_request: Regression | None         # platform CPU seconds per request
    memory: Regression | None                  # MB per instance against requests/s per instance
    arrivals: ArrivalFit
    vcpus: float
    memory_mb: float
    notes: list[str] = field(default_factory=list)


def metrics_fits(run: MetricsRun, vcpus: float, memory_gb: float, plan: str) -> MetricsFits:
    f, dt = run.frame, run.interval
    notes = [f"metrics: {len(f)} intervals of {dt:g} s from {run.source}; the plan {plan!r} of the base scenario "
             f"({vcpus:g} vCPUs, {memory_gb:g} GB) turns percentages into seconds and MB"]
    cpu = None
    if "cpu" in f:
        cpu = regress(f.requests, f.cpu * vcpus * f.instances * dt)
        if cpu is None:
            notes.append("CPU per request: the request count never changes between intervals: not identified")
        else:
            idle = cpu.intercept / (float(f.instances.mean()) * dt)
            notes.append(f"CPU per request = {cpu.slope * 1e3:.4g} ms [95% CI {cpu.slope_ci[0] * 1e3:.4g}, "
                         f"{cpu.slope_ci[1] * 1e3:.4g}] (platform CPU: handler, event loop and helper threads), least "
                         f"squares of CPU-seconds on requests over {cpu.n} intervals, R^2 {cpu.r2:.3f}; "
                         f"{idle:.4g} CPU-seconds per instance-second without requests")
    mem = None
    if "memory" in f:
        mb = f.memory * memory_gb * 1024.0
        mem = regress(f.requests / (f.instances * dt), mb)
        if mem is None:
            notes.append("memory: the load never changes between intervals: not identified")
        else:
            notes.append(f"memory without load = {mem.intercept:.4g} MB per instance [95% CI {mem.intercept_ci[0]:.4g}, "
                         f"{mem.intercept_ci[1]:.4g}], {mem.slope:.4g} MB per request/s (least squares over {mem.n} "
                         f"intervals, R^2 {mem.r2:.3f})")
    span = float(f.t.iloc[-1] - f.t.iloc[0] + dt)
    series = pd.DataFrame({"t": f.t, "rate": f.requests / dt})
    arrivals = ArrivalFit(dt, series, float(f.requests.sum() / (len(f) * dt)))
    arrivals.notes.append(f"arrival rate: {arrivals.mean_rate:.4g} requests/s on average over {span:.6g} s")
    if run.start is not None:
        stamps = pd.DatetimeIndex(pd.Timestamp(run.start) + pd.to_timedelta(f.t, unit="s"))
        curve_from_counts(stamps, f.requests.to_numpy(), np.full(len(f), dt), arrivals, "the metrics")
    else:
        arrivals.notes.append("arrival curve: relative times (no calendar): left at the base scenario's")
    return MetricsFits(run, cpu, mem, arrivals, vcpus, memory_gb * 1024.0, notes + arrivals.notes)
