"""The calibrated scenario: the base scenario with every value the inputs identify set, each with
its source, sample size and uncertainty as a YAML comment; the rest left at the base's value
and listed as such.

``Inputs`` holds what was read (request-log calibrations, Artillery fits, metrics fits);
``build(base_data, inputs)`` -> ``Built`` (the validated ``Scenario``, the settings, what was
left, the YAML text). Which input wins when two identify the same value: a request log,
then a metrics CSV, then an Artillery report; the others' figure is kept as a cross-check in
the comment.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from capsim.calibrate.errors import InputError
from capsim.scenario.config import Scenario

__all__ = ["Setting", "Inputs", "Built", "build", "TARGETS"]

# what calibration aims at: reported as "left at the base" when no input identifies it
TARGETS = ["workload.endpoints (per-endpoint weights, cpu_pre, cpu_post, db_probability, query_time)",
           "workload.sessions.daily_curve", "workload.sessions.weekend_multiplier", "workload.sessions.peak_users",
           "workload.sessions.request_rate", "workload.sessions.session_length", "workload.open_loop",
           "instances.event_loop", "load_balancer.latency", "database.pool", "database.connect_time",
           "instances.memory_base_mb"]


def ms(x: float) -> str:
    return f"{1e3 * x:.4g} ms"


@dataclass
class Setting:
    path: tuple
    value: object
    comment: str
    source: str
    rank: int = 0                    # 0: a request log, 1: metrics, 2: Artillery (lower wins)
    children: dict = field(default_factory=dict)    # key of the value's mapping -> its own comment


@dataclass
class Inputs:
    logs: list = field(default_factory=list)          # Calibration
    artillery: list = field(default_factory=list)     # (ArtilleryRun, ArtilleryService)
    metrics: list = field(default_factory=list)       # MetricsFits


@dataclass
class Built:
    scenario: Scenario
    settings: list[Setting]
    left: list[str]
    notes: list[str]
    data: dict = field(default_factory=dict)       # the base's keys with the calibrated values (what the YAML shows)


def _rounded(v):
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    return v


def _dist(fit) -> dict:
    return _rounded(fit.dist.model_dump())


def _ci(fit) -> str:
    lo, hi = fit.mean_ci
    return f"mean {ms(fit.mean)} [95% CI {ms(lo)}, {ms(hi)}]"


# -- request logs -----------------------------------------------------------------------------
def _endpoint(ep, base_ep: dict, src: str) -> tuple[dict, list[tuple[str, str]]]:
    out = dict(base_ep)
    com = []
    own = "" if ep.own else f"; {ep.requests} requests, too few for its own fits: the log's pooled fits"
    out["weight"] = round(ep.weight, 6)
    com.append(("weight", f"{src}: {ep.requests} requests, share {ep.weight:.4f} [95% CI {ep.weight_ci[0]:.4f}, "
                          f"{ep.weight_ci[1]:.4f}]"))
    out["cpu_pre"] = _dist(ep.cpu_pre)
    how = {"server timings": "the handler's first CPU slice", "handler time": "handler time minus database time "
           "(assumed all CPU, before the database step)", "latency at low load": "latency at low load minus the "
           "latency outside the server (assumed: no queueing in the quietest windows)"}[ep.basis]
    com.append(("cpu_pre", f"{ep.cpu_pre.family} by AIC, n={ep.cpu_pre.n}, {_ci(ep.cpu_pre)}, KS D="
                           f"{ep.cpu_pre.ks:.3f}: {how}{own}"))
    if ep.cpu_post is not None:
        out["cpu_post"] = _dist(ep.cpu_post)
        com.append(("cpu_post", f"{ep.cpu_post.family} by AIC, n={ep.cpu_post.n}, {_ci(ep.cpu_post)}, KS D="
                                f"{ep.cpu_post.ks:.3f}{own}"))
    else:
        out["cpu_post"] = 0.0
        com.append(("cpu_post", "not in the log: 0 (all CPU taken as cpu_pre)"))
    if ep.db_probability is not None:
        out["db_probability"] = round(ep.db_probability, 6)
        share = (f"{int(round(ep.db_probability * ep.requests))} of {ep.requests} took the database step"
                 if ep.own else f"the log's pooled share {ep.db_probability:.4f}")
        com.append(("db_probability", f"{share}, 95% CI [{ep.db_ci[0]:.4f}, {ep.db_ci[1]:.4f}]{own}"))
        if ep.db_probability > 0:
            out["queries"] = max(1, int(base_ep.get("queries", 1) or 1))
            if ep.query_time is None:
                why = next((n for n in ep.notes if n.startswith("query_time")), "query_time: not in the log")
                com.append(("queries", f"{why} (query_time left at the base's or the default)"))
    if ep.query_time is not None:
        out["query_time"] = _dist(ep.query_time)
        com.append(("query_time", f"{ep.query_time.family} by AIC, n={ep.query_time.n}, {_ci(ep.query_time)}: "
                                  f"{ep.query_how}; the round trip inside (database.rtt 0){own}"))
    return out, com


def _log_settings(cal, base: dict) -> list[Setting]:
    src = f"request log {cal.source}"
    out = []
    base_eps = base.get("workload", {}).get("endpoints") or {}
    routes = cal.endpoints
    for name, ep in routes.items():
        value, comments = _endpoint(ep, dict(base_eps.get(name, {})), src)
        head = comments.pop(0)[1]
        out.append(Setting(("workload", "endpoints", name), value, f"route {name!r}: {head}", src,
                           children=dict(comments)))
    if cal.loop is not None:
        lp = cal.loop
        loop_note = (f"{src}, {cal.requests} requests: request_cpu + response_cpu = the median loop work between "
                     f"{lp.pairs} requests served back to back, split evenly (assumed); query_cpu half of it "
                     f"(assumed); wakeup_cpu the rest of {ms(lp.per_request)} per request outside the handlers over "
                     f"{lp.wakeups_per_request:.2f} wake-ups per request; helper_cpu the helper threads' CPU over the "
                     f"main thread's" if lp.pairs >= 5 else
                     f"{src}: only {lp.pairs} back-to-back pairs, the split is not identifiable: all "
                     f"{ms(lp.per_request)} per request outside the handlers as per-request work, no wake-up cost")
        out.append(Setting(("instances", "event_loop"), _rounded(lp.config()), loop_note, src))
    if cal.outside is not None:
        note = next((n for n in cal.notes if n.startswith("latency outside")), "")
        out.append(Setting(("load_balancer", "latency"), _rounded(cal.outside), f"{src}: {note}", src))
    if cal.pool:
        out += [Setting(("database", "pool", k), v, f"{src}: the server's own setting", src) for k, v in cal.pool.items()]
    if cal.connect_time is not None:
        note = next(n for n in cal.notes if n.startswith("connect_time"))
        out.append(Setting(("database", "connect_time"), _rounded(cal.connect_time), f"{src}: {note}", src))
    if cal.query_time is not None:
        out.append(Setting(("database", "rtt"), 0.0, f"{src}: the round trip is inside the fitted query_time", src))
    return out


def _renamed_endpoints(data: dict, names: set, notes: list[str]) -> None:
    """The base's references to endpoints the calibration replaced: dropped, and said so."""
    sockets = data.get("sockets")
    if isinstance(sockets, dict):
        for key in ("endpoints", "reconnect_flow"):
            if sockets.get(key):
                kept = [n for n in sockets[key] if n in names]
                if kept != sockets[key]:
                    notes.append(f"sockets.{key}: {sorted(set(sockets[key]) - names)} are not routes of the log: dropped")
                    sockets[key] = kept or None


