"""A service calibrated from one request log with server timings: one endpoint's CPU and query
times, the event loop's own work, the pool, and the latency outside the server.

Every value carries where it came from (``Calibration.notes``). What the log cannot show
is left at the base scenario's value and the notes say so.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capsim.calibrate.event_loop import LoopEstimate, estimate_event_loop
from capsim.calibrate.fit import Fit, fit_distribution, mean_interval
from capsim.calibrate.logs import RequestLog
from capsim.scenario.config import Scenario

__all__ = ["Calibration", "calibrate"]


@dataclass
class Calibration:
    name: str
    cpu_pre: Fit
    cpu_post: Fit
    db_probability: float
    query_time: Fit | None
    loop: LoopEstimate
    pool: dict
    connect_time: float | None
    cpu_total: float = float("nan")                 # the handler's mean CPU per request, s
    cpu_total_ci: tuple[float, float] = (float("nan"), float("nan"))
    notes: list[str] = field(default_factory=list)

    @property
    def cpu_interval(self) -> tuple[float, float]:
        """The 95% interval of the handler's mean CPU per request, as factors of its estimate."""
        lo, hi = self.cpu_total_ci
        return lo / self.cpu_total, hi / self.cpu_total

    def scenario(self, rate: float, horizon: float, warmup: float, name: str | None = None,
                 event_loop: dict | None = None, cpu_factor: float = 1.0) -> Scenario:
        """One instance, one Node process on one core, Poisson arrivals at ``rate``/s
        (``event_loop``: other event-loop figures than the calibrated ones; ``cpu_factor``:
        the handler's CPU times this, e.g. an end of ``cpu_interval``)."""
        pre, post = self.cpu_pre.dist.scaled(cpu_factor), self.cpu_post.dist.scaled(cpu_factor)
        endpoint = {"cpu_pre": pre.model_dump(), "cpu_post": post.model_dump(),
                    "queries": 1 if self.query_time is not None else 0, "db_probability": self.db_probability}
        if self.query_time is not None:
            endpoint["query_time"] = self.query_time.dist.model_dump()
        database = {"rtt": 0.0, "pool": self.pool}
        if self.connect_time is not None:
            database["connect_time"] = self.connect_time
        return Scenario.model_validate({
            "name": name or self.name, "description": f"calibrated from {self.name}",
            "horizon": horizon, "warmup": warmup,
            "workload": {"sessions": None, "open_loop": [{"name": "poisson", "rate": rate}],
                         "endpoints": {"work": endpoint}},
            "instances": {"plan": "core", "request_timeout": None,
                          "event_loop": self.loop.config() if event_loop is None else event_loop},
            "pricing": {"plans": {"core": {"vcpus": 1, "memory_gb": 4, "usd_per_month": 0}}},
            "load_balancer": {"latency": self.loop.outside},
            "database": database,
            "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})


def _pool(config: dict, notes: list[str]) -> dict:
    keys = {"POOL_MAX": ("max", 1), "POOL_CONN_TIMEOUT_MS": ("acquire_timeout", 1e-3),
            "POOL_IDLE_TIMEOUT_MS": ("idle_timeout", 1e-3)}
    pool = {}
    for key, (field_, scale) in keys.items():
        if key in config:
            pool[field_] = config[key] * scale if scale != 1 else int(config[key])
    if pool:
        notes.append(f"pool {pool}: the server's settings in the log")
    else:
        notes.append("pool: not in the log; the base scenario's pool")
    return pool


def calibrate(log: RequestLog) -> Calibration:
    notes: list[str] = []
    m = log.measured
    ok = m[m.outcome == "ok"]
    cpu_pre = fit_distribution(m.cpu_pre)
    cpu_post = fit_distribution(ok.cpu_post)
    notes.append(f"cpu_pre: {cpu_pre.describe()} (the handler's first slice, as spent)")
    notes.append(f"cpu_post: {cpu_post.describe()}")
    total = (m.cpu_pre + np.where(m.outcome == "ok", m.cpu_post, 0.0)).to_numpy()
    total_ci = mean_interval(total)
    notes.append(f"handler CPU per request {1e3 * total.mean():.3f} ms, 95% CI [{1e3 * total_ci[0]:.3f}, "
                 f"{1e3 * total_ci[1]:.3f}] ms from {len(total)} requests: near saturation this interval moves "
                 f"the predicted latency far more than any other input")
    p_db = float(m.db.mean())
    notes.append(f"db_probability = {p_db:.4f}: share of {len(m)} requests that took the database step")
    loop = estimate_event_loop(log)
    notes += loop.notes
    query = connect = None
    dbs = log.frame[log.frame.db == 1]
    if len(dbs):
        woke = loop.idle_reply.astype(float)
        q = dbs.db_query.to_numpy() - loop.query_cpu - loop.wakeup_cpu * woke
        sel = dbs.measured.to_numpy()
        query = fit_distribution(np.clip(q[sel], 0.0, None))
        notes.append(f"query_time: {query.describe()} (query sent to result seen, minus the loop's reply work)")
        acq = dbs.db_acquire[dbs.measured].to_numpy()
        opens = acq[acq > 5 * np.median(acq)]
        if len(opens):
            connect = float(np.mean(opens))
            notes.append(f"connect_time = {connect * 1e3:.3f} ms: mean of {len(opens)} acquires above 5x the median "
                         f"(taken as connections opened after the idle timeout)")
        else:
            notes.append("connect_time: no connection was opened in the log; the base scenario's value")
    return Calibration(log.name, cpu_pre, cpu_post, p_db, query, loop, _pool(log.config, notes), connect,
                       float(total.mean()), total_ci, notes)
