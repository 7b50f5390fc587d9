"""The server timeout (Node ``server.timeout``, the seed's 60 s).

A request still unfinished ``timeout`` seconds after it arrived ends with outcome
``timeout`` for its client; as in Node, its handler keeps running, so its CPU, memory
and pool connection stay in use until it finishes (it is then not counted again).
A sweep every ``tick`` seconds walks the in-flight requests in arrival order, so no
timer event per request is needed; the outcome is recorded at most one tick late,
with latency exactly ``timeout``. Keep-alive settings (65 s) shape TCP connections,
which this model does not simulate.
"""
from __future__ import annotations

from collections import deque

__all__ = ["TimeoutSweeper"]


class TimeoutSweeper:
    def __init__(self, timeout: float, timed_out, tick: float = 1.0):
        self.timeout, self.tick = timeout, tick
        self.record = timed_out               # record(req, timeout): record the outcome
        self.pending: deque = deque()         # requests in arrival order (some already done)
        self.track = self.pending.append

    def process(self, env):
        pending, timeout = self.pending, self.timeout
        while True:
            yield env.timeout(self.tick)
            limit = env.now - timeout
            while pending and (pending[0].done or pending[0].t0 <= limit):
                req = pending.popleft()
                if not req.done:
                    self.record(req, timeout)
