"""The event loop's own work, from a request log with server timings and the process's totals.

What a log can show (``RequestLog``: handler entry ``srv_in`` and response write
``srv_out`` per request, the handler's CPU slices, and the process's event-loop active
time over the window):

- the loop's total work outside the handlers: event-loop active time minus the handlers'
  slices, per request ``L``;
- which tasks found the loop idle (wake-ups): an arrival sent after the loop's previous
  work ended, a database reply handled while no other handler ran;
- the loop's work between two requests served back to back (the next one arrived while
  the previous handler ran): ``srv_in(next) - srv_out(prev)`` is the previous response's
  write plus the next request's parse, with no wake-up in between. Its median is the
  per-request work of a busy loop.

Identification (stated in every result's notes): ``request_cpu + response_cpu`` = that
median, split evenly, and ``query_cpu`` = half of it (the driver's send and reply parse
taken as one HTTP parse or write: not separable from the wake-ups at one load level);
``wakeup_cpu`` = what is left of ``L`` per wake-up. With fewer than ``MIN_PAIRS``
back-to-back pairs the split is not identifiable: all of ``L`` is taken as per-request
work (no amortisation) and the notes say so. ``helper_cpu`` = helper threads' CPU over
the main thread's. The latency outside the server = client latency minus handler time
minus the loop work around the handler, for requests that found the loop idle.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capsim.calibrate.logs import RequestLog

__all__ = ["LoopEstimate", "estimate_event_loop", "query_bounds", "MIN_PAIRS"]

MIN_PAIRS = 5
MARGIN = 0.0005     # s: a request counts as queued behind another if it was sent this long before its end


@dataclass
class LoopEstimate:
    request_cpu: float
    response_cpu: float
    query_cpu: float
    wakeup_cpu: float
    helper_cpu: float
    outside: float                      # latency outside the server, s
    per_request: float                  # L: loop work outside the handlers per request at the log's load
    pairs: int                          # back-to-back pairs behind the split
    wakeups_per_request: float
    idle_reply: np.ndarray = field(repr=False, default=None)   # per DB request: its reply woke the loop
    db_index: object = field(repr=False, default=None)          # those DB requests' index in the log's frame
    notes: list[str] = field(default_factory=list)

    def config(self) -> dict:
        return {"request_cpu": self.request_cpu, "response_cpu": self.response_cpu, "query_cpu": self.query_cpu,
                "wakeup_cpu": self.wakeup_cpu, "helper_cpu": self.helper_cpu}


def _busy_intervals(f) -> list[tuple[float, float]]:
    """The loop's handler work per request: one interval without a database step, two with."""
    out = []
    for srv_in, srv_out, pre, post, db in zip(f.srv_in, f.srv_out, f.cpu_pre, f.cpu_post, f.db):
        if db:
            out += [(srv_in, srv_in + pre), (srv_out - post, srv_out)]
        else:
            out.append((srv_in, srv_out))
    return sorted(out)


def _covered(points: np.ndarray, intervals: list[tuple[float, float]], own: list[tuple[float, float]]) -> np.ndarray:
    """Whether each point lies inside some interval other than its own."""
    starts = np.array([a for a, _ in intervals])
    ends = np.array([b for _, b in intervals])
    out = np.zeros(len(points), dtype=bool)
    for i, (p, mine) in enumerate(zip(points, own)):
        j = np.searchsorted(starts, p, side="right")
        lo = max(0, j - 50)
        hit = (starts[lo:j] < p) & (ends[lo:j] > p)
        hit &= ~((starts[lo:j] == mine[0]) & (ends[lo:j] == mine[1]))
        out[i] = bool(hit.any())
    return out


