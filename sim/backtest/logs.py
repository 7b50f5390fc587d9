"""Request logs for a backtest: read one, map its routes to endpoints, write its traffic as a trace.

``read_log`` takes a node-pg measurement run (``runs/NAME.csv.gz``, with ``NAME.json`` beside it
when there is one: ``capsim.calibrate.read_node_pg_run``) or a plain request log, CSV or JSON
lines (gz), with the columns ``t`` (seconds from the log's start, an epoch, or ISO 8601),
``latency_ms`` (or ``latency`` in seconds), and optionally ``route``, ``status`` (HTTP: 2xx/3xx
ok) or ``outcome`` (``ok`` or a capsim outcome name), and ``measured`` (true/false: inside the
measured window; default: every row). Every row becomes a row of ``RequestLog.frame``.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd

from capsim.calibrate import RequestLog, read_node_pg_run
from capsim.models.trace import parse_time

__all__ = ["read_log", "route_map", "write_trace", "LogError"]


class LogError(ValueError):
    """A log that cannot be backtested (the file, and where in it)."""


def _head(path: Path) -> str:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.readline()


def read_log(path) -> RequestLog:
    path = Path(path)
    if not path.is_file():
        raise LogError(f"{path}: no such file (a request log)")
    try:
        head = _head(path)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise LogError(f"{path}: cannot read: {exc}") from None
    stem = _stem(path)
    if "sched_ms" in head.split(","):
        meta = path.with_name(stem + ".json")
        return read_node_pg_run(path, meta if meta.exists() else None, name=stem)
    return _plain_log(path, head, stem)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return name


def _plain_log(path: Path, head: str, name: str) -> RequestLog:
    jsonl = head.lstrip().startswith("{")
    try:
        raw = pd.read_json(path, lines=True) if jsonl else pd.read_csv(path)
    except ValueError as exc:
        raise LogError(f"{path}: cannot read: {exc}") from None
    missing = [c for c in ("t",) if c not in raw.columns]
    if missing or not ({"latency_ms", "latency"} & set(raw.columns)):
        raise LogError(f"{path}: expected columns t and latency_ms (or latency, in s); the file has {list(raw.columns)}")
    line0 = 1 if jsonl else 2
    t = np.array([parse_time(v, 1.0, str(path), i + line0, "t") for i, v in enumerate(raw["t"])])
    lat = raw["latency_ms"] * 1e-3 if "latency_ms" in raw.columns else raw["latency"].astype(float)
    bad = ~np.isfinite(lat.to_numpy(dtype=float)) | (lat.to_numpy(dtype=float) < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise LogError(f"{path}:{i + line0}: latency: expected a number >= 0, got {raw['latency_ms' if 'latency_ms' in raw else 'latency'].iloc[i]!r}")
    if "outcome" in raw.columns:
        outcome = raw["outcome"].astype(str)
    elif "status" in raw.columns:
        outcome = np.where((raw["status"] >= 200) & (raw["status"] < 400), "ok", "http_" + raw["status"].astype(str))
    else:
        outcome = "ok"
    frame = pd.DataFrame({"t": t - t.min(), "latency": lat.to_numpy(dtype=float), "outcome": outcome,
                          "route": raw["route"].astype(str) if "route" in raw.columns else "",
                          "measured": raw["measured"].astype(bool) if "measured" in raw.columns else True})
    return RequestLog(frame.sort_values("t", kind="stable").reset_index(drop=True), name)


def route_map(routes, endpoints: list[str], mapping: dict[str, str], default: str | None) -> dict[str, str]:
    """Each route of the log -> an endpoint: ``mapping``, an endpoint of that name, the last path
    segment naming one, else ``default``; a route that maps to none is an error listing them."""
    from capsim.scenario.artillery import url_endpoint
    out, bad = {}, []
    for r in sorted(set(routes)):
        name = mapping.get(r) or url_endpoint(r, {}, endpoints) or default
        if name is None and len(endpoints) == 1:
            name = endpoints[0]           # a one-endpoint scenario takes every route
        if name is None:
            bad.append(r)
        out[r] = name
    if bad:
        raise LogError(f"routes that map to no endpoint of the scenario ({', '.join(endpoints)}): "
                       f"{', '.join(map(repr, bad[:10]))}{' ...' if len(bad) > 10 else ''}; map them in the scenario's "
                       "workload.trace.routes or set workload.trace.default_endpoint")
    return out


def write_trace(log: RequestLog, path, routes: dict[str, str]) -> Path:
    """The log's arrivals as a trace (``t`` in s from the log's start, ``route`` = endpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = log.frame.sort_values("t", kind="stable")
    pd.DataFrame({"t": f["t"].round(9), "route": f["route"].map(routes)}).to_csv(path, index=False,
                                                                                compression="gzip")
    return path
