"""Workload: NHPP inversion, open-loop shapes, sessions (rates, Little's law), calendar,
validation, flows and endpoint mixes.

Stochastic checks use theory-derived bounds: a Poisson count with mean L is within
4*sqrt(L) of L (per check, false alarm ~6e-5); see each test for other tolerances.
"""
import math
from datetime import datetime

import numpy as np
import pytest
from pydantic import ValidationError

import capsim
from capsim.models.request import OUTCOMES
from capsim.models.sources import invert
from capsim.models.workload import DAILY_CURVES, Calendar, Event, OpenLoopConfig, SessionsConfig, WorkloadConfig
from capsim.engine.model import Model
from capsim.scenario.config import Scenario

INF = float("inf")
API = {"api": {"cpu_pre": 0.0005, "queries": 0}}


def _poisson_ok(n, lam, k=4.0):
    return abs(n - lam) <= k * math.sqrt(max(lam, 1.0))


def _open_loop(src, horizon, interval, endpoints=API, **extra):
    return Scenario.model_validate({
        "horizon": horizon, "warmup": 0, "metrics": {"interval": interval},
        "workload": {"sessions": None, "open_loop": [src], "endpoints": endpoints}, **extra})


# --- (a) invert ------------------------------------------------------------------

@pytest.mark.parametrize("r", [0.1, 1.0, 37.5])
@pytest.mark.parametrize("e", [1e-6, 0.3, 1.0, 12.0])
def test_invert_constant(r, e):
    assert invert(5.0, e, lambda t: (r, r, INF)) == pytest.approx(5.0 + e / r, rel=1e-14)


def test_invert_zero_rate_forever_is_inf():
    assert invert(3.0, 0.5, lambda t: (0.0, 0.0, INF)) == INF


@pytest.mark.parametrize("a, b", [(0.0, 2.0), (1.0, 0.5), (10.0, -0.09), (5.0, -0.05), (0.0, 1e-6)])
@pytest.mark.parametrize("e", [1e-3, 0.7, 4.0, 20.0])
def test_invert_linear_ramp_closed_form(a, b, e):
    """rate(t) = a + b t on [0, 100]; from t0 the mass to x is a(x-t0) + b(x^2-t0^2)/2."""
    T, t0 = 100.0, 3.0
    rate = lambda t: a + b * t                       # noqa: E731
    seg = lambda t: (rate(t), rate(T), T) if t < T else (0.0, 0.0, INF)   # noqa: E731
    mass = a * (T - t0) + b * (T * T - t0 * t0) / 2
    x = invert(t0, e, seg)
    if e > mass:
        assert x == INF
        return
    # closed form root of b/2 x^2 + a x - (a t0 + b t0^2/2 + e) = 0
    c = a * t0 + b * t0 * t0 / 2 + e
    expect = c / a if b == 0 else (-a + math.sqrt(a * a + 2 * b * c)) / b
    assert x == pytest.approx(expect, rel=1e-9, abs=1e-12)
    assert a * (x - t0) + b * (x * x - t0 * t0) / 2 == pytest.approx(e, rel=1e-9)


def test_invert_crosses_pieces_and_skips_zero_rate():
    # rate 2 on [0, 1), 0 on [1, 4), ramp 0 -> 6 on [4, 6), 3 afterwards
    def seg(t):
        if t < 1:
            return 2.0, 2.0, 1.0
        if t < 4:
            return 0.0, 0.0, 4.0
        if t < 6:
            return 3.0 * (t - 4), 6.0, 6.0
        return 3.0, 3.0, INF
    assert invert(0.0, 1.0, seg) == pytest.approx(0.5)
    assert invert(0.0, 2.0, seg) == pytest.approx(1.0)                 # exactly the first piece's mass
    assert invert(0.0, 2.0 + 1.5, seg) == pytest.approx(4.0 + 1.0)     # 1.5 t^2 = 1.5 -> t = 1
    assert invert(0.0, 2.0 + 6.0 + 3.0, seg) == pytest.approx(7.0)
    assert invert(0.5, 1.0, seg) == pytest.approx(1.0)
    assert invert(0.5, 1.5, seg) == pytest.approx(4.0 + math.sqrt(1 / 3))


