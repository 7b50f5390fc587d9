"""The middleware in front of the handlers: load shedding, then rate limiting.

Order as in an Express app: the shedder (the seed's per-instance RPS breaker) answers
with the maintenance fallback (``shed``); then ``express-rate-limit`` answers 429
(``rate_limited``) for a client over its tier's limit. A rejected request still costs
``instances.reject_cpu`` on the event loop (``models.process``) before it leaves.
Requests without a client (open-loop traffic without a flow) are not rate limited.
Each Node process has its own in-memory stores; a Redis store is shared by all.
"""
from __future__ import annotations

from capsim.models.request import RATE_LIMITED, SHED

__all__ = ["Gate"]


class Gate:
    """Called by the process for each request; False (and ``req.verdict``) when it was turned away."""

    def __init__(self, kernel, shedder, limiter):
        self.kernel, self.shedder, self.limiter = kernel, shedder, limiter

    def __call__(self, req) -> bool:
        now = self.kernel.now
        if self.shedder is not None and not self.shedder.admit(now):
            req.verdict = SHED
            return False
        lim = self.limiter
        if lim is not None and req.tier is not None and req.client is not None \
                and not lim.allow(req.tier, req.client, now):
            req.verdict = RATE_LIMITED
            return False
        return True


class Middleware:
    """Equips each Node process with its cache, rate limiter, load shedder and circuit breaker.

    Stores follow the configuration: an in-memory cache or rate-limit store belongs to
    one process and starts empty on a new or restarted instance; a Redis one is shared.
    Keeps the statistics of all of them for the time series and the summary.
    """

    def __init__(self, kernel, cache, rate_limit, breaker):
        from capsim.models.cache import CacheStore, class_index
        from capsim.models.rate_limit import RateLimiter
        self.kernel, self.cache_cfg, self.rate_cfg, self.breaker_cfg = kernel, cache, rate_limit, breaker
        self.classes = list(class_index(cache)) if cache is not None else []
        self.shared_cache = CacheStore(cache) if cache is not None and cache.store == "redis" else None
        self.shared_limiter = RateLimiter(rate_limit, 0.0) if rate_limit is not None and rate_limit.store == "redis" else None
        self.caches: list = [self.shared_cache] if self.shared_cache is not None else []
        self.limiters: list = [self.shared_limiter] if self.shared_limiter is not None else []
        self.breakers: list = []
        self.shedders: list = []
        self._marks: dict = {}
        if self.shared_cache is not None:
            self.shared_cache.available = True

    def equip(self, proc) -> None:
        """Fresh state for a process of a started or restarted instance."""
        from capsim.models.cache import CacheStore
        from capsim.models.circuit_breaker import CircuitBreaker, LoadShedder
        from capsim.models.rate_limit import RateLimiter
        now = self.kernel.now
        if self.cache_cfg is not None:
            proc.cache = self.shared_cache or self._keep(self.caches, CacheStore(self.cache_cfg))
            proc.cache_rtt = self.cache_cfg.redis_rtt if self.cache_cfg.store == "redis" else 0.0
            proc.cache.available = getattr(proc.cache, "available", True)
        shedder = limiter = None
        if self.breaker_cfg is not None:
            proc.breaker = self._keep(self.breakers, CircuitBreaker(self.breaker_cfg))
            if self.breaker_cfg.shed_rps is not None:
                shedder = self._keep(self.shedders, LoadShedder(self.breaker_cfg))
        if self.rate_cfg is not None:
            limiter = self.shared_limiter or self._keep(self.limiters, RateLimiter(self.rate_cfg, now))
        proc.gate = Gate(self.kernel, shedder, limiter) if shedder or limiter else None

    @staticmethod
    def _keep(registry: list, obj):
        registry.append(obj)
        return obj

    def redis_down(self, down: bool) -> None:
        if self.shared_cache is not None:
            self.shared_cache.available = not down

    # -- statistics ------------------------------------------------------------------
    def sample(self, t0: float, t1: float) -> dict:
        """Time-series columns for [t0, t1]: differences of ``counters()`` since the last call."""
        now = self.counters()
        d = {k: v - self._marks.get(k, 0) for k, v in now.items()}
        self._marks = now
        row: dict = {}
        if self.cache_cfg is not None:
            for name in self.classes:
                h, m = d[f"hit.{name}"], d[f"miss.{name}"]
                row[f"cache_hit_rate_{name}"] = h / (h + m) if h + m else float("nan")
            hits = sum(d[f"hit.{n}"] for n in self.classes)
            misses = sum(d[f"miss.{n}"] for n in self.classes)
            row["cache_hit_rate"] = hits / (hits + misses) if hits + misses else float("nan")
        if self.rate_cfg is not None:
            for tier in self.rate_cfg.limits:
                row[f"rate_limited_{tier}"] = d[f"rl.{tier}"]
        if self.breaker_cfg is not None:
            row["circuit_opens"] = d["opens"]
        return row

    def counters(self) -> dict:
        """Cumulative counts since the start (the summary subtracts those at the warm-up's end)."""
        out: dict = {}
        for c, name in enumerate(self.classes):
            out[f"hit.{name}"] = sum(st.hits[c] for st in self.caches)
            out[f"miss.{name}"] = sum(st.misses[c] for st in self.caches)
        if self.rate_cfg is not None:
            for tier in self.rate_cfg.limits:
                out[f"rl.{tier}"] = sum(lim.rejected.get(tier, 0) for lim in self.limiters)
        out["opens"] = sum(b.counts.get(("closed", "open"), 0) + b.counts.get(("half-open", "open"), 0)
                           for b in self.breakers)
        return out

    def totals(self, base: dict | None = None) -> dict:
        """Summary figures since ``base`` (a ``counters()`` snapshot; None: since the start)."""
        now, base = self.counters(), base or {}
        d = {k: now[k] - base.get(k, 0) for k in now}
        out: dict = {}
        if self.cache_cfg is not None:
            by_class, hits, misses = {}, 0, 0
            for name in self.classes:
                h, m = d[f"hit.{name}"], d[f"miss.{name}"]
                by_class[name] = round(h / (h + m), 6) if h + m else None
                hits, misses = hits + h, misses + m
            out["cache"] = {"store": self.cache_cfg.store,
                            "hit_rate": round(hits / (hits + misses), 6) if hits + misses else None,
                            "hits": int(hits), "misses": int(misses), "by_class": by_class}
        if self.rate_cfg is not None:
            out["rate_limited_by_tier"] = {t: int(d[f"rl.{t}"]) for t in self.rate_cfg.limits}
        if self.breaker_cfg is not None:
            out["circuit_opens"] = int(d["opens"])
        return out
