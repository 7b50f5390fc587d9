"""Request logs from capsim runs, as a Node server that logs its own timings would write them.

    capsim run scenario.yaml --request-log requests.csv

One CSV row per request as it completes (streamed: memory holds only the requests in
flight), in milliseconds on the simulated clock (t = 0 at the run's start):

- ``t_ms``: when the client sent it; ``latency_ms``: until the response reached the
  client (the latency outside the server included); ``outcome`` (a capsim outcome name)
  and the HTTP ``status`` a client would see (0: the connection died); ``route``: the
  endpoint; ``client``: the session id (empty for open-loop traffic); ``instance``,
  ``process``; ``phase``: ``warmup`` or ``measure`` (sent before or after the warm-up);
- the handler's own timings, as ``server.js`` of node-pg-measurements logs them:
  ``srv_in_ms`` (the handler starts: after the wake-up and ``request_cpu``), ``srv_out_ms``
  (it writes the response: before ``response_cpu``), ``server_ms`` = out - in,
  ``cpu_pre_ms`` / ``cpu_post_ms`` (its CPU slices as spent, at the process's speed; the
  second is 0 when it failed), ``db`` (1: it asked the pool for a connection),
  ``db_acquire_ms`` (asked to query sent: pool wait and any connect; to the 503 when the
  acquire timed out), ``db_query_ms`` (query
  sent to the handler seeing the last result: the database, the round trip, the wait for
  the loop and ``query_cpu``). Empty when it did not happen (or a timed-out request's
  handler had not finished when the client gave up).

Beside it, ``<log>.stats.json``: the process totals over the measured window that a
server's ``/stats`` reports (``window``, ``requests``, ``elu_active`` = the event loops'
busy seconds, ``cpu``, ``main_thread_cpu``, ``helper_threads_cpu``), the pool settings and
``start`` (the calendar time at t = 0, ``workload.start``),
so ``capsim calibrate`` can estimate the event loop's own work from a capsim log as from
a real one.

Costs nothing when not asked for: only then do instances run ``TracingProcess`` (a
``Process`` that notes each task's times) and the model call back per request.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from capsim.models.process import ACQUIRE, ARRIVE, FAIL, LOOKUP, READY, REPLY, RESPOND, SEND, WORK, Process
from capsim.models.request import OK, OUTCOMES, RATE_LIMITED, SHED, TIMEOUT

__all__ = ["TracingProcess", "RequestLogWriter", "COLUMNS", "STATUS", "stats_path"]

COLUMNS = ["t_ms", "route", "client", "instance", "process", "phase", "outcome", "status", "latency_ms",
           "srv_in_ms", "srv_out_ms", "server_ms", "cpu_pre_ms", "cpu_post_ms", "db", "db_acquire_ms", "db_query_ms"]
# the status a client sees per outcome (0: no HTTP response, the connection died or the client gave up)
STATUS = {"ok": 200, "pool_timeout": 503, "db_refused": 500, "unavailable": 503, "db_error": 500, "crashed": 0,
          "terminated": 0, "timeout": 0, "rate_limited": 429, "circuit_open": 503, "shed": 503}
SRV_IN, SRV_OUT, ACQ, SENT, SEEN = range(5)
TURNED_AWAY = frozenset((RATE_LIMITED, SHED))     # the middleware answered: the handler never ran


def stats_path(log_path) -> Path:
    """Where the process totals of a request log go: ``requests.csv`` -> ``requests.stats.json``."""
    p = Path(log_path)
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    return p.with_name(name.rsplit(".", 1)[0] + ".stats.json")


class TracingProcess(Process):
    """A ``Process`` that notes when each request's handler starts, waits, queries and answers."""

    def __init__(self, *args, trace: dict):
        super().__init__(*args)
        self.trace = trace                 # request -> [srv_in, srv_out, acquire asked, query sent, result seen]

    def _start(self, task, wake: bool) -> None:
        now = self.kernel.now
        super()._start(task, wake)
        if task.stage == WORK or task.done:
            return
        rec = self.trace.get(task)
        if rec is None:
            rec = self.trace[task] = [None] * 5
        s = self.scale
        t = now + (self.wakeup_cpu * s if wake and self.wakeup_cpu else 0.0)
        stage, then = task.stage, task.then
        if stage == ARRIVE:
            rec[SRV_IN] = t = t + self.request_cpu * s
            if then == RESPOND:           # answered in this task: turned away, failed fast or no database step
                v = task.verdict
                cpu = 0.0 if v in TURNED_AWAY else task.cpu_pre + (task.cpu_post if v == OK else 0.0)
                rec[SRV_OUT] = t + cpu * s
        elif stage in (REPLY, LOOKUP):
            seen = t + self.query_cpu * s
            if then == RESPOND:
                rec[SEEN] = seen if stage == REPLY else rec[SEEN]
                rec[SRV_OUT] = seen + (task.cpu_post if task.verdict == OK else 0.0) * s
        elif stage == READY:
            rec[SENT] = None               # a new connection: the query goes when this task ends
        elif stage == FAIL:
            rec[SRV_OUT] = t

    def _end(self, task) -> None:
        then, heir = task.then, task.heir
        super()._end(task)
        now = self.kernel.now
        rec = self.trace.get(task)
        if rec is not None:
            if then == ACQUIRE:
                rec[ACQ] = now
                rec[SENT] = None if task.waiting else now     # an idle connection: sent at once
            elif then == SEND and rec[SENT] is None:
                rec[SENT] = now
        if heir is not None:
            r = self.trace.get(heir)
            if r is not None and r[SENT] is None:
                r[SENT] = now                                 # a released connection: its heir sends now


