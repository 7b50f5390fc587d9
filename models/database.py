"""PostgreSQL behind ``pg.Pool``: per-instance pools, a global connection cap, a server.

Pool (as node-postgres ``pg.Pool`` 3.x, one per Node process): an idle connection is
reused (last released first); otherwise, below ``max``, a new one is opened
(``connect_time`` off the loop, then ``event_loop.connect_cpu`` on it); otherwise the
request waits FIFO for a release, for at most ``acquire_timeout`` (0 = forever), then
fails with ``pool_timeout``. A connection is released when the handler that holds it
runs again after its last query (a task on the event loop, ``models.process``); a
waiter gets it at once, and sends its query when that task ends. A connection idle
for ``idle_timeout`` closes, so a later burst pays the connect time again (never below
``min`` connections).

Server (as PostgreSQL): opening a connection when ``max_connections`` are open fails
("too many clients") and the request ends with ``db_refused``. The server runs at most
``concurrency`` queries at once (FIFO beyond that, so query time grows with load);
each query also pays the network round trip ``rtt``, outside the server's slots.

Pool policies: ``static`` (``max``/``min`` as given) or ``dynamic``, the seed's
``getPoolConfig``: max = min(per_instance x n, cap), min = max(min_floor, n) for n
running instances.
"""
from __future__ import annotations

from collections import deque
from heapq import heappush
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.distributions import Constant, Distribution, draws
from capsim.models.request import DB_ERROR, DB_REFUSED, POOL_TIMEOUT, Request
from capsim.models.units import Amount, Count, Duration, Share

__all__ = ["PoolConfig", "ReplicasConfig", "DatabaseConfig", "Database", "Pool"]


class PoolConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    policy: Literal["static", "dynamic"] = Field("static", description="static: max/min as given; dynamic: the seed's getPoolConfig")
    max: Count = Field(20, description="connections per instance (DB_POOL_MAX)")
    min: Amount = Field(0, description="connections kept open despite idle_timeout")
    idle_timeout: Duration = Field(30.0, description="an idle connection closes after this; 0 = never (DB_POOL_IDLE_TIMEOUT)")
    acquire_timeout: Duration = Field(2.0, description="wait for a connection at most this long, then fail; 0 waits forever (DB_POOL_CONNECTION_TIMEOUT)")
    per_instance: Count = Field(20, description="dynamic policy: connections per running instance")
    cap: Count = Field(100, description="dynamic policy: upper bound of max")
    min_floor: Amount = Field(2, description="dynamic policy: min = max(min_floor, instances)")


