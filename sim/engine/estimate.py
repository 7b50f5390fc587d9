"""How much work a scenario is, from its configuration alone, before it runs.

``estimate(scenario)`` adds up the expected requests (sessions by Little's law over the
weekly rhythm and the events, open-loop sources by the integral of their rates), the
kernel events they cause, and the memory the run holds (time-series rows, per-instance
rows, instances, cache key tables, concurrent sessions). ``Work.refusal()`` says why a
run is beyond ``LIMITS`` (it would not finish, or not fit in memory); ``Work.warning()``
why it is long (beyond ``WARN``). ``capsim.run`` and the command line refuse the first
unless forced (``force=True``, ``--force``). The figures are estimates: means, not bounds.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from capsim.models.workload import Calendar

__all__ = ["Work", "TooMuchWork", "estimate", "check", "WARN", "LIMITS", "SECONDS_PER_EVENT"]

FLOW_SECONDS_PER_STEP = 2e-3      # the fast mode: one step of every instance's closed forms, roughly
SECONDS_PER_EVENT = 4e-6           # wall time per kernel event on one core, roughly (the launch scenario: ~4 us)
WALK = 28 * 86400.0                # the calendar is walked for up to four weeks, then extended
WARN = {"requests": 2e7, "memory_bytes": 2 * 2 ** 30}
LIMITS = {"requests": 1e9, "events": 2e10, "memory_bytes": 32 * 2 ** 30}
ROW_BYTES = 4000                   # one time-series row (a dict of ~60 numbers) and its share of the DataFrame
INSTANCE_ROW_BYTES = 1200
INSTANCE_BYTES = 60_000            # an instance with its pool, middleware and counters
SESSION_BYTES = 400
KEY_TABLE_BYTES = 16               # per key of a Zipf popularity table, per endpoint that draws from it
CACHE_ENTRY_BYTES = 200


class TooMuchWork(ValueError):
    """A scenario beyond ``LIMITS``: the message gives the numbers and how to run it anyway."""


@dataclass(frozen=True)
class Work:
    requests: float
    events: float
    memory_bytes: float
    seconds: float                  # wall time on one core, roughly
    computed: bool = False          # the fast mode: requests are computed per step, not simulated one by one

    def describe(self) -> str:
        if self.computed:
            return (f"about {_n(self.requests)} requests computed in {_n(self.events)} fast-mode steps, "
                    f"{_bytes(self.memory_bytes)} of memory")
        return (f"about {_n(self.requests)} requests, {_n(self.events)} events, {_bytes(self.memory_bytes)} of "
                f"memory, {_duration(self.seconds)} of computing")

    def refusal(self) -> str | None:
        simulated = not self.computed
        over = [f"{_n(LIMITS['requests'])} requests"] if simulated and self.requests > LIMITS["requests"] else []
        over += [f"{_n(LIMITS['events'])} events"] if self.events > LIMITS["events"] else []
        memory = _physical_memory()
        cap = min(LIMITS["memory_bytes"], 0.8 * memory) if memory else LIMITS["memory_bytes"]
        if self.memory_bytes > cap:
            over.append(f"{_bytes(cap)} of memory" + (f" (80% of this machine's {_bytes(memory)})"
                                                      if memory and cap < LIMITS["memory_bytes"] else ""))
        if not over:
            return None
        return (f"too much work: {self.describe()}; beyond the limit of {', '.join(over)}. Shorten the horizon, "
                "lower the load or the time-series resolution, or run it anyway with --force (force=True)")

    def warning(self) -> str | None:
        keys = ("memory_bytes",) if self.computed else tuple(WARN)
        if self.refusal() is None and any(getattr(self, k) > WARN[k] for k in keys):
            return f"a long run: {self.describe()}"
        return None


def check(scenario, force: bool = False) -> Work:
    """The estimate; TooMuchWork when it is beyond the limits and not ``force``."""
    work = estimate(scenario)
    problem = work.refusal()
    if problem and not force:
        raise TooMuchWork(f"scenario {scenario.name!r}: {problem}")
    return work


def estimate(scenario) -> Work:
    sc = scenario
    requests, events = 0.0, 0.0
    per_request = _events_per_request(sc.workload.endpoints, sc.workload.endpoints)
    sessions, starts, peak_sessions = _sessions(sc)
    requests += sessions
    events += sessions * per_request + 2 * starts
    for src in sc.workload.open_loop:
        arrivals = _integral(src.segments(), sc.horizon)
        steps = len(src.flow) if src.flow else 1
        mix = {n: sc.workload.endpoints[n] for n in (src.flow or src.mix or sc.workload.endpoints)}
        requests += arrivals * steps
        events += arrivals * steps * _events_per_request(mix, sc.workload.endpoints)
    intervals = math.ceil(sc.horizon / sc.metrics.interval) + 1
    instances = _max_instances(sc)
    memory = (intervals * ROW_BYTES + intervals * instances * INSTANCE_ROW_BYTES + instances * INSTANCE_BYTES
              + peak_sessions * SESSION_BYTES + _cache_bytes(sc, instances))
    events += intervals * (1 + instances)
    if sc.fidelity == "flow":
        steps = math.ceil(sc.horizon / sc.flow.step)
        return Work(requests, steps, memory, steps * FLOW_SECONDS_PER_STEP, computed=True)
    return Work(requests, events, memory, events * SECONDS_PER_EVENT)


# -- pieces ---------------------------------------------------------------------------------
def _events_per_request(mix: dict, endpoints: dict) -> float:
    """Kernel events of one request: arrival, CPU before and after, and two per query (weighted by mix)."""
    weights = {n: max(e.weight, 0.0) for n, e in mix.items()}
    total = sum(weights.values()) or len(mix) or 1.0
    if not sum(weights.values()):
        weights = dict.fromkeys(mix, 1.0)
    return sum(w * (3.0 + 2.0 * endpoints[n].queries * endpoints[n].db_probability)
               for n, w in weights.items()) / total


def _rhythm(sc) -> tuple[float, float]:
    """(integral over the horizon, maximum) of curve[hour] / max(curve) x weekend x events: walked
    piece by piece on the calendar for up to four weeks, then extended by the walked mean."""
    s = sc.workload.sessions
    cal = Calendar(sc.workload.start, s.events)
    curve, top = s.curve, max(s.curve)
    walked_to = min(sc.horizon, WALK)
    t, area, peak = 0.0, 0.0, 0.0
    while t < walked_to:
        hour, weekend, t_hour = cal.hour_and_weekend(t)
        mult, t_event = cal.events_at(t)
        r = curve[hour] / top * (s.weekend_multiplier if weekend else 1.0) * mult
        end = min(t_hour, t_event, walked_to)
        area, peak, t = area + r * (end - t), max(peak, r), end
    return area * sc.horizon / walked_to, peak


def _sessions(sc) -> tuple[float, float, float]:
    """(requests of session users, session starts, peak concurrent sessions) by Little's law."""
    s = sc.workload.sessions
    if s is None:
        return 0.0, 0.0, 0.0
    area, peak = _rhythm(sc)
    return s.peak_users * area * s.request_rate, s.peak_users * area / s.session_length.mean, s.peak_users * peak


