"""Agreement of the fast mode with the request level: the cross-validation's yardstick.

The tolerances are the ones the fast mode is held to wherever it is valid (utilisation
below ``flow.max_utilisation``, no transient): instance-hours and cost within 3%, mean
latency within 10%, p95 within 15%, and the shares of server errors (5xx), timeouts
and 429s within 1 percentage point. The request level is the mean of its replications;
a relative tolerance is widened by the request level's own 95% half-width (its noise),
which the caller keeps small with enough replications.
"""
from __future__ import annotations

__all__ = ["TOLERANCES", "SERVER_ERRORS", "shares", "agreement", "format_agreement", "check"]

SERVER_ERRORS = ("pool_timeout", "db_refused", "unavailable", "db_error", "crashed", "terminated", "circuit_open",
                 "shed")
# metric -> (kind, tolerance): "rel" of the request level's value, "abs" in the metric's units
TOLERANCES = {"instance_hours": ("rel", 0.03), "cost_usd": ("rel", 0.03), "latency_ms.mean": ("rel", 0.10),
              "latency_ms.p95": ("rel", 0.15), "server_error_share": ("abs", 0.01), "timeout_share": ("abs", 0.01),
              "rate_limited_share": ("abs", 0.01)}


def shares(summary: dict) -> dict:
    """The compared figures of one summary."""
    req = summary["requests"]
    done = max(req["completed"], 1)
    return {"instance_hours": summary["instance_hours"], "cost_usd": summary["cost_usd"],
            "latency_ms.mean": summary["latency_ms"]["mean"], "latency_ms.p95": summary["latency_ms"]["p95"],
            "server_error_share": sum(req[k] for k in SERVER_ERRORS) / done, "timeout_share": req["timeout"] / done,
            "rate_limited_share": req["rate_limited"] / done}


def agreement(flow: dict, requests: list[dict]) -> list[dict]:
    """One row per compared figure: the fast mode's value, the request level's mean and
    95% half-width, the difference, the tolerance and whether it holds."""
    from capsim.experiments.intervals import mean_ci
    f = shares(flow)
    reps = [shares(s) for s in requests]
    rows = []
    for name, (kind, tol) in TOLERANCES.items():
        ci = mean_ci([r[name] for r in reps])
        ref, half = ci["mean"], ci["half_width"] or 0.0
        value = f[name]
        if value is None or ref is None:
            rows.append({"metric": name, "flow": value, "request": ref, "half_width": half, "diff": None,
                         "tolerance": tol, "kind": kind, "ok": None})
            continue
        diff = value - ref
        allowed = tol * abs(ref) + half if kind == "rel" else tol + half
        rows.append({"metric": name, "flow": value, "request": ref, "half_width": half, "diff": diff,
                     "tolerance": tol, "kind": kind, "ok": bool(abs(diff) <= allowed)})
    return rows


def format_agreement(rows: list[dict]) -> str:
    head = f"{'metric':<20} {'flow':>11} {'request':>11} {'± 95%':>9} {'diff':>10} {'tolerance':>10}  agrees"
    lines = [head, "-" * len(head)]
    for r in rows:
        pct = r["kind"] == "abs"
        fmt = (lambda x: "n/a" if x is None else f"{100 * x:.2f}%") if pct else \
            (lambda x: "n/a" if x is None else f"{x:.4g}")
        tol = f"{100 * r['tolerance']:.0f} pt" if pct else f"{100 * r['tolerance']:.0f}%"
        diff = "n/a" if r["diff"] is None else (f"{100 * r['diff']:+.2f} pt" if pct else
                                                 f"{100 * r['diff'] / r['request']:+.1f}%" if r["request"] else
                                                 f"{r['diff']:+.3g}")
        ok = "n/a" if r["ok"] is None else "yes" if r["ok"] else "NO"
        lines.append(f"{r['metric']:<20} {fmt(r['flow']):>11} {fmt(r['request']):>11} {fmt(r['half_width']):>9} "
                     f"{diff:>10} {tol:>10}  {ok}")
    return "\n".join(lines)


def check(scenario, window: float, replications: int = 3, seed: int | None = None, workers=None,
          progress: bool = False) -> dict:
    """Both fidelities on ``scenario`` cut to its warm-up plus ``window`` seconds: the fast mode once,
    the request level ``replications`` times; ``{"scenario", "flow", "rows", "valid"}``."""
    import capsim
    from capsim.experiments.replications import replicate
    cut = scenario.model_copy(update={"horizon": min(scenario.horizon, scenario.warmup + window)})
    cut = type(scenario).model_validate(cut.model_dump(by_alias=True))
    flow = capsim.run(cut, seed, fidelity="flow").summary
    req = type(scenario).model_validate({**cut.model_dump(by_alias=True), "fidelity": "request"})
    reps = replicate(req, replications, seed, workers=workers, progress=progress)
    return {"scenario": cut, "flow": flow, "rows": agreement(flow, reps.summaries),
            "valid": flow["fidelity"]["valid"], "replications": len(reps.summaries)}
