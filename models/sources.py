"""Arrival processes of the workload, driven by the kernel.

Non-homogeneous Poisson arrivals are made by inverting the cumulative rate: with
E ~ Exp(1), the next arrival after t is where the integral of the rate from t reaches
E. Rates are piecewise linear, so each piece inverts exactly (no thinning, one draw
per arrival); Artillery phases arrive evenly spaced by default (``capsim.models.phases``).
Session users' requests come from one clock whose rate is
``request_rate x active sessions``; when the count changes, the unspent part of the
current exponential is kept (time rescaling), so each request still costs one draw.
"""
from __future__ import annotations

from heapq import heappush
from math import floor, sqrt
from typing import Iterator

from capsim.models.distributions import Exponential, draws, uniforms
from capsim.models.endpoints import mix
from capsim.models.phases import even_arrivals
from capsim.models.trace import rate_points as trace_rate_points, requests as trace_requests, scan as scan_trace

__all__ = ["invert", "SessionSource", "OpenLoopSource", "TraceSource", "compile_flows", "replay", "rate_segments"]

INF = float("inf")


def invert(t: float, e: float, segment, limit: float = INF) -> float:
    """First time after ``t`` where the rate's integral reaches ``e`` (INF: not before ``limit``).

    ``segment(t)`` returns ``(r0, r1, t1)``: the rate goes linearly from r0 at t to r1
    at t1 (t1 may be inf, then r1 == r0). The walk over the pieces stops at ``limit`` (the
    horizon), so a tiny rate does not walk the calendar hour by hour for ever.
    """
    while True:
        if t >= limit:
            return INF
        r0, r1, t1 = segment(t)
        if t1 == INF:
            return t + e / r0 if r0 > 0 else INF
        span = t1 - t
        mass = 0.5 * (r0 + r1) * span
        if mass >= e and mass > 0:
            b = (r1 - r0) / span
            return t + 2.0 * e / (r0 + sqrt(max(r0 * r0 + 2.0 * b * e, 0.0)))
        e -= mass
        t = t1


class SessionSource:
    """User sessions and the requests their users issue."""

    def __init__(self, kernel, config, calendar, endpoints, factory, route, streams, horizon: float = INF):
        self.kernel, self.config, self.calendar, self.horizon = kernel, config, calendar, horizon
        self.factory, self.route = factory, route
        curve = config.curve
        self._curve = [c / max(curve) for c in curve]
        self._base = config.peak_users / config.session_length.mean
        self._exp_start = draws(Exponential(mean=1.0), streams.get("sessions.start"))
        self._length = draws(config.session_length, streams.get("sessions.length"))
        self._exp_req = draws(Exponential(mean=1.0), streams.get("sessions.requests"))
        self._client = uniforms(streams.get("sessions.client"))
        names = list(endpoints)
        self._mix = mix([factory.index[n] for n in names], [endpoints[n].weight for n in names],
                        streams.get("sessions.mix"))
        self.active: list[list] = []          # [session id, position in active (-1: ended), socket's instance]
        self.sockets = None                   # Sockets, when sessions hold Socket.io connections
        self._socket_eps: frozenset = frozenset()
        self.started = 0
        self._sampled = 0
        self.rate = config.request_rate
        self._work = next(self._exp_req)      # unspent exponential of the request clock
        self._t_clock = 0.0
        self._version = 0
        self._on_start, self._on_end, self._on_request = self._start, self._end, self._request

    def sample(self, t0: float, t1: float) -> dict:
        started = self.started - self._sampled
        self._sampled = self.started
        return {"sessions": len(self.active), "session_starts": started}

    def segment(self, t: float):
        hour, weekend, t_hour = self.calendar.hour_and_weekend(t)
        ev, t_ev = self.calendar.events_at(t)
        r = self._base * self._curve[hour] * (self.config.weekend_multiplier if weekend else 1.0) * ev
        return r, r, min(t_hour, t_ev)

    def start(self) -> None:
        self._schedule_start(self.kernel.now)

    def _schedule_start(self, t: float) -> None:
        nxt = invert(t, next(self._exp_start), self.segment, self.horizon)
        if nxt < INF:
            self.kernel.at(nxt, self._on_start, None)

    def _start(self, _) -> None:
        now = self.kernel.now
        self._spend(now)
        s = [self.started, len(self.active), None]
        self.started += 1
        self.active.append(s)
        if self.sockets is not None:
            self.sockets.connect(s)
        self._reschedule()
        self.kernel.later(now + next(self._length), self._on_end, s)    # minutes away: the far calendar
        self._schedule_start(now)

    def _end(self, s) -> None:
        self._spend(self.kernel.now)
        active = self.active
        last = active.pop()
        if last is not s:
            active[s[1]] = last
            last[1] = s[1]
        s[1] = -1
        if self.sockets is not None:
            self.sockets.disconnect(s)
        self._reschedule()

    def _spend(self, now: float) -> None:
        self._work -= self.rate * len(self.active) * (now - self._t_clock)
        self._t_clock = now

    def _reschedule(self) -> None:
        self._version += 1
        n = len(self.active)
        if n and self.rate > 0:
            k = self.kernel                       # k.at, inlined: once per request
            heappush(k.heap, (self._t_clock + max(self._work, 0.0) / (self.rate * n), next(k.seq),
                              self._on_request, self._version))

    def _request(self, version: int) -> None:
        if version != self._version:
            return                                  # superseded by a change in sessions
        now = self.kernel.now
        active = self.active
        s = active[int(next(self._client) * len(active))]
        self._t_clock, self._work = now, next(self._exp_req)
        self._version = v = self._version + 1          # self._reschedule(), inlined: sessions are open, rate > 0
        k = self.kernel
        heappush(k.heap, (now + max(self._work, 0.0) / (self.rate * len(active)), next(k.seq), self._on_request, v))
        ep = next(self._mix)
        req = self.factory.make(now, ep, s[0], None)
        if ep in self._socket_eps:
            self.sockets.send(req, s)
        else:
            self.route(req)

    def use_sockets(self, sockets) -> None:
        self.sockets, sockets.sessions = sockets, self
        self._socket_eps = sockets.endpoint_set(self.factory.index)


