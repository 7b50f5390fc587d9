"""Service-level objectives, monitoring thresholds and alert rules, checked on the time series.

The configuration is ``capsim.scenario.slo``.

Defaults are the seed guide's: success criteria (average response < 200 ms, error rate
< 0.01%, uptime > 99.9%), monitoring thresholds (response > 500 ms average, error rate
> 1%) and alert rules (error rate > 5% for 5 minutes, average > 2 s for 10 minutes).

Everything is evaluated on the measured intervals of ``Result.rows`` (rows flagged
``warmup`` are left out, as in the summary). Per interval: ``error_rate`` = responses
with a counted outcome / responses completed (no completions: no value, no violation);
latencies are the interval's columns (``latency_mean_ms`` ...). A value
violates a limit only when strictly beyond it (exactly 200 ms meets "< 200 ms").
``error_rate`` counts server errors (``capsim.models.request.SERVER_ERRORS``: pool timeouts,
refused connections, timeouts, crashes, circuit open, shed ...), not the 429s of rate
limits, unless the configuration says ``count_rejected: true``; ``server_error_rate`` and
``rejected_rate`` are always what they say. The block names what was counted
(``error_rate_counts``) and gives the rejected share beside it (``rejected_rate``).

- **uptime**: the share of measured time in intervals that ended with some instance
  ready to take traffic (``instances_ready > 0``).
- **violation minutes**: the length of the intervals in which the condition holds.
- **alerts**: a rule fires when its condition has held continuously for its ``for``
  (with 1-minute intervals a 5-minute rule fires at the end of the 5th consecutive
  violating minute); it fires again only after the condition has cleared.
"""
from __future__ import annotations

import math

from capsim.models.request import REJECTED, SERVER_ERRORS
from capsim.scenario.slo import AlertRule, SLOConfig, counted_outcomes, errors_counted

__all__ = ["evaluate", "slo_of", "format_slo"]


# -- evaluation -------------------------------------------------------------------------
RATES = {"server_error_rate": SERVER_ERRORS, "rejected_rate": REJECTED}


def _share(row: dict, outcomes) -> float:
    done = row.get("completed", 0)
    return sum(row.get(f"n_{o}", 0) for o in outcomes) / done if done else math.nan


def _value(row: dict, metric: str, counted=SERVER_ERRORS) -> float:
    """``metric`` of one interval; ``error_rate`` is the share of ``counted`` outcomes."""
    if metric == "error_rate":
        return _share(row, counted)
    if metric in RATES:
        return _share(row, RATES[metric])
    v = row.get(metric, math.nan)
    return math.nan if v is None else float(v)


def _beyond(value: float, limit: float) -> bool:
    return value == value and value > limit      # NaN: no value, no violation


def _minutes(row: dict) -> float:
    return (row["t_end"] - row["t_start"]) / 60.0


