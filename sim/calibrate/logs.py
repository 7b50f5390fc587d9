"""Request logs: one row per request, in seconds, with whatever server timings the log has.

Canonical columns (``RequestLog.frame``; times in seconds):

- ``t``: when the client sent it (scheduled send time for an open-loop generator), from the
  log's start; ``latency``: until the response reached the client; ``outcome``: ``ok`` or
  a capsim outcome name; ``route``: the endpoint; ``measured``: inside the measured window;
- server timings, where the log has them: ``server`` (handler entry to response write),
  ``cpu_pre`` / ``cpu_post`` (the handler's CPU before and after its database step),
  ``db`` (1 when it took the database step), ``db_acquire`` (pool wait), ``db_query``
  (query sent to result seen), ``srv_in`` / ``srv_out`` (handler entry and response write
  on the server's clock, seconds), ``send`` (when the client really sent it);
- ``status``, ``client`` (a session or user id), ``instance``, ``process`` where the log has
  them; ``line``: the row's line in the file (for messages).

``RequestLog.process`` holds what the server reported about its process over the measured
window, where known: ``window``, ``requests``, ``elu_active`` and ``cpu`` (seconds), the main
thread's and helper threads' CPU seconds. ``config`` holds the server's settings (pool size,
timeouts) where the log says them. ``start`` is the calendar time at t = 0 (None: relative
times), ``columns`` which file column each field came from and ``ignored`` the columns no
field took. Readers: ``capsim.calibrate.read_log``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

__all__ = ["RequestLog", "process_totals", "outcome_of_status"]

OUTCOME_OF_STATUS = {200: "ok", 429: "rate_limited", 503: "pool_timeout"}


def outcome_of_status(status) -> str:
    """An HTTP status as an outcome: 2xx/3xx ok, 429 rate_limited, else ``http_<status>``
    (no status: ``failed``, the connection died)."""
    if status != status or status is None or status == 0:
        return "failed"
    s = int(status)
    if 200 <= s < 400:
        return "ok"
    return "rate_limited" if s == 429 else f"http_{s}"


@dataclass
class RequestLog:
    frame: pd.DataFrame
    name: str = "log"
    process: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    start: datetime | None = None          # calendar time at t = 0 (None: the log's times are relative)
    source: str = ""                       # the file it was read from
    columns: dict = field(default_factory=dict)     # field -> the column it came from
    ignored: list = field(default_factory=list)     # the file's columns no field took

    @property
    def measured(self) -> pd.DataFrame:
        return self.frame[self.frame["measured"]]

    def has(self, *columns: str) -> bool:
        return all(c in self.frame.columns and self.frame[c].notna().any() for c in columns)

    @property
    def routes(self) -> list[str]:
        return sorted(self.frame["route"].unique())


def process_totals(stats: dict) -> dict:
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