def compile_flows(flows, index) -> list[list[tuple[float, int]]]:
    """Each flow as ``(think before, endpoint index)`` pairs (think steps fold into the next request)."""
    out = []
    for f in flows:
        steps, wait = [], 0.0
        for st in f.flow:
            if isinstance(st, str):
                steps.append((wait, index[st]))
                wait = 0.0
            else:
                wait += st.think
        out.append(steps)
    return out


class OpenLoopSource:
    """Open-loop arrivals, each one a request or a virtual user's flow.

    Poisson arrivals at a piecewise-linear rate (inverted exactly), or Artillery's evenly
    spaced phases (``capsim.models.phases``; no random draw for the times). A flow's
    request carries ``flow = (source, next step, flow index)``.
    """

    def __init__(self, kernel, config, endpoints, factory, route, streams, index: int, horizon: float = INF):
        self.kernel, self.factory, self.route, self.horizon = kernel, factory, route, horizon
        self.config = config
        self._segments = config.segments()
        self._k = 0
        tag = f"open_loop.{index}.{config.name}"
        self._even = even_arrivals(config.phases, config.start) if config.even else None
        self._exp = None if config.even else draws(Exponential(mean=1.0), streams.get(tag + ".arrivals"))
        weights = config.mix if config.mix is not None else {n: e.weight for n, e in endpoints.items()}
        names = [n for n, w in weights.items() if w > 0]
        self._mix = mix([factory.index[n] for n in names], [weights[n] for n in names], streams.get(tag + ".mix"))
        flows = config.all_flows()
        self._flows = compile_flows(flows, factory.index) if flows else None
        self.flow_names = [f.name or str(i) for i, f in enumerate(flows)] if flows else []
        self._pick = mix(list(range(len(flows))), [f.weight for f in flows], streams.get(tag + ".flow_pick")) \
            if flows and len(flows) > 1 else None
        self.arrivals = 0
        only = self._segments[0] if len(self._segments) == 1 else None
        self._gap = 1.0 / only[2] if (self._exp is not None and only and only[1] == INF and only[0] == 0
                                      and only[2] > 0) else None
        self._on_arrival, self._on_step = self._arrival, self._step

    def segment(self, t: float):
        segs = self._segments
        while self._k < len(segs) and segs[self._k][1] <= t:
            self._k += 1
        if self._k == len(segs):
            return 0.0, 0.0, INF
        t0, t1, r0, r1 = segs[self._k]
        if t < t0:
            return 0.0, 0.0, t0
        if t1 == INF:
            return r0, r0, INF
        return r0 + (r1 - r0) * (t - t0) / (t1 - t0), r1, t1

    def start(self) -> None:
        self._schedule(self.kernel.now)

    def _schedule(self, t: float) -> None:
        if self._even is not None:
            nxt = next(self._even, INF)
        elif self._gap is not None:                 # constant rate from t = 0: no inversion needed
            k = self.kernel
            heappush(k.heap, (t + next(self._exp) * self._gap, next(k.seq), self._on_arrival, None))
            return
        else:
            nxt = invert(t, next(self._exp), self.segment, self.horizon)
        if nxt < INF:
            self.kernel.at(nxt, self._on_arrival, None)

    def _arrival(self, _) -> None:
        now = self.kernel.now
        self.arrivals += 1
        self._schedule(now)
        if self._flows is None:
            self.route(self.factory.make(now, next(self._mix), None, None))
            return
        k = next(self._pick) if self._pick is not None else 0
        wait, ep = self._flows[k][0]
        if wait > 0:
            self.kernel.at(now + wait, self._on_step, (self.arrivals, k, 0))
        else:
            self.route(self.factory.make(now, ep, self.arrivals, (self, 1, k)))

    def _step(self, args) -> None:
        client, k, step = args
        self.route(self.factory.make(self.kernel.now, self._flows[k][step][1], client, (self, step + 1, k)))

    def follow(self, req) -> None:
        """``req`` of a flow finished: issue the flow's next step for the same user (after its think time)."""
        _, step, k = req.flow
        steps = self._flows[k]
        if step < len(steps):
            wait = steps[step][0]
            if wait > 0:
                self.kernel.at(self.kernel.now + wait, self._on_step, (req.client, k, step))
            else:
                self._step((req.client, k, step))

    def last_step(self, req) -> bool:
        """Whether ``req`` is its flow's last request (its user is done when it finishes)."""
        return req.flow[1] == len(self._flows[req.flow[2]])


