"""express-rate-limit semantics on exact small traces: fixed windows, count then compare."""
import numpy as np
import pytest
from pydantic import ValidationError

from capsim.models.endpoints import RATE_LIMIT_TIERS
from capsim.models.rate_limit import DEFAULT_LIMITS, RateLimitConfig, RateLimiter, effective_limit


def limiter(created_at=0.0, limit=3, window=10.0, **kw):
    cfg = RateLimitConfig(window=window, limits={"auth": limit}, **kw)
    return RateLimiter(cfg, created_at)


def run(rl, times, tier="auth", client="a"):
    return [rl.allow(tier, client, t) for t in times]


# --- configuration -------------------------------------------------------------

def test_defaults_are_the_seeds_tiers_and_15_minutes():
    cfg = RateLimitConfig()
    assert cfg.store == "memory" and cfg.window == 900.0
    assert cfg.limits == DEFAULT_LIMITS == {"auth": 10, "toybox": 50, "matchmaking": 30,
                                            "sessions": 20, "presence": 100, "general": 100}
    assert set(cfg.limits) == set(RATE_LIMIT_TIERS)


def test_config_parses_units_and_merges_partial_limits():
    cfg = RateLimitConfig.model_validate({"store": "redis", "window": "1m", "limits": {"auth": 3}})
    assert cfg.window == 60.0
    assert cfg.limits == {**DEFAULT_LIMITS, "auth": 3}


@pytest.mark.parametrize("bad", [{"limits": {"login": 5}}, {"limits": {"auth": 0}}, {"window": 0},
                                 {"store": "postgres"}, {"memory_windows": "sliding"}, {"max": 3}])
def test_config_rejects(bad):
    with pytest.raises(ValidationError):
        RateLimitConfig.model_validate(bad)


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        RateLimitConfig().window = 5.0


# --- memory store, global windows (express-rate-limit <= 6) -------------------------

def test_global_window_counts_then_rejects_and_resets_at_the_edge():
    rl = limiter(memory_windows="global")
    assert run(rl, [1, 2, 3, 4]) == [True, True, True, False]
    assert rl.allow("auth", "a", 9.999) is False
    assert rl.used("auth", "a", 9.999) == 5          # rejected requests stay counted
    assert rl.rejected["auth"] == 2
    assert rl.allow("auth", "a", 10.0) is True       # window [10, 20) starts exactly at 10
    assert rl.used("auth", "a", 10.0) == 1
    assert run(rl, [11, 12, 13]) == [True, True, False]


def test_global_windows_run_from_the_stores_creation():
    rl = limiter(created_at=5.0, memory_windows="global")
    assert run(rl, [5, 6, 7, 8, 14.999]) == [True, True, True, False, False]
    assert run(rl, [15, 16, 17, 24.999]) == [True, True, True, False]
    assert run(rl, [25.0]) == [True]
    assert run(rl, [100.0, 101, 102, 103]) == [True, True, True, False]   # [95, 105) after idle windows


def test_global_window_resets_every_client_together():
    rl = limiter(memory_windows="global")
    assert run(rl, [7, 8, 9, 9.5]) == [True, True, True, False]
    assert rl.allow("auth", "a", 10.0) is True       # 3 s after its first hit, still a new window


# --- per-client windows: MemoryStore >= 7 (the default) and rate-limit-redis -------

@pytest.mark.parametrize("store", ["memory", "redis"])
def test_window_starts_at_the_clients_first_hit(store):
    rl = limiter(store=store)
    assert run(rl, [7, 8, 9, 10, 16.999]) == [True, True, True, False, False]   # [7, 17)
    assert run(rl, [12, 13, 14, 15], client="b") == [True, True, True, False]   # [12, 22)
    assert rl.allow("auth", "a", 17.0) is True                                   # [17, 27)
    assert rl.allow("auth", "b", 21.999) is False
    assert rl.allow("auth", "b", 22.0) is True                                   # [22, 32)
    assert rl.used("auth", "a", 17.5) == 1 and rl.used("auth", "b", 22.0) == 1
    assert rl.rejected["auth"] == 4


def test_next_window_starts_at_the_first_hit_after_the_last_ended():
    rl = limiter(store="redis")
    assert run(rl, [0, 1, 2, 3]) == [True, True, True, False]   # [0, 10)
    assert run(rl, [13, 14, 15, 22.999, 23]) == [True, True, True, False, True]   # [13, 23), [23, 33)