# --- (b) open loop -----------------------------------------------------------------

ARTILLERY = [{"duration": 60, "arrivalRate": 10}, {"duration": 300, "arrivalRate": 50},
             {"duration": "1m", "arrivalRate": "6000/m"}]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_artillery_phases_poisson(seed):
    sc = _open_loop({"phases": ARTILLERY, "arrivals": "poisson"}, horizon=600, interval=60)
    ts = capsim.run(sc, seed=seed).timeseries
    lam = [600] + [3000] * 5 + [6000] + [0] * 3
    assert list(ts.t_end) == [60.0 * (i + 1) for i in range(10)]
    for n, L, t in zip(ts.arrivals, lam, ts.t_end):
        assert _poisson_ok(n, L), (t, n, L)
    assert (ts.arrivals[ts.t_start >= 420] == 0).all()                   # nothing after the last phase
    phase_totals = [ts.arrivals[:1].sum(), ts.arrivals[1:6].sum(), ts.arrivals[6:7].sum()]
    for n, L in zip(phase_totals, [600, 15000, 6000]):
        assert _poisson_ok(n, L)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("up", [True, False])
def test_phase_ramp_poisson(seed, up):
    """rate t (0 -> 100 over 100 s) or 100 - t: per 10 s bin, L = integral of the rate."""
    ph = {"duration": 100, "arrivalRate": 0, "rampTo": 100} if up else {"duration": 100, "arrivalRate": 100, "rampTo": 0}
    sc = _open_loop({"phases": [ph], "arrivals": "poisson"}, horizon=150, interval=10)
    ts = capsim.run(sc, seed=seed).timeseries
    rate_int = (lambda a, b: (b * b - a * a) / 2) if up else (lambda a, b: 100 * (b - a) - (b * b - a * a) / 2)
    for a, b, n in zip(ts.t_start, ts.t_end, ts.arrivals):
        L = rate_int(min(a, 100), min(b, 100))
        assert _poisson_ok(n, L), (a, b, n, L)
    assert ts.arrivals.sum() == pytest.approx(5000, abs=4 * math.sqrt(5000))
    assert (ts.arrivals[ts.t_start >= 100] == 0).all()


def test_phase_ramp_shape_distinguishes_direction():
    """Pooled over the ramp, the first half holds 1/4 of the mass (up) or 3/4 (down)."""
    for up, share in [(True, 0.25), (False, 0.75)]:
        ph = {"duration": 100, "arrivalRate": 0 if up else 100, "rampTo": 100 if up else 0}
        ts = capsim.run(_open_loop({"phases": [ph], "arrivals": "poisson"}, horizon=100, interval=50), seed=5).timeseries
        n1, n = ts.arrivals.iloc[0], ts.arrivals.sum()
        sd = math.sqrt(n * share * (1 - share))
        assert abs(n1 - share * n) < 4 * sd


@pytest.mark.parametrize("seed", [1, 2])
def test_schedule_piecewise(seed):
    steps = [{"at": 0, "rate": 5}, {"at": "100s", "rate": "1200/m"}, {"at": 200, "rate": 0}, {"at": 300, "rate": 10}]
    sc = _open_loop({"schedule": steps}, horizon=400, interval=100)
    ts = capsim.run(sc, seed=seed).timeseries
    for n, L in zip(ts.arrivals, [500, 2000, 0, 1000]):
        assert _poisson_ok(n, L), (n, L)
    assert ts.arrivals.iloc[2] == 0