def estimate_event_loop(log: RequestLog) -> LoopEstimate:
    need = ("srv_in", "srv_out", "cpu_pre", "cpu_post", "server")
    if not log.has(*need):
        missing = [c for c in need if not log.has(c)]
        raise ValueError(f"{log.name}: the event loop needs server timings; missing columns {missing}")
    proc = log.process
    if not proc.get("elu_active"):
        raise ValueError(f"{log.name}: the event loop needs the process's event-loop active time over the window")
    order = log.frame.sort_values("srv_in", kind="stable")
    f = order.reset_index(drop=True)
    if not log.has("send"):             # no separate send time: the client sent each request when it says (t)
        f = f.assign(send=f.t)
    m = f[f.measured]
    notes = []
    n = len(m)
    handler = float((m.cpu_pre + m.cpu_post).sum())
    per_request = (proc["elu_active"] - handler) / n
    # wake-ups: arrivals sent after every earlier handler had ended; replies handled while no other ran
    prev_end = f.srv_out.cummax().shift(1).fillna(-np.inf)
    idle_arrival = (f.send >= prev_end).to_numpy()
    intervals = _busy_intervals(f)
    dbs = f[f.db == 1]
    reply_at = (dbs.srv_out - dbs.cpu_post).to_numpy()
    idle_reply = ~_covered(reply_at, intervals, list(zip(reply_at, dbs.srv_out.to_numpy())))
    meas = f.measured.to_numpy()
    wakes = int(idle_arrival[meas].sum() + idle_reply[dbs.measured.to_numpy()].sum())
    n_db = int(m.db.sum())
    # back-to-back pairs: the next request was waiting when the previous (no database step) answered
    nxt = f.iloc[1:].reset_index(drop=True)
    prv = f.iloc[:-1].reset_index(drop=True)
    mask = (prv.db == 0) & (nxt.send < prv.srv_out - MARGIN) & nxt.measured
    gaps = (nxt.srv_in - prv.srv_out)[mask].to_numpy()
    if len(gaps) >= MIN_PAIRS:
        busy = float(np.median(gaps))
        request_cpu = response_cpu = query_cpu = busy / 2
        wakeup = max(0.0, (per_request * n - busy * n - query_cpu * n_db) / max(wakes, 1))
        notes.append(f"request_cpu + response_cpu = {busy * 1e3:.3f} ms: the median loop work between {len(gaps)} "
                     f"requests served back to back, split evenly (assumed); query_cpu = half of it (assumed: the "
                     f"driver's send and parse cost one HTTP parse or write; not separable from wake-ups at one load)")
        notes.append(f"wakeup_cpu = {wakeup * 1e3:.3f} ms: the rest of the {per_request * 1e3:.3f} ms per request "
                     f"outside the handlers, over {wakes} wake-ups ({wakes / n:.2f} per request)")
    else:
        x = per_request * n / (2 * n + n_db)
        request_cpu = response_cpu = query_cpu = x
        wakeup = 0.0
        notes.append(f"only {len(gaps)} requests were served back to back (needs {MIN_PAIRS}): the split between "
                     f"per-request work and wake-ups is not identifiable, so all {per_request * 1e3:.3f} ms per "
                     f"request outside the handlers is taken as per-request work (no amortisation under load)")
    helper = proc["helper_threads_cpu"] / proc["main_thread_cpu"] if proc.get("main_thread_cpu") else 0.0
    # latency outside the server, from requests that found the loop idle and took no database step
    sel = idle_arrival & meas & (f.db == 0).to_numpy() & (f.outcome == "ok").to_numpy()
    around = request_cpu + response_cpu + wakeup
    outside = float(np.mean((f.latency - f.server)[sel])) - around if sel.any() else 0.0
    notes.append(f"latency outside the server = {outside * 1e3:.3f} ms: client latency minus handler time minus "
                 f"{around * 1e3:.3f} ms of loop work around the handler, mean over {int(sel.sum())} requests that "
                 f"found the loop idle")
    notes.append(f"helper_cpu = {helper:.3f}: helper threads' CPU over the main thread's in the window")
    return LoopEstimate(request_cpu, response_cpu, query_cpu, wakeup, helper, max(0.0, outside), per_request,
                        len(gaps), wakes / n, idle_reply, order.index[(f.db == 1).to_numpy()], notes)


def _stretches(f, loop: LoopEstimate) -> tuple[np.ndarray, np.ndarray]:
    """The loop's busy stretches (union of every task's interval, its own work included), sorted."""
    rq, rs, qc = loop.request_cpu, loop.response_cpu, loop.query_cpu
    db = (f.db == 1).to_numpy()
    ok = (f.outcome == "ok").to_numpy()
    srv_in, srv_out, pre, post = (f[c].to_numpy(dtype=float) for c in ("srv_in", "srv_out", "cpu_pre", "cpu_post"))
    starts = [srv_in - rq]
    ends = [np.where(db, srv_in + pre, srv_out + rs)]
    seen = srv_out - np.where(ok, post, 0.0)
    starts.append((seen - qc)[db])
    ends.append((srv_out + rs)[db])
    a, b = np.concatenate(starts), np.concatenate(ends)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    order = np.argsort(a)
    a, b = a[order], np.maximum.accumulate(b[order])
    new = np.r_[True, a[1:] > b[:-1]]
    ids = np.cumsum(new) - 1
    sa = a[new]
    sb = np.zeros(len(sa))
    np.maximum.at(sb, ids, b)
    return sa, sb


def query_bounds(log: RequestLog, loop: LoopEstimate, eps: float = 1e-5):
    """Per database request of the log (its frame's index): the query's time (database and round trip)
    as ``lo`` and ``hi``, equal when its result found the loop idle, else the interval it must lie in.

    A result is handled when the loop gets to it: its reply task starts at ``R`` = result seen minus
    ``query_cpu``. If another task ran just before ``R``, the result queued behind the busy stretch
    that began at ``a``: the query took between ``max(a, sent) - sent`` and ``R - sent`` (interval
    censored). Otherwise it woke the loop: the query took ``R - wakeup_cpu - sent`` exactly.
    ``sent`` = handler's first slice end + acquire (the query was sent then).
    """
    f = log.frame
    dbs = f[(f.db == 1) & f.db_query.notna() & f.db_acquire.notna()]
    sa, sb = _stretches(f, loop)
    seen = dbs.srv_out - np.where(dbs.outcome == "ok", dbs.cpu_post, 0.0)
    r = (seen - loop.query_cpu).to_numpy()
    sent = (seen - dbs.db_query).to_numpy()
    p = r - eps
    j = np.searchsorted(sa, p, side="right") - 1
    covered = (j >= 0) & (sb[np.clip(j, 0, None)] > p) & (sa[np.clip(j, 0, None)] < p)
    # the stretch holding p may be the request's own reply task only when it starts exactly at R: not covered
    own = covered & np.isclose(sa[np.clip(j, 0, None)], r, atol=eps / 2)
    queued = covered & ~own
    exact = r - loop.wakeup_cpu - sent
    lo = np.where(queued, np.maximum(sa[np.clip(j, 0, None)], sent) - sent, exact)
    hi = np.where(queued, r - sent, exact)
    return pd.DataFrame({"lo": np.clip(lo, 0.0, None), "hi": np.clip(hi, 0.0, None), "queued": queued},
                        index=dbs.index)
