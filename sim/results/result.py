"""Results of one run: ``summary`` (a flat, JSON-ready dict) and ``timeseries`` (a DataFrame).

Totals cover the measurement window [warmup, horizon]: requests arriving in it,
outcomes of requests completing in it, and instance time within it. Conservation:
``in_flight_start + requests.total == completed + in_flight_end``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capsim.models.pricing import extras_cost, instance_cost, monthly_projection
from capsim.models.request import OUTCOMES

__all__ = ["Result", "summarize"]


EVENT_COLUMNS = ["time", "from", "to", "reason"]


@dataclass
class Result:
    summary: dict
    rows: list[dict] = field(repr=False)
    events: list[dict] = field(default_factory=list, repr=False)   # scaling events
    instance_rows: list[dict] = field(default_factory=list, repr=False)   # per instance and interval
    scenario: object = field(default=None, repr=False)   # the validated Scenario that ran (written as scenario.json)

    @property
    def timeseries(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    @property
    def scaling_events(self) -> pd.DataFrame:
        return pd.DataFrame(self.events, columns=None if self.events else EVENT_COLUMNS)

    @property
    def instances(self) -> pd.DataFrame:
        """One row per instance and interval: ready, cpu_util, memory_util, sockets, in_flight, pool_in_use, pool_waiters."""
        return pd.DataFrame(self.instance_rows)

    def format(self) -> str:
        """The summary in a dozen lines, as ``capsim run`` prints it."""
        from capsim.results.text import format_summary
        return format_summary(self.summary, self.rows)

    def write(self, out: str | Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        self.timeseries.to_csv(out / "timeseries.csv", index=False)
        self.scaling_events.to_csv(out / "scaling_events.csv", index=False)
        self.instances.to_csv(out / "instances.csv", index=False)
        if self.scenario is not None:
            (out / "scenario.json").write_text(self.scenario.model_dump_json(indent=2, by_alias=True) + "\n")
        return out


def _f(x: float, nd: int = 3) -> float | None:
    return None if x != x else round(float(x), nd)  # NaN -> null in JSON


def summarize(model) -> dict:
    sc, m = model.scenario, model.metrics
    window = sc.horizon - sc.warmup
    counts = {name: int(round(c)) for name, c in zip(OUTCOMES, m.total_count)}   # fast mode: expected counts
    completed = sum(counts.values())
    errors = completed - counts["ok"]
    rows = [r for r in m.rows if not r["warmup"]]
    inst_mean = sum(r["instances"] * (r["t_end"] - r["t_start"]) for r in rows) / window
    seconds = model.fleet.instance_seconds(sc.warmup, sc.horizon)
    compute = sum(instance_cost(sc.pricing, plan, s) for plan, s in seconds.items())
    cost = compute + extras_cost(sc.pricing, window)
    events = model.controller.events if model.controller is not None else []
    now_counts, base = model.counters(), model.baseline
    since = {k: now_counts[k] - base.get(k, 0) for k in ("reconnects", "oom_restarts", "crashes")}
    peak_users = max((r.get("sessions", 0) for r in rows), default=0)
    lat, ok = m.latency_ms(), m.latency_ms(["ok"])
    wait = m.total_pool_wait
    return {
        "scenario": sc.name,
        "seed": model.seed,
        "simulated_seconds": sc.horizon,
        "warmup_seconds": sc.warmup,
        "measured_seconds": window,
        "wall_seconds": round(model.wall_seconds, 3),
        "requests": {"total": int(round(m.total_arrivals)), "completed": completed, **counts,
                     "in_flight_start": int(round(m.in_system_at_warmup)), "in_flight_end": int(round(m.in_system))},
        "throughput_rps": _f(completed / window),
        "error_rate": _f(errors / completed if completed else float("nan"), 6),
        "latency_ms": {k: _f(lat[k]) for k in ("mean", "p50", "p95", "p99")},
        "latency_ok_ms": {k: _f(ok[k]) for k in ("mean", "p50", "p95", "p99")},
        "latency_rel_err": 0.005,
        "pool": {"wait_p95_ms": _f(1000 * wait.quantile(0.95)) if wait.count else 0.0,
                 "acquires": int(round(wait.count)), "timeouts": counts["pool_timeout"],
                 "db_refused": counts["db_refused"]},
        "instances": {"mean": _f(inst_mean), "max": max((r["instances"] for r in rows), default=0)},
        "instance_hours": _f(sum(seconds.values()) / 3600, 4),
        "instance_hours_by_plan": {p: _f(s / 3600, 4) for p, s in seconds.items()},
        "cost_usd": _f(cost, 4),
        "cost_compute_usd": _f(compute, 4),
        "monthly_cost_usd": _f(monthly_projection(cost, window, sc.pricing), 2),
        "monthly_cost_method": f"measured cost rate x {sc.pricing.hours_per_month:g} h",
        "cost_per_1000_requests_usd": _f(1000 * cost / completed if completed else float("nan"), 6),
        "cost_per_peak_user_usd": _f(cost / peak_users if peak_users else float("nan"), 6),
        "scaling_events": sum(1 for e in events if e.time >= sc.warmup),
        "crashes": since["crashes"],
        "cpu_util_mean": _f(_weighted(rows, "cpu_util")),
        "cpu_util_definition": "CPU as the platform measures it: the Node processes' CPU over the instances' vCPUs",
        "elu_mean": _f(_weighted(rows, "elu")),
        "pool_busy_mean": _f(_weighted(rows, "pool_busy")),
        "db_active_mean": _f(_weighted(rows, "db_active_mean")),
        **model.middleware.totals(model.baseline),
        "timeouts": counts["timeout"],
        "sockets": {"reconnects": since["reconnects"],
                    "max_per_instance": max((r.get("sockets_max", 0) for r in rows), default=0)},
        "oom_restarts": since["oom_restarts"],
        "memory_util_max": _f(max((r.get("memory_util_max", float("nan")) for r in rows), default=float("nan"))),
        "sessions": {"started": int(round(model.sessions.started)) if model.sessions else 0,
                     "peak": peak_users},
    }


def _weighted(rows: list[dict], key: str) -> float:
    num = den = 0.0
    for r in rows:
        v, dt = r.get(key, float("nan")), r["t_end"] - r["t_start"]
        if v == v:
            num, den = num + v * dt, den + dt
    return num / den if den else float("nan")
