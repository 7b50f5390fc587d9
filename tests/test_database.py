"""pg.Pool semantics and the database server, on exact small traces with constant times.

A tiny driver calls ``pool.acquire(req)`` at chosen times on a real Node process whose
event loop costs nothing (no handler CPU, no event-loop overheads), so a request's
database step ends when it finishes; a fake instance records every finish (time,
outcome). Defaults below: connect_time 20 ms, rtt 1 ms, so a query of q seconds on a
fresh connection ends at t + 0.02 + 0.001 + q, and on a reused one at t + 0.001 + q.
The event loop's own effect on the pool (hold times, hand-over) is in tests/test_event_loop.py.
"""
import numpy as np
import pytest

import capsim
from capsim.models.database import Database, DatabaseConfig, Pool
from capsim.models.event_loop import EventLoopConfig
from capsim.models.process import Process
from capsim.models.request import DB_REFUSED, OK, POOL_TIMEOUT, Request
from capsim.engine.kernel import Kernel
from capsim.engine.model import Model
from capsim.scenario.config import Scenario
from capsim.engine.histogram import LogHistogram

C, RTT = 0.02, 0.001


class FakeInstance:
    """Records how each request ended: ``after`` the ok ones, ``finished`` the failures."""

    def __init__(self, kernel, name="i"):
        self.kernel, self.name = kernel, name
        self.after = []      # (time, req): its database step (and so the request) is over
        self.finished = []   # (time, req, outcome): it failed

    def finish(self, req, outcome):
        if outcome == OK:
            self.after.append((self.kernel.now, req))
        else:
            self.finished.append((self.kernel.now, req, outcome))


class Rig:
    def __init__(self, pools=1, **db):
        pool_cfg = db.pop("pool", {})
        cfg = {"connect_time": C, "rtt": RTT, **db, "pool": pool_cfg}
        self.k = Kernel()
        self.db = Database(self.k, DatabaseConfig.model_validate(cfg), np.random.default_rng(0))
        self.insts = []
        for i in range(pools):
            inst = FakeInstance(self.k, f"i{i}")
            inst.proc = Process(self.k, inst, 0, EventLoopConfig(), 1, 1.0, 0.0)
            inst.pool = inst.proc.pool = Pool(self.k, self.db, self.db.config.pool, inst.proc)
            inst.pool.wait_hist = LogHistogram()
            inst.proc.pools = [inst.pool]
            self.insts.append(inst)
        self.opens = 0
        orig = self.db.try_open

        def try_open():
            self.opens += 1
            return orig()
        self.db.try_open = try_open

    @property
    def pool(self):
        return self.insts[0].pool

    def req(self, t, *queries, inst=0, name=None):
        r = Request(t, 0, 0.0, 0.0, list(queries), name, None)
        r.inst, r.proc = self.insts[inst], self.insts[inst].proc
        self.k.at(t, self.insts[inst].pool.acquire, r)
        return r

    def at(self, t, fn):
        self.k.at(t, lambda _: fn())

    def run(self, until):
        self.k.run(until)
        return self

    def after_times(self, inst=0):
        return {r.client: t for t, r in self.insts[inst].after}


def test_fresh_connection_then_reuse():
    rig = Rig()
    rig.req(0.0, 0.01, name="a")
    rig.req(1.0, 0.01, 0.02, name="b")            # two queries, one after another, same connection
    rig.run(5)
    got = rig.after_times()
    assert got["a"] == pytest.approx(C + RTT + 0.01)
    assert got["b"] == pytest.approx(1.0 + (RTT + 0.01) + (RTT + 0.02))
    assert rig.opens == 1 and rig.db.connections == 1 and rig.pool.total == 1
    assert rig.pool.in_use == 0 and len(rig.pool.idle) == 1
    assert rig.pool.wait_hist.count == 2 and rig.pool.wait_hist.counts[0] >= 1   # the reuse did not wait


def test_idle_connections_reused_last_released_first():
    """Releases at A = 0.031 and B = 0.521; an acquire at 1 takes B (LIFO) and returns it at
    1.011. At 30.2 only A has been idle 30 s: one connection closes (FIFO reuse would close none)."""
    rig = Rig(pool={"idle_timeout": 30})
    rig.req(0.0, 0.01, name="a")
    rig.req(0.0, 0.5, name="b")
    rig.req(1.0, 0.01, name="c")
    rig.run(2)
    assert rig.opens == 2
    assert rig.after_times()["c"] == pytest.approx(1.0 + RTT + 0.01)
    assert rig.pool.idle == pytest.approx([C + RTT + 0.01, 1.0 + RTT + 0.01])
    rig.run(30.2)
    rig.pool.expire(30.2)
    assert rig.pool.total == 1 and rig.db.connections == 1


