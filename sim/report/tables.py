"""Tables and KPI tiles of the reports, with labels, units and readable numbers.

Every function takes what a command wrote (a summary dict, a run's tables) and returns
(label, text) pairs or a DataFrame of strings, ready for ``Page.table``; ``*_tiles``
return ``Tile`` lists for ``Page.tiles``.
"""
from __future__ import annotations

import math

import pandas as pd

from capsim.report.data import scenario_value
from capsim.report.html import Tile
from capsim.report.labels import (COLUMN_LABELS, format_number, format_p, format_value, metric_label, metric_name,
                                  metric_unit)
from capsim.report.timeaxis import start_of, times

__all__ = ["run_tiles", "slo_rows", "endpoint_table", "resource_table", "scaling_table", "stats_table",
           "comparison_table", "replication_tiles", "comparison_tiles"]

_OBJECTIVES = {"latency_mean_ms": ("average response", "ms", 1.0, "<"), "error_rate": ("error rate", "%", 100.0, "<"),
               "uptime": ("uptime", "%", 100.0, ">")}


def _v(x, unit: str = "", scale: float = 1.0) -> str:
    return format_value(x, unit, scale)


def _verdict(slo: dict | None) -> Tile:
    if not slo or not slo.get("objectives"):
        return Tile("SLO", "not evaluated", "no slo block in summary.json")
    missed = [_OBJECTIVES.get(n, (n,))[0] for n, o in slo["objectives"].items() if o.get("met") is False]
    detail = f"{slo.get('violation_minutes', 0):g} min in violation, {slo.get('alerts_fired', 0)} alerts fired"
    if missed:
        return Tile("SLO", "missed", "missed: " + ", ".join(missed) + "; " + detail, "bad")
    return Tile("SLO", "met", detail, "good")


def run_tiles(s: dict) -> list[Tile]:
    """Cost/month, p95, server error rate (rejected share beside it), instance-hours, SLO verdict."""
    lat = s.get("latency_ms") or {}
    server, rejected = s.get("server_error_rate"), s.get("rejected_rate")
    return [
        Tile("cost per month", _v(s.get("monthly_cost_usd"), "$"), s.get("monthly_cost_method", "")),
        Tile("latency p95", _v(lat.get("p95"), "ms"), f"mean {_v(lat.get('mean'), 'ms')}, p99 {_v(lat.get('p99'), 'ms')}"),
        Tile("server error rate", _v(server, "%", 100.0), f"rejected by rate limits (429): {_v(rejected, '%', 100.0)}",
             "good" if server == 0 else "neutral"),
        Tile("instance-hours", format_number(s.get("instance_hours")),
             f"mean {format_number((s.get('instances') or {}).get('mean'))}, max "
             f"{(s.get('instances') or {}).get('max', 'n/a')} instances"),
        _verdict(s.get("slo")),
    ]


def slo_rows(block: dict | None) -> pd.DataFrame:
    """One row per objective, threshold and alert: what it checks, its state, the numbers."""
    if not block:
        return pd.DataFrame()
    rows = []
    for name, o in block.get("objectives", {}).items():
        label, unit, scale, op = _OBJECTIVES.get(name, (name, "", 1.0, "<"))
        state = "met" if o.get("met") else "MISSED" if o.get("met") is False else "n/a"
        what = f"{label} {op} {_v(o.get('limit'), unit, scale)}"
        if name == "error_rate":
            what += " (server errors and 429s)" if block.get("count_rejected") else " (server errors)"
        rows.append({"kind": "objective", "check": what, "state": state, "value": _v(o.get("value"), unit, scale),
                     "minutes in violation": format_number(o.get("violation_minutes"))})
    for name, t in block.get("thresholds", {}).items():
        unit, scale = metric_unit(t["metric"])
        rows.append({"kind": "threshold", "check": f"{name}: {metric_name(t['metric'])} > {_v(t['above'], unit, scale)}",
                     "state": "crossed" if t["violation_minutes"] else "never crossed", "value": "",
                     "minutes in violation": format_number(t["violation_minutes"])})
    for name, a in block.get("alerts", {}).items():
        unit, scale = metric_unit(a["metric"])
        rows.append({"kind": "alert", "check": f"{name}: {metric_name(a['metric'])} > {_v(a['above'], unit, scale)} "
                                               f"for {format_number(a['for_seconds'] / 60)} min",
                     "state": f"fired {a['fired']}×" if a["fired"] else "never fired", "value": "",
                     "minutes in violation": format_number(a["firing_minutes"])})
    return pd.DataFrame(rows)