# -- metrics and Artillery ----------------------------------------------------------------------
def _base_cpu(sc: Scenario) -> tuple[float, float]:
    """(handler CPU per request, the loop's own work per request) of the base, endpoint weights averaged."""
    eps = sc.workload.endpoints
    total = sum(e.weight for e in eps.values()) or 1.0
    loop = sc.instances.event_loop
    h = sum(e.weight * (e.cpu_pre.mean + e.cpu_post.mean) for e in eps.values()) / total
    q = sum(e.weight * e.db_probability * e.queries for e in eps.values()) / total
    return h, loop.request_cpu + loop.response_cpu + q * loop.query_cpu


def _scaled_endpoints(sc: Scenario, factor: float) -> dict:
    out = {}
    for name, e in sc.workload.endpoints.items():
        d = e.model_dump()
        d["cpu_pre"], d["cpu_post"] = _rounded(e.cpu_pre.scaled(factor).model_dump()), \
            _rounded(e.cpu_post.scaled(factor).model_dump())
        out[name] = d
    return out


def _metrics_settings(mf, sc: Scenario) -> list[Setting]:
    src = f"metrics {mf.run.source}"
    out = []
    r = mf.cpu_per_request
    if r is not None and r.slope > 0:
        helper = sc.instances.event_loop.helper_cpu
        h, loop = _base_cpu(sc)
        factor = (r.slope / (1 + helper) - loop) / h if h > 0 else float("nan")
        if factor > 0:
            out.append(Setting(("workload", "endpoints"), _scaled_endpoints(sc, factor),
                               f"{src}: every endpoint's CPU x {factor:.4g} so that the platform CPU per request is "
                               f"{ms(r.slope)} [95% CI {ms(r.slope_ci[0])}, {ms(r.slope_ci[1])}] (least squares of "
                               f"CPU-seconds on requests over {r.n} intervals of {mf.run.interval:g} s, R^2 {r.r2:.3f}; "
                               f"with the base's event-loop work {ms(loop)} and helper share {helper:g}); the shape of "
                               f"each distribution and the endpoint mix are the base's", src, 1))
    m = mf.memory
    if m is not None:
        procs = sc.instances.processes
        out.append(Setting(("instances", "memory_base_mb"), _rounded(max(m.intercept, 0.0) / procs),
                           f"{src}: intercept of memory MB per instance on requests/s ({m.n} intervals, 95% CI "
                           f"[{m.intercept_ci[0]:.4g}, {m.intercept_ci[1]:.4g}] MB), over {procs} process(es); "
                           f"memory_per_request_mb stays the base's: the slope ({m.slope:.4g} MB per request/s) "
                           f"does not tell requests in flight from caches and buffers that grow with load", src, 1))
    return out


