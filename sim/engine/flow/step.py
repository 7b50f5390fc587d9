"""One chunk of fast-mode steps: the operating point of every ready process, in closed form.

Arrays are (steps S, processes P, endpoints E). Per process, from its arrivals:

1. the middleware: the shed share and the rate-limited share per endpoint (``limits``);
2. the cache: hit rates per class (``cache.CacheModel``) decide who needs the database;
3. the event loop: tasks ARRIVE, LOOKUP (Redis), READY, REPLY, FAIL and the socket pings
   (WORK), their rates and first two moments, into ``queues.loop_wait``; work beyond the
   loop's capacity becomes a fluid backlog carried to the next step;
4. the pool: M/M/c+D (``queues.mmcd``) with the hold time from acquisition to the end of
   the releasing task (queries, the replies' waits for the loop, the releasing task);
   the database server's slots as M/G/c; loop and pool are solved twice (the pool's
   failures are loop tasks, the loop's waits hold connections);
5. every path's latency: mean and variance of the sum of its parts, for the histograms
   (``latency``) and the server timeout (the tail beyond ``request_timeout``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from capsim.engine.flow.paths import CIRC, DB, DB_ERR, FATES, NODB, POOL_TO, REFUSED, RL, SHEDDED
from capsim.engine.flow.queues import RHO_CAP, erlang_c, loop_wait, mmcd

__all__ = ["Load", "Procs", "Conditions", "StepOut", "compute"]


@dataclass
class Load:
    """Fleet-wide arrival rates (1/s) per sub-step and endpoint, by who sends them."""
    dt: np.ndarray                  # (S,) seconds
    http: np.ndarray                # (S, E) balanced over the processes
    sock: np.ndarray                # (S, E) over sessions' sockets (sticky)
    limited_http: np.ndarray        # (S, E) rate-limited share of ``http`` (window arithmetic)
    limited_sock: np.ndarray        # (E,) rate-limited share of ``sock``


@dataclass
class Procs:
    """The ready processes (one row each) and what they carry from step to step."""
    share: np.ndarray               # (P,) share of the socket requests
    backlog: np.ndarray             # (P,) fluid backlog, work seconds (updated in place)
    breaker: np.ndarray             # (P,) 1 while the circuit breaker is open
    shed: np.ndarray                # (P,) share shed by the maintenance page
    hit: np.ndarray                 # (S, P, E) hit rate of each endpoint's cache class (0 uncached)
    pool_max: np.ndarray            # (K, P) connections of each process's pools (primary, replicas)
    pings: np.ndarray               # (P,) socket ping CPU per second


@dataclass
class Conditions:
    """What holds for the whole chunk."""
    threads: int
    scale: float                    # wall seconds per CPU second
    loop: object                    # EventLoopConfig
    reject_cpu: float
    redis_rtt: float | None         # None: in-memory cache
    redis_up: bool
    db_down: bool
    rtt: float
    connect_time: tuple             # (mean, var)
    idle_timeout: float
    pool_min: int
    patience: float                 # acquire timeout (inf: wait forever)
    pool_weights: np.ndarray        # (K,) share of database steps per pool
    slots: list                     # per pool's server: concurrency or None
    refuse: np.ndarray              # (K,) share of opens refused (max_connections)
    outside: tuple                  # (mean, var) latency outside the server
    timeout: float | None
    balanced: float = 1.0           # 1: round robin (Erlang arrivals per process), 0: random
    smooth: object = None           # queues.SmoothArrivals of the run


@dataclass
class StepOut:
    counts: np.ndarray              # (F, S, P, E) expected requests
    mean: np.ndarray                # (F, S, P, E)
    var: np.ndarray                 # (F, S, P, E)
    busy: np.ndarray                # (S, P) loop wall seconds worked
    queue: np.ndarray               # (P,) tasks waiting at the end
    rho: np.ndarray                 # (S, P) utilisation (offered, may exceed 1)
    pool_load: np.ndarray           # (S, P) pool utilisation (offered / connections)
    pool_abandon: np.ndarray        # (S, P)
    held: np.ndarray                # (K, S, P) connection-seconds
    in_use: np.ndarray              # (K, P) at the end
    waiting: np.ndarray             # (K, P)
    kept: np.ndarray                # (K, P) connections open
    acquires: np.ndarray            # (S, P) acquisitions
    pool_wait: tuple                # (count waited, mean, second moment) of waits that were served
    db_fail: np.ndarray             # (S, P) share of database calls that failed
    db_rho: np.ndarray              # (K, S) server slot utilisation
    query_seconds: np.ndarray       # (K, S) query-seconds at each server
    lookups: np.ndarray             # (S, P, E) cache reads (hits + misses)
    hits: np.ndarray                # (S, P, E)
    extra: dict = field(default_factory=dict)


def compute(ep, load: Load, procs: Procs, cond: Conditions) -> StepOut:
    S, E = load.http.shape
    P = len(procs.share)
    dt = load.dt[:, None, None]
    lam = load.http[:, None, :] / P + load.sock[:, None, :] * procs.share[None, :, None]           # (S,P,E)
    limited = (load.http[:, None, :] / P * load.limited_http[:, None, :]
               + load.sock[:, None, :] * procs.share[None, :, None] * load.limited_sock[None, None, :])
    rl_share = np.divide(limited, lam, out=np.zeros_like(lam), where=lam > 0)
    shed = procs.shed[None, :, None]
    admit = (1 - shed) * (1 - rl_share)
    sc, lp = cond.scale, cond.loop
    hit = procs.hit if (cond.redis_rtt is None or cond.redis_up) else np.zeros_like(procs.hit)
    cached = ep.cls >= 0
    need = np.where(cached[None, None, :], 1.0 - hit, ep.p_db[None, None, :]) * (ep.nq > 0)
    redis = cond.redis_rtt is not None
    lookups = lam * admit * cached
    breaker = procs.breaker[None, :, None]
    db_rate = lam * admit * need                                    # database steps asked for
    asked = db_rate * (1 - breaker)                                 # reaching the pool (or the down server)
    down = 1.0 if cond.db_down else 0.0

    # -- task costs (CPU seconds, before the speed scale) ------------------------------------------
    rq, rs, qc = lp.request_cpu, lp.response_cpu, lp.query_cpu
    pre_m, pre_v, post_m, post_v = ep.pre_m, ep.pre_v, ep.post_m, ep.post_v
    arrive_full = rq + pre_m + post_m + rs
    arrive_db = rq + pre_m                                          # ends by asking the pool (or Redis)
    reject = rq + cond.reject_cpu + rs
    nq = ep.nq
    wl = np.zeros((S, P))
    vw = np.zeros((S, P))
    w_db = [np.zeros(S) for _ in cond.slots]
    pa = np.zeros((S, P))
    p_open = np.zeros((S, P))
    waits_served = np.zeros((S, P))
    wait_share = np.zeros((S, P))
    hold = np.zeros((S, P))
    result = None
    redis_cached = redis & cached                                   # (E,) reads Redis before deciding
    r_share = shed + (1 - shed) * rl_share
    for _ in range(2):
        # the loop's tasks: rate, work and second moment summed over endpoints, per (s, p)
        served = asked * (1 - down) * (1 - pa[..., None]) * (1 - cond.refuse @ cond.pool_weights)
        failed = asked - served
        memory_m = (1 - need) * arrive_full + need * breaker * (arrive_db + rs) + need * (1 - breaker) * arrive_db
        memory_s2 = ((1 - need) * (arrive_full ** 2 + pre_v + post_v) + need * breaker * ((arrive_db + rs) ** 2 + pre_v)
                     + need * (1 - breaker) * (arrive_db ** 2 + pre_v))
        adm_m = np.where(redis_cached, arrive_db, memory_m)
        adm_s2 = np.where(redis_cached, arrive_db ** 2 + pre_v, memory_s2)
        m_arr = lam * (r_share * reject + admit * adm_m)
        s2_arr = lam * (r_share * reject ** 2 + admit * adm_s2)
        tasks_l, tasks_m, tasks_s2 = lam.sum(-1), m_arr.sum(-1), s2_arr.sum(-1)
        if redis:
            lk_full = qc + post_m + rs
            lk_m = lookups * ((1 - need) * lk_full + need * breaker * (qc + rs) + need * (1 - breaker) * qc)
            lk_s2 = lookups * ((1 - need) * (lk_full ** 2 + post_v) + need * breaker * (qc + rs) ** 2
                               + need * (1 - breaker) * qc ** 2)
            tasks_l, tasks_m, tasks_s2 = tasks_l + lookups.sum(-1), tasks_m + lk_m.sum(-1), tasks_s2 + lk_s2.sum(-1)
        last = qc + post_m + rs
        rep_l = served * nq
        rep_m = served * ((nq - 1) * qc + last)
        rep_s2 = served * ((nq - 1) * qc * qc + last * last + post_v)
        fail_l = failed.sum(-1)
        opens = served * p_open[..., None]
        tasks_l = tasks_l + rep_l.sum(-1) + fail_l + opens.sum(-1) + procs.pings[None, :] * (procs.pings[None, :] > 0)
        tasks_m = tasks_m + rep_m.sum(-1) + fail_l * rs + opens.sum(-1) * lp.connect_cpu + procs.pings[None, :]
        tasks_s2 = (tasks_s2 + rep_s2.sum(-1) + fail_l * rs * rs + opens.sum(-1) * lp.connect_cpu ** 2
                    + procs.pings[None, :] ** 2)
        offered = tasks_m * sc
        # requests dealt out in turn (round robin) arrive as an Erlang-P stream: the share of the loop's
        # work that comes with them (their replies too) arrives smooth, SCV 1/P; socket requests and pings: 1
        dealt_share = np.divide(load.http[:, None, :] / P, lam, out=np.zeros_like(lam), where=lam > 0) * cond.balanced
        dealt = (dealt_share * (m_arr + rep_m + (lk_m if redis else 0.0))).sum(-1)
        ca2 = np.divide(tasks_m - dealt * (1 - 1 / P), tasks_m, out=np.ones_like(tasks_m), where=tasks_m > 0)
        kinds = _kinds(lam, m_arr, s2_arr, rep_l, rep_m, rep_s2, sc)
        smooth = None
        if cond.threads == 1 and cond.smooth is not None:
            def smooth(r, c, kinds=kinds):
                keys = np.round(r / 0.02) * 1000 + np.round(c / 0.05)
                uniq, inv = np.unique(keys, return_inverse=True)
                first = [int(np.flatnonzero(inv == u)[0]) for u in range(len(uniq))]
                vals = np.array([cond.smooth.factor(float(r.flat[i]), float(c.flat[i]), kinds) for i in first])
                return vals[inv].reshape(r.shape)
        rho, wq, p_wait, work = loop_wait(tasks_l, offered, tasks_s2 * sc * sc, cond.threads, lp.wakeup_cpu * sc,
                                          ca2, smooth)
        wl = wq
        vw = np.where(p_wait > 0, 2 * wq * wq / np.maximum(p_wait, 1e-300), 0.0) - wq * wq
        # -- the database server(s) and the pool(s) ------------------------------------------------
        hold_e = nq * (ep.q_m + cond.rtt) + (nq - 1) * (wl[..., None] + qc * sc) + wl[..., None]
        w_db = []
        for k, slots in enumerate(cond.slots):
            qrate = (served * cond.pool_weights[k] * nq).sum(axis=(1, 2))
            if slots is None:
                w_db.append(np.zeros(S))
                continue
            qm = float(np.mean(ep.q_m[nq > 0])) if (nq > 0).any() else 0.0
            a = qrate * qm
            cs2 = float(np.mean((ep.q_v / np.maximum(ep.q_m, 1e-300) ** 2)[nq > 0])) if (nq > 0).any() else 1.0
            pw = erlang_c(slots, np.minimum(a, slots * RHO_CAP))
            w_db.append(np.where(a < slots, pw * (1 + cs2) / 2 * qm / np.maximum(slots - a, 1e-9), qm * 50))
        wdb = sum(w * cond.pool_weights[k] for k, w in enumerate(w_db))
        hold_e = hold_e + nq * wdb[:, None, None]
        weights = np.maximum(asked, 1e-300)
        hold = (hold_e * weights).sum(-1) / weights.sum(-1)
        last_mean = (weights * last).sum(-1) / weights.sum(-1)
        hold = hold + wait_share * last_mean * sc        # with a waiter, it takes over when the releasing task ends
        lam_db = asked.sum(-1)
        mu = 1.0 / np.maximum(hold, 1e-9)
        pa = np.zeros((S, P))
        waits_served = np.zeros((S, P))
        wait_share = np.zeros((S, P))
        for k in range(len(cond.slots)):
            w = cond.pool_weights[k]
            if w <= 0 or not lam_db.any():
                continue
            cmax = procs.pool_max[k]
            groups = [(int(c), cmax == c) for c in np.unique(cmax)]
            for c, on in groups:
                r = mmcd(lam_db[:, on] * w, mu[:, on], c, cond.patience)
                pa[:, on] += w * r["p_abandon"]
                waits_served[:, on] += w * np.where(np.isfinite(r["mean_wait_served"]), r["mean_wait_served"], 1e6)
                wait_share[:, on] += w * r["p_wait_served"]
        p_open = _p_open(lam_db, hold, procs.pool_max[0], cond.idle_timeout, cond.pool_min) \
            if (cond.connect_time[0] > 0 or lp.connect_cpu > 0) and lam_db.any() else np.zeros((S, P))
        result = (rho, offered, p_wait, work)
    rho, offered, p_wait, work = result

    # -- backlog: work beyond the loop's capacity waits, carried to the next step ----------------------
    cap = float(cond.threads)
    busy = np.zeros((S, P))
    backlog_wait = np.zeros((S, P))
    b = procs.backlog.copy()
    for s in range(S):
        h = load.dt[s]
        total = b + work[s] * h
        done = np.minimum(total, cap * h)
        b_end = total - done
        backlog_wait[s] = (b + b_end) / 2 / cap
        busy[s] = done
        b = b_end
    procs.backlog[:] = b
    wl = wl + backlog_wait
    wl3 = wl[..., None]
    vw3 = vw[..., None]

    # -- paths: counts, means and variances -------------------------------------------------------------
    F = len(FATES)
    counts = np.zeros((F, S, P, E))
    mean = np.zeros((F, S, P, E))
    var = np.zeros((F, S, P, E))
    n = lam * dt
    out_m, out_v = cond.outside
    counts[SHEDDED] = n * shed
    counts[RL] = n * (1 - shed) * rl_share
    for f in (SHEDDED, RL):
        mean[f] = wl3 + reject * sc
        var[f] = vw3
    redis_m = (cond.redis_rtt + wl3 + qc * sc) if redis else 0.0
    redis_v = vw3 if redis else 0.0
    is_cached = cached[None, None, :]
    counts[NODB] = n * admit * (1 - need)
    mean[NODB] = wl3 + arrive_full * sc + np.where(is_cached, redis_m, 0.0)
    var[NODB] = vw3 + (pre_v + post_v) * sc * sc + np.where(is_cached, redis_v, 0.0)
    base_m = wl3 + arrive_db * sc + np.where(is_cached, redis_m, 0.0)
    base_v = vw3 + pre_v * sc * sc + np.where(is_cached, redis_v, 0.0)
    counts[CIRC] = n * admit * need * breaker
    mean[CIRC] = base_m + rs * sc
    var[CIRC] = base_v
    asked_n = n * admit * need * (1 - breaker)
    refuse = float(cond.refuse @ cond.pool_weights)
    counts[DB_ERR] = asked_n * down
    mean[DB_ERR] = base_m + wl3 + rs * sc
    var[DB_ERR] = base_v + vw3
    live = asked_n * (1 - down)
    counts[POOL_TO] = live * pa[..., None]
    mean[POOL_TO] = base_m + cond.patience + wl3 + rs * sc if np.isfinite(cond.patience) else base_m
    var[POOL_TO] = base_v + vw3
    counts[REFUSED] = live * (1 - pa[..., None]) * refuse
    mean[REFUSED] = base_m + cond.connect_time[0] + wl3 + rs * sc
    var[REFUSED] = base_v + vw3 + cond.connect_time[1]
    counts[DB] = live * (1 - pa[..., None]) * (1 - refuse)
    ws = waits_served[..., None]
    wsh = np.maximum(wait_share[..., None], 1e-12)
    pool_m = ws
    pool_v = 2 * ws * ws / wsh - ws * ws
    ct_m, ct_v = cond.connect_time
    po = p_open[..., None]
    open_m = po * (ct_m + wl3 + lp.connect_cpu * sc)
    open_v = np.maximum(po * (ct_v + vw3 + (ct_m + wl3 + lp.connect_cpu * sc) ** 2) - open_m ** 2, 0.0)
    wdb3 = sum(w * cond.pool_weights[k] for k, w in enumerate(w_db))[:, None, None]
    q_part_m = nq * (wdb3 + ep.q_m + cond.rtt + wl3 + qc * sc)
    q_part_v = nq * (ep.q_v + vw3 + wdb3 * wdb3)
    mean[DB] = base_m + pool_m + open_m + q_part_m + (post_m + rs) * sc
    var[DB] = base_v + pool_v + open_v + q_part_v + post_v * sc * sc
    mean += out_m
    var += out_v
    mean *= counts > 0
    # -- pool and connection figures ---------------------------------------------------------------------
    K = len(cond.slots)
    served_total = (live * (1 - pa[..., None]) * (1 - refuse)).sum(-1)          # (S, P) served acquisitions
    held = np.stack([served_total * cond.pool_weights[k] * hold for k in range(K)])
    in_use = held[:, -1] / load.dt[-1]
    lam_end = asked.sum(-1)[-1]
    wait_all = (waits_served * (1 - pa) + pa * (cond.patience if np.isfinite(cond.patience) else 0))[-1]
    waiting = np.stack([lam_end * cond.pool_weights[k] * wait_all for k in range(K)])
    kept = np.minimum(np.maximum(in_use + 2.5 * np.sqrt(in_use) + (in_use > 0), cond.pool_min), procs.pool_max)
    pool_load = np.divide(asked.sum(-1) * hold, procs.pool_max[0][None, :], out=np.zeros((S, P)),
                                        where=procs.pool_max[0][None, :] > 0)
    waited_n = (served_total * wait_share * load.dt[:, None]).sum()
    cond_mean = np.divide(waits_served, np.maximum(wait_share, 1e-12))
    wsum = (served_total * wait_share * load.dt[:, None])
    pw = (waited_n, float((wsum * cond_mean).sum() / waited_n) if waited_n > 0 else 0.0)
    db_fail = np.divide((counts[POOL_TO] + counts[REFUSED] + counts[DB_ERR]).sum(-1), asked_n.sum(-1),
                        out=np.zeros((S, P)), where=asked_n.sum(-1) > 0)
    qsec = np.stack([(counts[DB] * nq * ep.q_m).sum(axis=(1, 2)) * cond.pool_weights[k] for k in range(K)])
    db_rho = np.stack([np.divide(qsec[k] / load.dt, s, out=np.zeros(S)) if s else np.zeros(S)
                       for k, s in enumerate(cond.slots)])
    queue = (tasks_l[-1] * wl[-1]) if S else np.zeros(P)
    return StepOut(counts=counts, mean=mean, var=var, busy=busy, queue=queue, rho=offered / cap,
                   pool_load=pool_load, pool_abandon=pa, held=held, in_use=in_use, waiting=waiting, kept=kept,
                   acquires=(asked.sum(-1) * (1 - down)) * load.dt[:, None], pool_wait=pw, db_fail=db_fail,
                   db_rho=db_rho, query_seconds=qsec, lookups=lookups * dt, hits=lookups * dt * hit)


def _kinds(lam, m_arr, s2_arr, rep_l, rep_m, rep_s2, sc):
    """The task mix of the first step and process: (rates, mean wall seconds, second moments) per kind."""
    rates = np.concatenate([lam[0, 0], rep_l[0, 0]])
    work = np.concatenate([m_arr[0, 0], rep_m[0, 0]]) * sc
    sq = np.concatenate([s2_arr[0, 0], rep_s2[0, 0]]) * sc * sc
    on = rates > 0
    return rates[on], work[on] / rates[on], sq[on] / rates[on]


def _p_open(lam, hold, cmax, idle_timeout: float, pool_min: int):
    """P(an acquisition opens a connection): the k-th connection closed after ``idle_timeout`` without
    the pool reaching k busy (busy ~ Poisson(lam hold), LIFO reuse keeps the low ones warm)."""
    if idle_timeout <= 0 or not np.isfinite(idle_timeout):
        return np.zeros_like(lam)
    m = lam * hold
    top = int(min(np.max(cmax), np.max(m) + 6 * np.sqrt(np.max(m)) + 10))
    out = np.zeros_like(lam)
    pk = np.exp(-m)                    # P(busy = k)
    above = np.ones_like(lam)          # P(busy >= k)
    for k in range(top):
        if k >= pool_min:
            out += pk * np.exp(-lam * above * idle_timeout)
        above = above - pk
        pk = pk * m / (k + 1)
    return out
