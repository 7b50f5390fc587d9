"""The request path in whole runs: cache, rate limiting, circuit breaker and shedding,
memory and out-of-memory restarts, the server timeout, read replicas, and the
independence of the random streams from these features. (Sockets: tests/test_sockets.py.)

Most tests inject hand-made requests with constant times (``Driver.send``), so every
outcome, time and latency is exact. Stochastic checks compare with theory, with
tolerances derived from counts (binomial / Poisson bounds), never with numbers pinned
from one seed.
"""
from __future__ import annotations

import math

import pytest

import capsim
from capsim.engine.model import Model
from capsim.results.result import summarize
from capsim.scenario.config import Scenario
from tests.helpers import Driver, arrivals_log, conserved

EPS = 1e-4
OFF = {"cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None}


def scenario(horizon=300.0, warmup=0.0, count=1, endpoints=None, open_loop=(), sessions=None,
             instances=None, database=None, interval=10, **sections) -> Scenario:
    """Every feature off unless given; no traffic unless ``open_loop``/``sessions``; constant times."""
    data = {
        "name": "request-path", "horizon": horizon, "warmup": warmup,
        "workload": {"sessions": sessions, "open_loop": list(open_loop),
                     "endpoints": endpoints or {"api": {"cpu_pre": "1ms", "queries": 0}}},
        "instances": {"count": count, "restart_after": "60s", **(instances or {})},
        "database": {"connect_time": "20ms", "rtt": "1ms",
                     "pool": {"max": 5, "acquire_timeout": 0, "idle_timeout": 0}, **(database or {})},
        "metrics": {"interval": interval},
        **OFF, **sections,
    }
    return Scenario.model_validate(data)


# ---------------------------------------------------------------- 1. launch, everything on
@pytest.fixture(scope="module")
def launch():
    sc = capsim.load_scenario("scenarios/launch.yaml", ["horizon=2h", "warmup=10m"])
    return sc, capsim.run(sc, seed=3)


def test_launch_with_every_feature_on(launch):
    sc, res = launch
    s, ts = res.summary, res.timeseries
    assert sc.cache is not None and sc.rate_limit is not None and sc.circuit_breaker is not None and sc.sockets is not None
    assert 0 < s["cache"]["hit_rate"] < 1, s["cache"]
    assert s["requests"]["rate_limited"] > 0
    cols = set(ts.columns)
    wanted = {"cache_hit_rate", "circuit_opens", "sockets", "sockets_max", "sockets_min", "memory_util", "memory_util_max"}
    wanted |= {f"cache_hit_rate_{c}" for c in sc.cache.classes} | {f"rate_limited_{t}" for t in sc.rate_limit.limits}
    assert wanted <= cols, sorted(wanted - cols)
    assert conserved(s), s["requests"]
    assert s["requests"]["total"] > 10_000 and s["sockets"]["max_per_instance"] > 0
    meas = ts[~ts.warmup]
    assert (meas.sockets_min <= meas.sockets_max).all() and (meas.sockets_max <= meas.sockets).all()
    # per interval the 429s counted per tier are the rate_limited outcomes (a 429 costs only reject_cpu)
    per_tier = ts[[f"rate_limited_{t}" for t in sc.rate_limit.limits]].sum(axis=1)
    assert abs(per_tier - ts.n_rate_limited).max() <= 1               # a 429 may straddle a row boundary
    assert 0 <= per_tier.sum() - ts.n_rate_limited.sum() <= ts.in_system.iloc[-1]


def test_summary_feature_totals_cover_the_measurement_window():
    """results.py: 'Totals cover the measurement window [warmup, horizon]' (requests do).
    One event of each feature falls in the warm-up (0-100 s) and one after it; the summary's
    feature totals must count only the second, as requests.<outcome> does."""
    sc = scenario(horizon=300.0, warmup=100.0, instances={"plan": "pro", "threads": 2, "request_timeout": 30},
                  rate_limit={"limits": {"auth": 1}},
                  circuit_breaker={"shed_rps": None},
                  cache={"invalidations": [], "classes": {"api_responses": {"ttl": 1000, "keys": 10}}},
                  faults={"database_outages": [{"start": 50, "duration": 5}, {"start": 200, "duration": 5}]})
    d = Driver(sc)
    d.send(1.0, cpu=45.0)                                   # times out at 31 (warm-up)
    d.send(150.3, cpu=45.0)                                 # times out at 181
    for t in (10.0, 20.0, 150.0):                           # limit 1 per 15 min: 429 at 20 and 150
        d.send(t, tier="auth", client=7)
    for t0 in (50.5, 200.5):                                # 5 db_errors open the breaker, each outage
        for i in range(5):
            d.send(t0 + i, query=0.01)
    d.send(120.0, query=0.01)                               # half-open -> closed between the outages
    d.send(10.7, query=0.01, cls=0, key=1)                  # miss
    for t in (11.0, 150.7):                                 # hits
        d.send(t, query=0.01, cls=0, key=1)
    s = d.run()
    q, rows = s["requests"], [r for r in d.model.metrics.rows if not r["warmup"]]
    assert (q["rate_limited"], q["timeout"], q["db_error"]) == (1, 1, 5) and conserved(s)
    assert sum(r["circuit_opens"] for r in rows) == 1
    wrong = {}
    if sum(s["rate_limited_by_tier"].values()) != q["rate_limited"]:
        wrong["rate_limited_by_tier"] = (s["rate_limited_by_tier"]["auth"], q["rate_limited"])
    if s["timeouts"] != q["timeout"]:
        wrong["timeouts"] = (s["timeouts"], q["timeout"])
    if s["circuit_opens"] != 1:
        wrong["circuit_opens"] = (s["circuit_opens"], 1)
    if (s["cache"]["hits"], s["cache"]["misses"]) != (1, 0):
        wrong["cache hits, misses"] = ((s["cache"]["hits"], s["cache"]["misses"]), (1, 0))
    assert not wrong, f"summary value vs the measurement window's: {wrong}"


# ---------------------------------------------------------------- 2. cache hit rate vs theory
@pytest.mark.parametrize("n_keys, rate, ttl", [(100, 50.0, 2.0), (200, 50.0, 20.0)])
def test_cache_hit_rate_matches_the_ttl_renewal_formula(n_keys, rate, ttl):
    """Uniform keys, Poisson(rate): each key is Poisson(rate/N); a miss fills the entry for
    ``ttl``, so hit = m / (1 + m) with m = rate x ttl / N (renewal-reward). The fill comes
    ~d = 27 ms after the miss (CPU + connect + query + rtt): at most rate/N x d extra misses
    per cycle."""
    horizon = 2000.0
    sc = scenario(horizon=horizon, open_loop=[{"name": "get", "rate": rate}],
                  endpoints={"get": {"cpu_pre": "1ms", "queries": 1, "query_time": "5ms",
                                     "cache_class": "api_responses"}},
                  cache={"store": "memory", "max_keys": n_keys,
                         "classes": {"api_responses": {"ttl": ttl, "keys": n_keys, "zipf": 0}},
                         "invalidations": []})
    m = Model(sc, seed=5).run()
    s = summarize(m)
    store = m.middleware.caches[0]
    n = store.hits[0] + store.misses[0]
    assert len(m.middleware.caches) == 1 and store.evictions == 0 and store.size <= n_keys
    assert n > 0.95 * rate * horizon
    x = rate * ttl / n_keys
    theory = x / (1 + x)
    measured = s["cache"]["by_class"]["api_responses"]
    assert measured == pytest.approx(store.hits[0] / n, abs=1e-6)
    tol = 5 * math.sqrt(theory * (1 - theory) / n) + rate / n_keys * 0.03 + n_keys / n   # noise + fill delay + cold start
    assert abs(measured - theory) < tol, (measured, theory, tol)
    assert s["requests"]["ok"] == s["requests"]["completed"]


# ---------------------------------------------------------------- 3. cold caches, shared Redis, rtt
def _crash_run(store):
    """2 instances, uniform keys over 200, TTL 'forever'; instance 0 crashes at 300, back at 360."""
    sc = scenario(horizon=400.0, count=2, open_loop=[{"name": "get", "rate": 20.0}],
                  endpoints={"get": {"cpu_pre": "1ms", "queries": 1, "query_time": "5ms",
                                     "cache_class": "api_responses"}},
                  cache={"store": store, "max_keys": 1000, "invalidations": [],
                         "classes": {"api_responses": {"ttl": 1e6, "keys": 200, "zipf": 0}}},
                  faults={"crashes": [{"at": 300, "instance": 0}]})
    d = Driver(sc, seed=2)
    inst = d.fleet.instances
    snap = lambda: [(i.proc.cache, i.proc.cache.size, i.proc.cache.hits[0], i.proc.cache.misses[0]) for i in inst]
    for t in (300 - EPS, 300 + EPS, 360 + EPS, 390.0):
        d.probe(t, snap)
    d.probe(360 + 2 * EPS, lambda: inst[0] in d.fleet.lb.ready)
    s = d.run()
    return d, s


def test_memory_cache_of_a_crashed_instance_restarts_empty():
    d, s = _crash_run("memory")
    (old0, size0, *_), (c1, size1, *_) = d.probes[300 - EPS]
    assert size0 == size1 == 200                        # both warm before the crash
    (new0, n0, h0, m0), (c1b, *_) = d.probes[300 + EPS]
    assert new0 is not old0 and (n0, h0, m0) == (0, 0, 0) and c1b is c1
    assert d.probes[360 + 2 * EPS] is True
    (a0, size_back, ha, ma), (_, _, h1a, m1a) = d.probes[360 + EPS]
    assert a0 is new0 and (size_back, ha, ma) == (0, 0, 0)   # empty when it takes traffic again
    (_, _, hb, mb), (_, _, h1b, m1b) = d.probes[390.0]
    new_h, new_m, other_h, other_m = hb - ha, mb - ma, h1b - h1a, m1b - m1a
    k = new_h + new_m                                    # lookups on the restarted instance in 30 s
    assert k > 200 and other_h + other_m > 200
    # its misses are the distinct keys among k uniform draws over 200 (variance below the mean)
    distinct = 200 * (1 - (1 - 1 / 200) ** k)
    assert abs(new_m - distinct) < 5 * math.sqrt(distinct) + 2, (new_m, distinct)
    assert new_h / k < other_h / (other_h + other_m) - 0.3
    assert other_h / (other_h + other_m) > 0.99
    assert conserved(s)


def test_redis_cache_is_shared_and_survives_a_crash():
    d, s = _crash_run("redis")
    shared = d.model.middleware.shared_cache
    before, after, back = d.probes[300 - EPS], d.probes[300 + EPS], d.probes[360 + EPS]
    assert all(c is shared for c, *_ in before + after + back)
    assert before[0][1] == after[0][1] == back[0][1] == 200
    assert 200 <= shared.misses[0] <= 210        # each key misses once (plus a few fill races / killed fills)
    assert d.model.fleet.memory_util(d.fleet.instances[0]) == pytest.approx(160 / 2048)  # Redis: not instance memory
    assert conserved(s)


@pytest.mark.parametrize("post", [0.0, 0.002])
def test_redis_reads_add_redis_rtt_to_hits_and_misses(post):
    lat = {}
    for store in ("memory", "redis"):
        sc = scenario(cache={"store": store, "redis_rtt": "50ms", "invalidations": [],
                             "classes": {"api_responses": {"ttl": 1000, "keys": 10}}})
        d = Driver(sc)
        miss = d.send(10, query=0.005, post=post, cls=0, key=3)     # opens the connection (20 ms)
        hit = d.send(20, query=0.005, post=post, cls=0, key=3)
        miss2 = d.send(30, query=0.005, post=post, cls=0, key=4)    # reuses the idle connection
        s = d.run()
        assert [d.outcome(r)[0] for r in (miss, hit, miss2)] == ["ok"] * 3
        store_obj = d.fleet.instances[0].proc.cache
        assert (store_obj.hits[0], store_obj.misses[0]) == (1, 2)
        lat[store] = [d.latency(r) for r in (miss, hit, miss2)]
        assert conserved(s)
    assert lat["memory"] == pytest.approx([0.001 + 0.02 + 0.005 + 0.001 + post, 0.001 + post,
                                           0.001 + 0.005 + 0.001 + post], abs=1e-9)
    assert [r - m for r, m in zip(lat["redis"], lat["memory"])] == pytest.approx([0.05] * 3, abs=1e-9)


# ---------------------------------------------------------------- 4. rate limiting in a run
@pytest.mark.parametrize("store, n, allowed", [("memory", 3, 30), ("memory", 1, 10), ("redis", 3, 10)])
def test_heavy_client_gets_n_times_the_limit_with_memory_stores(store, n, allowed):
    sc = scenario(count=n, rate_limit={"store": store, "window": "15m", "limits": {"auth": 10}})
    d = Driver(sc)
    reqs = [d.send(1.0 + i, tier="auth", client=7) for i in range(50)]   # round robin over n instances
    other = [d.send(1.5 + i, tier="auth", client=8) for i in range(5)]   # another client: its own count
    anon = [d.send(60.5 + i, tier="auth", client=None) for i in range(20)]  # no client: never limited
    s = d.run()
    outs = [d.outcome(r)[0] for r in reqs]
    assert outs.count("ok") == allowed and outs.count("rate_limited") == 50 - allowed
    assert all(d.outcome(r)[0] == "ok" for r in other + anon)
    if store == "redis" or n == 1:
        assert outs == ["ok"] * allowed + ["rate_limited"] * (50 - allowed)
    # a 429 costs reject_cpu on the event loop, then leaves
    assert all(d.latency(r) == pytest.approx(0.0001) for r in reqs if d.outcome(r)[0] == "rate_limited")
    assert s["requests"]["rate_limited"] == 50 - allowed
    assert s["rate_limited_by_tier"]["auth"] == s["requests"]["rate_limited"]
    assert sum(s["rate_limited_by_tier"].values()) == 50 - allowed
    assert sum(r["rate_limited_auth"] for r in d.model.metrics.rows) == 50 - allowed
    assert conserved(s)


def test_session_requests_carry_their_session_as_client_and_their_tier():
    sc = capsim.load_scenario("scenarios/launch.yaml", ["horizon=20m", "warmup=0"])
    m = Model(sc, seed=4)
    seen = arrivals_log(m)
    m.run()
    eps = sc.workload.endpoints
    names = list(eps)
    assert len(seen) > 100
    assert all(r.client is not None and 0 <= r.client < m.sessions.started for r in seen)
    assert all(r.tier == eps[names[r.endpoint]].rate_limit_tier for r in seen)


# ---------------------------------------------------------------- 5. circuit breaker and shedding
def test_database_outage_opens_the_breaker_which_fails_fast_then_closes():
    sc = scenario(horizon=300.0, circuit_breaker={"shed_rps": None},
                  faults={"database_outages": [{"start": 100, "duration": 30}]})
    d = Driver(sc)
    before = d.send(90, query=0.01)
    failing = [d.send(100.5 + i, query=0.01) for i in range(5)]    # connect attempts fail 20 ms later
    fast = [d.send(t, query=0.01) for t in (106, 120, 140, 164.5)]  # open: fail fast (164.501 - 104.521 < 60)
    no_db = [d.send(t) for t in (107, 121, 150)]
    trial = d.send(165, query=0.01)          # 165.001 - 104.521 > 60: half-open, the call passes and succeeds
    after = d.send(170, query=0.01)
    breaker = lambda: d.fleet.instances[0].proc.breaker
    d.probe(104.52, lambda: breaker().state)
    d.probe(104.522, lambda: breaker().state)
    s = d.run()
    assert d.outcome(before)[0] == "ok"
    for r in failing:                        # CPU 1 ms, then a connect attempt of 20 ms to a server that is down
        assert d.outcome(r) == ("db_error", pytest.approx(r.t0 + 0.021))
    assert d.probes[104.52] == "closed" and d.probes[104.522] == "open"   # opens at the 5th failure
    for r in fast:
        assert d.outcome(r) == ("circuit_open", pytest.approx(r.t0 + 0.001))   # fast: only its CPU slice
    assert [d.outcome(r)[0] for r in no_db] == ["ok"] * 3
    assert d.outcome(trial)[0] == "ok" and d.outcome(after)[0] == "ok"
    b = breaker()
    kinds = [(f, to) for _, f, to in b.transitions]
    assert kinds[0] == ("closed", "open") and kinds[-1] == ("half-open", "closed")
    assert b.transitions[0][0] == pytest.approx(104.521)
    assert b.state == "closed" and b.failures == 0
    assert s["circuit_opens"] == 1 and s["requests"]["db_error"] == 5
    rows = d.model.metrics.rows
    assert [r["t_end"] for r in rows if r["circuit_opens"]] == [110.0]
    assert s["requests"]["circuit_open"] == sum(r["n_circuit_open"] for r in rows) == 4
    assert conserved(s)


def test_breaker_recovery_boundary_in_a_run():
    """Requests just before and just after last_failure + recovery_timeout (outage long over)."""
    sc = scenario(horizon=300.0, circuit_breaker={"shed_rps": None},
                  faults={"database_outages": [{"start": 100, "duration": 5}]})
    d = Driver(sc)
    for i in range(5):
        d.send(100 + i, query=0.01)                       # last failure at 104.021
    still_open = d.send(164.0, query=0.01)                # 164.001 - 104.021 = 59.98: open
    trial = d.send(164.05, query=0.01)                    # 60.03 > 60: half-open -> passes -> closes
    d.run()
    assert d.outcome(still_open) == ("circuit_open", pytest.approx(164.001))
    assert d.outcome(trial)[0] == "ok"
    assert d.fleet.instances[0].proc.breaker.state == "closed"


def test_load_shedding_above_shed_rps_for_shed_duration():
    sc = scenario(circuit_breaker={"shed_rps": 10, "shed_window": "1s", "shed_duration": "5s"})
    d = Driver(sc)
    burst = [d.send(200.0 + 0.03 * i) for i in range(15)]      # 15 in the bucket [200, 201)
    during = [d.send(t) for t in (201.5, 203.0, 205.29)]        # shed until 200.30 + 5 = 205.30
    after = [d.send(t) for t in (205.31, 206.0, 207.0)]
    s = d.run()
    outs = [d.outcome(r)[0] for r in burst]
    assert outs == ["ok"] * 10 + ["shed"] * 5
    assert all(d.latency(r) == pytest.approx(0.0001) for r in burst[10:])   # the fallback costs reject_cpu
    assert [d.outcome(r)[0] for r in during] == ["shed"] * 3
    assert [d.outcome(r)[0] for r in after] == ["ok"] * 3
    assert s["requests"]["shed"] == 8 and conserved(s)


# ---------------------------------------------------------------- 7. memory and out-of-memory
def _oom(policy):
    sc = scenario(horizon=300.0, instances={"plan": "tiny", "memory_base_mb": 160, "memory_per_request_mb": 10,
                                            "out_of_memory": policy, "restart_after": "20s", "request_timeout": None},
                  pricing={"plans": {"tiny": {"vcpus": 1, "memory_gb": 0.2, "usd_per_month": 1.0}}})
    d = Driver(sc)
    burst = [d.send(100.5, cpu=5.0) for _ in range(10)]   # (160 + 10 x 10) / 204.8 MB = 1.27 at t = 101
    d.probe(121 - EPS, lambda: d.fleet.instances[0] in d.fleet.lb.ready)
    d.probe(121 + EPS, lambda: d.fleet.instances[0] in d.fleet.lb.ready)
    later = d.send(125)
    return d, burst, later, d.run()


def test_out_of_memory_restarts_the_instance():
    d, burst, later, s = _oom("restart")
    assert s["oom_restarts"] == 1 and d.fleet.instances[0].crashes == 1
    assert [d.outcome(r) for r in burst] == [("crashed", 101.0)] * 10   # the watcher ticks each second
    assert d.probes[121 - EPS] is False and d.probes[121 + EPS] is True   # back after restart_after
    assert d.outcome(later)[0] == "ok"
    assert s["requests"]["crashed"] == 10 and conserved(s)


def test_out_of_memory_ignored_is_only_reported():
    d, burst, later, s = _oom("ignore")
    assert s["oom_restarts"] == 0 and d.fleet.instances[0].crashes == 0
    assert [d.outcome(r) for r in burst] == [("ok", 105.5 + 5 * i) for i in range(10)]
    # at t = 110 nine requests are in flight: (160 + 90) / 204.8
    assert s["memory_util_max"] == round(250 / 204.8, 3) and s["memory_util_max"] > 1
    row = next(r for r in d.model.metrics.rows if r["t_end"] == 110.0)
    assert row["memory_util_max"] == pytest.approx(250 / 204.8)
    assert conserved(s)


# ---------------------------------------------------------------- 8. server timeout
@pytest.mark.parametrize("timeout", [60.0, None])
def test_server_timeout_ends_the_request_but_not_its_work(timeout):
    sc = scenario(horizon=300.0, instances={"request_timeout": timeout})
    d = Driver(sc)
    a = d.send(10.3, cpu=100.0)       # runs 10.3 .. 110.3
    b = d.send(20.3, cpu=100.0)       # behind a: runs 110.3 .. 210.3
    inst = lambda: d.fleet.instances[0]
    for t in (75.0, 111.0, 211.0):
        d.probe(t, lambda: inst().in_flight)
    s = d.run()
    rows = d.model.metrics.rows
    busy = sum(r["cpu_util"] * (r["t_end"] - r["t_start"]) for r in rows)
    assert busy == pytest.approx(200.0)                   # the work is done either way
    assert (d.probes[75.0], d.probes[111.0], d.probes[211.0]) == (2, 1, 0)
    q = s["requests"]
    assert q["total"] == q["completed"] == 2 and conserved(s)
    if timeout is None:
        assert [d.outcome(r) for r in (a, b)] == [("ok", pytest.approx(110.3)), ("ok", pytest.approx(210.3))]
        assert q["timeout"] == 0 and s["timeouts"] == 0
        return
    for r in (a, b):
        outcome, t = d.outcome(r)                        # recorded once: the later finish is not counted
        assert outcome == "timeout" and r.t0 + 60 <= t <= r.t0 + 61
    assert q["timeout"] == 2 and q["ok"] == 0 and s["timeouts"] == 2
    assert d.model.metrics.latency_ms(["timeout"])["mean"] == pytest.approx(60_000.0)
    assert [r["n_timeout"] for r in rows if r["n_timeout"]] == [1, 1]
    assert [r["t_end"] for r in rows if r["n_timeout"]] == [80.0, 90.0]


# ---------------------------------------------------------------- 9. read replicas
def _replica_run(replicas, seed=6):
    sc = scenario(horizon=600.0, open_loop=[{"name": "q", "rate": 50.0}],
                  endpoints={"q": {"cpu_pre": {"dist": "exponential", "mean": 0.001}, "queries": 1,
                                   "query_time": "4ms", "db_probability": 0.8}},
                  database={"replicas": replicas})
    m = Model(sc, seed=seed)
    seen = arrivals_log(m)
    m.run()
    return m, seen


def test_read_replicas_split_the_database_load():
    m, seen = _replica_run({"count": 2, "read_share": 0.6})
    db_reqs = [r for r in seen if r.queries is not None]
    n = len(db_reqs)
    counts = [sum(1 for r in db_reqs if r.db == k) for k in range(3)]
    for c, p in zip(counts, (0.4, 0.3, 0.3)):
        assert abs(c / n - p) < 5 * math.sqrt(p * (1 - p) / n), (counts, n)
    rows = m.metrics.rows
    for k, prefix in enumerate(("db", "replica1", "replica2")):
        served = sum(r[f"{prefix}_active_mean"] * (r["t_end"] - r["t_start"]) for r in rows)
        done = sum(1 for r in db_reqs if r.db == k and r.qi == 1)
        assert served == pytest.approx(0.004 * done, abs=0.004 * 2), prefix   # busy time = queries x 4 ms
    assert all(len(i.proc.pools) == 3 for i in m.fleet.instances)


def test_replica_max_connections_is_enforced():
    sc = scenario(database={"max_connections": 100,
                            "replicas": {"count": 1, "read_share": 1.0, "max_connections": 2, "pool_max": 5}})
    d = Driver(sc)
    reads = [d.send(10, query=1.0, db=1) for _ in range(5)]
    writes = [d.send(20, query=1.0, db=0) for _ in range(5)]
    s = d.run()
    assert sorted(d.outcome(r)[0] for r in reads) == ["db_refused"] * 3 + ["ok"] * 2
    assert all(d.outcome(r)[0] == "ok" for r in writes)
    assert d.model.replicas[0].refused == 3 and d.model.db.refused == 0
    assert s["requests"]["db_refused"] == 3 and conserved(s)


def _draws(r):
    return (r.t0, r.endpoint, r.client, r.cpu_pre, r.cpu_post, r.queries and tuple(r.queries), r.cls, r.key, r.tier)


def test_replicas_keep_common_random_numbers():
    (_, with_r), (_, without) = _replica_run({"count": 2, "read_share": 0.6}), _replica_run(None)
    assert len(with_r) > 20_000
    assert [_draws(r) for r in with_r] == [_draws(r) for r in without]


# ---------------------------------------------------------------- 10. stream independence
def test_features_do_not_shift_arrivals_or_endpoints():
    base = capsim.load_scenario("scenarios/launch.yaml", ["horizon=1h", "warmup=0"])
    variants = {"all on": {}, "no cache": {"cache": None}, "no rate limit": {"rate_limit": None},
                "no sockets": {"sockets": None}, "no breaker": {"circuit_breaker": None}}
    logs, sums = {}, {}
    for name, upd in variants.items():
        m = Model(base.model_copy(update=upd), seed=9)
        seen = arrivals_log(m)
        m.run()
        sums[name] = summarize(m)
        logs[name] = [(r.t0, r.endpoint, r.client, r.cpu_pre, r.cpu_post) for r in seen]
    ref = logs["all on"]
    assert len(ref) > 5_000 and sums["all on"]["cache"]["hits"] > 0 and sums["all on"]["requests"]["rate_limited"] > 0
    for name in variants:
        assert logs[name] == ref, name
        assert sums[name]["requests"]["total"] == sums["all on"]["requests"]["total"], name
        assert sums[name]["sessions"]["started"] == sums["all on"]["sessions"]["started"], name
