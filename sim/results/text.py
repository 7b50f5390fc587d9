"""The run summary in words: a dozen (label, text) lines for the terminal and the report."""
from __future__ import annotations

from capsim.models.request import OUTCOMES
from capsim.models.units import human_duration

__all__ = ["format_summary", "summary_lines", "short_number", "fidelity_text", "fidelity_lines"]


def format_summary(s: dict, rows: list[dict]) -> str:
    """A dozen lines for a terminal from ``Result.summary`` (and the rows, for the run's speed)."""
    return "\n".join(f"{k:<10} {v}" for k, v in summary_lines(s, sum(r.get("arrivals", 0) for r in rows)))


def summary_lines(s: dict, simulated: int | None = None) -> list[tuple[str, str]]:
    """(label, text) pairs from ``Result.summary``; ``simulated``: requests simulated, for the speed."""
    req, lat, pool, inst = s["requests"], s["latency_ms"], s["pool"], s["instances"]
    outcomes = ", ".join(f"{k} {req[k]:,}" for k in OUTCOMES)
    for key, label in (("in_flight_start", "in flight at warm-up end"), ("in_flight_end", "in flight at the horizon")):
        if req.get(key):
            outcomes += f"; {label} {req[key]:,}"
    fid = s.get("fidelity") or {"mode": "request"}
    flow = fid.get("mode") == "flow"
    speed = ("instant" if not s["wall_seconds"] else "" if simulated is None
             else f"{simulated / s['wall_seconds']:,.0f} {'expected requests computed' if flow else 'simulated requests'} "
                  "per second")
    lines = [
        ("scenario", f"{s['scenario']} (seed {s['seed']})"),
        ("simulated", f"{human_duration(s['simulated_seconds'])}, " + (
            f"measured after {human_duration(s['warmup_seconds'])} of warm-up" if s.get("warmup_seconds")
            else "no warm-up")),
        ("requests", f"{req['total']:,} ({outcomes})"),
        ("errors", f"server errors {_pct(s['server_error_rate'])} ({s['errors']['server']:,}); "
                   f"rejected by rate limits {_pct(s['rejected_rate'])} ({s['errors']['rejected']:,} responses 429)"),
        ("latency", "  ".join(f"{k} {_ms(lat[k])}" for k in ("mean", "p50", "p95", "p99"))),
        ("pool", f"wait p95 {_ms(pool['wait_p95_ms'])}, {pool['timeouts']:,} timeouts"),
        ("instances", f"mean {_num(inst['mean'], 2)}, max {inst['max']}, {_num(s['instance_hours'], 2)} instance-hours"),
        ("scaling", f"{s['scaling_events']} scaling events, {s['crashes']} crashes"),
        ("cost", f"${_num(s['cost_usd'], 4)} (projected ${_num(s['monthly_cost_usd'], 2)}/month: "
                 f"{s['monthly_cost_method']})"),
        ("wall time", f"{s['wall_seconds']:.2f} s" + (f" ({speed})" if speed else "")),
    ]
    if flow:
        lines.insert(2, ("fidelity", fidelity_text(fid)))
    return lines


def fidelity_text(fid: dict) -> str:
    """One line on the fast mode's validity (the warnings themselves: ``fidelity_lines``)."""
    head = f"fast mode (flow, {fid.get('step_seconds', 0):g} s steps): expected values"
    if fid.get("valid"):
        return head + ", valid throughout (every step within the closed forms' range)"
    n = len(fid.get("warnings", []))
    return head + f"; NOT VALID everywhere: {n} warning{'s' if n != 1 else ''} (summary.json fidelity.warnings)"


def fidelity_lines(fid: dict | None) -> list[tuple[str, str]]:
    """(label, text) rows of the fast mode's validity for a report: one per warning."""
    if not fid or fid.get("mode") != "flow":
        return []
    rows = [("fidelity", fidelity_text(fid))]
    rows += [(f"warning {i}", w) for i, w in enumerate(fid.get("warnings", []), 1)]
    check = fid.get("check")
    if check:
        rows.append(("check", f"request level beside it over {check['window_seconds']:g} s, "
                              f"{check['replications']} replications: " + ("agrees" if check["agrees"] else "DISAGREES")
                     + "; " + ", ".join(f"{r['metric']} {'ok' if r['ok'] else 'off'}" for r in check["rows"]
                                        if r["ok"] is not None)))
    return rows


def _ms(x) -> str:
    return "n/a" if x is None else f"{x:.1f} ms"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.3f}%"


def _num(x, nd: int) -> str:
    return "n/a" if x is None else f"{x:,.{nd}f}"


def short_number(x: float) -> str:
    """A number for a table cell: 1,234 / 12.34 / 0.0123."""
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:.2f}"
    return "0" if x == 0 else f"{x:.3g}"
