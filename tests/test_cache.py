"""The cache against theory: Che's LRU approximation, the TTL renewal formula, Zipf,
Poisson invalidations; plus exact small traces and config validation.

``CacheStore`` is driven directly by a Python loop (no simulator): Poisson request
times, Zipf keys, ``get`` then ``put`` on a miss (the miss fills the cache).
"""
import math

import numpy as np
import pytest
import simpy
from pydantic import ValidationError
from scipy.stats import chisquare

from capsim.theory import che_hit_rate
from capsim.models.cache import (CacheClass, CacheConfig, CacheStore, Invalidator, class_index,
                          probabilities, zipf_keys)


def one_class(n, s, ttl, max_keys, invalidations=()):
    return CacheConfig(max_keys=max_keys, classes={"c": CacheClass(ttl=ttl, keys=n, zipf=s)},
                       invalidations=list(invalidations))


def drive(store, n, s, rate, warmup, measure, rng):
    """Poisson requests at ``rate`` for ``warmup`` then ``measure`` requests; counters cover ``measure``."""
    keys = zipf_keys(n, s, rng)
    gaps = iter(rng.exponential(1 / rate, warmup + measure).tolist())
    get, put, t = store.get, store.put, 0.0
    for i in range(warmup + measure):
        if i == warmup:
            store.hits[0] = store.misses[0] = 0
        t += next(gaps)
        k = next(keys)
        if not get(0, k, t):
            put(0, k, t)
    return store


# --- 1. LRU under the independent reference model vs Che's approximation ---------------

@pytest.mark.parametrize("s, c", [(0.8, 500), (1.1, 100)])
def test_lru_matches_che(s, c):
    # Che is an approximation; for N=5000 its error here is < 0.001 and the measured rate
    # over 400k requests has a standard error ~0.001, so |measured - che| < 0.005 (about 4 SE).
    n = 5000
    store = drive(CacheStore(one_class(n, s, 1e9, c)), n, s, 1.0, 50_000, 400_000,
                  np.random.default_rng(11))
    measured = store.hits[0] / 400_000
    assert store.size == c and store.expirations == 0
    assert abs(measured - che_hit_rate(n, s, c)) < 0.005, (measured, che_hit_rate(n, s, c))


def test_che_sanity():
    assert che_hit_rate(100, 0.0, 50) == pytest.approx(0.5)      # uniform: hit = C/N
    assert che_hit_rate(5000, 0.8, 500) > 500 / 5000             # popularity helps


# --- 2. TTL cache without a capacity limit: per key lambda_i T / (1 + lambda_i T) -----------

def test_ttl_cache_matches_renewal_formula():
    # A miss writes the key for T; the lambda_i T expected requests in that window hit; the
    # next miss comes an exponential gap later. Hit ratio = lambda_i T / (1 + lambda_i T).
    n, s, lam, ttl, reps = 200, 1.0, 50.0, 2.0, 10
    p = probabilities(n, s)
    per_key = lam * p * ttl / (1 + lam * p * ttl)
    theory = float(np.sum(p * per_key))
    overall, top = [], []
    for r in range(reps):
        store = CacheStore(one_class(n, s, ttl, 10**6))
        keys = zipf_keys(n, s, np.random.default_rng(100 + r))
        gaps = np.random.default_rng(200 + r).exponential(1 / lam, 105_000).tolist()
        hits, seen, t = np.zeros(n), np.zeros(n), 0.0
        for i, (gap, k) in enumerate(zip(gaps, keys)):
            t += gap
            hit = store.get(0, k, t)
            if not hit:
                store.put(0, k, t)
            if i >= 5_000:                       # 100 s warm-up
                seen[k] += 1
                hits[k] += hit
        overall.append(hits.sum() / seen.sum())
        top.append(hits[:3] / seen[:3])
    overall, top = np.array(overall), np.array(top)
    se = overall.std(ddof=1) / math.sqrt(reps)
    assert se < 0.002
    assert abs(overall.mean() - theory) < 4 * se, (overall.mean(), theory, se)
    se_top = top.std(axis=0, ddof=1) / math.sqrt(reps)
    assert np.all(np.abs(top.mean(axis=0) - per_key[:3]) < 4 * se_top), (top.mean(axis=0), per_key[:3], se_top)


