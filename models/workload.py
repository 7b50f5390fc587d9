"""Workload: user sessions with daily and weekly rhythms and events, and open-loop traffic.

Sessions start as a non-homogeneous Poisson process. The start rate at time t is
``peak_users / mean(session_length) x curve[hour] / max(curve)``, times
``weekend_multiplier`` on Saturdays and Sundays and each active event's multiplier,
so ``peak_users`` is the expected number of concurrent users at the busiest weekday
hour (Little's law, in the quasi-steady state). Each concurrent user issues requests
as a Poisson process of ``request_rate`` (seed: 0.5/s per user) over the endpoint mix.

Open-loop sources add traffic that ignores the system's state: Poisson at a constant
``rate`` or a piecewise-constant ``schedule``, or Artillery ``phases`` (``duration``,
``arrivalRate``, ``rampTo``, ``arrivalCount``, ``pause``) evenly spaced as Artillery 2
spaces them (``capsim.models.phases``; ``arrivals: poisson``: a Poisson process through
the same rates). With ``flow`` (or weighted ``flows``), each arrival is a virtual user that
issues the flow's endpoints one after another, pausing at ``think`` steps, as Artillery does.

``trace`` replays recorded traffic from a file (``TraceConfig``, ``capsim.models.trace``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from capsim.models.distributions import Distribution, LogNormal
from capsim.models.endpoints import DEFAULT_ENDPOINTS, Endpoint
from capsim.models.units import (BOUNDED, MAX_DURATION, Amount, Duration, NonNegative, Positive, PositiveDuration,
                                  Rate, Real, parse_duration)

__all__ = ["WorkloadConfig", "SessionsConfig", "OpenLoopConfig", "Phase", "Step", "Event", "Think", "WeightedFlow",
           "DAILY_CURVES", "Calendar", "TraceConfig", "TraceColumns"]

DAILY_CURVES = {
    # a game community: quiet at night, evening peak (assumed shape; override with 24 numbers)
    "gaming": [0.35, 0.25, 0.18, 0.14, 0.12, 0.12, 0.15, 0.20, 0.28, 0.35, 0.42, 0.50,
               0.55, 0.58, 0.60, 0.65, 0.72, 0.82, 0.92, 1.00, 1.00, 0.92, 0.75, 0.50],
    "business": [0.10, 0.08, 0.08, 0.08, 0.10, 0.15, 0.30, 0.55, 0.85, 1.00, 1.00, 0.95,
                 0.90, 0.95, 1.00, 0.95, 0.85, 0.65, 0.45, 0.35, 0.30, 0.25, 0.20, 0.15],
    "flat": [1.0] * 24,
}


def _offset_or_datetime(value):
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[:4].isdigit():
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"expected an ISO date-time such as 2026-01-10T18:00, got {value!r}") from exc
    offset = parse_duration(value)
    if abs(offset) > MAX_DURATION:
        raise ValueError(f"expected an offset within 100 years of workload.start, got {offset:g} s")
    return offset


When = Annotated[float | datetime, BeforeValidator(_offset_or_datetime),
                 WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string"}],
                                 "description": "ISO date-time (2026-01-10T18:00) or an offset such as 5d18h"}),
                 BOUNDED]


class Event(BaseModel):
    """A dated event that multiplies the session start rate (seed: x2.0)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = "event"
    start: When = Field(description="ISO date-time, or an offset from workload.start such as 5d18h")
    duration: PositiveDuration
    multiplier: Positive = 2.0


class SessionsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    peak_users: Positive = Field(100, description="expected concurrent users at the busiest weekday hour")
    daily_curve: Literal["gaming", "business", "flat"] | list[NonNegative] = Field(
        "gaming", description="a named curve or 24 hourly multipliers (hour 0 = midnight)")
    weekend_multiplier: Positive = Field(1.5, description="Saturday and Sunday (seed: 1.5)")
    events: list[Event] = Field(default_factory=list)
    session_length: Distribution = Field(LogNormal(mean=1800.0, p99=10800.0))
    request_rate: Rate = Field(0.5, description="requests per second per concurrent user (seed: 0.5)")

    @model_validator(mode="after")
    def _curve(self):
        c = self.daily_curve
        if not isinstance(c, str):
            if len(c) != 24 or min(c) < 0 or max(c) <= 0:
                raise ValueError(f"daily_curve: expected 24 numbers >= 0, not all 0, got {len(c)} numbers")
        if not self.session_length.mean > 0:
            raise ValueError(f"session_length: expected a mean > 0 (peak_users / mean length is the start rate), "
                             f"got {self.session_length.mean:g} s")
        return self

    @property
    def curve(self) -> list[float]:
        return DAILY_CURVES[self.daily_curve] if isinstance(self.daily_curve, str) else list(self.daily_curve)