def test_schedule_first_step_later_means_nothing_before():
    sc = _open_loop({"schedule": [{"at": 100, "rate": 20}]}, horizon=200, interval=100)
    ts = capsim.run(sc, seed=1).timeseries
    assert ts.arrivals.iloc[0] == 0 and _poisson_ok(ts.arrivals.iloc[1], 2000)


@pytest.mark.parametrize("shape", [{"rate": 10},
                                   {"schedule": [{"at": 0, "rate": 10}]},
                                   {"phases": [{"duration": 200, "arrivalRate": 10}], "arrivals": "poisson"}])
def test_start_offset(shape):
    sc = _open_loop({"start": "100s", **shape}, horizon=300, interval=100)
    ts = capsim.run(sc, seed=4).timeseries
    assert ts.arrivals.iloc[0] == 0
    assert _poisson_ok(ts.arrivals.iloc[1], 1000) and _poisson_ok(ts.arrivals.iloc[2], 1000)


def test_phases_with_start_offset_shift():
    sc = _open_loop({"start": 50, "phases": [{"duration": 50, "arrivalRate": 20}, {"duration": 50, "arrivalRate": 0},
                                             {"duration": 50, "arrivalRate": 40}], "arrivals": "poisson"},
                   horizon=250, interval=50)
    ts = capsim.run(sc, seed=2).timeseries
    assert list(ts.arrivals[[0, 2, 4]]) == [0, 0, 0]
    assert _poisson_ok(ts.arrivals.iloc[1], 1000) and _poisson_ok(ts.arrivals.iloc[3], 2000)


def test_constant_rate_over_seeds_is_poisson():
    """Counts of rate 20 over 50 s across 40 seeds: mean 1000, variance 1000 (dispersion
    index ~ chi2(39)/39: within [0.4, 1.9] with probability > 0.998)."""
    ns = np.array([capsim.run(_open_loop({"rate": 20}, horizon=50, interval=50), seed=s).summary["requests"]["total"]
                   for s in range(40)])
    assert abs(ns.mean() - 1000) < 4 * math.sqrt(1000 / 40)
    assert 0.4 < ns.var(ddof=1) / 1000 < 1.9


# --- (c) sessions ------------------------------------------------------------------