def test_idle_timeout_closes_and_next_acquire_reconnects():
    rig = Rig(pool={"idle_timeout": 30})
    rig.req(0.0, 0.01, name="a")                  # released at 0.031
    rig.req(10.0, 0.01, name="b")                 # reuse, released at 10.011
    rig.req(45.0, 0.01, name="c")                 # idle 34.99 s > 30: closed, reconnect
    rows = []
    rig.at(44.0, lambda: rows.append(rig.db.sample(0.0, 44.0)))
    rig.run(50)
    got = rig.after_times()
    assert got["b"] == pytest.approx(10.0 + RTT + 0.01)
    assert got["c"] == pytest.approx(45.0 + C + RTT + 0.01)
    assert rows[0]["db_connections"] == 0          # closed by 44 (it expired at 40.011)
    assert rig.opens == 2 and rig.db.connections == 1


def test_idle_timeout_zero_disables_idle_close():
    """pg.Pool: idleTimeoutMillis 0 disables closing idle clients (as acquire_timeout 0 here
    means 'forever'); a connection released at 0.031 is reused at 100 s without reconnecting."""
    rig = Rig(pool={"idle_timeout": 0})
    rig.req(0.0, 0.01, name="a")
    rig.req(100.0, 0.01, name="b")
    rig.run(200)
    rig.db.sample(0.0, 200.0)
    assert rig.after_times()["b"] == pytest.approx(100.0 + RTT + 0.01)
    assert rig.opens == 1 and rig.db.connections == 1


def test_idle_timeout_respects_pool_min():
    rig = Rig(pool={"idle_timeout": 30, "min": 1})
    rig.req(0.0, 0.01, name="a")
    rig.req(0.0, 0.01, name="b")
    rig.req(100.0, 0.01, name="c")
    rig.run(200)
    assert rig.opens == 2                          # one closed at idle timeout, one kept (min 1)
    assert rig.after_times()["c"] == pytest.approx(100.0 + RTT + 0.01)
    rig.db.sample(0, 200)
    assert rig.pool.total == 1 and rig.db.connections == 1


def test_acquire_timeout_fails_at_exactly_wait_plus_timeout():
    rig = Rig(pool={"max": 1, "acquire_timeout": 2})
    a = rig.req(0.0, 5.0, name="a")                # holds the only connection until 5.021
    b = rig.req(1.0, 0.01, name="b")               # waits; gives up at 3.0
    rig.run(10)
    assert [(t, r.client, o) for t, r, o in rig.insts[0].finished] == [(3.0, "b", POOL_TIMEOUT)]
    assert rig.after_times() == {"a": pytest.approx(C + RTT + 5.0)}
    assert rig.pool.timeouts == 1 and rig.pool.waiting == 0 and rig.pool.in_use == 0
    assert len(rig.pool.idle) == 1                 # released to idle, not to the timed-out waiter
    assert a.qi == 1 and b.qi == 0


def test_acquire_timeout_zero_waits_forever():
    rig = Rig(pool={"max": 1, "acquire_timeout": 0})
    rig.req(0.0, 100.0, name="a")
    rig.req(1.0, 0.01, name="b")
    rig.run(99.0)
    assert rig.pool.waiting == 1 and rig.insts[0].finished == []
    rig.run(200.0)
    assert rig.insts[0].finished == []
    assert rig.after_times()["b"] == pytest.approx(C + RTT + 100.0 + RTT + 0.01)
    assert rig.pool.waiting == 0


def test_served_waiter_is_not_timed_out_later():
    rig = Rig(pool={"max": 1, "acquire_timeout": 2})
    rig.req(0.0, 0.5, name="a")                    # releases at 0.521
    rig.req(0.1, 3.0, name="b")                    # served at 0.521; its stale timer at 2.1 must not fire
    rig.run(10)
    assert rig.insts[0].finished == []
    assert rig.after_times()["b"] == pytest.approx(C + RTT + 0.5 + RTT + 3.0)
    assert rig.pool.timeouts == 0


