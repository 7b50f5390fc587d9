"""Results of one run: ``summary`` (a flat, JSON-ready dict) and ``timeseries`` (a DataFrame).

Totals cover the measurement window [warmup, horizon]: requests arriving in it,
outcomes of requests completing in it, and instance time within it. Conservation:
``in_flight_start + requests.total == completed + in_flight_end``. Failures are split
into ``server_error_rate`` (5xx-like outcomes, ``capsim.models.request.SERVER_ERRORS``)
and ``rejected_rate`` (429s from rate limits); the two are never summed into one figure
here (the ``slo`` block says which one its objectives count).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capsim.models.pricing import extras_cost, instance_cost, monthly_projection
from capsim.models.request import OUTCOMES, REJECTED, SERVER_ERRORS
from capsim.results.files import OutputFolder, write_csv, write_json, write_text

__all__ = ["Result", "summarize"]


EVENT_COLUMNS = ["time", "from", "to", "reason"]


@dataclass
class Result:
    summary: dict
    rows: list[dict] = field(repr=False)
    events: list[dict] = field(default_factory=list, repr=False)   # scaling events
    instance_rows: list[dict] = field(default_factory=list, repr=False)   # per instance and interval
    scenario: object = field(default=None, repr=False)   # the validated Scenario that ran (written as scenario.json)
    histogram_rows: list[dict] = field(default_factory=list, repr=False)   # latency histogram of the window

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

    @property
    def latency_histogram(self) -> pd.DataFrame:
        """The measured window's latency histogram: lower_ms, upper_ms, responses, ok, endpoint:<name>."""
        return pd.DataFrame(self.histogram_rows)

    def format(self) -> str:
        """The summary in a dozen lines, as ``capsim run`` prints it."""
        from capsim.results.text import format_summary
        return format_summary(self.summary, self.rows)

    def write(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write the run's files to the output folder ``out``, whole or not at all
        (``capsim.results.files.OutputFolder``): an existing folder with files in it is
        replaced only with ``overwrite``."""
        with OutputFolder(out, overwrite=overwrite, command="run") as folder:
            self.write_into(folder.stage)
        return Path(out)

    def write_into(self, folder) -> list[Path]:
        """The run's files in ``folder`` (part of an output folder being written)."""
        folder = Path(folder)
        files = [write_json(folder / "summary.json", self.summary),
                 write_csv(folder / "timeseries.csv", self.timeseries),
                 write_csv(folder / "scaling_events.csv", self.scaling_events),
                 write_csv(folder / "instances.csv", self.instances)]
        if self.histogram_rows:
            files.append(write_csv(folder / "latency_histogram.csv", self.latency_histogram))
        if self.scenario is not None:
            files.append(write_text(folder / "scenario.json",
                                    self.scenario.model_dump_json(indent=2, by_alias=True) + "\n"))
        return files


def _f(x: float, nd: int = 3) -> float | None:
    return None if x != x else round(float(x), nd)  # NaN -> null in JSON


def summarize(model) -> dict:
    sc, m = model.scenario, model.metrics
    window = sc.horizon - sc.warmup
    counts = {name: int(round(c)) for name, c in zip(OUTCOMES, m.total_count)}   # fast mode: expected counts
    completed = sum(counts.values())
    server, rejected = (sum(counts[o] for o in group) for group in (SERVER_ERRORS, REJECTED))
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
        "server_error_rate": _f(server / completed if completed else float("nan"), 6),
        "rejected_rate": _f(rejected / completed if completed else float("nan"), 6),
        "errors": {"server": server, "rejected": rejected, "server_outcomes": ", ".join(SERVER_ERRORS),
                   "rejected_outcomes": ", ".join(REJECTED) + " (429)"},
        "latency_ms": {k: _f(lat[k]) for k in ("mean", "p50", "p95", "p99")},
        "latency_ok_ms": {k: _f(ok[k]) for k in ("mean", "p50", "p95", "p99")},
        "latency_by_endpoint_ms": _by_endpoint(m),
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


def _by_endpoint(m) -> dict:
    """Per endpoint: responses, mean, p50, p95, p99 (ms) over the measured window, every outcome."""
    out = {}
    for name in m.endpoints:
        lat = m.latency_ms(endpoints=[name])
        out[name] = {"count": lat["count"], **{k: _f(lat[k]) for k in ("mean", "p50", "p95", "p99")}}
    return out


def _weighted(rows: list[dict], key: str) -> float:
    num = den = 0.0
    for r in rows:
        v, dt = r.get(key, float("nan")), r["t_end"] - r["t_start"]
        if v == v:
            num, den = num + v * dt, den + dt
    return num / den if den else float("nan")
