"""What the fast mode needs to know about each endpoint, as arrays over the endpoints.

Means and variances of the handler's CPU slices and of a query (exact, from the
distributions), the number of queries, the share that needs the database, the cache
class (index, -1 for none) and the rate-limit tier; and the fates a request can meet,
each mapped to its outcome.
"""
from __future__ import annotations

import numpy as np

from capsim.models.request import CIRCUIT_OPEN, DB_ERROR, DB_REFUSED, OK, POOL_TIMEOUT, RATE_LIMITED, SHED

__all__ = ["Endpoints", "FATES", "FATE_OUTCOME", "NODB", "DB", "RL", "SHEDDED", "CIRC", "POOL_TO", "REFUSED",
           "DB_ERR"]

FATES = ("ok_memory", "ok_database", "rate_limited", "shed", "circuit_open", "pool_timeout", "db_refused",
         "db_error")
NODB, DB, RL, SHEDDED, CIRC, POOL_TO, REFUSED, DB_ERR = range(len(FATES))
FATE_OUTCOME = (OK, OK, RATE_LIMITED, SHED, CIRCUIT_OPEN, POOL_TIMEOUT, DB_REFUSED, DB_ERROR)


class Endpoints:
    """Per-endpoint arrays (in the scenario's endpoint order)."""

    def __init__(self, scenario):
        eps = scenario.workload.endpoints
        self.names = list(eps)
        vals = list(eps.values())
        arr = lambda f: np.array([f(e) for e in vals], dtype=float)  # noqa: E731
        self.pre_m, self.pre_v = arr(lambda e: e.cpu_pre.mean), arr(lambda e: e.cpu_pre.variance)
        self.post_m, self.post_v = arr(lambda e: e.cpu_post.mean), arr(lambda e: e.cpu_post.variance)
        self.nq = arr(lambda e: e.queries)
        self.q_m, self.q_v = arr(lambda e: e.query_time.mean), arr(lambda e: e.query_time.variance)
        cache = scenario.cache
        classes = list(cache.classes) if cache is not None else []
        self.cls = np.array([classes.index(e.cache_class) if e.cache_class in classes else -1 for e in vals])
        # a cached endpoint always carries its queries: the cache decides (models.endpoints._Drawn)
        self.p_db = np.where(self.cls >= 0, 1.0, arr(lambda e: e.db_probability)) * (self.nq > 0)
        limited = scenario.rate_limit is not None
        self.tier = [e.rate_limit_tier if limited else None for e in vals]
        sockets = scenario.sockets
        socket_eps = set(sockets.resolved(self.names)[0]) if sockets is not None and scenario.workload.sessions \
            else set()
        self.socket = np.array([n in socket_eps for n in self.names])
        self.count = len(vals)