# --- 3. exact small traces -------------------------------------------------------------------

@pytest.fixture
def small():
    cfg = CacheConfig(max_keys=3, classes={"a": CacheClass(ttl=10, keys=10), "b": CacheClass(ttl=100, keys=10)},
                      invalidations=[])
    return CacheStore(cfg)


def test_lru_eviction_order_and_hit_refreshes_recency(small):
    for k in range(3):
        small.put(0, k, 0.0)
    assert small.get(0, 0, 1.0)                  # 0 becomes most recent: order 1, 2, 0
    small.put(0, 3, 1.0)                         # evicts 1, the least recent
    assert list(small.entries) == [(0, 2), (0, 0), (0, 3)]
    assert small.evictions == 1 and small.size == 3
    assert not small.get(0, 1, 2.0)
    small.put(0, 2, 2.0)                         # a re-put refreshes recency too
    small.put(1, 0, 2.0)                         # evicts 0
    assert list(small.entries) == [(0, 3), (0, 2), (1, 0)]


def test_ttl_expiry_exactly_at_put_plus_ttl(small):
    small.put(0, 5, 1.0)
    small.put(1, 5, 1.0)                         # same key id, other class: independent
    assert small.get(0, 5, 11.0 - 1e-9)
    assert not small.get(0, 5, 11.0)
    assert small.expirations == 1 and small.size == 1
    assert small.get(1, 5, 11.0)                 # class b lives 100 s
    assert not small.get(1, 5, 101.0)


def test_hit_does_not_extend_ttl_but_put_does(small):
    small.put(0, 1, 0.0)
    assert small.get(0, 1, 9.0)
    assert not small.get(0, 1, 10.0)             # the hit at 9 did not extend it
    small.put(0, 1, 10.0)
    small.put(0, 1, 15.0)                        # rewrite: expiry 25
    assert small.get(0, 1, 24.0) and not small.get(0, 1, 25.0)


def test_delete_delete_class_purge_and_counters(small):
    small.put(0, 1, 0.0)
    small.put(1, 1, 0.0)
    small.put(1, 2, 0.0)
    assert small.delete(0, 1) and not small.delete(0, 1)
    assert small.delete_class(1) == 2 and small.size == 0
    small.put(0, 1, 0.0)
    small.put(1, 1, 0.0)
    assert small.delete_class(0) == 1 and list(small.entries) == [(1, 1)]
    assert small.get(1, 1, 1.0) and not small.get(0, 1, 1.0) and not small.get(0, 7, 1.0)
    assert small.hits == [0, 1] and small.misses == [2, 0]
    small.put(0, 1, 0.0)
    assert small.purge(50.0) == 1 and small.expirations == 1 and list(small.entries) == [(1, 1)]
    assert small.memory_kb == 2.0
    assert CacheStore(CacheConfig(store="redis")).memory_kb == 0.0


def test_delete_class_touches_only_its_class_and_keeps_lru_order(small):
    small.put(0, 1, 0.0)
    small.put(1, 1, 0.0)
    small.put(0, 2, 0.0)
    small.put(1, 2, 0.0)                         # evicts (0, 1): the class index forgets it too
    assert small.by_class == [{2}, {1, 2}]
    assert small.delete_class(1) == 2 and list(small.entries) == [(0, 2)] and small.by_class == [{2}, set()]
    assert small.delete_class(1) == 0
    small.put(1, 3, 1.0)
    assert not small.get(0, 2, 10.0)             # expired on read: gone from the index
    assert small.by_class == [set(), {3}]


