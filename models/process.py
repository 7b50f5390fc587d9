"""One Node.js process: its event loop, its ``pg.Pool``(s) and its in-memory stores.

The event loop runs one task at a time (``threads`` at once, if a scenario models a
thread pool), first come first served. A task is the synchronous JavaScript between two
awaits, so its CPU is known when it starts; nothing else runs on the loop meanwhile:

- ARRIVE, a request reaches the process: ``request_cpu`` (HTTP parse, middleware), then
  the handler's ``cpu_pre``. Turned away by the middleware: ``reject_cpu`` and the 429 or
  maintenance page. Without a database step (no queries, a cache hit, or the circuit
  breaker open) the handler's ``cpu_post`` and ``response_cpu`` follow in the same task:
  CPU between two awaits is one contiguous slice. Otherwise the task ends by asking the
  pool for a connection (``pool.connect()``) or Redis for the key.
- REPLY, a query's result (or a Redis reply) reaches the process: ``query_cpu``; after
  the last query the handler releases the connection, and if a request is waiting for
  one, the connection is handed to it *now* but its query is sent only when this task
  ends (its continuation runs on the loop after the releasing callback's synchronous
  work); then ``cpu_post`` and ``response_cpu``. A reply is handled when the loop gets
  to it, so a busy loop holds connections longer.
- READY, a new connection is open: ``connect_cpu``, then the query is sent.
- FAIL, an error reaches the handler (acquire timeout, refused, database down):
  ``response_cpu`` for the 5xx.
- WORK, background work such as Socket.io pings: its CPU only.

A task that reaches an idle loop also pays ``wakeup_cpu``. ``speed`` (< 1 when the
instance has fewer vCPUs than threads to run) stretches every task's wall time.
"""
from __future__ import annotations

from collections import deque
from heapq import heappush

from capsim.models.request import CIRCUIT_OPEN, DB_FAILURES, OK

__all__ = ["Process", "Work", "ARRIVE", "REPLY", "READY", "FAIL", "WORK"]

ARRIVE, REPLY, READY, FAIL, WORK, LOOKUP = range(6)          # task kinds (``req.stage``)
RESPOND, ACQUIRE, ASK_REDIS, SEND, NOTHING = range(5)        # what the task does at its end (``req.then``)


class Work:
    """Background CPU on the loop (not a request): Socket.io pings and the like."""
    __slots__ = ("stage", "then", "inst", "cpu", "heir")

    def __init__(self, inst, cpu: float):
        self.stage, self.then, self.inst, self.cpu, self.heir = WORK, NOTHING, inst, cpu, None