def test_redis_store_ignores_memory_windows():
    rl = limiter(store="redis", memory_windows="global")
    assert rl.per_client
    assert run(rl, [7, 8, 9, 10]) == [True, True, True, False]


def test_expired_clients_are_forgotten():
    rl = limiter(store="redis")
    for c in range(1000):
        rl.allow("auth", c, c * 0.001)
    rl.allow("auth", "late", 50.0)
    _, _, hits, ends = rl._tiers["auth"]
    assert set(hits) == set(ends) == {"late"}


# --- keys ------------------------------------------------------------------------

@pytest.mark.parametrize("windows", ["global", "per_client"])
def test_clients_and_tiers_are_independent(windows):
    rl = RateLimiter(RateLimitConfig(window=10, limits={"auth": 2, "toybox": 1}, memory_windows=windows))
    assert run(rl, [1, 2, 3]) == [True, True, False]
    assert run(rl, [1, 2, 3], client="b") == [True, True, False]
    assert run(rl, [1, 2], tier="toybox") == [True, False]
    assert run(rl, [1, 2], tier="presence") == [True, True]
    assert rl.rejected == {"auth": 2, "toybox": 1, "matchmaking": 0, "sessions": 0, "presence": 0, "general": 0}


def test_tier_index_and_name_share_a_counter():
    rl = limiter()
    auth = RATE_LIMIT_TIERS.index("auth")
    assert [rl.allow(auth, "a", 1), rl.allow("auth", "a", 2), rl.allow(auth, "a", 3),
            rl.allow("auth", "a", 4)] == [True, True, True, False]
    assert rl.rejected["auth"] == 1


def test_no_tier_or_no_client_is_unlimited_and_uncounted():
    rl = limiter(limit=1)
    assert all(rl.allow(None, "a", t) for t in range(100))
    assert all(rl.allow("auth", None, t * 0.01) for t in range(100))
    assert rl.used("auth", None, 0.5) == 0 and rl.rejected["auth"] == 0
    assert rl.allow("auth", "a", 1.0) is True


# --- effective limit over instances ----------------------------------------------

@pytest.mark.parametrize("store, n, passed", [("memory", 1, 3), ("memory", 4, 12), ("redis", 4, 3)])
def test_round_robin_over_instances_multiplies_a_memory_limit(store, n, passed):
    cfg = RateLimitConfig(store=store, window=10, limits={"auth": 3})
    stores = [RateLimiter(cfg, 0.0) for _ in range(n)] if store == "memory" else [RateLimiter(cfg, 0.0)] * n
    got = sum(stores[i % n].allow("auth", "a", 1 + i * 0.01) for i in range(100))
    assert got == passed == effective_limit(cfg, "auth", n)


# --- long Poisson stream: allowed per window = min(L, N) ----------------------------

@pytest.mark.parametrize("windows", ["global", "per_client"])
def test_poisson_stream_allows_min_of_limit_and_arrivals_per_window(windows):
    rate, L, W, c0 = 5.0, 7, 2.0, 0.3
    t = (c0 + np.cumsum(np.random.default_rng(7).exponential(1 / rate, 20000))).tolist()
    rl = RateLimiter(RateLimitConfig(window=W, limits={"sessions": L}, memory_windows=windows), c0)
    got = [rl.allow("sessions", "u", x) for x in t]
    windows_of, start = [], None                     # brute-force window of each arrival
    for x in t:
        if windows == "global":
            windows_of.append(int((x - c0) // W))
        else:
            if start is None or x >= start + W:
                start = x
            windows_of.append(start)
    arrivals, allowed, seen = {}, {}, {}
    for w, ok in zip(windows_of, got):
        seen[w] = seen.get(w, 0) + 1
        assert ok == (seen[w] <= L)                  # the first L of each window pass
        arrivals[w] = arrivals.get(w, 0) + 1
        allowed[w] = allowed.get(w, 0) + ok
    assert all(allowed[w] == min(L, arrivals[w]) for w in arrivals)
    assert max(arrivals.values()) > L                # the limit did bind
    assert rl.rejected["sessions"] == sum(arrivals[w] - allowed[w] for w in arrivals)