def test_class_index_matches_a_full_scan_under_random_operations():
    """Any mix of gets, puts, deletes, evictions, expiries and purges: each class's index holds
    exactly the keys a scan of the store finds, and a wildcard delete removes just those."""
    cfg = CacheConfig(max_keys=20, classes={"a": CacheClass(ttl=5, keys=30), "b": CacheClass(ttl=50, keys=30),
                                            "c": CacheClass(ttl=1, keys=30)}, invalidations=[])
    store, rng = CacheStore(cfg), np.random.default_rng(7)
    for step in range(5000):
        now, op, cls, key = step * 0.05, rng.integers(6), int(rng.integers(3)), int(rng.integers(30))
        if op <= 1:
            store.get(cls, key, now)
        elif op <= 3:
            store.put(cls, key, now)
        elif op == 4:
            store.delete(cls, key)
        elif rng.random() < 0.05:
            expected, size = [k for k in store.entries if k[0] != cls], store.size
            assert store.delete_class(cls) == size - len(expected)
            assert list(store.entries) == expected
        elif rng.random() < 0.05:
            store.purge(now)
        assert store.by_class == [{k for c, k in store.entries if c == i} for i in range(3)]


# --- 4. Zipf sampler ------------------------------------------------------------------------

@pytest.mark.parametrize("s", [0.0, 0.8, 1.2])
def test_zipf_keys_frequencies(s):
    n, m = 50, 200_000
    p = probabilities(n, s)
    assert p.sum() == pytest.approx(1.0) and p[0] / p[1] == pytest.approx(2 ** s)
    it = zipf_keys(n, s, np.random.default_rng(5), block=1000)
    counts = np.bincount([next(it) for _ in range(m)], minlength=n)
    assert len(counts) == n
    assert chisquare(counts, m * p).pvalue > 1e-4
    sigma = np.sqrt(m * p[:3] * (1 - p[:3]))
    assert np.all(np.abs(counts[:3] - m * p[:3]) < 4 * sigma)


def test_zipf_zero_is_uniform_and_single_key():
    assert np.allclose(probabilities(7, 0.0), 1 / 7)
    it = zipf_keys(1, 1.0, np.random.default_rng(0))
    assert {next(it) for _ in range(100)} == {0}


# --- 5. invalidations ----------------------------------------------------------------------

def inv_config(*types, n=10, s=0.0):
    return CacheConfig(classes={"a": CacheClass(ttl=1e9, keys=n, zipf=s), "b": CacheClass(ttl=1e9, keys=n)},
                       invalidations=[{"name": name, "rate": rate, "deletes": deletes} for name, rate, deletes in types])


def filled(cfg, n=10, skip=()):
    store = CacheStore(cfg)
    for cls in (0, 1):
        for k in range(n):
            if (cls, k) not in skip:
                store.put(cls, k, 0.0)
    return store


def step_until_event(env, inv, count=1):
    while sum(inv.counts.values()) < count:
        env.step()


def started(cfg, stores: list, seed: int):
    """An Invalidator over ``stores`` (read at each event), its process started in a new env."""
    env = simpy.Environment()
    inv = Invalidator(cfg, lambda: stores, np.random.default_rng(seed))
    env.process(inv.process(env))
    return env, inv


def test_poisson_count_and_rate_shares():
    cfg = inv_config(("x", 1.0, [{"class": "a", "keys": "one"}]), ("y", "3/s", [{"class": "b", "keys": "all"}]))
    horizon = 5000.0
    env, inv = started(cfg, [], 3)
    env.run(until=horizon)
    total, y = sum(inv.counts.values()), inv.counts["y"]
    assert abs(total - 4.0 * horizon) < 4 * math.sqrt(4.0 * horizon)
    assert abs(y / total - 0.75) < 4 * math.sqrt(0.75 * 0.25 / total)


def test_single_type_count():
    cfg = inv_config(("x", 2.0, [{"class": "a", "keys": "one"}]))
    env, inv = started(cfg, [], 4)
    env.run(until=5000.0)
    assert abs(inv.counts["x"] - 10_000) < 4 * math.sqrt(10_000)


def test_all_empties_the_class_in_every_current_store():
    cfg = inv_config(("x", 1.0, [{"class": "a", "keys": "all"}]))
    stores = [filled(cfg), filled(cfg)]
    env, inv = started(cfg, stores, 0)
    stores.append(filled(cfg))                  # an instance started after the invalidator
    step_until_event(env, inv)
    assert all(sorted(s.entries) == [(1, k) for k in range(10)] for s in stores)
    assert inv.deleted == 30


