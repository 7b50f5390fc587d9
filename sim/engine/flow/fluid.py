"""The fast mode's clock: advances the fluid state to a time, chunk by chunk, step by step.

``FlowEngine.advance(t)`` is called by ``model.FlowKernel`` before anything happens at t
(a scaling decision, an instance ready, a fault, an interval's end), so within a chunk
the fleet is fixed; the chunk is cut at the ``flow.step`` grid. Per chunk it reads the
fleet (ready instances, their processes, pools and stores), computes every step
(``step.compute``), and writes back what the components above the request path read:
loop busy time (``Process.add_fluid``), requests accepted (``Instance.add_fluid``), pool
and database figures, cache, rate-limit and breaker counters, expected outcomes and
latencies (``model.FlowMetrics``), and the sockets per instance.
"""
from __future__ import annotations

import math

import numpy as np

from capsim.engine.flow.arrivals import Arrivals
from capsim.engine.flow.cache import CacheModel
from capsim.engine.flow.latency import tail_beyond
from capsim.engine.flow.limits import by_age, flow_share, quantiles, trip_probability
from capsim.engine.flow.paths import DB, FATE_OUTCOME, RL, Endpoints
from capsim.engine.flow.queues import SmoothArrivals
from capsim.engine.flow.step import Conditions, Load, Procs, compute
from capsim.models.request import CRASHED, OUTCOMES, TERMINATED, TIMEOUT, UNAVAILABLE

__all__ = ["FlowEngine", "AGES_EVERY"]

AGES_EVERY = 300.0       # seconds: the rate-limited shares (from the sessions' ages) are recomputed this often


class _Inst:
    """What the fast mode carries for one instance between chunks."""
    def __init__(self, procs: int):
        self.backlog = np.zeros(procs)
        self.open_until = np.full(procs, -math.inf)
        self.open_rate = np.zeros(procs)
        self.shed = np.zeros(procs)
        self.sockets = 0.0
        self.born: float | None = None       # when its (fresh) stores first took traffic
        self.crashes = 0
        self.in_flight = 0.0
        self.latency = 0.0
        self.ready = False
        self.stores = None