class Phase(BaseModel):
    """An Artillery phase: ``arrivalRate`` new virtual users per second for ``duration``
    (ramping to ``rampTo``), or ``arrivalCount`` users spread over ``duration``, or a ``pause``."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = ""
    duration: PositiveDuration | None = Field(None, description="the phase's length (not with pause)")
    arrivalRate: Rate = 0.0
    rampTo: Rate | None = None
    arrivalCount: Amount | None = Field(None, description="users spread evenly over duration (instead of a rate)")
    pause: Duration | None = Field(None, description="no arrivals for this long (instead of duration)")

    @model_validator(mode="after")
    def _one_kind(self):
        if self.pause is not None:
            if self.duration is not None or self.arrivalCount is not None or self.rampTo is not None:
                raise ValueError("pause: expected a pause alone, without duration, arrivalCount or rampTo")
            return self
        if self.duration is None:
            raise ValueError("duration: expected a duration (or a pause)")
        if self.arrivalCount is not None and self.rampTo is not None:
            raise ValueError("arrivalCount: expected arrivalCount or arrivalRate/rampTo, not both")
        return self

    @property
    def length(self) -> float:
        """Nominal length (Artillery's even scheduler may end a phase at its last arrival, a tick earlier)."""
        return self.pause if self.pause is not None else self.duration

    def rates(self) -> tuple[float, float]:
        """Mean rate at the phase's start and end (a Poisson phase's linear piece)."""
        if self.pause is not None:
            return 0.0, 0.0
        if self.arrivalCount is not None:
            r = self.arrivalCount / self.duration
            return r, r
        return self.arrivalRate, self.arrivalRate if self.rampTo is None else self.rampTo


class Think(BaseModel):
    """A pause inside a flow (Artillery's ``think``)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    think: Duration


FlowStep = Annotated[str | Think, Field(description="an endpoint name, or {think: DURATION}")]


class WeightedFlow(BaseModel):
    """One of several flows; each arrival picks one by weight (Artillery's ``scenarios[].weight``)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = ""
    weight: NonNegative = 1.0
    flow: list[FlowStep] = Field(min_length=1)


class Step(BaseModel):
    """From ``at`` (offset from the source's start) on, arrivals come at ``rate``."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    at: Duration
    rate: Rate


class OpenLoopConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = "traffic"
    start: Duration = Field(0.0, description="offset of the source's start")
    rate: Rate | None = Field(None, description="constant Poisson rate")
    schedule: list[Step] | None = Field(None, description="piecewise-constant rates")
    phases: list[Phase] | None = Field(None, description="Artillery phases (after the last one: no arrivals)")
    arrivals: Literal["even", "poisson"] | None = Field(
        None, description="phases: even (default: as Artillery spaces them) or poisson (Artillery's mode: poisson); "
                          "rate and schedule are always Poisson")
    mix: dict[str, NonNegative] | None = Field(None, description="endpoint weights for this source (default: the endpoints' weights)")
    flow: list[FlowStep] | None = Field(None, description="endpoints each arrival issues one after another ({think: 2s}: a pause)")
    flows: list[WeightedFlow] | None = Field(None, description="several flows, one picked by weight per arrival")
    urls: dict[str, str] = Field(default_factory=dict, description="endpoint -> the URL a script requested it by (Artillery-shaped reports)")

    @model_validator(mode="after")
    def _one_shape(self):
        given = [k for k in ("rate", "schedule", "phases") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of rate, schedule, phases; got {given or 'none'}")
        if self.schedule is not None:
            ats = [s.at for s in self.schedule]
            if not ats or ats != sorted(ats):
                raise ValueError("schedule: expected steps in increasing 'at' order")
        if self.mix is not None and not any(w > 0 for w in self.mix.values()):
            raise ValueError("mix: expected some endpoint weight > 0")
        if self.arrivals == "even" and self.phases is None:
            raise ValueError("arrivals: even spacing is for phases; rate and schedule are Poisson")
        if sum(x is not None for x in (self.mix, self.flow, self.flows)) > 1:
            raise ValueError("expected at most one of mix, flow, flows")
        if self.flows is not None and not any(f.weight > 0 for f in self.flows):
            raise ValueError("flows: expected some weight > 0")
        return self

    @property
    def even(self) -> bool:
        """Arrivals evenly spaced as Artillery makes them (phases, unless arrivals: poisson)."""
        return self.phases is not None and self.arrivals != "poisson"

    def all_flows(self) -> list[WeightedFlow] | None:
        if self.flows is not None:
            return list(self.flows)
        return [WeightedFlow(flow=self.flow)] if self.flow is not None else None

    def endpoint_names(self) -> list[str]:
        steps = [s for f in self.all_flows() or [] for s in f.flow]
        return list(self.mix or {}) + [s for s in steps if isinstance(s, str)]

    def segments(self) -> list[tuple[float, float, float, float]]:
        """Linear rate pieces ``(t0, t1, r0, r1)`` in absolute seconds (the Poisson rate)."""
        s, inf = self.start, float("inf")
        if self.rate is not None:
            return [(s, inf, self.rate, self.rate)]
        if self.schedule is not None:
            steps = self.schedule
            ends = [st.at for st in steps[1:]] + [inf]
            return [(s + st.at, s + e, st.rate, st.rate) for st, e in zip(steps, ends)]
        out, t = [], s
        for ph in self.phases or []:
            r0, r1 = ph.rates()
            out.append((t, t + ph.length, r0, r1))
            t += ph.length
        return out


class TraceColumns(BaseModel):
    """Which of the file's columns (CSV header names or JSON keys) hold what."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    time: str = Field("t", description="when the request arrived (or the rate point's time)")
    route: str | None = Field("route", description="requests: the route (null: every request goes to default_endpoint)")
    rate: str | None = Field("rate", description="rates: requests per second from this row to the next")
    requests: str | None = Field(None, description="rates: a request count from this row to the next (instead of rate)")


class TraceConfig(BaseModel):
    """Recorded traffic replayed from a file, read as a stream (``capsim.models.trace``).

    ``kind: requests``: each recorded request arrives at its own time, its route mapped to an
    endpoint. ``kind: rates``: arrivals are a non-homogeneous Poisson process through the
    series (``interpolation``: step = each rate holds until the next row, linear = straight
    lines between rows), inverted exactly as the other sources are.

    Time: trace time ``origin`` (default: the first row's time) plus ``start_at`` is replayed at
    simulated time ``shift``; rows before ``origin + start_at`` are skipped.

    ``scale`` (requests): with s = scale, each recorded request yields floor(s) arrivals, plus
    one more with probability s - floor(s) (s < 1: it is kept with probability s). The first
    keeps the recorded time; the others fall uniformly at random within the same ``jitter``
    window (aligned to the replay's start) as the recorded request. So every window, and every
    interval made of whole windows, gets exactly s times its recorded count in expectation,
    and scale 1 replays the log exactly. (rates: every rate is multiplied by s.)
    """
    model_config = ConfigDict(frozen=True, extra="forbid")
    file: str = Field(description="CSV or JSON lines, optionally .gz (a relative path is relative to the scenario file)")
    kind: Literal["requests", "rates"] = Field("requests", description="a request log or a rate series")
    format: Literal["auto", "csv", "jsonl"] = Field("auto", description="auto: from the file name")
    columns: TraceColumns = Field(default_factory=TraceColumns)
    time_unit: Literal["s", "ms", "us"] = Field("s", description="unit of numeric times (ISO 8601 strings need none)")
    origin: Real() | Literal["first"] = Field("first", description="trace time (in time_unit, or an epoch) that is the trace's zero")
    start_at: Duration = Field(0.0, description="skip this much of the trace after its origin")
    shift: Duration = Field(0.0, description="simulated time at which the replay starts")
    scale: Real(gt=0, le=1e6) = Field(1.0, description="traffic multiplier (2.0: twice the users); see the method above")
    jitter: PositiveDuration = Field(1.0, description="requests: the window the extra copies of scale fall in")
    routes: dict[str, str] = Field(default_factory=dict, description="route -> endpoint (a route that is an endpoint's name maps to it)")
    default_endpoint: str | None = Field(None, description="endpoint for routes not mapped (null: unmapped routes are an error)")
    interpolation: Literal["step", "linear"] = Field("step", description="rates: between rows")
    mix: dict[str, NonNegative] | None = Field(None, description="rates: endpoint weights (default: the endpoints' weights)")

    @model_validator(mode="after")
    def _columns(self):
        if self.kind == "rates":
            if self.rate_column is None and self.columns.requests is None:
                raise ValueError("columns: a rate series needs columns.rate or columns.requests")
            if self.interpolation == "linear" and self.columns.requests is not None:
                raise ValueError("interpolation: linear needs rates at points (columns.rate), not counts per interval")
        elif self.interpolation != "step" or self.mix is not None:
            raise ValueError("interpolation and mix are for kind: rates")
        from capsim.models.trace import scan
        scan(self)                      # the file reads, row by row (cached while it is unchanged)
        return self

    @property
    def rate_column(self) -> str | None:
        return None if self.columns.requests is not None else self.columns.rate

    def origin_seconds(self, first: float) -> float:
        return first if self.origin == "first" else float(self.origin) * {"s": 1.0, "ms": 1e-3, "us": 1e-6}[self.time_unit]

    def endpoint_of(self, route: str, endpoints) -> str | None:
        name = self.routes.get(route, route if route in endpoints else None)
        return name if name is not None else self.default_endpoint


class ArtilleryScript(BaseModel):
    """An Artillery 2 script to run as open-loop traffic (see capsim.scenario.artillery)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    script: str = Field(description="the script (relative to the scenario file)")
    routes: dict[str, str] = Field(default_factory=dict, description="URL path -> endpoint")
    arrivals: Literal["even", "poisson"] | None = Field(None, description="default: as the script's phases say (even)")


class WorkloadConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    start: datetime = Field(datetime(2026, 1, 5), description="calendar time at t = 0 (default: a Monday, 00:00)")
    sessions: SessionsConfig | None = Field(default_factory=SessionsConfig, description="user sessions; null for none")
    open_loop: list[OpenLoopConfig] = Field(default_factory=list, description="open-loop sources")
    trace: TraceConfig | None = Field(None, description="recorded traffic replayed from a file (a request log or a rate series)")
    artillery: str | ArtilleryScript | None = Field(
        None, description="an Artillery 2 script (FILE, or {script, routes, arrivals}) whose phases and flows the "
                          "scenario loader adds to open_loop (capsim.scenario.artillery)")
    endpoints: dict[str, Endpoint] = Field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))

    @model_validator(mode="after")
    def _names(self):
        if self.artillery is not None:
            raise ValueError("artillery: read by the scenario loader (capsim.load_scenario, the capsim command), which "
                             "turns it into an open_loop source; from Python use capsim.scenario.artillery.script_source")
        known = set(self.endpoints)
        if not known:
            raise ValueError("endpoints: expected at least one endpoint")
        for i, src in enumerate(self.open_loop):
            for name in src.endpoint_names():
                if name not in known:
                    raise ValueError(f"open_loop[{i}]: unknown endpoint {name!r}; expected one of {sorted(known)}")
            if src.mix is None and not src.all_flows() and sum(e.weight for e in self.endpoints.values()) <= 0:
                raise ValueError(f"open_loop[{i}]: the endpoints' weights are all 0: expected some weight > 0, "
                                 "or a mix or flow for this source")
        if self.trace is not None:
            _check_trace(self.trace, known)
        aware = self.start.tzinfo is not None
        for ev in (self.sessions.events if self.sessions else []):
            if isinstance(ev.start, datetime) and (ev.start.tzinfo is not None) != aware:
                raise ValueError(f"sessions.events: event {ev.name!r} start {ev.start.isoformat()} and workload.start "
                                 f"{self.start.isoformat()}: expected both with a time zone or both without")
        if self.sessions is not None and sum(e.weight for e in self.endpoints.values()) <= 0:
            raise ValueError("endpoints: expected some weight > 0 for session traffic")
        return self


def _check_trace(trace: TraceConfig, known: set) -> None:
    """The file is readable and every route maps to an endpoint (the file is read once)."""
    from capsim.models.trace import scan
    for name in list(trace.routes.values()) + [trace.default_endpoint] + list(trace.mix or {}):
        if name is not None and name not in known:
            raise ValueError(f"trace: unknown endpoint {name!r}; expected one of {sorted(known)}")
    info = scan(trace)
    if trace.kind != "requests":
        return
    bad = {r: v for r, v in info.routes.items() if trace.endpoint_of(r, known) is None}
    if bad:
        listed = ", ".join(f"{r!r} ({c} requests, first on line {ln})" for r, (c, ln) in sorted(bad.items())[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ValueError(f"trace: {trace.file}: routes that map to no endpoint: {listed}{more}; map them in "
                         f"trace.routes, or set trace.default_endpoint (endpoints: {sorted(known)})")


class Calendar:
    """Maps simulated seconds to hour of day, weekday and events."""

    def __init__(self, start: datetime, events: list[Event]):
        self.start = start
        self._s0 = start.weekday() * 86400 + start.hour * 3600 + start.minute * 60 + start.second
        self.events = [(self.offset(e.start), self.offset(e.start) + e.duration, e.multiplier) for e in events]

    def offset(self, when: float | datetime) -> float:
        if isinstance(when, datetime):
            return (when - self.start).total_seconds()
        return float(when)

    def hour_and_weekend(self, t: float) -> tuple[int, bool, float]:
        """(hour of day, is weekend, time of the next hour boundary)."""
        s = self._s0 + t
        day = int(s // 86400) % 7
        return int(s % 86400 // 3600), day >= 5, t + (3600 - s % 3600)

    def events_at(self, t: float) -> tuple[float, float]:
        """(product of active event multipliers, time of the next event boundary)."""
        mult, nxt = 1.0, float("inf")
        for a, b, m in self.events:
            if a <= t < b:
                mult *= m
                nxt = min(nxt, b)
            elif t < a:
                nxt = min(nxt, a)
        return mult, nxt