def _ref_rate(t, start, curve, peak, mean_len, weekend, events):
    """Reference start rate, computed independently of Calendar."""
    s = (start - datetime(2026, 1, 5)).total_seconds() + t     # 2026-01-05 is a Monday
    day, hour = int(s // 86400) % 7, int(s % 86400 // 3600)
    r = peak / mean_len * curve[hour] / max(curve) * (weekend if day >= 5 else 1.0)
    for a, b, m in events:
        if a <= t < b:
            r *= m
    return r


def _lam(t0, t1, step=60.0, **kw):
    n = int(round((t1 - t0) / step))
    return sum(_ref_rate(t0 + (i + 0.5) * step, **kw) for i in range(n)) * step


def _sessions_scenario(horizon, interval, start="2026-01-05T00:00", request_rate="1/h", **sess):
    s = {"peak_users": 100, "session_length": 1800, "daily_curve": "gaming", "request_rate": request_rate, **sess}
    return Scenario.model_validate({
        "horizon": horizon, "warmup": 0, "metrics": {"interval": interval},
        "workload": {"start": start, "sessions": s, "endpoints": API}})


def _check_starts(sc, seed, events=()):
    ts = capsim.run(sc, seed=seed).timeseries
    wl = sc.workload
    kw = dict(start=wl.start, curve=wl.sessions.curve, peak=wl.sessions.peak_users,
              mean_len=wl.sessions.session_length.mean, weekend=wl.sessions.weekend_multiplier, events=events)
    lams = [_lam(a, b, **kw) for a, b in zip(ts.t_start, ts.t_end)]
    for a, n, L in zip(ts.t_start, ts.session_starts, lams):
        assert _poisson_ok(n, L), (a, n, L)
    assert _poisson_ok(ts.session_starts.sum(), sum(lams))
    return ts, lams


@pytest.mark.parametrize("seed", [1, 2])
def test_session_starts_weekday(seed):
    sc = _sessions_scenario(86400, 3600)
    ts, lams = _check_starts(sc, seed)
    base = 100 / 1800 * 3600
    curve = DAILY_CURVES["gaming"]
    assert lams == pytest.approx([base * c for c in curve])            # reference sanity
    assert ts.session_starts.sum() == pytest.approx(base * sum(curve), abs=4 * math.sqrt(base * sum(curve)))


def test_session_starts_weekend_day():
    sc = _sessions_scenario(86400, 3600, start="2026-01-10T00:00", weekend_multiplier=2.5)   # a Saturday
    ts, lams = _check_starts(sc, 3)
    L = 100 / 1800 * 3600 * sum(DAILY_CURVES["gaming"]) * 2.5
    assert sum(lams) == pytest.approx(L)
    # a weekday-rate total would be 2.5 x smaller: far outside the band
    assert abs(ts.session_starts.sum() - L / 2.5) > 10 * math.sqrt(L)


def test_session_starts_friday_noon_into_saturday():
    """Start Friday 12:30: hours map from workload.start (minutes included), weekend from Sat 00:00."""
    sc = _sessions_scenario(86400, 1800, start="2026-01-09T12:30", weekend_multiplier=3.0,
                            daily_curve=[1.0] * 12 + [2.0] * 12)
    ts, lams = _check_starts(sc, 4)
    per = 100 / 1800 / 2 * 1800                      # curve 1 of max 2: half the base
    # 12:30-24:00 Friday: curve 2 -> 2*per; Saturday 0-12 -> 3*per; Saturday 12-12:30 -> 6*per
    expect = [2 * per] * 23 + [3 * per] * 24 + [6 * per]
    assert lams == pytest.approx(expect)


def test_session_starts_in_event_windows():
    events = [Event(start="2026-01-05T06:00", duration="2h", multiplier=4.0),
              Event(start="15h", duration="90m", multiplier=3.0),
              Event(start="16h", duration="1h", multiplier=2.0)]       # overlaps: 16:00-16:30 x6
    sc = _sessions_scenario(86400, 1800, daily_curve="flat",
                            events=[e.model_dump() for e in events])
    cal = Calendar(sc.workload.start, sc.workload.sessions.events)
    assert cal.events == [(6 * 3600.0, 8 * 3600.0, 4.0), (15 * 3600.0, 16.5 * 3600, 3.0), (16 * 3600.0, 17 * 3600.0, 2.0)]
    ts, lams = _check_starts(sc, 5, events=cal.events)
    base = 100 / 1800 * 1800
    mult = {12: 4, 13: 4, 14: 4, 15: 4, 30: 3, 31: 3, 32: 6, 33: 2}
    assert lams == pytest.approx([base * mult.get(i, 1) for i in range(48)])
    inside = sum(ts.session_starts[[12, 13, 14, 15]])
    assert _poisson_ok(inside, 4 * 4 * base)


def _track_sessions(model):
    """Record every session start/end time (exact N(t)) and every request's (time, client)."""
    src = model.sessions
    starts, ends, reqs = {}, {}, []
    orig_start, orig_end, orig_route = src._on_start, src._on_end, src.route

    def on_start(arg):
        orig_start(arg)
        starts[src.active[-1][0]] = model.kernel.now

    def on_end(s):
        ends[s[0]] = model.kernel.now
        orig_end(s)

    def route(req):
        reqs.append((model.kernel.now, req.client))
        orig_route(req)

    src._on_start, src._on_end, src.route = on_start, on_end, route
    return starts, ends, reqs


def _area(starts, ends, t0, t1):
    return sum(max(0.0, min(ends.get(i, t1), t1) - max(s, t0)) for i, s in starts.items())


def test_littles_law_and_request_rate_flat_curve():
    """Flat curve, constant length D = 600 s, peak 50: starts are Poisson(1/12 per s), so
    (M/D/inf, after D) N(t) ~ Poisson(50) and the time average over T has variance
    ~ lambda D^2 / T = (1/12) 600^2 / 35400 = 0.85 (sd 0.92): tolerance 4 sd = 3.7.
    Given N(.), requests are Poisson with mean request_rate x integral N dt."""
    sc = _sessions_scenario(36000, 60, peak_users=50, session_length=600, daily_curve="flat", request_rate=0.01)
    model = Model(sc, seed=6)
    starts, ends, reqs = _track_sessions(model)
    model.run()
    T0, T1 = 600.0, 36000.0
    avg = _area(starts, ends, T0, T1) / (T1 - T0)
    sd = math.sqrt((1 / 12) * 600 ** 2 / (T1 - T0))
    assert abs(avg - 50) < 4 * sd, avg
    # every session lasts exactly D
    assert all(ends[i] - starts[i] == pytest.approx(600) for i in ends)
    assert all(36000 - s < 600 for i, s in starts.items() if i not in ends)
    # the time series' snapshots approximate the same average
    ts = model.metrics.rows
    snaps = [r["sessions"] for r in ts if r["t_end"] > T0]
    assert abs(np.mean(snaps) - 50) < 4 * sd + 0.5
    # requests: Poisson with mean rate x integral of N
    L = 0.01 * _area(starts, ends, 0.0, T1)
    assert _poisson_ok(len(reqs), L), (len(reqs), L)
    assert model.metrics.total_arrivals == len(reqs)
    # each request comes from a session active at that moment
    for t, c in reqs:
        assert starts[c] <= t and (c not in ends or t <= ends[c]), (t, c)


def test_request_clients_are_uniform_over_active_sessions():
    """Requests per session ~ Poisson(rate x D) each; pooled over sessions that lived their
    whole length in the run, the mean per-session count is rate x D within 4 sd."""
    sc = _sessions_scenario(7200, 600, peak_users=40, session_length=300, daily_curve="flat", request_rate=0.2)
    model = Model(sc, seed=8)
    starts, ends, reqs = _track_sessions(model)
    model.run()
    full = [i for i in ends]
    per = {i: 0 for i in full}
    for _, c in reqs:
        if c in per:
            per[c] += 1
    counts = np.array(list(per.values()))
    m = 0.2 * 300
    assert abs(counts.mean() - m) < 4 * math.sqrt(m / len(counts))
    assert 0.6 < counts.var(ddof=1) / m < 1.5        # Poisson dispersion, ~900 sessions


def test_session_request_rate_zero_means_no_requests():
    """request_rate 0 is valid (Rate >= 0): sessions run but issue no requests."""
    sc = _sessions_scenario(3600, 600, peak_users=20, session_length=600, daily_curve="flat", request_rate=0)
    r = capsim.run(sc, seed=1)
    assert r.summary["requests"]["total"] == 0
    assert r.summary["sessions"]["started"] > 0


# --- calendar ----------------------------------------------------------------------

def test_calendar_default_start_is_monday_midnight():
    wl = WorkloadConfig()
    assert wl.start.weekday() == 0 and (wl.start.hour, wl.start.minute) == (0, 0)
    cal = Calendar(wl.start, [])
    assert cal.hour_and_weekend(0.0) == (0, False, 3600.0)
    assert cal.hour_and_weekend(3599.0)[:2] == (23 - 23, False)
    assert cal.hour_and_weekend(13 * 3600 + 5)[:2] == (13, False)
    assert cal.hour_and_weekend(5 * 86400 - 1)[:2] == (23, False)       # Friday 23:59:59
    assert cal.hour_and_weekend(5 * 86400)[:2] == (0, True)             # Saturday
    assert cal.hour_and_weekend(6 * 86400 + 7 * 3600)[:2] == (7, True)  # Sunday
    assert cal.hour_and_weekend(7 * 86400)[:2] == (0, False)            # Monday again
    assert cal.hour_and_weekend(7 * 86400 + 1800)[2] == 7 * 86400 + 3600


def test_calendar_offset_start():
    cal = Calendar(datetime(2026, 1, 9, 22, 30), [])                     # Friday 22:30
    assert cal.hour_and_weekend(0.0) == (22, False, 1800.0)
    assert cal.hour_and_weekend(1800.0) == (23, False, 5400.0)
    assert cal.hour_and_weekend(5400.0) == (0, True, 9000.0)            # Saturday 00:00
    assert cal.hour_and_weekend(2 * 86400 + 5400.0)[:2] == (0, False)   # Monday 00:00


def test_calendar_events_iso_and_offset_agree():
    start = datetime(2026, 1, 5)
    iso = Calendar(start, [Event(start="2026-01-06T18:00", duration="3h", multiplier=2)])
    off = Calendar(start, [Event(start="1d18h", duration=10800, multiplier=2)])
    assert iso.events == off.events == [(42 * 3600.0, 45 * 3600.0, 2.0)]
    assert iso.events_at(0.0) == (1.0, 42 * 3600.0)
    assert iso.events_at(42 * 3600.0) == (2.0, 45 * 3600.0)
    assert iso.events_at(45 * 3600.0) == (1.0, INF)
    # relative to a later start, the ISO event moves; the offset one does not
    late = datetime(2026, 1, 6)
    assert Calendar(late, [Event(start="2026-01-06T18:00", duration="3h")]).events[0][0] == 18 * 3600.0
    assert Calendar(late, [Event(start="1d18h", duration="3h")]).events[0][0] == 42 * 3600.0


def test_calendar_overlapping_events_multiply():
    cal = Calendar(datetime(2026, 1, 5), [Event(start=100, duration=100, multiplier=2),
                                           Event(start=150, duration=100, multiplier=3)])
    assert cal.events_at(50) == (1.0, 100.0)
    assert cal.events_at(120) == (2.0, 150.0)
    assert cal.events_at(160) == (6.0, 200.0)
    assert cal.events_at(210) == (3.0, 250.0)


def test_event_bad_iso_is_a_validation_error():
    with pytest.raises(ValidationError, match="ISO"):
        Event(start="2026-13-45T99:00", duration="1h")


def test_timezone_mismatch_is_rejected_or_handled():
    """workload.start with a UTC offset and a naive ISO event (or the reverse) must either be
    a validation error or run; it must not pass validation and then crash building the model."""
    for start, ev in [("2026-01-05T00:00+01:00", "2026-01-05T10:00"), ("2026-01-05T00:00", "2026-01-05T10:00Z")]:
        try:
            sc = _sessions_scenario(3600, 600, start=start, daily_curve="flat",
                                    events=[{"start": ev, "duration": "1h"}])
        except ValidationError:
            continue
        capsim.run(sc, seed=1)


def test_named_and_custom_curves():
    assert SessionsConfig(daily_curve="business").curve == DAILY_CURVES["business"]
    assert SessionsConfig(daily_curve="flat").curve == [1.0] * 24
    custom = [float(i) for i in range(24)]
    assert SessionsConfig(daily_curve=custom).curve == custom
    assert SessionsConfig().curve == DAILY_CURVES["gaming"]
    for name, c in DAILY_CURVES.items():
        assert len(c) == 24 and min(c) >= 0 and max(c) > 0, name


@pytest.mark.parametrize("curve", [[1.0] * 23, [1.0] * 25, [1.0] * 23 + [-0.5], [0.0] * 24, [], "weekly"])
def test_bad_curves_rejected(curve):
    with pytest.raises(ValidationError):
        SessionsConfig(daily_curve=curve)


@pytest.mark.parametrize("src", [
    {"rate": 5, "phases": [{"duration": 10, "arrivalRate": 1}]},
    {"rate": 5, "schedule": [{"at": 0, "rate": 1}]},
    {},
    {"schedule": [{"at": 10, "rate": 1}, {"at": 5, "rate": 2}]},
    {"schedule": []},
    {"rate": -1},
    {"phases": [{"duration": 0, "arrivalRate": 1}]},
    {"phases": [{"duration": 10, "arrivalRate": -1}]},
])
def test_bad_open_loop_rejected(src):
    with pytest.raises(ValidationError):
        OpenLoopConfig(**src)


@pytest.mark.parametrize("src", [{"rate": 1, "flow": ["api", "nope"]}, {"rate": 1, "mix": {"nope": 1.0}}])
def test_unknown_endpoint_rejected(src):
    with pytest.raises(ValidationError, match="nope"):
        WorkloadConfig(sessions=None, open_loop=[src], endpoints=API)


def test_scenario_level_validation_errors():
    with pytest.raises(ValidationError):
        Scenario.model_validate({"horizon": 100, "warmup": 100})
    with pytest.raises(ValidationError):
        Scenario.model_validate({"instances": {"plan": "mega"}})
    with pytest.raises(ValidationError):
        Scenario.model_validate({"workload": {"endpoints": {}}})


# --- (d) flows ---------------------------------------------------------------------

FLOW_EPS = {"health": {"cpu_pre": 0.001, "queries": 0},
            "toybox": {"cpu_pre": 0.002, "cpu_post": 0.001, "queries": 2, "query_time": 0.005}}


def test_flow_issues_steps_one_after_another():
    sc = _open_loop({"phases": [{"duration": 60, "arrivalRate": 5}], "flow": ["health", "toybox"]},
                    horizon=120, interval=60, endpoints=FLOW_EPS)
    model = Model(sc, seed=3)
    src = model.sources[0]
    routed, finished = [], []
    orig_route, orig_record = src.route, model._record

    def route(req):
        routed.append((model.kernel.now, req.endpoint, req.client, req.t0))
        orig_route(req)

    def record(req, outcome):
        finished.append((model.kernel.now, req.endpoint, req.client, outcome))
        return orig_record(req, outcome)

    src.route, model._record = route, record
    model.run()
    s = capsim.summarize(model)
    assert src.arrivals > 200
    assert s["requests"]["total"] == 2 * src.arrivals == s["requests"]["ok"]
    assert s["requests"]["in_flight_end"] == 0
    h, t = model.sources[0].factory.index["health"], model.sources[0].factory.index["toybox"]
    by_client = {}
    for now, ep, c, t0 in routed:
        assert now == t0
        by_client.setdefault(c, []).append(("route", now, ep))
    for now, ep, c, out in finished:
        assert out == OUTCOMES.index("ok")
        by_client[c].append(("done", now, ep))
    assert sorted(by_client) == list(range(1, src.arrivals + 1))
    for c, evs in by_client.items():
        evs.sort(key=lambda e: (e[1], e[0] == "route"))   # at equal times, done before route
        kinds = [(k, ep) for k, _, ep in evs]
        assert kinds == [("route", h), ("done", h), ("route", t), ("done", t)], (c, evs)
        assert evs[2][1] == evs[1][1]                      # step 2 starts when step 1 finished
        assert evs[3][1] - evs[2][1] >= 0.002 + 0.001 + 2 * (0.005 + 0.001) - 1e-12   # toybox's own work


def test_flow_with_no_instance_ready_fails_every_step():
    sc = _open_loop({"phases": [{"duration": 10, "arrivalRate": 20}], "flow": ["health", "toybox", "health"]},
                    horizon=20, interval=10, endpoints=FLOW_EPS)
    model = Model(sc, seed=1)
    fleet = model.fleet
    orig = type(fleet).start
    fleet.start = lambda *a, **kw: orig(fleet, ready_after=1e6)     # never healthy within the run
    model.run()
    s = capsim.summarize(model)
    n = model.sources[0].arrivals
    assert n > 100 and s["requests"]["total"] == 3 * n == s["requests"]["unavailable"]


# --- (e) endpoint mix --------------------------------------------------------------

def _count_endpoints(model, src):
    counts = np.zeros(len(model.sources[0].factory.names), dtype=int)
    orig = src.route

    def route(req):
        counts[req.endpoint] += 1
        orig(req)

    src.route = route
    return counts


MIX_EPS = {n: {"cpu_pre": 0.0002, "queries": 0, "weight": w}
           for n, w in [("a", 0.05), ("b", 0.15), ("c", 0.3), ("d", 0.5), ("z", 0.0)]}


def _check_mix(counts, names, weights):
    n = counts.sum()
    total = sum(weights.values())
    for name, c in zip(names, counts):
        p = weights.get(name, 0.0) / total
        if p == 0:
            assert c == 0, name
        else:
            assert abs(c - n * p) < 4 * math.sqrt(n * p * (1 - p)), (name, c, n * p)
    ps = np.array([weights.get(nm, 0.0) / total for nm in names])
    keep = ps > 0
    chi2 = (((counts - n * ps) ** 2)[keep] / (n * ps[keep])).sum()
    assert chi2 < 25.0      # chi2 with 3 dof: P(> 25) ~ 1.6e-5


def test_open_loop_mix_overrides_endpoint_weights():
    mixw = {"a": 1, "b": 2, "c": 7}
    sc = _open_loop({"rate": 200, "mix": mixw}, horizon=100, interval=100, endpoints=MIX_EPS)
    model = Model(sc, seed=2)
    counts = _count_endpoints(model, model.sources[0])
    model.run()
    assert counts.sum() > 15000
    w = dict(mixw)
    _check_mix(counts[:3], model.sources[0].factory.names[:3], w)
    assert counts[3] == counts[4] == 0


def test_open_loop_default_mix_is_endpoint_weights():
    sc = _open_loop({"rate": 200}, horizon=100, interval=100, endpoints=MIX_EPS)
    model = Model(sc, seed=3)
    counts = _count_endpoints(model, model.sources[0])
    model.run()
    names = model.sources[0].factory.names
    w = {n: MIX_EPS[n]["weight"] for n in names}
    _check_mix(counts[[0, 1, 2, 3]], names[:4], w)
    assert counts[4] == 0


def test_session_mix_follows_endpoint_weights():
    sc = Scenario.model_validate({
        "horizon": 1800, "warmup": 0, "metrics": {"interval": 600},
        "workload": {"sessions": {"peak_users": 40, "session_length": 300, "daily_curve": "flat", "request_rate": 0.5},
                     "endpoints": MIX_EPS}})
    model = Model(sc, seed=4)
    counts = _count_endpoints(model, model.sessions)
    model.run()
    names = model.sources[0].factory.names
    assert counts.sum() > 15000
    _check_mix(counts[:4], names[:4], {n: MIX_EPS[n]["weight"] for n in names})
    assert counts[4] == 0


def test_db_probability_share():
    """An endpoint with db_probability p makes a query list for ~p of its requests."""
    eps = {"x": {"cpu_pre": 0.0002, "queries": 3, "query_time": 0.001, "db_probability": 0.3}}
    sc = _open_loop({"rate": 100}, horizon=100, interval=100, endpoints=eps)
    model = Model(sc, seed=1)
    src = model.sources[0]
    seen = []
    orig = src.route
    src.route = lambda req: (seen.append(req.queries), orig(req))
    model.run()
    n = len(seen)
    with_db = [q for q in seen if q is not None]
    assert all(len(q) == 3 for q in with_db)
    assert abs(len(with_db) - 0.3 * n) < 4 * math.sqrt(n * 0.3 * 0.7)
