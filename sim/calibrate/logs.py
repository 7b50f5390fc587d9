"""Request logs: one row per request, in seconds, with whatever server timings the log has.

Canonical columns (``RequestLog.frame``; times in seconds):

- ``t``: when the client sent it (scheduled send time for an open-loop generator), from the
  log's start; ``latency``: until the response reached the client; ``outcome``: ``ok`` or
  a capsim outcome name; ``route``: the endpoint; ``measured``: inside the measured window;
- server timings, where the log has them: ``server`` (handler entry to response write),
  ``cpu_pre`` / ``cpu_post`` (the handler's CPU before and after its database step),
  ``db`` (1 when it took the database step), ``db_acquire`` (pool wait), ``db_query``
  (query sent to result seen), ``srv_in`` / ``srv_out`` (handler entry and response write
  on the server's clock, seconds), ``send`` (when the client really sent it).

``RequestLog.process`` holds what the server reported about its process over the measured
window, where known: ``window``, ``requests``, ``elu_active`` and ``cpu`` (seconds), the main
thread's and helper threads' CPU seconds. ``config`` holds the server's settings (pool size,
timeouts) where the log says them.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RequestLog", "read_node_pg_run"]

OUTCOME_OF_STATUS = {200: "ok", 429: "rate_limited", 503: "pool_timeout"}


@dataclass
class RequestLog:
    frame: pd.DataFrame
    name: str = "log"
    process: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def measured(self) -> pd.DataFrame:
        return self.frame[self.frame["measured"]]

    def has(self, *columns: str) -> bool:
        return all(c in self.frame.columns and self.frame[c].notna().any() for c in columns)


def _process_totals(stats: dict) -> dict:
    """Server /stats snapshots at the start and end of the measured window -> totals over it."""
    a, b = stats.get("measure_start"), stats.get("end")
    if not a or not b:
        return {}
    def ticks(snap, main):
        return sum(t["ticks"] for t in snap.get("threads", {}).values() if t.get("main") == main) / 100.0
    return {"window": (b["t_ms"] - a["t_ms"]) / 1000.0,
            "requests": b["counters"]["requests"] - a["counters"]["requests"],
            "elu_active": (b["elu_active_ms"] - a["elu_active_ms"]) / 1000.0,
            "cpu": (b["cpu_user_us"] + b["cpu_system_us"] - a["cpu_user_us"] - a["cpu_system_us"]) / 1e6,
            "main_thread_cpu": ticks(b, True) - ticks(a, True),
            "helper_threads_cpu": ticks(b, False) - ticks(a, False)}


def read_node_pg_run(csv_path, json_path=None, name: str | None = None) -> RequestLog:
    """A run of ``node-pg-measurements`` (its ``runs/NAME.csv.gz`` and, if given, ``NAME.json``)."""
    csv_path = Path(csv_path)
    opener = gzip.open if csv_path.suffix == ".gz" else open
    with opener(csv_path, "rt") as fh:
        raw = pd.read_csv(fh)
    ms = 1e-3
    frame = pd.DataFrame({
        "t": raw["sched_ms"] * ms, "send": raw["send_ms"] * ms, "latency": raw["latency_ms"] * ms,
        "outcome": raw["outcome"].astype(str), "route": "work", "measured": raw["phase"] == "measure",
        "server": raw["server_ms"] * ms, "cpu_pre": raw["cpu1_ms"] * ms, "cpu_post": raw["cpu2_ms"] * ms,
        "db": raw["db"].astype(int), "db_acquire": raw["db_acquire_ms"] * ms, "db_query": raw["db_query_ms"] * ms,
        "srv_in": raw["srv_in_ms"] * ms, "srv_out": raw["srv_out_ms"] * ms})
    frame.loc[frame["db"] == 0, ["db_acquire", "db_query"]] = np.nan
    process, config = {}, {}
    if json_path is not None and Path(json_path).exists():
        meta = json.loads(Path(json_path).read_text())
        process = _process_totals(meta.get("stats", {}))
        end = meta.get("stats", {}).get("end", {})
        config = dict(end.get("config", {}))
        process["rate"] = meta.get("rate")
    return RequestLog(frame.sort_values("srv_in").reset_index(drop=True), name or csv_path.name.split(".")[0],
                      process, config)