def evaluate(rows: list[dict], config: SLOConfig | None = None) -> dict:
    """The ``slo`` block of a summary from the time-series rows."""
    config = config or SLOConfig()
    counted = counted_outcomes(config)
    value = lambda r, metric: _value(r, metric, counted)  # noqa: E731
    rows = [r for r in rows if not r.get("warmup")]
    total_min = sum(_minutes(r) for r in rows)
    ob = config.objectives
    done = sum(r.get("completed", 0) for r in rows)
    errors = sum(sum(r.get(f"n_{o}", 0) for o in counted) for r in rows)
    lat_w = [(r["latency_mean_ms"], r["completed"]) for r in rows
             if r.get("completed") and r.get("latency_mean_ms") == r.get("latency_mean_ms")]
    up_min = sum(_minutes(r) for r in rows if r.get("instances_ready", 1) > 0)
    window = {"latency_mean_ms": sum(v * n for v, n in lat_w) / sum(n for _, n in lat_w) if lat_w else math.nan,
              "error_rate": errors / done if done else math.nan,
              "uptime": up_min / total_min if total_min else math.nan}
    checks = {  # per-interval violation of each objective
        "latency_mean_ms": lambda r: _beyond(value(r, "latency_mean_ms"), ob.latency_mean_ms),
        "error_rate": lambda r: _beyond(value(r, "error_rate"), ob.error_rate),
        "uptime": lambda r: r.get("instances_ready", 1) <= 0,
    }
    objectives, active = {}, []
    for name, check in checks.items():
        limit = getattr(ob, name)
        if limit is None:
            continue
        active.append(check)
        v = window[name]
        met = (v == v) and (v >= limit if name == "uptime" else v <= limit)
        objectives[name] = {"limit": limit, "value": _r(v), "met": bool(met) if v == v else None,
                            "violation_minutes": _r(sum(_minutes(r) for r in rows if check(r)))}
    thresholds = {t.name: {"metric": t.metric, "above": t.above,
                           "violation_minutes": _r(sum(_minutes(r) for r in rows if _beyond(value(r, t.metric), t.above)))}
                  for t in config.thresholds}
    alerts = {a.name: _alert(rows, a, value) for a in config.alerts}
    return {
        "evaluated_on": f"{len(rows)} measured intervals ({_r(total_min)} min) after the warm-up",
        "uptime_definition": "share of measured time in intervals that ended with an instance ready (instances_ready > 0)",
        "violation_rule": "a value violates a limit only when strictly beyond it",
        "count_rejected": config.count_rejected,
        "error_rate_counts": errors_counted(config),
        "rejected_rate": _r(sum(r.get("n_rate_limited", 0) for r in rows) / done if done else math.nan),
        "objectives": objectives,
        "objectives_met": all(o["met"] is not False for o in objectives.values()),
        "violation_minutes": _r(sum(_minutes(r) for r in rows if any(c(r) for c in active))),
        "thresholds": thresholds,
        "threshold_minutes": _r(sum(_minutes(r) for r in rows
                                    if any(_beyond(value(r, t.metric), t.above) for t in config.thresholds))),
        "alerts": alerts,
        "alerts_fired": sum(a["fired"] for a in alerts.values()),
    }


def _alert(rows: list[dict], rule: AlertRule, value=_value) -> dict:
    fired, firing_s, fired_at = 0, 0.0, []
    held, firing, last_end = 0.0, False, None
    eps = 1e-9
    for r in rows:
        t0, t1 = r["t_start"], r["t_end"]
        if last_end is not None and abs(t0 - last_end) > eps:   # a gap breaks continuity
            held, firing = 0.0, False
        last_end = t1
        if not _beyond(value(r, rule.metric), rule.above):
            held, firing = 0.0, False
            continue
        before, held = held, held + (t1 - t0)
        if firing:
            firing_s += t1 - t0
        elif held >= rule.for_ - eps:
            at = t0 + (rule.for_ - before)
            fired, firing = fired + 1, True
            fired_at.append(_r(at))
            firing_s += t1 - at
    return {"metric": rule.metric, "above": rule.above, "for_seconds": rule.for_, "fired": fired,
            "firing_minutes": _r(firing_s / 60.0), "fired_at_seconds": fired_at}


def _r(x: float, nd: int = 6):
    return None if x != x else round(float(x), nd)


def slo_of(scenario, override: SLOConfig | None = None) -> SLOConfig:
    """``override``, else the scenario's ``slo`` section (once Scenario has one), else the defaults."""
    if override is not None:
        return override
    return getattr(scenario, "slo", None) or SLOConfig()


def format_slo(block: dict) -> str:
    """One line for a terminal: objectives met or not, violation minutes, alerts."""
    marks = []
    for name, o in block["objectives"].items():
        label = {"latency_mean_ms": "avg latency", "uptime": "uptime",
                 "error_rate": "error rate (5xx + 429)" if block.get("count_rejected") else "server error rate"
                 }.get(name, name)
        marks.append(f"{label} {'ok' if o['met'] else 'MISSED' if o['met'] is False else 'n/a'}")
    return (f"{', '.join(marks)}; {block['violation_minutes']:g} min in violation, "
            f"{block['threshold_minutes']:g} min over monitoring thresholds, {block['alerts_fired']} alerts fired")