def test_fifo_hand_over_on_release():
    rig = Rig(pool={"max": 1, "acquire_timeout": 0})
    rig.req(0.0, 1.0, name="a")
    rig.req(0.3, 1.0, name="d")
    rig.req(0.1, 1.0, name="b")
    rig.req(0.2, 1.0, name="c")
    rig.run(10)
    got = rig.after_times()
    order = sorted(got, key=got.get)
    assert order == ["a", "b", "c", "d"]            # by arrival time, not scheduling order
    end = C + RTT + 1.0
    for name in "bcd":
        end += RTT + 1.0
        assert got[name] == pytest.approx(end)
    assert rig.opens == 1


def test_timed_out_waiter_is_skipped_on_release():
    rig = Rig(pool={"max": 1, "acquire_timeout": 1.9})
    rig.req(0.0, 2.0, name="a")                    # releases at 2.021
    rig.req(0.1, 0.01, name="b")                   # times out at 2.0
    rig.req(0.2, 0.01, name="c")                   # would time out at 2.1: served at 2.021
    rig.run(10)
    fin = [(t, r.client, o) for t, r, o in rig.insts[0].finished]
    assert fin == [(pytest.approx(2.0), "b", POOL_TIMEOUT)]
    assert rig.after_times()["c"] == pytest.approx(C + RTT + 2.0 + RTT + 0.01)


def test_max_connections_refuses_then_recovers_after_idle_close():
    rig = Rig(pools=2, max_connections=4, pool={"max": 3, "idle_timeout": 10})
    for n in ("a1", "a2", "a3"):
        rig.req(0.0, 0.1, inst=0, name=n)
    rig.req(0.0, 0.1, inst=1, name="b1")
    rig.req(0.0, 0.1, inst=1, name="b2")            # the 5th concurrent open: refused
    rig.run(1.0)
    fin = [(t, r.client, o) for t, r, o in rig.insts[1].finished]
    assert len(fin) == 1 and fin[0][1:] == ("b2", DB_REFUSED) and 0.0 <= fin[0][0] <= C + 1e-12
    assert rig.db.refused == 1 and rig.db.connections == 4
    assert rig.insts[0].pool.total == 3 and rig.insts[1].pool.total == 1
    assert set(rig.after_times(0)) == {"a1", "a2", "a3"} and set(rig.after_times(1)) == {"b1"}
    # 40 s later all are idle past idle_timeout; pool A's are closed when B needs room
    for n in ("b3", "b4", "b5"):
        rig.req(40.0, 0.1, inst=1, name=n)
    rig.run(50.0)
    assert rig.insts[1].finished == [f for f in rig.insts[1].finished if f[1].client == "b2"]
    t1 = rig.after_times(1)
    assert all(t1[n] == pytest.approx(40.0 + C + RTT + 0.1) for n in ("b3", "b4", "b5"))
    assert rig.db.refused == 1
    assert rig.insts[1].pool.total == 3 and rig.insts[0].pool.total == 0 and rig.db.connections == 3


def test_refused_open_hands_room_to_next_waiter():
    """A waiter queued behind a refused open gets its own attempt (pool below max again)."""
    rig = Rig(max_connections=1, pool={"max": 2, "acquire_timeout": 0})
    rig.req(0.0, 1.0, name="a")                    # opens the only server slot
    rig.req(0.0, 1.0, name="b")                    # pool opens #2: refused at 0.02
    rig.run(5)
    fin = [(r.client, o) for _, r, o in rig.insts[0].finished]
    assert fin == [("b", DB_REFUSED)]
    assert rig.pool.total == 1 and rig.db.connections == 1


@pytest.mark.parametrize("n", range(1, 9))
def test_dynamic_policy_resize(n):
    rig = Rig(pool={"policy": "dynamic"})
    rig.pool.resize(n)
    assert rig.pool.max == min(20 * n, 100)
    assert rig.pool.min == max(2, n)


def test_static_policy_ignores_resize():
    rig = Rig(pool={"policy": "static", "max": 7, "min": 1})
    rig.pool.resize(5)
    assert (rig.pool.max, rig.pool.min) == (7, 1)


def test_dynamic_min_survives_idle_timeout():
    rig = Rig(pool={"policy": "dynamic", "idle_timeout": 30})
    rig.pool.resize(3)                             # min 3
    for i in range(5):
        rig.req(0.0, 0.01 * (i + 1), name=i)
    rig.run(100)
    rig.db.sample(0.0, 100.0)
    assert rig.opens == 5
    assert rig.pool.total == 3 and rig.db.connections == 3
    rig.req(100.0, 0.01, name="late")
    rig.run(101)
    assert rig.after_times()["late"] == pytest.approx(100.0 + RTT + 0.01)   # a kept one, no connect
    assert rig.opens == 5