class RequestLogWriter:
    """Attach to a ``Model`` before ``run()``; ``close()`` after it (writes the stats file)."""

    def __init__(self, model, path):
        self.model, self.path = model, Path(path)
        self.trace: dict = {}
        self.routes = list(model.scenario.workload.endpoints)
        self.warmup = model.scenario.warmup
        self.timeout = model.scenario.instances.request_timeout
        self.measured = 0
        self._marks = None
        self._part = self.path.with_name(self.path.name + ".part")    # renamed when complete
        self._fh = open(self._part, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(COLUMNS)
        trace = self.trace

        def tracing(*args):
            return TracingProcess(*args, trace=trace)
        model.fleet.process = tracing
        model.metrics.keep_last_outside()
        model.metrics.on_warmup.append(self._mark)
        model.watch(on_done=self._done)

    def _done(self, req, outcome: int, now: float) -> None:
        rec = self.trace.pop(req, None) or [None] * 5
        name = OUTCOMES[outcome]
        ms = _ms
        srv_in, srv_out, acq, sent, seen = rec
        inst, proc = req.inst, req.proc
        ran = srv_in is not None and outcome not in TURNED_AWAY
        post = req.cpu_post if outcome == OK and srv_out is not None else 0.0
        scale = proc.scale if proc is not None else 1.0
        latency = self.timeout if outcome == TIMEOUT else now - req.t0 + self.model.metrics.last_outside
        measured = req.t0 >= self.warmup
        self.measured += measured
        self._csv.writerow([
            ms(req.t0), self.routes[req.endpoint], "" if req.client is None else req.client,
            "" if inst is None else inst.iid, "" if proc is None else proc.index,
            "measure" if measured else "warmup", name, STATUS[name],
            ms(latency),
            ms(srv_in), ms(srv_out), ms(srv_out - srv_in if srv_in is not None and srv_out is not None else None),
            ms(req.cpu_pre * scale if ran else 0.0 if srv_in is not None else None),
            ms(post * scale if ran else 0.0 if srv_in is not None else None),
            int(acq is not None), ms(_acquire(acq, sent, srv_out)),
            ms(seen - sent if sent is not None and seen is not None else None)])

    def _totals(self) -> tuple[float, float]:
        now = self.model.kernel.now
        insts = self.model.fleet.instances
        return sum(i.busy_total(now) for i in insts), sum(i.cpu_seconds(now) for i in insts)

    def _mark(self) -> None:
        self._marks = self._totals()

    def close(self) -> Path:
        """Finish the log and write the process totals beside it; returns the log's path."""
        self._fh.close()
        sc = self.model.scenario
        busy, cpu = self._totals()
        b0, c0 = self._marks or (0.0, 0.0)
        helper = sc.instances.event_loop.helper_cpu
        loop = busy - b0
        pool = sc.database.pool
        stats = {"source": "capsim", "scenario": sc.name, "seed": self.model.seed, "start": sc.workload.start.isoformat(),
                 "window": sc.horizon - sc.warmup, "requests": self.measured,
                 "elu_active": loop, "cpu": cpu - c0, "main_thread_cpu": loop, "helper_threads_cpu": loop * helper,
                 "processes": sum(len(i.procs) for i in self.model.fleet.instances),
                 "config": {"pool": {"max": pool.max, "acquire_timeout": pool.acquire_timeout,
                                     "idle_timeout": pool.idle_timeout}}}
        stats_path(self.path).write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
        self._part.replace(self.path)
        return self.path

    def abort(self) -> None:
        """The run failed: close and remove the unfinished log."""
        self._fh.close()
        self._part.unlink(missing_ok=True)


def _acquire(asked, sent, out):
    """Asked for a connection to the query sent (or, when it failed first, to the handler's 5xx)."""
    if asked is None:
        return None
    end = sent if sent is not None else out
    return None if end is None else end - asked


def _ms(x) -> str:
    return "" if x is None else f"{1000.0 * x:.4f}"
