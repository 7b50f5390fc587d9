"""Cache hit rates of the fast mode: Che's approximation with TTLs, invalidations and warm-up.

One store (an LRU of ``max_keys`` over every class) sees key i of class c at rate
``lam_i = Lambda_c p_i`` (Zipf popularities; ``key_by: client``: one key per active
session at the session's own rate). An entry stays while it is read within the LRU's
characteristic time T (Che: ``sum_i (1 - exp(-lam_i T)) = max_keys``; expired entries keep
their slot until read, as ``CacheStore`` does) and dies at its TTL or when invalidated
(rate ``nu_i``: a wildcard delete of its class, a one-key delete by popularity, the end of
its session). Hits per fill cycle:

* TTL at most T (no eviction before expiry): ``H = lam (1 - exp(-nu ttl)) / nu``
  (``lam ttl`` without invalidations), as ``capsim.theory.ttl_hit_rate``;
* TTL above T: from ``H(T)`` towards Che's ``H_inf = q / (1 - q)``, ``q = lam / (lam + nu)
  (1 - exp(-(lam + nu) T))`` (``exp(lam T) - 1`` without invalidations), exponentially in
  ttl - T with the slope ``lam (1 - exp(-lam T))`` at T;

the hit rate of a key is H / (1 + H). A store younger than its entries' lives is not
warm: a request at age a hits only if its key was read since (``1 - exp(-lam_i a)``).
Results are memoised on the store's rates rounded to 5% (the daily curve repeats; a hit
rate moves by well under a point when a class's rate moves by 5%).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["CacheModel"]

ROUND = 0.05           # memoisation: rates and ages rounded to 5% in log space


class CacheModel:
    """Hit rates and occupancy of one store given the request rate of each class."""

    def __init__(self, config, sessions_length_mean: float | None):
        from capsim.models.cache import class_index, probabilities
        self.config = config
        self.index = class_index(config)
        self.classes = list(config.classes.values())
        self.by_client = [c.key_by == "client" for c in self.classes]
        self.p = [probabilities(c.keys, c.zipf) for c in self.classes]
        self.ttl = np.array([c.ttl for c in self.classes])
        wild = np.zeros(len(self.classes))
        one = np.zeros(len(self.classes))
        for inv in config.invalidations:
            for d in inv.deletes:
                (wild if d.keys == "all" else one)[self.index[d.class_]] += inv.rate
        self.nu_all, self.nu_one = wild, one
        self.session_end = 1.0 / sessions_length_mean if sessions_length_mean else 0.0
        self.capacity = config.max_keys
        self.warm = 4.0 * float(self.ttl.max())
        self._memo: dict = {}

    def _key_rates(self, rates: np.ndarray, clients: float):
        """Per class: (key rates, kill rates) arrays."""
        out = []
        for c, lam in enumerate(rates):
            if self.by_client[c]:
                n = max(clients, 1e-9)
                lam_i = np.array([lam / n])
                nu = np.array([self.nu_all[c] + self.session_end])
                out.append((lam_i, nu, n))
            else:
                lam_i = lam * self.p[c]
                out.append((lam_i, self.nu_all[c] + self.nu_one[c] * self.p[c], 1.0))
        return out

    def _char_time(self, per_class) -> float:
        lam = np.concatenate([np.broadcast_to(lam, np.shape(lam)) for lam, _, _ in per_class])
        keep = np.concatenate([np.broadcast_to(lam_i * lam_i / np.maximum(lam_i + np.broadcast_to(nu, np.shape(lam_i)),
                                                                           1e-300) / np.maximum(lam_i, 1e-300),
                                               np.shape(lam_i)) * w for lam_i, nu, w in per_class])

        def occupied(t):
            return float(np.dot(-np.expm1(-lam * t), keep))
        if occupied(1e12) <= self.capacity:
            return math.inf
        from scipy.optimize import brentq
        return brentq(lambda t: occupied(t) - self.capacity, 0.0, 1e12, xtol=1e-6, rtol=1e-6)

    def _hits(self, lam, nu, ttl, T):
        nu = np.broadcast_to(nu, lam.shape)
        safe = np.maximum(nu, 1e-300)
        h0 = np.where(nu > 0, lam * -np.expm1(-safe * min(ttl, T)) / safe, lam * min(ttl, T))
        if ttl <= T:
            return h0 / (1.0 + h0)
        s = lam + nu
        q = np.divide(lam, s, out=np.zeros_like(lam), where=s > 0) * -np.expm1(-s * T)
        h_inf = q / np.maximum(1.0 - q, 1e-300)
        gap = np.maximum(h_inf - h0, 1e-300)
        slope = lam * -np.expm1(-lam * T)
        h = h0 + gap * -np.expm1(-slope / gap * (ttl - T))
        return h / (1.0 + h)

    def rates(self, rates: np.ndarray, clients: float, age: float = math.inf) -> tuple[np.ndarray, float]:
        """(hit rate per class, expected entries) of a store with class request ``rates`` (1/s),
        ``clients`` active sessions whose keys it holds, ``age`` seconds since it started empty."""
        if age > self.warm:
            age = math.inf                       # older than every entry's life: warm
        key = (tuple(int(round(math.log(r) / ROUND)) if r > 0 else None for r in rates),
               int(round(math.log(clients + 1.0) / ROUND)),
               None if math.isinf(age) else int(round(math.log(age + 1.0) / ROUND)))
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._compute(np.asarray(rates, dtype=float), clients, age)
        return hit

    def _compute(self, rates, clients, age):
        per_class = self._key_rates(rates, clients)
        T = self._char_time(per_class)
        hits = np.zeros(len(rates))
        size = 0.0
        for c, (lam, nu, w) in enumerate(per_class):
            if rates[c] <= 0:
                continue
            h = self._hits(lam, nu, self.ttl[c], T)
            if not math.isinf(age):
                h = h * -np.expm1(-lam * age)
            share = np.full(lam.shape, 1.0 / lam.size) if self.by_client[c] else self.p[c]
            hits[c] = float(np.sum(share * h))
            occ = -np.expm1(-lam * (T if not math.isinf(T) else 1e12)) * lam / np.maximum(lam + nu, 1e-300)
            if not math.isinf(age):
                occ = np.minimum(occ, -np.expm1(-lam * age))
            size += w * float(np.sum(occ))
        return hits, min(size, float(self.capacity))
