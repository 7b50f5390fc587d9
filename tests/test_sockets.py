"""Socket.io sessions in whole runs: stickiness across a scale-out, the reconnect burst
after a crash or a scale-in, and the ping load.

Sessions last a constant 3000 s (longer than the runs), so no session ends and each
session's socket moves only when its instance leaves the load balancer.
"""
from __future__ import annotations

import pytest

from capsim.models.endpoints import DEFAULT_ENDPOINTS
from capsim.engine.model import Model
from capsim.results.result import Result, summarize
from capsim.scenario.config import Scenario
from tests.helpers import arrivals_log

OFF = {"cache": None, "rate_limit": None, "circuit_breaker": None}


def scenario(horizon=1500.0, peak_users=60, request_rate=0.2, endpoints=None, sockets=None, **extra) -> Scenario:
    data = {
        "name": "sockets", "horizon": horizon, "warmup": 0,
        "workload": {"sessions": {"peak_users": peak_users, "daily_curve": "flat", "weekend_multiplier": 1.0,
                                  "session_length": "3000s", "request_rate": request_rate},
                     "endpoints": endpoints or dict(DEFAULT_ENDPOINTS)},
        "instances": {"count": 1, "restart_after": "60s"},
        "sockets": sockets or {},
        "metrics": {"interval": 60},
        **OFF, **extra,
    }
    return Scenario.model_validate(data)


def scale_out_at(model, t: float, note: dict) -> None:
    """A SimPy process that starts a second instance (ready at once) at ``t``."""
    env = model.kernel.env

    def proc():
        yield env.timeout(t)
        note["old_sessions"] = model.sessions.started
        note["active"] = len(model.sessions.active)
        note["inst0_sockets"] = model.fleet.instances[0].sockets
        note["new"] = model.fleet.start(ready_after=0.0)

    env.process(proc())


# ---------------------------------------------------------------- stickiness
def test_sockets_stay_on_the_old_instance_after_a_scale_out():
    m = Model(scenario(), seed=3)
    seen = arrivals_log(m)
    note: dict = {}
    scale_out_at(m, 600.0, note)
    m.run()
    i0, i1 = m.fleet.instances
    n_old = note["old_sessions"]
    assert n_old > 5 and note["inst0_sockets"] == note["active"] == n_old   # all sockets on the only instance
    active = m.sessions.active
    assert len(active) == m.sessions.started > n_old                        # no session ended
    assert all(s[2] is i0 for s in active if s[0] < n_old)                  # old sockets never move
    new_on_1 = [s for s in active if s[2] is i1]
    assert new_on_1 and all(s[0] >= n_old for s in new_on_1)               # only new sessions on the new one
    assert (i0.sockets, i1.sockets) == (sum(s[2] is i0 for s in active), len(new_on_1))
    assert i0.sockets + i1.sockets == len(active)
    # socket requests (presence) go to the session's instance; plain HTTP is balanced
    presence = list(DEFAULT_ENDPOINTS).index("presence")
    late = [r for r in seen if r.t0 > 600.0]
    old_sock = [r for r in late if r.endpoint == presence and r.client < n_old]
    old_http = [r for r in late if r.endpoint != presence and r.client < n_old]
    assert len(old_sock) > 50 and all(r.inst is i0 for r in old_sock)
    on1 = sum(r.inst is i1 for r in old_http)
    assert 0.35 < on1 / len(old_http) < 0.65                                 # round robin: about half
    by_session = {}
    for r in late:
        if r.endpoint == presence:
            by_session.setdefault(r.client, set()).add(r.inst)
    assert all(len(v) == 1 for v in by_session.values())
    # the time series and the per-instance table agree with the instances
    res = Result(summarize(m), m.metrics.rows, [], m.fleet.instance_rows)
    ts, per = res.timeseries, res.instances
    after = ts[ts.t_end > 600.0]
    for _, row in after.iterrows():
        here = per[per.t_end == row.t_end]
        assert row.sockets == here.sockets.sum()
        assert (row.sockets_max, row.sockets_min) == (here.sockets.max(), here.sockets.min())
    first = per[per.t_end == 660.0].set_index("instance").sockets
    assert first[1] < first[0] and first[0] >= n_old
    before = ts[ts.t_end < 600.0]                       # (at 600 itself the new instance may already count)
    assert (before.sockets_min == before.sockets).all() and (before.sockets_max == before.sockets).all()
    assert res.summary["sockets"]["max_per_instance"] == ts.sockets_max.max()