def _integral(segments, horizon: float) -> float:
    """Expected arrivals of piecewise-linear rate pieces (t0, t1, r0, r1) within [0, horizon]."""
    total = 0.0
    for t0, t1, r0, r1 in segments:
        a, b = max(t0, 0.0), min(t1, horizon)
        if b <= a:
            continue
        if math.isinf(t1):
            total += r0 * (b - a)
            continue
        slope = (r1 - r0) / (t1 - t0)
        ra, rb = r0 + slope * (a - t0), r0 + slope * (b - t0)
        total += 0.5 * (ra + rb) * (b - a)
    return total


def _max_instances(sc) -> int:
    counts = [sc.instances.count]
    if sc.autoscaler is not None:
        counts.append(sc.autoscaler.max_instances)
    actions = list(sc.schedule.actions) if sc.schedule else []
    actions += list(getattr(sc.autoscaler, "actions", None) or [])
    counts += [a.max_instances or a.desired or 0 for a in actions]
    return max(counts)


def _cache_bytes(sc, instances: int) -> float:
    if sc.cache is None:
        return 0.0
    tables = 0.0
    for e in sc.workload.endpoints.values():
        c = sc.cache.classes.get(e.cache_class) if e.cache_class else None
        tables += 3 * c.keys * KEY_TABLE_BYTES if c is not None else 0.0   # sessions, reconnects, sources
    stores = 1 if sc.cache.store == "redis" else instances
    return tables + stores * sc.cache.max_keys * CACHE_ENTRY_BYTES


def _physical_memory() -> float | None:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _n(x: float) -> str:
    for size, unit in ((1e12, " trillion"), (1e9, " billion"), (1e6, " million"), (1e3, " thousand")):
        if x >= size:
            return f"{x / size:.3g}{unit}"
    return f"{x:.3g}"


def _bytes(x: float) -> str:
    for size, unit in ((2 ** 40, "TiB"), (2 ** 30, "GiB"), (2 ** 20, "MiB")):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x / 1024:.3g} KiB"


def _duration(seconds: float) -> str:
    for size, unit in ((86400 * 365, "years"), (86400, "days"), (3600, "hours"), (60, "minutes")):
        if seconds >= size:
            return f"~{seconds / size:.3g} {unit}"
    return f"~{seconds:.2g} seconds"