def _artillery_settings(run, svc, sc: Scenario) -> list[Setting]:
    src = f"Artillery report {run.source}"
    fit = svc.cpu
    out = [Setting(("load_balancer", "latency"), _rounded(svc.outside), f"{src}: {svc.notes[0]}", src, 2)]
    lo, hi = fit.mean_ci
    eps = sc.workload.endpoints
    if len(eps) == 1:
        (name, e), = eps.items()
        d = e.model_dump()
        d["cpu_pre"], d["cpu_post"] = _rounded(fit.dist.model_dump()), 0.0
        out.append(Setting(("workload", "endpoints"), {name: d},
                           f"{src}: cpu_pre {fit.describe()}; assumed: the quietest quarter of periods saw no "
                           f"queueing, the rest above the fastest response is CPU; cpu_post 0", src, 2))
    else:
        h, loop = _base_cpu(sc)
        factor = (fit.mean - loop) / h if h > 0 else float("nan")
        if factor > 0:
            out.append(Setting(("workload", "endpoints"), _scaled_endpoints(sc, factor),
                               f"{src}: every endpoint's CPU x {factor:.4g} so that the mean service time at low load "
                               f"is {ms(fit.mean)} [95% CI {ms(lo)}, {ms(hi)}] (the report has no routes: the mix and "
                               f"the shapes are the base's; assumed: no queueing in the quietest quarter of periods)",
                               src, 2))
    return out