# ---------------------------------------------------------------- reconnect burst
@pytest.mark.parametrize("how", ["crash", "stop"])
def test_lost_instance_sessions_reconnect_and_replay_the_flow(how):
    # auth and sessions are left out of the session mix: every one of them is a reconnect
    eps = {**DEFAULT_ENDPOINTS, "auth": DEFAULT_ENDPOINTS["auth"].model_copy(update={"weight": 0.0}),
           "sessions": DEFAULT_ENDPOINTS["sessions"].model_copy(update={"weight": 0.0})}
    faults = {"crashes": [{"at": 900, "instance": 0}]} if how == "crash" else {}
    m = Model(scenario(endpoints=eps, faults=faults), seed=4)
    seen = arrivals_log(m)
    note: dict = {}
    scale_out_at(m, 600.0, note)
    lost = []
    m.fleet.on_lost.insert(0, lambda inst: lost.append((m.kernel.now, inst, inst.sockets,
                                                       {s[0] for s in m.sessions.active if s[2] is inst})))
    if how == "stop":
        env = m.kernel.env

        def stopper():
            yield env.timeout(900.0)
            m.fleet.stop(m.fleet.instances[0])

        env.process(stopper())
    m.run()
    s = summarize(m)
    i0, i1 = m.fleet.instances
    assert len(lost) == 1
    t_lost, inst, n, clients = lost[0]
    assert (t_lost, inst) == (900.0, i0) and n == len(clients) > 5
    names = list(eps)
    auth = [r for r in seen if r.endpoint == names.index("auth")]
    sess = [r for r in seen if r.endpoint == names.index("sessions")]
    assert len(auth) == len(sess) == n == s["sockets"]["reconnects"] == m.sockets.reconnects
    assert {r.client for r in auth} == {r.client for r in sess} == clients
    assert all(900.5 <= r.t0 <= 901.5 and r.inst is i1 for r in auth + sess)   # reconnect_delay 0.5-1.5 s
    assert all(s_[2] is not i0 for s_ in m.sessions.active if s_[0] in clients)
    assert not any(r.inst is i0 for r in seen if r.t0 > 900.0 and (how == "stop" or r.t0 < 960.0))
    assert i0.sockets == (0 if how == "stop" else sum(s_[2] is i0 for s_ in m.sessions.active))
    assert i0.sockets + i1.sockets == len(m.sessions.active)
    q = s["requests"]
    assert q["in_flight_start"] + q["total"] == q["completed"] + q["in_flight_end"]


# ---------------------------------------------------------------- ping load
def test_ping_cpu_is_sockets_times_ping_cpu_over_ping_interval():
    """No requests (request_rate 0): CPU is only pings, each second sockets x ping_cpu / ping_interval."""
    sc = scenario(horizon=900.0, peak_users=3000, request_rate=0.0,
                  sockets={"ping_cpu": "10ms", "ping_interval": "25s", "memory_mb": 0.5})
    m = Model(sc, seed=5)
    connects = []
    original = m.sockets.connect
    m.sockets.connect = lambda s_: (connects.append(m.kernel.now), original(s_))[1]
    m.run()
    assert len(connects) == m.fleet.instances[0].sockets > 500 and m.metrics.total_arrivals == 0
    per_socket = 0.010 / 25.0
    work = lambda k: sum(1 for t in connects if t < k) * per_socket      # charged at each whole second k
    for row in m.metrics.rows:
        t0, t1 = row["t_start"], row["t_end"]
        expected = sum(work(k) for k in range(int(t0), int(t1)) if k >= 1)
        assert row["cpu_util"] * (t1 - t0) == pytest.approx(expected, abs=2 * work(t1)), row["t_end"]
    assert m.metrics.rows[-1]["cpu_util"] == pytest.approx(len(connects) * per_socket, rel=0.05)
    last = m.fleet.instance_rows[-1]                                     # memory: base + sockets x memory_mb
    assert last["memory_util"] == pytest.approx((160 + 0.5 * last["sockets"]) / 2048)


def test_sessions_get_their_socket_back_once_an_instance_is_ready_again():
    """The only instance crashes at 400 and is healthy again at 460. Its sessions try to
    reconnect 0.5-1.5 s later, while nothing is ready; a Socket.io client keeps retrying
    (reconnection attempts with backoff), so once the instance is back every session,
    old or started meanwhile, holds a socket on it again (pings, socket memory, stickiness)."""
    m = Model(scenario(horizon=900.0, faults={"crashes": [{"at": 400, "instance": 0}]}), seed=2)
    m.run()
    i0 = m.fleet.instances[0]
    active = m.sessions.active
    assert i0.crashes == 1 and i0 in m.fleet.lb.ready and len(active) > 5
    orphans = [s[0] for s in active if s[2] is None]
    assert not orphans, f"{len(orphans)} of {len(active)} sessions never got a socket back: {orphans}"
    assert i0.sockets == len(active)
