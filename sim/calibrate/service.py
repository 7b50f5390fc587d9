"""A service calibrated from one request log: per-endpoint CPU and query times, the event loop's
own work, the pool, the latency outside the server, the arrival curve and sessions.

Every value carries where it came from (``Calibration.notes`` and each endpoint's notes).
What the log cannot show is left at the base scenario's value and the notes say so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capsim.calibrate.arrivals import ArrivalFit, arrivals_of_log
from capsim.calibrate.endpoints import EndpointFit, fit_endpoints, basis_of
from capsim.calibrate.event_loop import LoopEstimate, estimate_event_loop
from capsim.calibrate.fit import Fit, mean_interval
from capsim.calibrate.logs import RequestLog
from capsim.calibrate.sessions import SessionFit, fit_sessions
from capsim.scenario.config import Scenario

__all__ = ["Calibration", "calibrate"]


@dataclass
class Calibration:
    name: str
    cpu_pre: Fit                                    # pooled over every measured request
    cpu_post: Fit | None
    db_probability: float | None
    query_time: Fit | None
    loop: LoopEstimate | None                       # None: not identified (no server timings or process totals)
    pool: dict
    connect_time: float | None
    cpu_total: float = float("nan")                 # the handler's mean CPU per request, s
    cpu_total_ci: tuple[float, float] = (float("nan"), float("nan"))
    notes: list[str] = field(default_factory=list)
    endpoints: dict[str, EndpointFit] = field(default_factory=dict)
    basis: str = "server timings"
    outside: float | None = None                    # latency outside the server, s (None: not identified)
    rate: float = float("nan")                      # measured requests per second
    window: float = float("nan")                    # measured seconds
    requests: int = 0
    arrivals: ArrivalFit | None = None
    sessions: SessionFit | None = None
    source: str = ""

    @property
    def cpu_interval(self) -> tuple[float, float]:
        """The 95% interval of the handler's mean CPU per request, as factors of its estimate."""
        lo, hi = self.cpu_total_ci
        return lo / self.cpu_total, hi / self.cpu_total

    def scenario(self, rate: float, horizon: float, warmup: float, name: str | None = None,
                 event_loop: dict | None = None, cpu_factor: float = 1.0) -> Scenario:
        """One instance, one Node process on one core, Poisson arrivals at ``rate``/s over the
        pooled endpoint (``event_loop``: other event-loop figures than the calibrated ones;
        ``cpu_factor``: the handler's CPU times this, e.g. an end of ``cpu_interval``)."""
        pre = self.cpu_pre.dist.scaled(cpu_factor)
        post = self.cpu_post.dist.scaled(cpu_factor).model_dump() if self.cpu_post is not None else 0.0
        endpoint = {"cpu_pre": pre.model_dump(), "cpu_post": post,
                    "queries": 1 if self.query_time is not None else 0, "db_probability": self.db_probability or 0.0}
        if self.query_time is not None:
            endpoint["query_time"] = self.query_time.dist.model_dump()
        database = {"rtt": 0.0, "pool": self.pool}
        if self.connect_time is not None:
            database["connect_time"] = self.connect_time
        loop = (self.loop.config() if self.loop is not None else {}) if event_loop is None else event_loop
        return Scenario.model_validate({
            "name": name or self.name, "description": f"calibrated from {self.name}",
            "horizon": horizon, "warmup": warmup,
            "workload": {"sessions": None, "open_loop": [{"name": "poisson", "rate": rate}],
                         "endpoints": {"work": endpoint}},
            "instances": {"plan": "core", "request_timeout": None, "event_loop": loop},
            "pricing": {"plans": {"core": {"vcpus": 1, "memory_gb": 4, "usd_per_month": 0}}},
            "load_balancer": {"latency": self.outside or 0.0},
            "database": database,
            "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})


def _pool(config: dict, notes: list[str]) -> dict:
    keys = {"POOL_MAX": ("max", 1), "POOL_CONN_TIMEOUT_MS": ("acquire_timeout", 1e-3),
            "POOL_IDLE_TIMEOUT_MS": ("idle_timeout", 1e-3)}
    pool = dict(config.get("pool", {}))
    for key, (field_, scale) in keys.items():
        if key in config:
            pool[field_] = config[key] * scale if scale != 1 else int(config[key])
    if pool:
        notes.append(f"pool {pool}: the server's settings in the log")
    else:
        notes.append("pool: not in the log; the base scenario's pool")
    return pool


def _loop(log: RequestLog, notes: list[str]) -> LoopEstimate | None:
    """The event loop's own work, where the log identifies it (one process, server timings, its totals)."""
    if "process" in log.frame and log.frame["process"].nunique() > 1 or log.process.get("processes", 1) > 1:
        notes.append("event loop: the log mixes several processes (the back-to-back pairs need one loop): "
                     "left at the base scenario's event_loop")
        return None
    try:
        loop = estimate_event_loop(log)
    except ValueError as exc:
        notes.append(f"event loop: {exc}: left at the base scenario's event_loop")
        return None
    notes += loop.notes
    return loop


def _outside(log: RequestLog, loop, basis: str, notes: list[str]) -> float | None:
    m = log.measured
    ok = m[m.outcome == "ok"]
    if loop is not None:
        return loop.outside
    if basis == "handler time" or (basis == "server timings" and log.has("server")):
        d = (ok.latency - ok.server).dropna()
        if len(d):
            v = float(np.quantile(d, 0.05))
            notes.append(f"latency outside the server = {v * 1e3:.3f} ms: the 5th percentile of latency minus handler "
                         f"time over {len(d)} requests (assumed: the fixed part; the rest is waiting for the loop)")
            return v
    if log.has("latency") and len(ok):
        v = float(ok.latency.min())
        notes.append(f"latency outside the server = {v * 1e3:.3f} ms: the smallest latency of {len(ok)} requests "
                     f"(assumed: the fixed part, network and HTTP; no server timings to separate it)")
        return v
    notes.append("latency outside the server: not identified; the base scenario's")
    return None


def calibrate(log: RequestLog) -> Calibration:
    """Fit everything the log supports (see the module docstring)."""
    notes: list[str] = []
    m = log.measured
    basis = basis_of(log)
    loop = _loop(log, notes) if basis == "server timings" else None
    if basis != "server timings":
        notes.append(f"event loop: no server timings ({basis} only): left at the base scenario's event_loop")
    outside = _outside(log, loop, basis, notes)
    pooled, endpoints = fit_endpoints(log, loop, outside or 0.0)
    notes[:0] = pooled.notes
    post = pooled.cpu_post.dist.mean if pooled.cpu_post is not None else 0.0
    if basis == "server timings":
        total = (m.cpu_pre + np.where(m.outcome == "ok", m.cpu_post, 0.0)).to_numpy()
        total_ci = mean_interval(total)
        mean_total = float(total.mean())
        notes.append(f"handler CPU per request {1e3 * mean_total:.3f} ms, 95% CI [{1e3 * total_ci[0]:.3f}, "
                     f"{1e3 * total_ci[1]:.3f}] ms from {len(total)} requests: near saturation this interval moves "
                     f"the predicted latency far more than any other input")
    else:
        mean_total, total_ci = pooled.cpu_pre.mean + post, pooled.cpu_pre.mean_ci
    connect = _connect_time(log, notes)
    if log.ignored:
        notes.append(f"columns not used: {', '.join(log.ignored)}")
    window = float(log.process.get("window") or (m.t.max() - m.t.min()) or float("nan"))
    arrivals = arrivals_of_log(log)
    notes += arrivals.notes
    sessions = fit_sessions(log, arrivals) if log.has("client") else None
    if sessions is not None:
        notes += sessions.notes
    return Calibration(log.name, pooled.cpu_pre, pooled.cpu_post, pooled.db_probability, pooled.query_time, loop,
                       _pool(log.config, notes), connect, mean_total, total_ci, notes, endpoints, basis, outside,
                       len(m) / window if window else float("nan"), window, len(m), arrivals, sessions,
                       log.source or log.name)


def _connect_time(log: RequestLog, notes: list[str]) -> float | None:
    if not log.has("db_acquire"):
        return None
    m = log.measured
    acq = m.db_acquire[(m.db == 1) & (m.outcome == "ok")].dropna().to_numpy()
    opens = acq[acq > 5 * np.median(acq)] if len(acq) else acq
    if len(opens):
        connect = float(np.mean(opens))
        notes.append(f"connect_time = {connect * 1e3:.3f} ms: mean of {len(opens)} acquires above 5x the median "
                     f"(taken as connections opened after the idle timeout)")
        return connect
    notes.append("connect_time: no connection was opened in the log; the base scenario's value")
    return None
