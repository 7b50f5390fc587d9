"""The seed's cache layer: per-class TTLs, LRU beyond ``CACHE_MAX_SIZE``, invalidation.

A store maps keys ``(class_index, key)`` to an expiry time. ``get`` hits iff the key
is present and ``now < expiry``; a hit moves the key to most-recent but does NOT
extend its TTL (Redis ``SET EX``: the miss fills the cache, the TTL runs from there).
Expiry is lazy (as ``lru-cache`` and Redis' passive expiry): an expired entry keeps
its slot until it is read (a miss), evicted, or ``purge`` runs. ``store: memory`` is
one store per instance (empty when it starts); ``store: redis`` one shared store,
each get and set costing ``redis_rtt``.

Key popularity is Zipf: key k of 1..N with probability k^-s / H(N, s). Invalidations
are Poisson; "one" deletes a key drawn by the same popularity (a popular toybox is
more often updated), "all" is the seed's wildcard delete (``toybox:list:*``). Note:
in real Redis ``DEL 'toybox:list:*'`` deletes nothing (DEL does not glob); we model
the intent. Key counts, exponents and event rates below are ASSUMPTIONS, not seed data.
"""
from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from typing import Callable, Iterable, Iterator, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.distributions import Exponential, blocks, draws, uniforms
from capsim.models.units import Count, Duration, NonNegative, PositiveDuration, Rate

__all__ = ["CacheClass", "Delete", "Invalidation", "CacheConfig", "CacheStore", "Invalidator",
           "DEFAULT_CLASSES", "DEFAULT_INVALIDATIONS", "class_index", "probabilities", "zipf_keys"]


class CacheClass(BaseModel):
    """One of the seed's ``cacheStrategies``."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    ttl: PositiveDuration = Field(description="time to live, set when the entry is written")
    keys: Count = Field(description="distinct keys of this class")
    zipf: NonNegative = Field(0.0,
                        description="popularity exponent s: key k of 1..keys requested with probability ~ k^-s")
    key_by: Literal["popularity", "client"] = Field(
        "popularity", description="popularity: keys drawn by Zipf; client: the requesting user's own key (user:{id})")


class Delete(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    class_: str = Field(alias="class", description="cache class name")
    keys: Literal["one", "all"] = Field("one", description="one: a key by popularity; all: wildcard delete")


class Invalidation(BaseModel):
    """One of the seed's ``invalidateCache`` handlers, firing as a Poisson process."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(description="event name, e.g. toyboxUpdate")
    rate: Rate = Field(description="Poisson events per second")
    deletes: list[Delete] = Field(min_length=1, description="what each event deletes")


# Seed TTLs (cacheStrategies); key counts and exponents are assumptions.
DEFAULT_CLASSES = {
    "api_responses": CacheClass(ttl=300, keys=2000, zipf=0.9),
    "user_sessions": CacheClass(ttl=3600, keys=5000, zipf=0.6, key_by="client"),
    "toybox_metadata": CacheClass(ttl=900, keys=3000, zipf=1.0),
    "leaderboards": CacheClass(ttl=600, keys=20, zipf=0.8),
    "static_data": CacheClass(ttl=86400, keys=50, zipf=0.8),
}
# Seed handlers (invalidateCache); the rates are assumptions.
DEFAULT_INVALIDATIONS = [
    Invalidation(name="toyboxUpdate", rate=0.05, deletes=[  # toybox:{id}, toybox:{id}:metadata, toybox:list:*
        Delete(class_="toybox_metadata", keys="one"), Delete(class_="api_responses", keys="all")]),
    Invalidation(name="userUpdate", rate=0.1, deletes=[     # user:{id}, user:{id}:profile
        Delete(class_="user_sessions", keys="one")]),
    Invalidation(name="matchComplete", rate=0.2, deletes=[  # session:{id}, leaderboard:*, stats:*
        Delete(class_="user_sessions", keys="one"), Delete(class_="leaderboards", keys="all")]),
]


class CacheConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    store: Literal["memory", "redis"] = Field("memory", description="memory: one per instance; redis: one shared")
    max_keys: Count = Field(1000, description="LRU eviction beyond this many keys per store (CACHE_MAX_SIZE)")
    redis_rtt: Duration = Field(0.001, description="round trip per get and per set (store: redis)")
    memory_kb_per_key: NonNegative = Field(2.0, description="instance memory per key (store: memory)")
    classes: dict[str, CacheClass] = Field(default_factory=lambda: dict(DEFAULT_CLASSES), min_length=1,
                                           description="cache classes by name (the seed's cacheStrategies)")
    invalidations: list[Invalidation] = Field(default_factory=lambda: list(DEFAULT_INVALIDATIONS),
                                              description="Poisson invalidation events")

    @model_validator(mode="after")
    def _check(self) -> CacheConfig:
        names = [inv.name for inv in self.invalidations]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"invalidation names must be unique, repeated: {', '.join(dup)}")
        for inv in self.invalidations:
            for d in inv.deletes:
                if d.class_ not in self.classes:
                    raise ValueError(f"invalidation {inv.name!r} deletes from unknown cache class {d.class_!r}; "
                                     f"classes are: {', '.join(self.classes)}")
        return self


def class_index(config: CacheConfig) -> dict[str, int]:
    """Class names -> 0, 1, ... in config order."""
    return {name: i for i, name in enumerate(config.classes)}