# -- the workload ---------------------------------------------------------------------------
def _workload(inputs: Inputs, base: dict, sc: Scenario, notes: list[str]) -> list[Setting]:
    logs = inputs.logs
    sess = next((c.sessions for c in logs if c.sessions is not None), None)
    curves = [(f"request log {c.source}", c.arrivals) for c in logs if c.arrivals and c.arrivals.hourly] + \
             [(f"metrics {m.run.source}", m.arrivals) for m in inputs.metrics if m.arrivals.hourly]
    weekend = [(s, a) for s, a in curves if a.weekend_multiplier is not None]
    out = []
    if sess is not None or curves:
        s = dict(base.get("workload", {}).get("sessions") or {})
        if sess is not None:
            src = f"request log {next(c.source for c in logs if c.sessions is sess)}"
            s["request_rate"] = _rounded(sess.request_rate)
            out.append(Setting(("workload", "sessions", "request_rate"), s["request_rate"],
                               f"{src}: {sess.request_rate:.4g}/s per user [95% CI {sess.request_rate_ci[0]:.4g}, "
                               f"{sess.request_rate_ci[1]:.4g}] from {sess.sessions} sessions of {sess.clients} clients "
                               f"(new session after {sess.gap:g} s of silence)", src))
            if sess.length is not None:
                out.append(Setting(("workload", "sessions", "session_length"), _dist(sess.length),
                                   f"{src}: {sess.length.family} by AIC, n={sess.length.n}, mean {sess.length.mean:.5g} s "
                                   f"[95% CI {sess.length.mean_ci[0]:.5g}, {sess.length.mean_ci[1]:.5g}] (first to last "
                                   f"request x (n + 1)/(n - 1))", src))
        rate = sess.request_rate if sess is not None else sc.workload.sessions.request_rate if sc.workload.sessions \
            else 0.5
        if curves:
            src, a = curves[0]
            out.append(Setting(("workload", "sessions", "daily_curve"), [round(x, 4) for x in a.hourly],
                               f"{src}: weekday hourly rates over the busiest hour's {a.peak_rate:.4g}/s "
                               f"({min(a.hours_seen)}-{max(a.hours_seen)} days behind each hour)", src))
            out.append(Setting(("workload", "sessions", "peak_users"), _rounded(a.peak_rate / rate),
                               f"{src}: the busiest weekday hour's {a.peak_rate:.4g} requests/s over request_rate "
                               f"{rate:.4g}/s per user{'' if sess else ' (the base scenario’s)'} (Little's law)", src))
        elif sess is not None:
            out.append(Setting(("workload", "sessions", "peak_users"), _rounded(sess.peak_users),
                               f"{src}: " + next(n for n in sess.notes if n.startswith("peak_users")), src))
        if weekend:
            src, a = weekend[0]
            ci = f"95% CI [{a.weekend_ci[0]:.3f}, {a.weekend_ci[1]:.3f}]" if a.weekend_ci else "one day: no interval"
            out.append(Setting(("workload", "sessions", "weekend_multiplier"), round(a.weekend_multiplier, 4),
                               f"{src}: weekend hourly rates over the weekday rates of the same hours, "
                               f"{a.weekend_days} weekend days, {ci}", src))
        if base.get("workload", {}).get("open_loop"):
            out.append(Setting(("workload", "open_loop"), [], "the base's open-loop sources are replaced by the "
                               "measured sessions", "calibration"))
            notes.append("workload.open_loop: the base's sources dropped (the measured traffic is the sessions)")
        return out
    if logs:
        c = logs[0]
        a = c.arrivals
        out.append(Setting(("workload", "open_loop"), [{"name": "measured", "rate": _rounded(a.mean_rate)}],
                           f"request log {c.source}: Poisson at the log's mean rate {a.mean_rate:.4g}/s over "
                           f"{c.window:.6g} s (no calendar or client ids for sessions; part B's workload.trace "
                           f"replays the log itself)", f"request log {c.source}"))
    elif inputs.artillery:
        run, _ = inputs.artillery[0]
        p = run.periods
        steps = [{"at": _rounded(float(t)), "rate": _rounded(float(r))} for t, r in zip(p.start, p.rate)]
        steps.append({"at": _rounded(float(p.start.iloc[-1] + p.seconds.iloc[-1])), "rate": 0.0})
        out.append(Setting(("workload", "open_loop"), [{"name": "artillery", "schedule": steps}],
                           f"Artillery report {run.source}: http.requests per {p.seconds.median():g} s period as "
                           f"Poisson steps ({len(p)} periods)", f"Artillery report {run.source}", 2))
        horizon = float(p.start.iloc[-1] + p.seconds.iloc[-1])
        out.append(Setting(("horizon",), _rounded(horizon), "the Artillery run's length", "calibration", 2))
        out.append(Setting(("warmup",), 0.0, "the Artillery run is measured whole", "calibration", 2))
    elif inputs.metrics:
        m = inputs.metrics[0]
        out.append(Setting(("workload", "open_loop"), [{"name": "measured", "rate": _rounded(m.arrivals.mean_rate)}],
                           f"metrics {m.run.source}: Poisson at the mean rate {m.arrivals.mean_rate:.4g}/s (no whole "
                           f"weekday curve)", f"metrics {m.run.source}", 1))
    else:
        return out
    out.append(Setting(("workload", "sessions"), None, "the measured traffic is open-loop (no sessions identified)",
                       "calibration", out[0].rank))
    return out