def endpoint_table(s: dict) -> pd.DataFrame:
    """Responses and latency per endpoint over the measured window (ms)."""
    eps = s.get("latency_by_endpoint_ms") or {}
    total = sum(e.get("count", 0) for e in eps.values()) or 1
    return pd.DataFrame([{"endpoint": name, "responses": format_number(e.get("count")),
                          "share": _v(e.get("count", 0) / total, "%", 100.0),
                          **{f"{k} (ms)": format_number(e.get(k)) for k in ("mean", "p50", "p95", "p99")}}
                         for name, e in eps.items()])


def _measured(ts: pd.DataFrame) -> pd.DataFrame:
    if "warmup" not in ts:
        return ts
    return ts[~ts["warmup"].astype(str).str.lower().isin(["true", "1", "1.0"])]


def _stat(ts: pd.DataFrame, col: str, how: str, scale: float = 1.0):
    if col not in ts or not ts[col].notna().any():
        return None
    v = ts[col].astype(float)
    return float(getattr(v, how)()) * scale


def resource_table(run) -> pd.DataFrame:
    """Utilisation and queue per resource over the measured window: mean and peak interval."""
    ts, s = _measured(run.timeseries), run.summary
    pool_max = scenario_value(run, "database.pool.max")
    max_conn = scenario_value(run, "database.max_connections")
    rows = []

    def add(resource, util_col, queue_col, queue_unit, note, util_scale=100.0, util_ratio=None):
        util_mean = _stat(ts, util_col, "mean", util_scale) if util_ratio is None else util_ratio[0]
        util_peak = _stat(ts, util_col, "max", util_scale) if util_ratio is None else util_ratio[1]
        rows.append({"resource": resource, "utilisation mean": _v(util_mean, "%"),
                     "utilisation peak": _v(util_peak, "%"),
                     "queue mean": format_value(_stat(ts, queue_col, "mean"), queue_unit) if queue_col else "—",
                     "queue peak": format_value(_stat(ts, queue_col, "max"), queue_unit) if queue_col else "—",
                     "note": note})
    add("CPU (instances)", "cpu_util", "cpu_backlog_s", "s", "queue: CPU work waiting, seconds (fleet total)")
    peak_col = "memory_util_max" if "memory_util_max" in ts else "memory_util"
    add("memory (instances)", None, None, "", "peak: the fullest instance" if peak_col != "memory_util" else "",
        util_ratio=(_stat(ts, "memory_util", "mean", 100.0), _stat(ts, peak_col, "max", 100.0)))
    if "pool_in_use" in ts and "pool_connections" in ts and pool_max:
        cap = ts["instances_ready"].astype(float) * float(pool_max) if "instances_ready" in ts else None
        ratio = None
        if cap is not None:
            share = (ts["pool_in_use"].astype(float) / cap.where(cap > 0)) * 100
            ratio = (float(share.mean()), float(share.max())) if share.notna().any() else (None, None)
        add("connection pool", None, "pool_waiters", "requests",
            f"in use of {pool_max} per ready instance; wait p95 {_v((s.get('pool') or {}).get('wait_p95_ms'), 'ms')}, "
            f"{format_number((s.get('pool') or {}).get('timeouts'))} timeouts", util_ratio=ratio)
    if "db_connections" in ts and max_conn:
        share = ts["db_connections"].astype(float) / float(max_conn) * 100
        add("database connections", None, None, "", f"server connections of max_connections {max_conn}",
            util_ratio=(float(share.mean()), float(share.max())))
    if "db_util" in ts and ts["db_util"].notna().any():
        add("database server", "db_util", "db_queued", "queries", "queries running of its concurrency limit")
    cache = s.get("cache") or {}
    if cache.get("hit_rate") is not None:
        rows.append({"resource": f"cache ({cache.get('store', '')})", "utilisation mean": "—", "utilisation peak": "—",
                     "queue mean": "—", "queue peak": "—",
                     "note": f"hit rate {_v(cache['hit_rate'], '%', 100.0)} "
                             f"({format_number(cache.get('hits'))} hits, {format_number(cache.get('misses'))} misses)"})
    return pd.DataFrame(rows)


