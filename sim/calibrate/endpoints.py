"""Per-endpoint fits from a request log: the handler's CPU before and after its database step,
the share that takes the step and the query time, at the level the log allows.

Three levels, by the columns the log has (``basis``):

- ``server timings``: ``cpu_pre`` / ``cpu_post`` (the handler's own slices), ``db``, ``db_query``;
- ``handler time``: only ``server`` (handler entry to response write): the handler's CPU is
  taken as ``server`` minus its database time, all before the database step (``cpu_post`` 0);
- ``latency at low load``: only client latencies: the handler's CPU is taken as the latency
  of requests sent in the quietest windows (the quarter of windows with the fewest requests,
  where queueing is assumed negligible) minus the latency outside the server (the log's
  smallest latency, assumed to be the fixed part: network and HTTP). No database split.

A route with fewer than ``MIN_SAMPLES`` requests gets the log's pooled fits (said in its
notes); a log with fewer than that has no fit at all (an ``InputError`` says how many it needs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from capsim.calibrate.errors import InputError
from capsim.calibrate.event_loop import query_bounds
from capsim.calibrate.fit import MIN_SAMPLES, Fit, fit_censored, fit_distribution

__all__ = ["EndpointFit", "fit_endpoints", "basis_of", "low_load", "share_interval", "LOW_LOAD_WINDOW"]

LOW_LOAD_WINDOW = 60.0          # s: windows for "the quietest quarter" when only latencies are known


@dataclass
class EndpointFit:
    name: str
    requests: int
    weight: float                                   # share of the log's requests
    weight_ci: tuple[float, float]
    cpu_pre: Fit
    cpu_post: Fit | None                            # None: not identified (taken as 0)
    db_probability: float | None                    # None: not identified
    db_ci: tuple[float, float] | None
    query_time: Fit | None
    basis: str
    own: bool = True                                # False: too few requests, the pooled fits
    notes: list[str] = field(default_factory=list)
    query_how: str = ""                             # how the query time was measured


def share_interval(k: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval of a share k/n."""
    if n == 0:
        return (float("nan"), float("nan"))
    r = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return (float(r.low), float(r.high))


def basis_of(log) -> str:
    if log.has("cpu_pre", "cpu_post"):
        return "server timings"
    if log.has("server"):
        return "handler time"
    if log.has("latency"):
        return "latency at low load"
    raise InputError.one(log.source or log.name, "no latency or server timing column: nothing to fit the "
                                                 "handler's CPU from (map one with --col latency=COLUMN:ms)")


def low_load(m: pd.DataFrame, window: float = LOW_LOAD_WINDOW) -> pd.Series:
    """Requests sent in the quarter of windows with the fewest requests (at least one window)."""
    w = np.floor(m.t / window)
    counts = w.map(w.value_counts())
    return counts <= counts.quantile(0.25)


def _fit(values, what: str, log, route: str) -> Fit:
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < MIN_SAMPLES:
        raise InputError.one(log.source or log.name, f"{what}: {len(x)} measured requests with it"
                             f"{'' if route == '*' else f' on route {route!r}'}: a fit needs at least {MIN_SAMPLES}")
    return fit_distribution(np.clip(x, 0.0, None))


def _query(m: pd.DataFrame, bounds) -> tuple[Fit | None, str, int]:
    """The query as the database and the round trip take it (``event_loop.query_bounds``): exact where its
    result found the loop idle, interval-censored where it queued behind other work; without the event
    loop, the handler's view (query sent to result seen, the wait for a busy loop included)."""
    dbs = m[(m.db == 1) & m.db_query.notna()]
    if bounds is None:
        q = dbs.db_query.to_numpy(dtype=float)
        if len(q) < MIN_SAMPLES:
            return None, "", len(q)
        return fit_distribution(np.clip(q, 0.0, None)), "query sent to result seen (the wait for a busy loop " \
                                                        "included)", len(q)
    b = bounds.reindex(dbs.index).dropna()
    if len(b) < MIN_SAMPLES:
        return None, "", len(b)
    ex = b[~b.queued.astype(bool)]
    ce = b[b.queued.astype(bool)]
    fit = fit_censored(ex.lo.to_numpy(), ce.lo.to_numpy(), ce.hi.to_numpy())
    return fit, (f"query sent to result seen minus the loop's reply work: {len(ex)} results found the loop idle "
                 f"(exact), {len(ce)} queued behind other work (interval-censored), maximum likelihood over both"), len(b)


