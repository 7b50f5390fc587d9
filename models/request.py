"""A request in flight and the outcomes a request can end with.

Outcomes: ``ok``; ``pool_timeout`` (no connection within the acquire timeout);
``db_refused`` (the server had ``max_connections`` open); ``unavailable`` (no instance
was ready to take it, a 503); ``db_error`` (the database was down); ``crashed`` (its
instance crashed); ``terminated`` (killed at the end of a scale-in's shutdown delay);
``timeout`` (no response within the server timeout: the client gets an error, the
handler keeps running, as in Node); ``rate_limited`` (a 429 from express-rate-limit);
``circuit_open`` (the circuit breaker failed it fast); ``shed`` (load shedding served
the maintenance fallback). Every request ends with exactly one outcome and a latency; one still in the system
at the horizon is counted as in flight. Nothing is dropped silently.

Two kinds of failure are told apart: ``SERVER_ERRORS`` (5xx-like: the service failed the
request) and ``REJECTED`` (4xx: ``rate_limited``, the 429 of a rate limit working as
designed). Objectives, alerts, plans and comparisons count server errors by default.
"""
from __future__ import annotations

__all__ = ["Request", "OUTCOMES", "OK", "POOL_TIMEOUT", "DB_REFUSED", "UNAVAILABLE", "DB_ERROR",
           "CRASHED", "TERMINATED", "TIMEOUT", "RATE_LIMITED", "CIRCUIT_OPEN", "SHED", "DB_FAILURES",
           "SERVER_ERRORS", "REJECTED"]

OUTCOMES = ("ok", "pool_timeout", "db_refused", "unavailable", "db_error", "crashed", "terminated",
            "timeout", "rate_limited", "circuit_open", "shed")
(OK, POOL_TIMEOUT, DB_REFUSED, UNAVAILABLE, DB_ERROR, CRASHED, TERMINATED,
 TIMEOUT, RATE_LIMITED, CIRCUIT_OPEN, SHED) = range(11)
# failures of the service (5xx-like) and requests turned away by a rate limit (4xx): every
# outcome but ``ok`` is exactly one of them
SERVER_ERRORS = ("pool_timeout", "db_refused", "unavailable", "db_error", "crashed", "terminated", "timeout",
                 "circuit_open", "shed")
REJECTED = ("rate_limited",)


class Request:
    """Per-request state; all random draws are made at arrival (common random numbers)."""
    __slots__ = ("t0", "endpoint", "cpu_pre", "cpu_post", "queries", "qi", "client",
                 "flow", "inst", "proc", "stage", "then", "heir", "waiting", "t_wait", "in_db", "gen", "done",
                 "cls", "key", "tier", "db", "verdict")

    def __init__(self, t0, endpoint, cpu_pre, cpu_post, queries, client, flow):
        self.t0 = t0              # arrival time at the load balancer (s)
        self.endpoint = endpoint  # index into the endpoint table
        self.cpu_pre = cpu_pre    # CPU seconds before the database step
        self.cpu_post = cpu_post  # CPU seconds after it
        self.queries = queries    # list of query service times, or None: no database step
        self.qi = 0               # next query to run
        self.client = client      # session id (or None for open-loop traffic)
        self.flow = flow          # (source, step) for multi-request flows, else None
        self.inst = None          # the instance serving it
        self.proc = None          # the process (event loop) serving it
        self.stage = 0            # the event-loop task it is in or queued for (models.process)
        self.then = 0             # what its task does when it ends (models.process)
        self.heir = None          # the request its task handed its connection to (sends when the task ends)
        self.waiting = False      # queued for a pool connection
        self.t_wait = 0.0         # when it asked for a connection
        self.in_db = False        # between asking for a connection and releasing it
        self.gen = 0              # the pool generation its connection belongs to (a crash or outage starts a new one)
        self.done = False         # its outcome is recorded (a timed-out one may still run)
        self.cls = -1             # cache class index (-1: not cached)
        self.key = 0              # cache key within its class
        self.tier = None          # rate-limit tier name, or None
        self.db = 0               # 0: the primary; k > 0: read replica k
        self.verdict = 0          # the outcome its response will carry


DB_FAILURES = frozenset((POOL_TIMEOUT, DB_REFUSED, DB_ERROR))   # failures of the protected database call