def scaling_table(run) -> pd.DataFrame:
    """Every scaling event: when (on the scenario's calendar), from, to, why."""
    ev = getattr(run, "scaling_events", None)
    if ev is None or not len(ev):
        return pd.DataFrame()
    when = times(run, ev["time"].astype(float))
    shown = [f"{t:%a %d %b %H:%M:%S}" for t in when] if start_of(run) is not None else \
        [f"{t:.2f} h" for t in when]
    return pd.DataFrame({"time": shown, "from": ev["from"].astype(int).astype(str),
                         "to": ev["to"].astype(int).astype(str), "reason": ev.get("reason", "")})


def _interval(c: dict, unit: str, scale: float) -> str:
    if c.get("ci_low") is None:
        return "n/a"
    return f"{format_value(c['ci_low'], unit, scale)} – {format_value(c['ci_high'], unit, scale)}"


def _present(records: dict, names: list[str]):
    """(key, record, unit, scale) of each of ``names`` that ``records`` has, in that order."""
    for m in names:
        if m in records:
            yield (m, records[m], *metric_unit(m))


def stats_table(block: dict, names: list[str]) -> pd.DataFrame:
    """Mean and 95% interval per metric (over replications), in each metric's unit."""
    return pd.DataFrame([{"metric": metric_label(m), "mean": format_value(c.get("mean"), unit, scale),
                          "95% interval": _interval(c, unit, scale),
                          COLUMN_LABELS["half_width"]: format_value(c.get("half_width"), unit, scale),
                          COLUMN_LABELS["n"]: format_number(c.get("n"))}
                         for m, c, unit, scale in _present(block, names)])


def comparison_table(ms: dict, names: list[str]) -> pd.DataFrame:
    """A, B, B − A with its 95% interval, p-value and verdict per metric."""
    rows = []
    for m, d, unit, scale in _present(ms, names):
        diff = d.get("diff")
        sign = "+" if diff is not None and diff > 0 else ""
        rows.append({"metric": metric_label(m), "A": format_value(d.get("a"), unit, scale),
                     "B": format_value(d.get("b"), unit, scale),
                     "B − A": "n/a" if diff is None else sign + format_value(diff, unit, scale),
                     "95% interval": _interval(d, unit, scale), "p-value": format_p(d.get("p_value")),
                     "verdict": d.get("verdict", "")})
    return pd.DataFrame(rows)


def _ci_text(c: dict, unit: str, scale: float) -> str:
    if c.get("half_width") is None or (isinstance(c["half_width"], float) and math.isnan(c["half_width"])):
        return f"{c.get('n', 0)} runs"
    return f"± {format_value(c['half_width'], unit, scale)} (95%, {c.get('n')} runs)"


# (metric, tile label) of the experiment tiles, in order
_TILES = (("monthly_cost_usd", "cost per month"), ("latency_ms.p95", "latency p95"),
          ("server_error_rate", "server error rate"), ("rejected_rate", "rejected (429) share"),
          ("instance_hours", "instance-hours"))


def replication_tiles(block: dict) -> list[Tile]:
    """The run tiles' metrics as means over the replications, with their 95% half-widths."""
    labels = dict(_TILES + (("slo.objectives_met", "runs meeting every objective"),))
    return [Tile(labels[m], format_value(c.get("mean"), unit, scale), _ci_text(c, unit, scale))
            for m, c, unit, scale in _present(block, list(labels))]


def comparison_tiles(ms: dict) -> list[Tile]:
    """A → B per headline metric, coloured by whether B's difference is significant and for the better."""
    labels = dict(_TILES + (("slo.violation_minutes", "SLO-violation minutes"),))
    tiles = []
    for m, d, unit, scale in _present(ms, list(labels)):
        lo, hi = d.get("ci_low"), d.get("ci_high")
        significant = lo is not None and hi is not None and (lo > 0 or hi < 0)
        state = "neutral" if not significant else ("good" if d["diff"] < 0 else "bad")
        tiles.append(Tile(labels[m], f"{format_value(d.get('a'), unit, scale)} → {format_value(d.get('b'), unit, scale)}",
                          d.get("verdict", ""), state))
    return tiles