class ReplicasConfig(BaseModel):
    """Read replicas (the seed's future enhancement): each its own server and connection cap."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    count: Count = Field(1, description="replicas")
    read_share: Share = Field(0.5, description="share of database steps that are reads sent to a replica")
    max_connections: Count = Field(100, description="connection limit of each replica")
    concurrency: Count | None = Field(None, description="queries each replica runs at once; null = unlimited")
    pool_max: Count = Field(20, description="connections per instance to each replica")


class DatabaseConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_connections: Count = Field(100, description="server-wide connection limit (Supabase: 100)")
    concurrency: Count | None = Field(None, description="queries the server runs at once; null = unlimited")
    rtt: Duration = Field(0.001, description="network round trip added to each query")
    connect_time: Distribution = Field(Constant(value=0.02), description="time to open a connection")
    pool: PoolConfig = Field(default_factory=PoolConfig)
    replicas: ReplicasConfig | None = Field(None, description="read replicas; null = none")

    def replica(self) -> DatabaseConfig:
        """The configuration of one replica server."""
        r = self.replicas
        return self.model_copy(update={"max_connections": r.max_connections, "concurrency": r.concurrency,
                                       "pool": self.pool.model_copy(update={"max": r.pool_max}), "replicas": None})


class Database:
    """The server: connection count against ``max_connections`` and query slots."""

    def __init__(self, kernel, config: DatabaseConfig, rng):
        self.kernel, self.config = kernel, config
        self.pools: list[Pool] = []
        self.connections = 0          # open or opening, all pools
        self.refused = 0
        self.active = 0               # queries on the server (without slot limits: until their answer arrives)
        self.slots = config.concurrency
        self.queue: deque = deque()   # queries waiting for a slot
        self.busy_area = 0.0          # query-seconds (unlimited slots: added when a query starts)
        self._t_busy = kernel.now
        self.rtt = config.rtt
        self.down = False             # an outage: connections fail, open ones are broken
        self.connect_time = draws(config.connect_time, rng)
        self._on_query_done, self._on_answer = self._query_done, self._answer

    def try_open(self) -> bool:
        """Reserve a connection slot; False when the server is full."""
        if self.connections >= self.config.max_connections:
            now = self.kernel.now
            for pool in self.pools:
                pool.expire(now)
            if self.connections >= self.config.max_connections:
                self.refused += 1
                return False
        self.connections += 1
        return True

    def query(self, req) -> None:
        """Run ``req``'s next query; its process handles the reply when it arrives."""
        if self.down:
            req.in_db = False
            req.proc.fail(req, DB_ERROR)
            return
        if self.slots is None:        # no slots to free: one event, when the reply reaches the process
            q = req.queries[req.qi]
            self.busy_area += q
            self.active += 1
            k = self.kernel
            heappush(k.heap, (k.now + q + self.rtt, next(k.seq), self._on_answer, req))
        elif self.active < self.slots:
            self._start(req)
        else:
            self.queue.append(req)

    def _start(self, req) -> None:
        k = self.kernel
        self._account(k.now)
        self.active += 1
        k.at(k.now + req.queries[req.qi], self._on_query_done, req)

    def _query_done(self, req) -> None:
        self._account(self.kernel.now)
        self.active -= 1
        if self.queue:
            self._start(self.queue.popleft())
        self.kernel.after(self.rtt, self._on_answer, req)      # the answer travels back; the slot is free

    def _answer(self, req) -> None:
        if self.slots is None:
            self.active -= 1
        req.qi += 1
        req.proc.reply(req)

    def release_slots(self, events) -> None:
        """Queries whose completion events were taken out (their client died) free their slots."""
        for handler, _ in events:
            if handler == self._on_query_done or (handler == self._on_answer and self.slots is None):
                self._account(self.kernel.now)
                self.active -= 1
        while self.queue and self.slots is not None and self.active < self.slots:
            self._start(self.queue.popleft())

    def outage(self, duration: float) -> None:
        """The server goes away for ``duration``: every request waiting on it gets an error."""
        self.down = True
        mine = (self._on_query_done, self._on_answer)
        events = self.kernel.remove(lambda handler, arg: isinstance(arg, Request) and arg.in_db
                                    and (handler in mine or getattr(handler, "__self__", None) in self.pools))
        victims = {id(r): r for _, r in events}
        for pool in self.pools:
            victims.update((id(r), r) for r in pool.abandon(events))
        for req in victims.values():
            req.in_db = req.waiting = False
            req.proc.fail(req, DB_ERROR)
        self.kernel.after(duration, self._recover, None)

    def add_fluid(self, query_seconds: float, connections: float) -> None:
        """Fast mode (``capsim.engine.flow``): query-seconds run over a step and the connections open at its end."""
        self.busy_area += query_seconds
        self.connections = connections

    def _recover(self, _) -> None:
        self.down = False

    def _account(self, now: float) -> None:
        if self.slots is not None:
            self.busy_area += self.active * (now - self._t_busy)
        self._t_busy = now

    def sample(self, t0: float, t1: float, prefix: str = "db") -> dict:
        """Time-series columns for the interval [t0, t1]."""
        self._account(t1)
        busy, self.busy_area = self.busy_area, 0.0
        for pool in self.pools:
            pool.expire(t1)
        return {f"{prefix}_connections": self.connections,
                f"{prefix}_active_mean": busy / (t1 - t0),
                f"{prefix}_util": busy / ((t1 - t0) * self.slots) if self.slots else float("nan"),
                f"{prefix}_queued": len(self.queue)}


