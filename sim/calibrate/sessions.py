"""User sessions from a request log with client ids.

A client's requests form one session until it is silent for more than ``gap`` (default
30 min, the usual web-analytics cut). capsim's sessions issue requests as a Poisson process
of ``request_rate`` while they last, so:

- ``request_rate`` = (requests - sessions) / (summed spans from each session's first to last
  request): the maximum-likelihood rate of the gaps inside sessions (95% interval: the
  gamma/chi-square interval of a Poisson rate);
- a session's length = its span + 2 / request_rate (the expected time before its first and
  after its last request), fitted like every duration (``fit_distribution``);
- ``peak_users`` = the busiest weekday hour's request rate / ``request_rate`` (Little's law:
  each concurrent user sends ``request_rate``), where the arrival curve is identified; else
  the most sessions seen open at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from capsim.calibrate.fit import MIN_SAMPLES, Fit, fit_distribution

__all__ = ["SessionFit", "fit_sessions", "GAP"]

GAP = 1800.0


@dataclass
class SessionFit:
    sessions: int
    clients: int
    request_rate: float
    request_rate_ci: tuple[float, float]
    length: Fit | None
    peak_users: float
    gap: float
    notes: list[str] = field(default_factory=list)


def _split(frame, gap: float):
    f = frame[["client", "t"]].dropna().sort_values(["client", "t"], kind="stable")
    new = (f.client != f.client.shift()) | (f.t.diff() > gap)
    sid = new.cumsum()
    g = f.groupby(sid).t
    return g.min().to_numpy(), g.max().to_numpy(), g.size().to_numpy(), int(f.client.nunique())


def _concurrent(first: np.ndarray, last: np.ndarray) -> int:
    ev = np.concatenate([np.stack([first, np.ones_like(first)], 1), np.stack([last, -np.ones_like(last)], 1)])
    ev = ev[np.lexsort((-ev[:, 1], ev[:, 0]))]
    return int(np.max(np.cumsum(ev[:, 1]))) if len(ev) else 0


def fit_sessions(log, arrivals=None, gap: float = GAP) -> SessionFit | None:
    m = log.measured
    first, last, n, clients = _split(m, gap)
    notes = []
    span, extra = float(np.sum(last - first)), int(np.sum(n) - len(n))
    if extra == 0 or span <= 0:
        notes.append(f"sessions: {len(n)} sessions of {clients} clients never send a second request within {gap:g} s: "
                     f"request_rate and session_length are left at the base scenario's")
        return None
    rate = extra / span
    lo, hi = stats.chi2.ppf([0.025, 0.975], [2 * extra, 2 * extra + 2]) / (2 * span)
    lengths = (last - first) + 2.0 / rate
    length = fit_distribution(lengths) if len(lengths) >= MIN_SAMPLES else None
    notes.append(f"sessions: {len(n)} sessions of {clients} clients (a new one after {gap:g} s of silence)")
    notes.append(f"request_rate = {rate:.4g}/s per user [95% CI {lo:.4g}, {hi:.4g}]: {extra} gaps inside sessions "
                 f"over {span:.6g} s")
    if length is not None:
        notes.append(f"session_length: {length.describe()} (span from first to last request + 2/request_rate)")
    else:
        notes.append(f"session_length: {len(n)} sessions, a fit needs {MIN_SAMPLES}: the base scenario's")
    if arrivals is not None and arrivals.peak_rate:
        peak = arrivals.peak_rate / rate
        notes.append(f"peak_users = {peak:.4g}: the busiest weekday hour's {arrivals.peak_rate:.4g} requests/s over "
                     f"request_rate (Little's law)")
    else:
        peak = float(_concurrent(first, last))
        notes.append(f"peak_users = {peak:g}: the most sessions open at once in the log (no whole-day arrival curve)")
    return SessionFit(len(n), clients, rate, (float(lo), float(hi)), length, peak, gap, notes)