# -- putting it together -------------------------------------------------------------------------
def _put(data: dict, path: tuple, value) -> None:
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)


def _winners(settings: list[Setting], notes: list[str]) -> list[Setting]:
    """One setting per path: the lowest rank; an ancestor set later replaces its descendants."""
    best: dict[tuple, Setting] = {}
    for s in settings:
        cur = best.get(s.path)
        if cur is None or s.rank < cur.rank:
            if cur is not None:
                s.comment += f" (also from {cur.source}: {cur.comment})"
            best[s.path] = s
        else:
            cur.comment += f" (cross-check, {s.source}: {s.comment})"
    out = list(best.values())
    # a whole mapping from a lower-priority input (metrics' endpoints) never overrides a log's entries
    kept = []
    for s in out:
        if any(o.path[:len(s.path)] == s.path and len(o.path) > len(s.path) and o.rank < s.rank for o in out):
            notes.append(f"cross-check, {'.'.join(map(str, s.path))} from {s.source}: {s.comment}")
        else:
            kept.append(s)
    return kept


def build(base_data: dict, base: Scenario, inputs: Inputs, name: str | None = None) -> Built:
    notes: list[str] = []
    settings: list[Setting] = []
    for cal in inputs.logs:
        settings += _log_settings(cal, base_data)
    for mf in inputs.metrics:
        settings += _metrics_settings(mf, base)
    for run, svc in inputs.artillery:
        settings += _artillery_settings(run, svc, base)
    settings += _workload(inputs, base_data, base, notes)
    chosen = _winners(settings, notes)
    data = copy.deepcopy(base_data)
    if inputs.logs:       # the log's routes are the endpoints
        data.setdefault("workload", {})["endpoints"] = {}
        _renamed_endpoints(data, set(inputs.logs[0].endpoints), notes)
    for s in sorted(chosen, key=lambda s: len(s.path)):
        _put(data, s.path, s.value)
    sources = sorted({s.source for s in chosen if s.source != "calibration"})
    data = {"name": name or f"{base.name}-calibrated",
            "description": "calibrated by capsim calibrate from " + ", ".join(sources),
            **{k: v for k, v in data.items() if k not in ("name", "description")}}
    try:
        scenario = Scenario.model_validate(data)
    except Exception as exc:     # a calibrated value outside what its field can mean
        raise InputError.one("calibrated scenario", f"the fitted values do not make a valid scenario: {exc}") from None
    done = {".".join(map(str, s.path)) for s in chosen}
    left = [t for t in TARGETS if not any(d == t.split(" ")[0] or d.startswith(t.split(" ")[0] + ".")
                                          or t.startswith(d + ".") for d in done)]
    return Built(scenario, chosen, left, notes, data)