class Pool:
    """One process's ``pg.Pool``."""

    def __init__(self, kernel, db: Database, config: PoolConfig, proc):
        self.kernel, self.db, self.config, self.proc = kernel, db, config, proc
        self.max, self.min = config.max, config.min
        self.idle_timeout = config.idle_timeout if config.idle_timeout > 0 else float("inf")
        self.idle: list[float] = []       # release times of idle connections, oldest first
        self.total = 0                    # open or opening
        self.in_use = 0
        self.waiters: deque = deque()
        self.waiting = 0                  # live waiters (the deque may hold timed-out ones)
        self.timeouts = 0
        self.gen = 0                      # a crash or outage writes every connection off and starts a new generation
        self.held = 0.0                   # connection-seconds in use, up to _t_held
        self._t_held = kernel.now
        self.wait_hist = None             # LogHistogram of acquire times (set by the model)
        self._on_connected, self._on_refused = self._connected, self._refused
        self._on_unreachable = self._unreachable
        self._on_timeout = self._timeout
        db.pools.append(self)

    def resize(self, instances: int) -> None:
        c = self.config
        if c.policy == "dynamic":
            self.max = min(c.per_instance * instances, c.cap)
            self.min = max(c.min_floor, instances)

    def expire(self, now: float) -> None:
        """Close connections idle for ``idle_timeout`` (at the time they expired); 0 = never."""
        if self.config.idle_timeout <= 0:
            return
        idle, limit = self.idle, now - self.config.idle_timeout
        n = 0
        while n < len(idle) and idle[n] <= limit and self.total - n > self.min:
            n += 1
        if n:
            del idle[:n]
            self.total -= n
            self.db.connections -= n

    def _use(self, now: float, delta: int) -> None:
        self.held += self.in_use * (now - self._t_held)
        self._t_held = now
        self.in_use += delta

    def held_seconds(self, now: float) -> float:
        """Connection-seconds held by handlers, ever (for the pool's busy share): from the moment a
        handler has its connection (its continuation runs) to its release."""
        return self.held + self.in_use * (now - self._t_held)

    def add_fluid(self, held_seconds: float, in_use: float, waiting: float, total: float) -> None:
        """Fast mode (``capsim.engine.flow``): connection-seconds held over a step and the expected
        connections in use, waiters and open connections at its end (no request is simulated)."""
        self.held += held_seconds
        self.in_use, self.waiting, self.total = in_use, waiting, total

    # -- acquire ------------------------------------------------------------------------------
    def acquire(self, req) -> None:
        idle, now = self.idle, self.kernel.now
        req.t_wait = now
        req.in_db = True
        req.gen = self.gen
        if idle and idle[0] <= now - self.idle_timeout:
            self.expire(now)
        if idle:
            idle.pop()
            self.held += self.in_use * (now - self._t_held)     # self._use(now, 1), inlined: hot path
            self._t_held = now
            self.in_use += 1
            self.wait_hist.counts[0] += 1
            self.db.query(req)
        elif self.total < self.max:
            self._open(req)
        else:
            req.waiting = True
            self.waiters.append(req)
            self.waiting += 1
            if self.config.acquire_timeout > 0:
                self.kernel.after(self.config.acquire_timeout, self._on_timeout, req)

    def _open(self, req) -> None:
        self.total += 1
        db = self.db
        if db.down:
            handler = self._on_unreachable
        else:
            handler = self._on_connected if db.try_open() else self._on_refused
        self.kernel.after(next(db.connect_time), handler, req)

    def _connected(self, req) -> None:
        now = self.kernel.now
        self._use(now, 1)
        self.wait_hist.add(now - req.t_wait)
        self.proc.connected(req)          # connect_cpu on the loop, then the query

    def _refused(self, req, outcome: int = DB_REFUSED) -> None:
        self.total -= 1
        req.in_db = False
        self.proc.fail(req, outcome)
        self._serve_waiter_by_opening()

    def _unreachable(self, req) -> None:
        self._refused(req, DB_ERROR)

    def _timeout(self, req) -> None:
        if req.waiting:
            req.waiting = False
            self.waiting -= 1
            self.timeouts += 1
            req.in_db = False
            self.wait_hist.add(self.kernel.now - req.t_wait)
            self.proc.fail(req, POOL_TIMEOUT)

    # -- release ------------------------------------------------------------------------------
    def release(self, req):
        """``req``'s handler releases its connection: returns the waiter it goes to (None: idle)."""
        req.in_db = False
        if req.gen != self.gen:
            return None                   # written off by a crash or an outage since it was taken
        now = self.kernel.now
        self.held += self.in_use * (now - self._t_held)         # self._use(now, -1), inlined: hot path
        self._t_held = now
        self.in_use -= 1                  # held by a handler no more (the heir holds it once it runs)
        waiters = self.waiters
        while waiters:
            nxt = waiters.popleft()
            if nxt.waiting:
                nxt.waiting = False
                nxt.gen = self.gen
                self.waiting -= 1
                return nxt                # it sends its query when the releasing task ends
        if self.total > self.max:         # the pool shrank (dynamic policy): close it
            self.total -= 1
            self.db.connections -= 1
        else:
            self.idle.append(now)
        return None

    def resume(self, heir) -> None:
        """The waiter a released connection went to runs now: it holds the connection and sends its query."""
        now = self.kernel.now
        self.wait_hist.add(now - heir.t_wait)
        if heir.gen != self.gen:          # the connection was written off meanwhile
            heir.in_db = False
            self.proc.fail(heir, DB_ERROR)
            return
        self._use(now, 1)
        self.db.query(heir)

    def _serve_waiter_by_opening(self) -> None:
        waiters = self.waiters
        while waiters and not waiters[0].waiting:
            waiters.popleft()
        if waiters and self.total < self.max:
            nxt = waiters.popleft()
            nxt.waiting = False
            self.waiting -= 1
            self._open(nxt)

    # -- faults -------------------------------------------------------------------------------
    def abandon(self, events) -> list:
        """Its process died or the server went away: close every connection.

        ``events`` were taken out of the calendar; returns the requests that were
        queued here or at the server (their events were not in the calendar).
        """
        db, proc = self.db, self.proc
        mine = [(h, r) for h, r in events if getattr(r, "proc", None) is proc]
        db.release_slots(mine)
        queued = [r for r in db.queue if r.proc is proc]
        if queued:
            db.queue = deque(r for r in db.queue if r.proc is not proc)
        waiters = [r for r in self.waiters if r.waiting]
        connecting = sum(1 for h, _ in mine if h == self._on_connected)   # counted by the server
        db.connections -= len(self.idle) + self.in_use + connecting
        self._use(self.kernel.now, -self.in_use)
        self.idle, self.total = [], 0
        self.waiters, self.waiting = deque(), 0
        self.gen += 1
        return queued + waiters
