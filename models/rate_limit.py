"""express-rate-limit: fixed windows of ``window`` per (tier, client), one store per limiter.

Sources read (express-rate-limit/express-rate-limit, express-rate-limit/rate-limit-redis):

* ``source/rate-limit.ts``: ``store.increment(key)`` runs before the check
  ``totalHits > limit`` (429); the count is decremented only with ``skipFailedRequests``
  or ``skipSuccessfulRequests``, both false by default. So rejected requests stay
  counted, which changes a fixed window's count (``used``) but never its decisions.
* MemoryStore up to v6 (``lib/memory-store.js``): one ``resetTime`` and
  ``setInterval(resetAll, windowMs)`` from the limiter's creation: all counters reset
  together every ``windowMs`` from the instance's start (``memory_windows: global``).
* MemoryStore since v7.0.0 (changelog: "precise, per-user reset times rather than a
  global window"; ``source/memory-store.ts``): a client's window starts at its first
  hit (``resetTime = now + windowMs``, renewed once ``resetTime <= now``); the interval
  only drops expired clients. The default, as ``npm install`` gives it today.
* rate-limit-redis (``source/scripts.ts``): ``INCR``, then ``PEXPIRE windowMs`` when the
  key has no TTL (it is new): a window per (tier, client) from its first hit, shared by
  all instances (assuming a distinct ``prefix`` per limiter, else tiers share counts).

A memory store lives in each instance, so spread over n instances a client passes up
to n x limit per window (``effective_limit``); a Redis store: the limit.
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from capsim.models.endpoints import RATE_LIMIT_TIERS
from capsim.models.units import Count, PositiveDuration

__all__ = ["RateLimitConfig", "RateLimiter", "DEFAULT_LIMITS", "effective_limit"]

DEFAULT_LIMITS = {"auth": 10, "toybox": 50, "matchmaking": 30, "sessions": 20,
                  "presence": 100, "general": 100}


class RateLimitConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    store: Literal["memory", "redis"] = Field("memory", description="memory: one store per instance; redis: one store shared by all instances")
    memory_windows: Literal["per_client", "global"] = Field(
        "per_client", description="memory store: per_client (express-rate-limit >= 7) or global, all reset together every window from the instance's start (<= 6)")
    window: PositiveDuration = Field(900.0, description="windowMs: length of a fixed window (seed: 15 min)")
    limits: dict[str, Count] = Field(default_factory=lambda: dict(DEFAULT_LIMITS),
                                   description="requests per client per window by tier; tiers not given keep the seed's limit")

    @field_validator("limits")
    @classmethod
    def _tiers(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(RATE_LIMIT_TIERS))
        if unknown:
            raise ValueError(f"unknown rate-limit tiers {unknown}; expected some of {list(RATE_LIMIT_TIERS)}")
        low = {k: n for k, n in v.items() if n < 1}
        if low:
            raise ValueError(f"limits must be >= 1, got {low}")
        return {**DEFAULT_LIMITS, **v}

    @property
    def per_client(self) -> bool:
        return self.store == "redis" or self.memory_windows == "per_client"


class RateLimiter:
    """One store holding every tier's counters; ``tier`` is a name or its index in RATE_LIMIT_TIERS."""

    def __init__(self, config: RateLimitConfig, created_at: float = 0.0):
        self.config, self.created_at, self.window = config, created_at, config.window
        self.per_client = config.per_client
        self.rejected = {name: 0 for name in RATE_LIMIT_TIERS}
        self._tiers = {}       # name or index -> (name, limit, hits by client, window end by client)
        for i, name in enumerate(RATE_LIMIT_TIERS):
            self._tiers[i] = self._tiers[name] = (name, config.limits[name], {}, {})
        self._end = created_at + self.window     # global windows: end of the current one
        self._sweep = self._end                  # per-client windows: next clean-up of expired ones

    def allow(self, tier, client, now: float) -> bool:
        """Count the request; False (429) when its client is over the tier's limit."""
        if tier is None or client is None:
            return True
        name, limit, hits, ends = self._tiers[tier]
        if self.per_client:
            if now >= self._sweep:
                self._expire(now)
            end = ends.get(client)
            if end is None or now >= end:
                ends[client] = now + self.window
                n = 1
            else:
                n = hits[client] + 1
        else:
            if now >= self._end:
                self._new_window(now)
            n = hits.get(client, 0) + 1
        hits[client] = n
        if n > limit:
            self.rejected[name] += 1
            return False
        return True

    def used(self, tier, client, now: float) -> int:
        """Requests counted for ``client`` in its current window (rejected ones included)."""
        _, _, hits, ends = self._tiers[tier]
        if self.per_client:
            end = ends.get(client)
            return hits[client] if end is not None and now < end else 0
        return hits.get(client, 0) if now < self._end else 0

    def _new_window(self, now: float) -> None:
        k = math.floor((now - self.created_at) / self.window)
        end = self.created_at + (k + 1) * self.window
        self._end = end if end > now else end + self.window
        for i in range(len(RATE_LIMIT_TIERS)):
            self._tiers[i][2].clear()

    def _expire(self, now: float) -> None:
        """Forget clients whose window is over (the v7 MemoryStore's clean-up; a Redis TTL)."""
        for i in range(len(RATE_LIMIT_TIERS)):
            _, _, hits, ends = self._tiers[i]
            for client in [c for c, end in ends.items() if end <= now]:
                del ends[client], hits[client]
        self._sweep = now + self.window


def effective_limit(config: RateLimitConfig, tier: str, instances: int) -> int:
    """Most requests one client gets through per window.

    Memory store: each of the ``instances`` counts only what it serves, so a client
    spread over all of them (round robin does it exactly) passes up to n x limit.
    Redis store: one shared counter, so the limit itself. Either way a burst
    straddling a window end can pass twice this within one window's length.
    """
    limit = config.limits[tier]
    return limit * max(instances, 1) if config.store == "memory" else limit