def probabilities(n: int, s: float) -> np.ndarray:
    """Exact Zipf probabilities of keys 0..n-1 (rank k+1): (k+1)^-s / H(n, s)."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    return w / w.sum()


def zipf_keys(n: int, s: float, rng: np.random.Generator, block: int = 4096) -> Iterator[int]:
    """Endless keys in [0, n) by inverse CDF on blocks of uniforms (key 0 most popular)."""
    cdf = np.cumsum(probabilities(n, s))
    cdf[-1] = 1.0                      # u < 1 always lands on a key
    return blocks(lambda: np.searchsorted(cdf, rng.random(block), side="right").tolist())


class CacheStore:
    """An LRU + TTL store: one OrderedDict of ``(class, key) -> expiry``, oldest first, and
    each class's keys in a set beside it, so a wildcard delete touches only its class."""

    def __init__(self, config: CacheConfig):
        self.max_keys = config.max_keys
        self.ttl = [c.ttl for c in config.classes.values()]
        self.kb_per_key = config.memory_kb_per_key if config.store == "memory" else 0.0
        self.entries: OrderedDict[tuple[int, int], float] = OrderedDict()
        self.by_class: list[set[int]] = [set() for _ in self.ttl]   # each class's keys in ``entries``
        self.hits = [0] * len(self.ttl)
        self.misses = [0] * len(self.ttl)
        self.evictions = 0
        self.expirations = 0
        self.fluid_keys = 0.0          # fast mode (capsim.engine.flow): the expected number of entries

    @property
    def size(self) -> float:
        return len(self.entries) + self.fluid_keys

    @property
    def memory_kb(self) -> float:
        """Instance memory held (0 for a redis store: it lives elsewhere)."""
        return self.size * self.kb_per_key

    def get(self, cls: int, key: int, now: float) -> bool:
        k = (cls, key)
        expiry = self.entries.get(k)
        if expiry is not None:
            if now < expiry:
                self.entries.move_to_end(k)
                self.hits[cls] += 1
                return True
            del self.entries[k]
            self.by_class[cls].discard(key)
            self.expirations += 1
        self.misses[cls] += 1
        return False

    def put(self, cls: int, key: int, now: float) -> None:
        k, entries = (cls, key), self.entries
        entries[k] = now + self.ttl[cls]
        entries.move_to_end(k)
        self.by_class[cls].add(key)
        if len(entries) > self.max_keys:
            (c, old), _ = entries.popitem(last=False)
            self.by_class[c].discard(old)
            self.evictions += 1

    def delete(self, cls: int, key: int) -> bool:
        self.by_class[cls].discard(key)
        return self.entries.pop((cls, key), None) is not None

    def delete_class(self, cls: int) -> int:
        """Wildcard delete; O(keys of the class). Returns keys removed."""
        entries, keys = self.entries, self.by_class[cls]
        for key in keys:
            del entries[(cls, key)]
        n = len(keys)
        keys.clear()
        return n

    def purge(self, now: float) -> int:
        """Drop every expired entry (active expiry); O(size). Returns keys removed."""
        entries = self.entries
        dead = [k for k, expiry in entries.items() if now >= expiry]
        for c, key in dead:
            del entries[(c, key)]
            self.by_class[c].discard(key)
        self.expirations += len(dead)
        return len(dead)


class Invalidator:
    """All invalidation types as one superposed Poisson process over the current stores.

    ``stores()`` returns the live stores at each event (instances come and go); a
    "one" delete removes the same key id from each of them.
    """

    def __init__(self, config: CacheConfig, stores: Callable[[], Iterable[CacheStore]],
                 rng: np.random.Generator, index: dict[str, int] | None = None):
        index = index if index is not None else class_index(config)
        self.stores = stores
        self.types = [inv for inv in config.invalidations if inv.rate > 0]
        self.rate = sum(inv.rate for inv in self.types)
        self.cum_share = list(np.cumsum([inv.rate for inv in self.types]) / self.rate) if self.types else []
        self.actions = [[(index[d.class_], d.keys == "all") for d in inv.deletes] for inv in self.types]
        used = {index[d.class_] for inv in self.types for d in inv.deletes if d.keys == "one"}
        classes = list(config.classes.values())
        self.keys = {i: zipf_keys(classes[i].keys, classes[i].zipf, rng) for i in sorted(used)}
        self.gaps = draws(Exponential(mean=1 / self.rate), rng) if self.rate > 0 else None
        self.picks = uniforms(rng)
        self.counts = {inv.name: 0 for inv in self.types}
        self.deleted = 0               # keys removed, all stores

    def process(self, env):
        """SimPy process: wait an exponential gap, fire one event, forever."""
        if self.gaps is None:
            return
        while True:
            yield env.timeout(next(self.gaps))
            self.fire(self._pick())

    def _pick(self) -> int:
        return min(bisect_right(self.cum_share, next(self.picks)), len(self.types) - 1)

    def fire(self, i: int) -> None:
        """Apply invalidation type ``i`` (index into ``types``) to every current store."""
        self.counts[self.types[i].name] += 1
        stores = list(self.stores())
        for cls, wildcard in self.actions[i]:
            if wildcard:
                self.deleted += sum(s.delete_class(cls) for s in stores)
            else:
                key = next(self.keys[cls])
                self.deleted += sum(s.delete(cls, key) for s in stores)
