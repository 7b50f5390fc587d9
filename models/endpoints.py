"""Endpoints: what one request of each API tier costs, and how requests are made.

The defaults are the seed's rate-limit tiers. CPU times, query counts and cache-miss
shares are assumptions (the seed publishes none): they give about 3 ms of CPU per
request on average, so the seed's light load (50 requests/s) uses ~15% of one vCPU.
Change them in the scenario to match measurements of the real service.
"""
from __future__ import annotations

from itertools import islice, repeat
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from capsim.models.units import Amount, NonNegative, Share

from capsim.models.distributions import Constant, Distribution, Exponential, LogNormal, blocks, draws, uniforms
from capsim.models.request import Request

__all__ = ["Endpoint", "DEFAULT_ENDPOINTS", "RequestFactory", "mix", "CACHE_CLASSES", "RATE_LIMIT_TIERS"]

CACHE_CLASSES = ("api_responses", "user_sessions", "toybox_metadata", "leaderboards", "static_data")
RATE_LIMIT_TIERS = ("auth", "toybox", "matchmaking", "sessions", "presence", "general")


class Endpoint(BaseModel):
    """One API tier."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    weight: NonNegative = Field(1.0, description="share of session requests (relative)")
    cpu_pre: Distribution = Field(Constant(value=0.001), description="CPU time before the database step")
    cpu_post: Distribution = Field(Constant(value=0.0), description="CPU time after the database step (the request rejoins the worker queue)")
    queries: Amount = Field(0, description="queries run one after another on one pooled connection")
    query_time: Distribution = Field(LogNormal(mean=0.004, p99=0.03), description="server time of one query")
    db_probability: Share = Field(1.0, description="share of requests that need the database (e.g. cache misses)")
    cache_class: Literal[CACHE_CLASSES] | None = Field(None, description="cache strategy of its responses")  # type: ignore[valid-type]
    rate_limit_tier: Literal[RATE_LIMIT_TIERS] | None = Field(None, description="express-rate-limit tier")  # type: ignore[valid-type]


def _ep(weight, cpu, queries, p, cache, tier, post=0.0005):
    return Endpoint(weight=weight, cpu_pre=cpu, cpu_post=Exponential(mean=post) if post else Constant(value=0.0),
                    queries=queries, db_probability=p, cache_class=cache, rate_limit_tier=tier)


DEFAULT_ENDPOINTS: dict[str, Endpoint] = {
    "health": _ep(0.05, Constant(value=0.0003), 0, 1.0, None, None, post=0.0),
    "auth": _ep(0.03, LogNormal(mean=0.025, p99=0.09), 2, 1.0, "user_sessions", "auth"),
    "toybox": _ep(0.17, LogNormal(mean=0.004, p99=0.02), 2, 0.3, "toybox_metadata", "toybox"),
    "matchmaking": _ep(0.10, LogNormal(mean=0.002, p99=0.01), 2, 1.0, None, "matchmaking"),
    "sessions": _ep(0.10, LogNormal(mean=0.0015, p99=0.008), 1, 0.2, "user_sessions", "sessions"),
    "presence": _ep(0.35, LogNormal(mean=0.0008, p99=0.004), 1, 1.0, None, "presence"),
    "general": _ep(0.20, LogNormal(mean=0.002, p99=0.01), 1, 0.4, "api_responses", "general"),
}


class _Drawn:
    """One endpoint's random sources, each its own stream, drawn at arrival.

    With a cache, an endpoint of a cached class draws its key (Zipf popularity) and
    always carries its queries: the cache, not ``db_probability``, decides whether they run.
    """

    def __init__(self, ep: Endpoint, streams, tag: str, cache, limited: bool, replicas=None):
        self.cpu_pre = draws(ep.cpu_pre, streams.get(f"{tag}.cpu_pre"))
        self.cpu_post = draws(ep.cpu_post, streams.get(f"{tag}.cpu_post"))
        self.query = draws(ep.query_time, streams.get(f"{tag}.query"))
        self.u = uniforms(streams.get(f"{tag}.db_needed"))
        self.queries, self.p = ep.queries, ep.db_probability
        self.tier = ep.rate_limit_tier if limited else None
        self.replicas = replicas          # (count, read share), or None
        self.r = uniforms(streams.get(f"{tag}.replica")) if replicas else None
        self.cls, self.keys, self.by_client = -1, None, False
        if cache is not None and ep.cache_class in cache.classes:
            from capsim.models.cache import class_index, zipf_keys
            c = cache.classes[ep.cache_class]
            self.cls = class_index(cache)[ep.cache_class]
            self.keys = zipf_keys(c.keys, c.zipf, streams.get(f"{tag}.cache_key"))
            self.by_client = c.key_by == "client"
            self.p = 1.0
        self.extras = self.cls >= 0 or self.tier is not None or self.r is not None


class RequestFactory:
    """Makes one source's requests with all their random draws, in arrival order.

    Each source has its own factory and streams (``<source>.endpoint.<name>.*``), so
    adding a source or a draw in one never shifts another's draws.
    """

    def __init__(self, endpoints: dict[str, Endpoint], streams, source: str, cache=None, limited: bool = False,
                 replicas=None):
        self.names = list(endpoints)
        self.index = {n: i for i, n in enumerate(self.names)}
        self._drawn = [_Drawn(endpoints[n], streams, f"{source}.endpoint.{n}", cache, limited, replicas)
                       for n in self.names]

    def make(self, t: float, ep: int, client, flow) -> Request:
        d = self._drawn[ep]
        queries = None
        if d.queries and (d.p >= 1.0 or next(d.u) < d.p):
            queries = list(islice(d.query, d.queries))     # the next ``queries`` draws, in order
        req = Request(t, ep, next(d.cpu_pre), next(d.cpu_post), queries, client, flow)
        if d.extras:
            if d.cls >= 0:   # the key is drawn either way, so the stream stays aligned
                key = next(d.keys)
                req.cls, req.key = d.cls, (client if d.by_client and client is not None else key)
            if d.tier is not None:
                req.tier = d.tier
            if d.r is not None and queries is not None:
                self._replica(req, next(d.r), d.replicas)
        return req

    @staticmethod
    def _replica(req, u: float, replicas) -> None:
        count, share = replicas
        if u < share:
            req.db = 1 + int(u / share * count)


def mix(indices: list[int], weights: list[float], rng, block: int = 4096):
    """Endless endpoint indices chosen by weight from ``rng``, drawn in blocks."""
    if len(indices) == 1:
        return repeat(indices[0])          # no draw needed; the stream stays unused
    total = float(sum(weights))
    p = [w / total for w in weights]
    return _choices(indices, p, rng, block)


def _choices(indices, p, rng, block):
    table = np.asarray(indices)
    return blocks(lambda: table[rng.choice(len(indices), size=block, p=p)].tolist())