def test_dynamic_shrink_closes_on_release():
    rig = Rig(pool={"policy": "dynamic", "per_instance": 2})
    rig.pool.resize(3)                             # max 6
    for i in range(6):
        rig.req(0.0, 1.0, name=i)
    rig.run(0.5)
    assert rig.pool.total == 6 and rig.db.connections == 6
    rig.pool.resize(1)                             # max 2, min 2
    rig.run(5)
    assert rig.pool.total == 2 and rig.db.connections == 2 and len(rig.pool.idle) == 2
    assert len(rig.after_times()) == 6


def test_concurrency_one_serialises_queries():
    rig = Rig(concurrency=1, rtt=0, connect_time=0)
    rig.req(0.0, 0.010, name="a")
    rig.req(0.0, 0.010, name="b")
    rig.run(1)
    got = rig.after_times()
    assert got["a"] == pytest.approx(0.010) and got["b"] == pytest.approx(0.020)
    assert rig.opens == 2


def test_concurrency_one_rtt_does_not_hold_the_server():
    """The round trip is network time: the second query waits for the first one's server
    time only, so it ends at 20 ms + rtt (not 20 ms + 2 rtt)."""
    rtt = 0.002
    rig = Rig(concurrency=1, rtt=rtt, connect_time=0)
    rig.req(0.0, 0.010, name="a")
    rig.req(0.0, 0.010, name="b")
    rig.run(1)
    got = rig.after_times()
    assert got["a"] == pytest.approx(0.010 + rtt)
    assert got["b"] == pytest.approx(0.020 + rtt)


def test_db_active_mean_and_util_on_a_deterministic_trace():
    """concurrency 2, rtt 0: a [0, 0.3], b [0, 0.5], c queued from 0.1, runs [0.3, 0.5].
    [0, 0.4]: area 2*0.4 = 0.8 -> active mean 2, util 1.  [0.4, 1.0]: area 0.2 -> 1/3, 1/6."""
    rig = Rig(concurrency=2, rtt=0, connect_time=0)
    rig.req(0.0, 0.3, name="a")
    rig.req(0.0, 0.5, name="b")
    rig.req(0.1, 0.2, name="c")
    rows = []
    rig.at(0.2, lambda: rows.append(rig.db.sample(0.0, 0.2)))
    rig.at(0.4, lambda: rows.append(rig.db.sample(0.2, 0.4)))
    rig.at(1.0, lambda: rows.append(rig.db.sample(0.4, 1.0)))
    rig.run(1.0)
    assert rig.after_times()["c"] == pytest.approx(0.5)
    assert [r["db_active_mean"] for r in rows] == pytest.approx([2.0, 2.0, 0.2 / 0.6])
    assert [r["db_util"] for r in rows] == pytest.approx([1.0, 1.0, 0.1 / 0.6])
    assert [r["db_queued"] for r in rows] == [1, 0, 0]


def test_db_active_mean_in_timeseries_equals_busy_fraction():
    """In a full run, each interval's db_active_mean equals the overlap of the queries'
    server intervals with it (recorded exactly), and db_util = that / concurrency."""
    sc = Scenario.model_validate({
        "horizon": 20, "warmup": 0, "metrics": {"interval": 2.5},
        "database": {"concurrency": 3, "rtt": 0.0},
        "workload": {"sessions": None, "open_loop": [{"rate": 150}],
                     "endpoints": {"q": {"cpu_pre": 0.0005, "queries": 2,
                                         "query_time": {"dist": "exponential", "mean": 0.006}}}}})
    model = Model(sc, seed=1)
    spans = []
    db = model.db
    orig = db._start

    def start(req):
        spans.append((model.kernel.now, model.kernel.now + db.rtt + req.queries[req.qi]))
        orig(req)
    db._start = start
    model.run()
    rows = model.metrics.rows
    assert len(spans) > 5000
    for r in rows:
        a, b = r["t_start"], r["t_end"]
        area = sum(max(0.0, min(e, b) - max(s, a)) for s, e in spans)
        assert r["db_active_mean"] == pytest.approx(area / (b - a), rel=1e-9, abs=1e-12)
        assert r["db_util"] == pytest.approx(area / (b - a) / 3, rel=1e-9, abs=1e-12)
    s = capsim.summarize(model)
    assert s["db_active_mean"] == pytest.approx(np.mean([r["db_active_mean"] for r in rows]), abs=6e-4)  # rounded to 3 d.p.