def _one(name: str, m: pd.DataFrame, n_all: int, log, basis: str, bounds, outside: float) -> EndpointFit:
    ok = m[m.outcome == "ok"]
    notes = []
    if basis == "server timings":
        pre, post = _fit(m.cpu_pre, "cpu_pre", log, name), _fit(ok.cpu_post, "cpu_post", log, name)
        notes.append(f"cpu_pre: {pre.describe()} (the handler's first slice, as spent)")
        notes.append(f"cpu_post: {post.describe()}")
    elif basis == "handler time":
        db_time = sum(m[c].fillna(0.0) for c in ("db_acquire", "db_query") if c in m)
        pre, post = _fit(m.server - db_time, "server", log, name), None
        notes.append(f"cpu_pre: {pre.describe()} (assumed: the handler time minus its database time is CPU, all "
                     f"before the database step; cpu_post not in the log: 0)")
    else:
        quiet = m[low_load(m) & (m.outcome == "ok")] if len(m) else m
        pre, post = _fit(quiet.latency - outside, "latency", log, name), None
        notes.append(f"cpu_pre: {pre.describe()} (assumed: latency of the {len(quiet)} requests sent in the quietest "
                     f"quarter of {LOW_LOAD_WINDOW:g} s windows minus {1e3 * outside:.3f} ms outside the server; "
                     f"no queueing there, no database split)")
    p_db = db_ci = query = None
    how = ""
    if "db" in m and basis != "latency at low load":
        k = int(m.db.sum())
        p_db, db_ci = k / len(m), share_interval(k, len(m))
        notes.append(f"db_probability = {p_db:.4f} [95% CI {db_ci[0]:.4f}, {db_ci[1]:.4f}]: {k} of {len(m)} requests "
                     f"took the database step")
        if k and "db_query" in m:
            query, how, nq = _query(m, bounds)
            if query is not None:
                notes.append(f"query_time: {query.describe()} ({how}; the round trip included)")
            else:
                notes.append(f"query_time: {nq} queries, a fit needs {MIN_SAMPLES}: the base scenario's")
    else:
        notes.append("db_probability and query_time: not in the log; the base scenario's")
    share = share_interval(len(m), n_all)
    return EndpointFit(name, len(m), len(m) / n_all, share, pre, post, p_db, db_ci, query, basis, True, notes,
                       how if query is not None else "")


def fit_endpoints(log, loop=None, outside: float = 0.0) -> tuple[EndpointFit, dict[str, EndpointFit]]:
    """(the pooled fit over every measured request, route -> its fit)."""
    m = log.measured
    if len(m) < MIN_SAMPLES:
        raise InputError.one(log.source or log.name, f"{len(m)} measured requests: calibration needs at least "
                                                     f"{MIN_SAMPLES}")
    basis = basis_of(log)
    bounds = query_bounds(log, loop) if loop is not None and log.has("db_query", "db_acquire") else None
    pooled = _one("*", m, len(m), log, basis, bounds, outside)
    out = {}
    for route, part in m.groupby("route", sort=True):
        if len(part) >= MIN_SAMPLES:
            try:
                out[route] = _one(route, part, len(m), log, basis, bounds, outside)
                continue
            except InputError:
                pass            # e.g. too few ok requests for cpu_post: the pooled fits
        share = share_interval(len(part), len(m))
        out[route] = EndpointFit(route, len(part), len(part) / len(m), share, pooled.cpu_pre, pooled.cpu_post,
                                 pooled.db_probability, pooled.db_ci, pooled.query_time, basis, False,
                                 [f"{len(part)} requests, too few for its own fits (needs {MIN_SAMPLES}): the log's "
                                  f"pooled fits"], pooled.query_how)
    return pooled, out