class Process:
    """A Node process on an instance; ``accept(req)`` hands it a request."""

    def __init__(self, kernel, inst, index: int, loop, threads: int, speed: float, reject_cpu: float):
        self.kernel, self.inst, self.index, self.threads = kernel, inst, index, threads
        self.scale = 1.0 / speed                      # wall seconds per CPU second
        self.request_cpu, self.response_cpu = loop.request_cpu, loop.response_cpu
        self.query_cpu, self.connect_cpu, self.wakeup_cpu = loop.query_cpu, loop.connect_cpu, loop.wakeup_cpu
        self.reject_cpu = reject_cpu
        self.queue: deque = deque()                   # tasks waiting for the loop
        self.running = 0                              # tasks on the loop now
        self.ends: list[float] = []                   # when the running tasks end
        self.busy = 0.0                               # wall seconds of tasks started, ever (some in the future)
        self.handler = 0.0                            # of which the handlers' own slices (cpu_pre + cpu_post)
        self.wakeups = 0
        self.fluid_queue = 0.0                        # fast mode: expected tasks waiting (capsim.engine.flow)
        self.pool = None                              # the primary's pg.Pool
        self.pools: list = []                         # the primary's, then one per read replica
        self.cache = None                             # CacheStore (its own in-memory one, or the shared Redis)
        self.cache_rtt = 0.0                          # round trip of a Redis command (0: in memory)
        self.breaker = None                           # CircuitBreaker around the database
        self.gate = None                              # middleware: gate(req) -> False (and req.verdict) when turned away
        self._begin = (self._arrive, self._reply, self._ready, self._fail, self._work, self._redis_reply)
        self._on_end, self._on_redis = self._end, self._redis_answer

    # -- the event loop ---------------------------------------------------------------------
    def accept(self, req) -> None:
        req.proc = self
        req.stage = ARRIVE
        if self.running < self.threads and not self.queue:     # self.enqueue(req), inlined: hot path
            self._start(req, self.running == 0)
        else:
            self.queue.append(req)

    def enqueue(self, task) -> None:
        """A task (a request at some step, or ``Work``) joins the loop's queue."""
        if self.running < self.threads and not self.queue:
            self._start(task, self.running == 0)
        else:
            self.queue.append(task)

    def _start(self, task, wake: bool) -> None:
        cpu = self._begin[task.stage](task)
        if wake and self.wakeup_cpu:
            cpu += self.wakeup_cpu
            self.wakeups += 1
        k = self.kernel
        end = k.now + cpu * self.scale
        self.running += 1
        self.busy += end - k.now
        self.ends.append(end)
        heappush(k.heap, (end, next(k.seq), self._on_end, task))       # k.at, inlined: hot path

    def _end(self, task) -> None:
        self.running -= 1
        self.ends.remove(self.kernel.now)
        then = task.then
        if then == RESPOND:
            outcome = task.verdict                 # self.finish(task, outcome), inlined: hot path
            if outcome and self.breaker is not None and outcome in DB_FAILURES:
                self.breaker.failure(self.kernel.now)
            self.inst.finish(task, outcome)
        elif then == ACQUIRE:
            (self.pools[task.db] if task.db else self.pool).acquire(task)
        elif then == SEND:
            self.pools[task.db].db.query(task)
        elif then == ASK_REDIS:
            self.kernel.after(self.cache_rtt, self._on_redis, task)
        heir = task.heir
        if heir is not None:                       # the connection this task released: its new owner sends now
            task.heir = None
            self.pools[heir.db].resume(heir)
        queue = self.queue
        while queue and self.running < self.threads:
            self._start(queue.popleft(), False)

    # -- tasks: each returns its CPU seconds and sets what happens at its end ----------------------
    def _arrive(self, req) -> float:
        gate = self.gate
        if gate is not None and not gate(req):         # shed or rate limited: req.verdict says which
            req.then = RESPOND
            return self.request_cpu + self.reject_cpu + self.response_cpu
        cpu = self.request_cpu + req.cpu_pre
        self.handler += req.cpu_pre
        if req.cls >= 0 and self.cache is not None:
            if self.cache_rtt > 0:                     # a Redis GET: an await
                req.then = ASK_REDIS
                return cpu
            if req.queries is None or (self.cache.available and self.cache.get(req.cls, req.key, self.kernel.now)):
                return cpu + self._respond(req)
        elif req.queries is None:
            return cpu + self._respond(req)
        b = self.breaker                               # self._db_step(req), inlined: hot path
        if b is not None and not b.allow(self.kernel.now):
            req.verdict, req.then = CIRCUIT_OPEN, RESPOND
            return cpu + self.response_cpu
        req.then = ACQUIRE
        return cpu

    def _redis_answer(self, req) -> None:
        req.stage = LOOKUP
        self.enqueue(req)

    def _redis_reply(self, req) -> float:
        cache = self.cache
        hit = req.queries is None or (cache.available and cache.get(req.cls, req.key, self.kernel.now))
        return self.query_cpu + (self._respond(req) if hit else self._db_step(req))

    def _db_step(self, req) -> float:
        """The handler needs the database: ask the pool at the task's end, unless the breaker is open."""
        b = self.breaker
        if b is not None and not b.allow(self.kernel.now):
            req.verdict, req.then = CIRCUIT_OPEN, RESPOND
            return self.response_cpu
        req.then = ACQUIRE
        return 0.0

    def _respond(self, req) -> float:
        req.verdict, req.then = OK, RESPOND
        self.handler += req.cpu_post
        return req.cpu_post + self.response_cpu

    def _reply(self, req) -> float:
        """A query's result is handled: the next query, or release, fill the cache, respond."""
        if req.qi < len(req.queries):
            req.then = SEND
            return self.query_cpu
        now = self.kernel.now
        req.heir = self.pools[req.db].release(req)
        if self.breaker is not None:
            self.breaker.success(now)
        if req.cls >= 0 and self.cache is not None and self.cache.available:
            self.cache.put(req.cls, req.key, now)    # a SET, not awaited
        req.verdict, req.then = OK, RESPOND          # self._respond(req), inlined: hot path
        self.handler += req.cpu_post
        return self.query_cpu + (req.cpu_post + self.response_cpu)

    def _ready(self, req) -> float:
        req.then = SEND
        return self.connect_cpu

    def _fail(self, req) -> float:
        req.then = RESPOND
        return self.response_cpu

    @staticmethod
    def _work(w) -> float:
        return w.cpu

    # -- called by the pools and the database -----------------------------------------------------
    def reply(self, req) -> None:
        """A query's result reached the process."""
        req.stage = REPLY
        if self.running < self.threads and not self.queue:     # self.enqueue(req), inlined: hot path
            self._start(req, self.running == 0)
        else:
            self.queue.append(req)

    def connected(self, req) -> None:
        """The connection opened for ``req`` is ready."""
        req.stage = READY
        self.enqueue(req)

    def fail(self, req, outcome: int) -> None:
        """An error reached ``req``'s handler (pool timeout, refused, database down): it answers 5xx."""
        req.stage, req.verdict = FAIL, outcome
        self.enqueue(req)

    def finish(self, req, outcome: int) -> None:
        if outcome and self.breaker is not None and outcome in DB_FAILURES:
            self.breaker.failure(self.kernel.now)
        self.inst.finish(req, outcome)

    # -- statistics and faults ------------------------------------------------------------------
    def busy_total(self, now: float) -> float:
        """Wall seconds the loop has been busy up to ``now``, ever."""
        return self.busy - sum(e - now for e in self.ends if e > now)

    def add_fluid(self, busy_seconds: float, queued: float) -> None:
        """Fast mode (``capsim.engine.flow``): the loop worked ``busy_seconds`` (wall) over a step, and
        ``queued`` tasks are expected to wait for it at the step's end; no request is simulated."""
        self.busy += busy_seconds
        self.fluid_queue = queued

    def waiting(self) -> list:
        """Requests queued for the loop."""
        return [t for t in self.queue if t.stage != WORK]

    def reset(self, now: float) -> None:
        """A crash or kill: work not yet done is lost, the loop is idle (its events were taken out)."""
        self.busy -= sum(e - now for e in self.ends if e > now)
        self.ends, self.running, self.queue = [], 0, deque()
        self.fluid_queue = 0.0

