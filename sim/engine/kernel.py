"""The event kernel: a lean calendar for the request path beside a SimPy environment.

Requests are many and short; a SimPy process (or even an Event object) per step is
the main cost of a request-level model. The kernel keeps per-request steps as plain
tuples ``(time, seq, handler, arg)`` on a heap and calls ``handler(arg)``. Control
processes (metrics sampling, autoscaling, faults) are ordinary SimPy processes in
``kernel.env``. ``run`` interleaves both in time order; at equal times, kernel events
run before SimPy events, and among kernel events the earlier-scheduled runs first,
so a run is deterministic.

Rule: kernel handlers never trigger SimPy events; SimPy processes may schedule
kernel events (at ``now`` or later) and read model state.

Events known to lie long after ``now`` (a session's end, minutes away) go to a second
heap with ``later``: the near heap then holds only the few events of the next moments,
so each push and pop compares a few entries instead of one per open session. Before
``run`` processes events up to a time, it moves the far events due by then into the
near heap; both share one sequence, so every event runs in the same (time, order) as
with one heap.
"""
from __future__ import annotations

from heapq import heapify, heappop, heappush
from itertools import count
from typing import Any, Callable

import simpy

__all__ = ["Kernel"]

INF = float("inf")


class Kernel:
    """A heap calendar for request-path events, synchronised with ``env``."""

    def __init__(self, env: simpy.Environment | None = None):
        self.env = env if env is not None else simpy.Environment()
        self.heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self.far: list[tuple[float, int, Callable[[Any], None], Any]] = []   # events after ``horizon``
        self.seq = count()
        self.now = 0.0
        self.horizon = -INF               # while ``run`` works through events up to this time, all are in ``heap``

    def at(self, time: float, handler: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``handler(arg)`` at simulated ``time`` (never in the past)."""
        heappush(self.heap, (time, next(self.seq), handler, arg))

    def after(self, delay: float, handler: Callable[[Any], None], arg: Any = None) -> None:
        heappush(self.heap, (self.now + delay, next(self.seq), handler, arg))

    def later(self, time: float, handler: Callable[[Any], None], arg: Any = None) -> None:
        """As ``at``, for an event probably long after now: kept apart until it is near."""
        heappush(self.heap if time <= self.horizon else self.far, (time, next(self.seq), handler, arg))

    def remove(self, pred: Callable[[Callable, Any], bool]) -> list[tuple[Callable, Any]]:
        """Take out every pending event with ``pred(handler, arg)``; returns them in time order.

        O(pending events): meant for rare moments (a crash, an outage), never the hot path.
        """
        out = []
        for heap in (self.heap, self.far):
            keep = []
            for ev in heap:
                (out if pred(ev[2], ev[3]) else keep).append(ev)
            if len(keep) < len(heap):
                heap[:] = keep
                heapify(heap)
        out.sort(key=lambda ev: (ev[0], ev[1]))
        return [(ev[2], ev[3]) for ev in out]

    def run(self, until: float) -> None:
        """Advance both calendars to ``until``; events at exactly ``until`` run."""
        heap, far, env = self.heap, self.far, self.env
        while True:
            limit = self.horizon = min(env.peek(), until)
            while far and far[0][0] <= limit:
                heappush(heap, heappop(far))
            while heap and heap[0][0] <= limit:
                t, _, handler, arg = heappop(heap)
                self.now = t
                handler(arg)
            t_env = env.peek()
            if t_env <= until and (not heap or t_env < heap[0][0]) and (not far or t_env < far[0][0]):
                self.now = t_env          # SimPy callbacks read kernel.now: advance it first
                env.step()
            elif (not heap or heap[0][0] > until) and (not far or far[0][0] > until):
                break
        self.now = until
        if env.now < until:
            env.run(until=until)  # moves SimPy's clock; nothing is left to process before it