class FlowEngine:
    def __init__(self, model):
        sc = self.sc = model.scenario
        self.model, self.h = model, sc.flow.step
        self.ep = Endpoints(sc)
        self.arrivals = Arrivals(sc.workload, sc.horizon, self.h)
        ss = sc.workload.sessions
        self.cache = CacheModel(sc.cache, ss.session_length.mean if ss else None) if sc.cache is not None else None
        self.lengths = quantiles(ss.session_length) if ss is not None else None
        self.t = 0.0
        self.state: dict[int, _Inst] = {}
        self.pending = 0.0                   # sessions whose socket must (re)connect
        self.reconnects = 0.0
        self.in_system = 0.0
        self.started = 0.0
        self._shares: dict = {}
        self._limited_memo: dict = {}
        self.smooth = SmoothArrivals()
        self.validity = None                 # set by the model
        lb = sc.load_balancer.latency
        self.outside = (lb.mean, lb.variance)
        cfg = sc.sockets
        self.socket_cfg = cfg if cfg is not None and ss is not None else None
        if self.socket_cfg is not None:
            names = self.ep.names
            self.reconnect_flow = np.array([self.socket_cfg.resolved(names)[1].count(n) for n in names], float)
        tiers = sorted({t for t in self.ep.tier if t})
        self.tiers = tiers

    # -- hooks -----------------------------------------------------------------------------
    def lost(self, inst) -> None:
        """``inst`` left the load balancer: its sockets reconnect elsewhere (Fleet.on_lost)."""
        st = self.state.get(inst.iid)
        if st is not None and st.sockets:
            self.pending += st.sockets
            if self.validity is not None:
                self.validity.flag("lost", self.t, self.t + self.h, st.sockets)
            st.sockets = 0.0
            inst.sockets = 0

    # -- the clock ------------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        if t <= self.t + 1e-12:
            return
        a, h = self.t, self.h
        k0, k1 = int(math.floor(a / h + 1e-9)) + 1, int(math.ceil(t / h - 1e-9))
        bounds = np.array([a] + [k * h for k in range(k0, k1)] + [t])
        self._lifecycle(a)
        ready = list(self.model.fleet.lb.ready)
        dts = np.diff(bounds)
        rates = self._rates(bounds, dts)
        if not ready:
            self._unavailable(rates, dts, a, t)
        else:
            self._serve(ready, rates, bounds, dts)
        self._sessions(a, t, ready)
        self.t = t

    # -- arrivals ---------------------------------------------------------------------------------
    def _rates(self, bounds, dts) -> dict:
        """Fleet-wide rates per sub-step and endpoint: session HTTP, session socket, flow, anonymous."""
        E = self.ep.count
        out = {k: np.zeros((len(dts), E)) for k in ("sess", "sock", "flow", "anon")}
        arr = self.arrivals
        for src in arr.sources:
            n = np.diff(np.interp(bounds, arr.grid, src.cum))
            r = (n / dts)[:, None] * src.mix[None, :]
            if src.client == "session":
                out["sock"] += r * self.ep.socket
                out["sess"] += r * ~self.ep.socket
            elif src.client == "flow":
                out["flow"] += r
            else:
                out["anon"] += r
        out["arrivals"] = sum(out[k] for k in ("sess", "sock", "flow", "anon")) * dts[:, None]
        return out

    def _unavailable(self, rates, dts, a, t) -> None:
        n = float(rates["arrivals"].sum())
        self.model.metrics.add_outcome(UNAVAILABLE, n, self.outside[0], self.outside[1], n)
        if n > 0:
            self.validity.flag("unavailable", a, t, n)

    # -- rate limits -------------------------------------------------------------------------------
    def _limited(self, stores: int, t: float):
        """(share of session HTTP, share of session socket, share of flow) requests per endpoint limited,
        at ``t`` (a young session has sent fewer requests in its window: the sessions' ages matter)."""
        E, rl = self.ep.count, self.sc.rate_limit
        if rl is None:
            return np.zeros(E), np.zeros(E), np.zeros(E)
        slot = (stores, int(t // AGES_EVERY))          # the ages' mix moves slowly: once per slot
        if slot in self._limited_memo:
            return self._limited_memo[slot]
        per_tier, flow = self._tier_curves(stores)
        sess = np.zeros(E)
        ss = self.sc.workload.sessions
        if ss is not None and per_tier:
            ages, n = self.arrivals.ages(t)
            total = max(float(n.sum()), 1e-12)
            for on, (span, table) in per_tier.items():
                phase = np.mod(ages, span) * ((len(table) - 1) / span)
                sess[np.array(on)] = float(np.interp(phase, np.arange(len(table)), table) @ n) / total
        if len(self._limited_memo) > 64:
            self._limited_memo.clear()
        self._limited_memo[slot] = (sess, sess, flow)
        return sess, sess, flow

    def _tier_curves(self, stores: int):
        key = stores
        if key in self._shares:
            return self._shares[key]
        E, rl = self.ep.count, self.sc.rate_limit
        curves, flow = {}, np.zeros(E)
        if rl is not None:
            ss = self.sc.workload.sessions
            mix = self.arrivals.sources[0].mix if ss is not None else np.zeros(E)
            memory = rl.store == "memory"
            for tier in self.tiers:
                on = np.array([t == tier for t in self.ep.tier])
                limit = rl.limits[tier]
                if ss is not None:
                    http = ss.request_rate * float((mix * on * ~self.ep.socket).sum())
                    sock = ss.request_rate * float((mix * on * self.ep.socket).sum())
                    lam = (http / stores if memory else http) + sock
                    span = rl.window + (1.0 / lam if rl.per_client and lam > 0 else 0.0)
                    curves[tuple(on)] = (span, by_age(lam, limit, rl.window, np.linspace(0.0, span, 4001),
                                                      rl.per_client))
                for src in self.arrivals.sources:
                    if src.client == "flow":
                        count = float((src.flow_counts * on).sum())
                        flow[on] = flow_share(count, limit, stores if memory else 1)
        self._shares[key] = (curves, flow)
        return self._shares[key]

    # -- serving ---------------------------------------------------------------------------------
    def _serve(self, ready, rates, bounds, dts) -> None:
        model, sc = self.model, self.sc
        procs = [p for inst in ready for p in inst.procs]
        P = len(procs)
        sess_h, sess_s, flow_s = self._limited(P, 0.5 * (bounds[0] + bounds[-1]))
        sockets = np.array([self.state[i.iid].sockets for i in ready])
        total_sockets = sockets.sum()
        active = max(self.arrivals.active_at(bounds[0]), total_sockets, 1e-12)
        connected = min(total_sockets / active, 1.0) if self.socket_cfg is not None else 0.0
        sock = rates["sock"] * connected
        http = rates["sess"] + rates["sock"] * (1 - connected) + rates["flow"] + rates["anon"]
        if self.pending and self.socket_cfg is not None:
            http = http.copy()
            burst = self.pending * self.reconnect_flow / dts[0]
            http[0] += burst
            rates["sess"] = rates["sess"].copy()
            rates["sess"][0] += burst
            rates["arrivals"] = rates["arrivals"].copy()
            rates["arrivals"][0] += burst * dts[0]
            self.reconnects += self.pending
            per = self.pending / len(ready)
            for i in ready:
                self.state[i.iid].sockets += per
            self.pending = 0.0
            sockets = np.array([self.state[i.iid].sockets for i in ready])
            total_sockets = sockets.sum()
        limited_http = np.divide(rates["sess"] * sess_h + rates["flow"] * flow_s
                                 + rates["sock"] * (1 - connected) * sess_s, http,
                                 out=np.zeros_like(http), where=http > 0)
        per_proc = len(ready[0].procs)
        share = np.repeat(sockets / total_sockets if total_sockets > 0 else np.full(len(ready), 1 / len(ready)),
                          per_proc) / per_proc
        load = Load(dts, http, sock, limited_http, sess_s)
        cond = self._conditions(ready)
        pr = self._procs(ready, procs, share, http, sock, bounds)
        out = compute(self.ep, load, pr, cond)
        self._record(out, rates, ready, procs, pr, bounds, dts)

    def _conditions(self, ready) -> Conditions:
        sc, model = self.sc, self.model
        db = sc.database
        inst = ready[0]
        cache = sc.cache
        replicas = db.replicas
        weights = np.array([1.0]) if replicas is None else np.array(
            [1 - replicas.read_share] + [replicas.read_share / replicas.count] * replicas.count)
        slots = [db.concurrency] + ([replicas.concurrency] * replicas.count if replicas else [])
        servers = [model.db, *model.replicas]
        refuse = np.zeros(len(servers))
        for k, server in enumerate(servers):
            kept = sum(pool.total for pool in server.pools if pool.proc.inst.stopped_at is None)
            cap = server.config.max_connections
            if kept > cap:
                refuse[k] = min(1.0, (kept - cap) / kept)
        patience = db.pool.acquire_timeout if db.pool.acquire_timeout > 0 else math.inf
        redis = cache is not None and cache.store == "redis"
        shared = model.middleware.shared_cache
        ct = db.connect_time
        return Conditions(threads=inst.proc.threads, scale=inst.proc.scale, loop=sc.instances.event_loop,
                          reject_cpu=sc.instances.reject_cpu, redis_rtt=cache.redis_rtt if redis else None,
                          redis_up=bool(shared.available) if shared is not None else True, db_down=model.db.down,
                          rtt=db.rtt, connect_time=(ct.mean, ct.variance), idle_timeout=db.pool.idle_timeout,
                          pool_min=db.pool.min, patience=patience, pool_weights=weights, slots=slots, refuse=refuse,
                          outside=self.outside, timeout=sc.instances.request_timeout,
                          balanced=0.0 if sc.load_balancer.policy == "random" else 1.0, smooth=self.smooth)

    def _procs(self, ready, procs, share, http, sock, bounds) -> Procs:
        sc, E, S = self.sc, self.ep.count, len(bounds) - 1
        now = bounds[0]
        states = [self.state[i.iid] for i in ready]
        per = len(ready[0].procs)
        for st in states:
            if st.born is None:
                st.born = now
        backlog = np.concatenate([st.backlog for st in states])
        breaker = np.concatenate([np.where(st.open_until > now, 1.0,
                                           np.minimum(1.0, st.open_rate * (sc.circuit_breaker.recovery_timeout
                                                                           if sc.circuit_breaker else 0.0)))
                                  for st in states])
        shed = np.concatenate([st.shed for st in states])
        hit = np.zeros((S, len(procs), E))
        self._sizes = np.zeros(len(procs))
        if self.cache is not None:
            P = len(procs)
            mean_http = (http * np.diff(bounds)[:, None]).sum(0) / (bounds[-1] - bounds[0])
            classes = len(self.cache.classes)
            per_class = np.zeros(classes)
            for e, c in enumerate(self.ep.cls):
                if c >= 0:
                    per_class[c] += mean_http[e]
            clients = self.arrivals.active_at(now)
            redis = sc.cache.store == "redis"
            for j, p in enumerate(procs):
                st = states[j // per]
                age = math.inf if redis else max(now - st.born, 0.0) + 0.5 * (bounds[-1] - bounds[0])
                rates = per_class if redis else per_class / P
                h, size = self.cache.rates(rates, clients, age if not redis else now + 1.0)
                hit[:, j, :] = np.where(self.ep.cls >= 0, h[np.maximum(self.ep.cls, 0)], 0.0)[None, :]
                self._sizes[j] = size
                if not redis and self.validity is not None and age < 3 * max(self.cache.ttl):
                    steady, _ = self.cache.rates(rates, clients)
                    used = steady > 0.05
                    if used.any():
                        ratio = float(np.min(h[used] / steady[used]))
                        if ratio < 0.8:
                            self.validity.flag("cache", bounds[0], bounds[-1], ratio)
        K = 1 + (sc.database.replicas.count if sc.database.replicas else 0)
        pool_max = np.array([[p.pools[k].max for p in procs] for k in range(K)], dtype=float)
        pings = np.zeros(len(procs))
        if self.socket_cfg is not None and self.socket_cfg.ping_interval > 0:
            per_socket = self.socket_cfg.ping_cpu / self.socket_cfg.ping_interval
            pings = np.repeat([st.sockets * per_socket / per for st in states], per)
        return Procs(share=share, backlog=backlog, breaker=breaker, shed=shed, hit=hit, pool_max=pool_max,
                     pings=pings)

    # -- writing back ------------------------------------------------------------------------------------
    def _record(self, out, rates, ready, procs, pr, bounds, dts) -> None:
        model, sc, v = self.model, self.sc, self.validity
        m = model.metrics
        counts, mean, var = out.counts, out.mean, out.var
        timeout = sc.instances.request_timeout
        timed = 0.0
        if timeout and float(mean.max(initial=0.0)) > timeout / 20:
            tail = np.where(counts > 0, tail_beyond(mean, np.maximum(var, 1e-30), timeout), 0.0)
            timed = float((counts * tail).sum())
            counts = counts * (1 - tail)
        arrived = float(rates["arrivals"].sum())
        per_s = counts.sum(axis=(0, 2, 3)) / dts
        latency = float((counts * mean).sum() / max(counts.sum(), 1e-300))
        in_system = float(per_s[-1] * latency)
        completed = arrived + self.in_system - in_system
        scale = completed / arrived if arrived > 0 else 1.0
        m.add_paths(counts * scale, mean, var, FATE_OUTCOME, arrived, in_system, bounds[-1] - bounds[0])
        if timed:
            m.add_outcome(TIMEOUT, timed * scale, timeout, 0.0, 0.0)
        self.in_system = in_system
        # per process: loop, pools, caches, limiters, breakers
        per = len(ready[0].procs)
        busy = out.busy.sum(0)
        acc = rates["arrivals"].sum()
        lam_p = counts.sum(axis=(0, 3)).sum(0)                       # requests per process in the chunk
        rl_tier = {}
        for e, tier in enumerate(self.ep.tier):
            if tier:
                rl_tier.setdefault(tier, np.zeros(len(procs)))
                rl_tier[tier] += counts[RL][:, :, e].sum(0)
        shared_counted = set()
        for j, p in enumerate(procs):
            p.add_fluid(float(busy[j]), float(out.queue[j]))
            for k, pool in enumerate(p.pools):
                pool.add_fluid(float(out.held[k, :, j].sum()), float(out.in_use[k, j]), float(out.waiting[k, j]),
                               float(out.kept[k, j]))
            if p.cache is not None:
                hits, looks = out.hits[:, j, :].sum(0), out.lookups[:, j, :].sum(0)
                for e, c in enumerate(self.ep.cls):
                    if c >= 0:
                        p.cache.hits[c] += float(hits[e])
                        p.cache.misses[c] += float(looks[e] - hits[e])
                if p.cache.kb_per_key:
                    p.cache.fluid_keys = float(self._sizes[j])
            gate = p.gate
            if gate is not None and gate.limiter is not None:
                for tier, arr in rl_tier.items():
                    gate.limiter.rejected[tier] += float(arr[j])
            if gate is not None and gate.shedder is not None:
                gate.shedder.shed += float(counts[3][:, j, :].sum())
        for i, inst in enumerate(ready):
            st = self.state[inst.iid]
            inst.add_fluid(float(lam_p[i * per:(i + 1) * per].sum()))
            st.backlog = pr.backlog[i * per:(i + 1) * per].copy()
            st.in_flight = in_system / len(ready)
            st.latency = latency
        self._breakers(out, procs, ready, bounds, dts)
        self._shedding(out, procs, ready, counts, dts, bounds)
        servers = [model.db, *model.replicas]
        for k, server in enumerate(servers):
            conns = sum(pool.total for pool in server.pools if pool.proc.inst.stopped_at is None)
            server.add_fluid(float(out.query_seconds[k].sum()), float(conns))
            if conns > server.config.max_connections:
                v.flag("connections", bounds[0], bounds[-1], conns)
            if sc.database.concurrency and (out.db_rho[k] > v.limit).any():
                v.flag("database", bounds[0], bounds[-1], float(out.db_rho[k].max()))
        m.add_pool_waits(float(out.acquires.sum()), out.pool_wait, float((counts[5]).sum()),
                         sc.database.pool.acquire_timeout)
        self._check(out, bounds)

    def _breakers(self, out, procs, ready, bounds, dts) -> None:
        cfg = self.sc.circuit_breaker
        if cfg is None:
            return
        per = len(ready[0].procs)
        fail = out.db_fail                                         # (S, P)
        asked = out.acquires / np.maximum(dts[:, None], 1e-12)
        thr = cfg.failure_threshold
        for j, p in enumerate(procs):
            st = self.state[ready[j // per].iid]
            jj = j % per
            f = float(fail[-1, j])
            lam = float(asked[-1, j])
            if f >= 0.5 and lam * dts[-1] * f >= thr:
                if st.open_until[jj] <= bounds[-1]:
                    p.breaker.counts[("closed", "open")] = p.breaker.counts.get(("closed", "open"), 0) + 1
                st.open_until[jj] = bounds[-1] + cfg.recovery_timeout
                st.open_rate[jj] = 0.0
            else:
                rate = lam * (1 - f) * f ** thr
                st.open_rate[jj] = rate
                if rate > 0:
                    p.breaker.counts[("closed", "open")] = p.breaker.counts.get(("closed", "open"), 0) + rate * (
                        bounds[-1] - bounds[0])
        opened = np.array([self.state[ready[j // per].iid].open_until[j % per] > bounds[-1] for j in range(len(procs))])
        if opened.any():
            self.validity.flag("breaker", bounds[0], bounds[-1], float(opened.mean()))

    def _shedding(self, out, procs, ready, counts, dts, bounds) -> None:
        cfg = self.sc.circuit_breaker
        if cfg is None or cfg.shed_rps is None:
            return
        per = len(ready[0].procs)
        lam = counts.sum(axis=(0, 3))[-1] / dts[-1]                 # requests per second per process
        trip = trip_probability(lam, cfg.shed_rps * cfg.shed_window, cfg.shed_window)
        share = -np.expm1(-trip / cfg.shed_window * cfg.shed_duration)
        for j in range(len(procs)):
            self.state[ready[j // per].iid].shed[j % per] = share[j]
        if (share > 1e-3).any():
            self.validity.flag("shed", bounds[0], bounds[-1], float(share.max()))

    def _check(self, out, bounds) -> None:
        v, lim = self.validity, self.validity.limit
        t0, t1 = bounds[0], bounds[-1]
        if (out.rho > lim).any():
            v.flag("loop", t0, t1, float(out.rho.max()))
        backlog = max((st.backlog.max() for st in self.state.values() if st.ready), default=0.0)
        if backlog > 1e-6:
            v.flag("backlog", t0, t1, float(backlog))
        if (out.pool_load > lim).any():
            v.flag("pool", t0, t1, float(out.pool_load.max()))
        if (out.pool_abandon > 1e-3).any():
            v.flag("pool_timeout", t0, t1, float(out.pool_abandon.max()))
        model = self.model
        shared = model.middleware.shared_cache
        if model.db.down or (shared is not None and not shared.available):
            v.flag("outage", t0, t1, 1.0)

    # -- lifecycle and sessions ------------------------------------------------------------------------
    def _lifecycle(self, now: float) -> None:
        """Crashes and stops since the last chunk: what was in flight on them."""
        fleet, m = self.model.fleet, self.model.metrics
        ready = set(id(i) for i in fleet.lb.ready)
        for inst in fleet.instances:
            st = self.state.get(inst.iid)
            if st is None:
                st = self.state[inst.iid] = _Inst(len(inst.procs))
                st.crashes = inst.crashes
            is_ready = id(inst) in ready
            if st.ready and not is_ready:
                lost = st.in_flight + float(st.backlog.sum()) / max(st.latency, 1e-3) * 0
                if inst.crashes > st.crashes:
                    m.add_outcome(CRASHED, st.in_flight, st.latency / 2, 0.0, 0.0)
                    self.validity.flag("lost", now, now + self.h, 0.0)
                else:
                    wait = float(st.backlog.max()) / max(inst.proc.threads, 1)
                    if wait > self.sc.instances.shutdown_delay:
                        share = 1 - self.sc.instances.shutdown_delay / wait
                        m.add_outcome(TERMINATED, st.in_flight * share, self.sc.instances.shutdown_delay, 0.0, 0.0)
                self.in_system = max(self.in_system - lost, 0.0)
                st.backlog[:] = 0.0
                st.in_flight = 0.0
                st.born = None
            if inst.crashes > st.crashes:
                st.crashes = inst.crashes
                st.born = None
            st.ready = is_ready

    def _sessions(self, a: float, t: float, ready) -> None:
        arr = self.arrivals
        if arr.sessions is None:
            return
        starts = arr.starts(a, t)
        self.started += starts
        if self.socket_cfg is None:
            return
        ends = max(starts - (arr.active_at(t) - arr.active_at(a)), 0.0)
        states = [self.state[i.iid] for i in ready]
        total = sum(st.sockets for st in states)
        if total > 0:
            keep = max(1.0 - ends / total, 0.0)
            for st in states:
                st.sockets *= keep
        else:
            self.pending = max(self.pending - ends, 0.0)
        if states:
            per = starts / len(states)
            for st in states:
                st.sockets += per
        else:
            self.pending += starts
        for inst in ready:
            inst.sockets = int(round(self.state[inst.iid].sockets))

    def fidelity_block(self) -> dict:
        return self.validity.block(self.h)

    @staticmethod
    def outcome_names() -> tuple:
        return OUTCOMES