def test_one_removes_the_same_single_key_everywhere():
    cfg = inv_config(("x", 1.0, [{"class": "a", "keys": "one"}]))
    stores = [filled(cfg) for _ in range(3)]
    env, inv = started(cfg, stores, 1)
    step_until_event(env, inv)
    gone = [{(0, k) for k in range(10)} - set(s.entries) for s in stores]
    assert len(gone[0]) == 1 and gone[0] == gone[1] == gone[2] and inv.deleted == 3
    assert all(s.size == 19 for s in stores)
    stores[:] = [filled(cfg, skip={(0, k) for k in range(10)})]   # no key of the class: no-op
    inv.fire(0)
    assert stores[0].size == 10 and inv.deleted == 3


def test_one_follows_popularity():
    n, s, m = 5, 1.0, 20_000
    cfg = inv_config(("x", 1.0, [{"class": "a", "keys": "one"}]), n=n, s=s)
    store = filled(cfg, n=n)
    inv = Invalidator(cfg, lambda: [store], np.random.default_rng(2))
    counts = np.zeros(n)
    for _ in range(m):
        inv.fire(0)
        (k,) = {k for k in range(n)} - {k for c, k in store.entries if c == 0}
        counts[k] += 1
        store.put(0, k, 0.0)
    p = probabilities(n, s)
    assert np.all(np.abs(counts - m * p) < 4 * np.sqrt(m * p * (1 - p)))


def test_no_rate_no_events():
    cfg = inv_config(("x", 0.0, [{"class": "a", "keys": "all"}]))
    env, inv = started(cfg, [], 0)
    env.run(until=100.0)
    assert inv.counts == {}


# --- 6. config ---------------------------------------------------------------------------

def test_defaults_follow_the_seed():
    cfg = CacheConfig()
    assert [c.ttl for c in cfg.classes.values()] == [300, 3600, 900, 600, 86400]
    assert list(class_index(cfg)) == ["api_responses", "user_sessions", "toybox_metadata",
                                      "leaderboards", "static_data"]
    assert cfg.max_keys == 1000 and cfg.store == "memory" and cfg.redis_rtt == 0.001
    plan = {inv.name: [(d.class_, d.keys) for d in inv.deletes] for inv in cfg.invalidations}
    assert plan == {"toyboxUpdate": [("toybox_metadata", "one"), ("api_responses", "all")],
                    "userUpdate": [("user_sessions", "one")],
                    "matchComplete": [("user_sessions", "one"), ("leaderboards", "all")]}


def test_yaml_shaped_input_with_units():
    cfg = CacheConfig.model_validate({
        "store": "redis", "redis_rtt": "2ms",
        "classes": {"api": {"ttl": "5m", "keys": 100, "zipf": 0.9}},
        "invalidations": [{"name": "flush", "rate": "6/m", "deletes": [{"class": "api", "keys": "all"}]}]})
    assert cfg.classes["api"].ttl == 300 and cfg.redis_rtt == 0.002 and cfg.invalidations[0].rate == 0.1
    assert cfg.model_dump(by_alias=True)["invalidations"][0]["deletes"] == [{"class": "api", "keys": "all"}]


@pytest.mark.parametrize("bad, message", [
    ({"invalidations": [{"name": "x", "rate": 1, "deletes": [{"class": "nope"}]}]},
     "invalidation 'x' deletes from unknown cache class 'nope'; classes are: api_responses"),
    ({"invalidations": [{"name": "x", "rate": 1, "deletes": [{"class": "leaderboards", "keys": "some"}]}]}, "'one' or 'all'"),
    ({"invalidations": [{"name": "x", "rate": 1, "deletes": [{"class": "leaderboards"}]}] * 2}, "repeated: x"),
    ({"invalidations": [{"name": "x", "rate": 1, "deletes": []}]}, "at least 1"),
    ({"classes": {"a": {"ttl": 0, "keys": 1}}, "invalidations": []}, "duration > 0"),
    ({"classes": {"a": {"ttl": 1, "keys": 0}}, "invalidations": []}, "greater than or equal to 1"),
    ({"max_keys": 0}, "greater than or equal to 1"),
    ({"ttl": "5m"}, "Extra inputs are not permitted"),
])
def test_invalid_configs(bad, message):
    with pytest.raises(ValidationError, match=message):
        CacheConfig.model_validate(bad)