def replay(config, index: dict, origin: float, keep, place) -> Iterator[tuple[float, int]]:
    """(simulated time, endpoint index) of each replayed request, in time order.

    ``keep`` and ``place`` are endless uniforms: one ``keep`` draw per recorded request
    decides its extra copy (``scale``'s fractional part), one ``place`` draw per copy beyond the
    first puts it within the recorded request's ``jitter`` window (see ``TraceConfig``).
    """
    skip, shift, s = origin + config.start_at, config.shift, config.scale
    recorded = ((t - skip, index[r]) for t, r in trace_requests(config) if t >= skip)
    if s == 1.0:
        for x, ep in recorded:
            yield shift + x, ep
        return
    whole, frac, width = floor(s), s - floor(s), config.jitter
    window, pending = None, []
    for x, ep in recorded:
        k = floor(x / width)
        if k != window:
            yield from ((shift + t, e) for t, e in sorted(pending, key=lambda p: p[0]))
            window, pending = k, []
        n = whole + (next(keep) < frac)
        if n:
            pending.append((x, ep))
            pending += [((k + next(place)) * width, ep) for _ in range(n - 1)]
    yield from ((shift + t, e) for t, e in sorted(pending, key=lambda p: p[0]))


def rate_segments(config, origin: float) -> Iterator[tuple[float, float, float, float]]:
    """The rate series as linear pieces ``(t0, t1, r0, r1)`` in simulated time, scaled; a step
    series' last rate holds for the gap before it, a linear one ends at its last point."""
    skip, shift, s = origin + config.start_at, config.shift, config.scale
    linear = config.interpolation == "linear"

    def piece(a, b, r0, r1):
        a, b = a - skip, b - skip
        if b <= 0 or b <= a:
            return None
        if a < 0:
            r0, a = r0 + (r1 - r0) * (-a) / (b - a), 0.0
        return shift + a, shift + b, s * r0, s * r1

    prev, gap = None, None
    for t, r in trace_rate_points(config):
        if prev is not None:
            gap = t - prev[0]
            p = piece(prev[0], t, prev[1], r if linear else prev[1])
            if p is not None:
                yield p
        prev = (t, r)
    if prev is not None and not linear and gap:
        p = piece(prev[0], prev[0] + gap, prev[1], prev[1])
        if p is not None:
            yield p


class TraceSource:
    """Recorded traffic (``workload.trace``): a request log replayed, or a rate series as a
    non-homogeneous Poisson process, read from disk as the run goes (one row ahead)."""

    def __init__(self, kernel, config, endpoints, factory, route, streams, horizon: float = INF):
        self.kernel, self.factory, self.route, self.config, self.horizon = kernel, factory, route, config, horizon
        info = scan_trace(config)
        origin = config.origin_seconds(info.first)
        self.arrivals = 0
        self._on_arrival = self._arrival
        if config.kind == "requests":
            index = {r: factory.index[config.endpoint_of(r, endpoints)] for r in info.routes}
            self._times = replay(config, index, origin, uniforms(streams.get("trace.scale")),
                                 uniforms(streams.get("trace.jitter")))
            return
        self._times = None
        self._exp = draws(Exponential(mean=1.0), streams.get("trace.arrivals"))
        self._segs = rate_segments(config, origin)
        self._cur = next(self._segs, None)
        weights = config.mix if config.mix is not None else {n: e.weight for n, e in endpoints.items()}
        names = [n for n, w in weights.items() if w > 0]
        self._mix = mix([factory.index[n] for n in names], [weights[n] for n in names], streams.get("trace.mix"))

    def segment(self, t: float):
        while self._cur is not None and self._cur[1] <= t:
            self._cur = next(self._segs, None)
        if self._cur is None:
            return 0.0, 0.0, INF
        t0, t1, r0, r1 = self._cur
        if t < t0:
            return 0.0, 0.0, t0
        return r0 + (r1 - r0) * (t - t0) / (t1 - t0), r1, t1

    def start(self) -> None:
        self._schedule(self.kernel.now)

    def _schedule(self, t: float) -> None:
        if self._times is not None:
            nxt, ep = next(self._times, (INF, None))
        else:
            nxt, ep = invert(t, next(self._exp), self.segment, self.horizon), None
        if nxt < INF:
            self.kernel.at(max(nxt, t), self._on_arrival, ep)

    def _arrival(self, ep) -> None:
        now = self.kernel.now
        self.arrivals += 1
        self._schedule(now)
        self.route(self.factory.make(now, next(self._mix) if ep is None else ep, None, None))
