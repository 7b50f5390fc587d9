"""User sessions from a request log with client ids.

A client's requests form one session until it is silent for more than ``gap`` (default
30 min, the usual web-analytics cut). capsim's sessions issue requests as a Poisson process
of ``request_rate`` while they last, so:

- a session of ``n`` >= 2 requests whose first and last are ``span`` apart lasted about
  ``span (n + 1) / (n - 1)`` (given n Poisson points in a window of length L, the expected
  span is L (n - 1) / (n + 1)); one of a single request, ``1 / request_rate``;
- ``request_rate`` = the requests of the sessions with n >= 2 over their summed lengths (95%
  interval: the chi-square interval of a Poisson count over that exposure, approximate: the
  lengths are estimates too); the spans alone (``(n - 1) / span``) would overstate it by
  about 2 / n;
- the lengths are fitted like every duration (``fit_distribution``); sessions cut by the
  log's start or end count as shorter than they were;
- ``peak_users`` = the busiest weekday hour's request rate / ``request_rate`` (Little's law:
  each concurrent user sends ``request_rate``) where the arrival curve is identified; else the
  busiest whole clock hour's rate (or, with none, the mean rate) over ``request_rate``.
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


def fit_sessions(log, arrivals=None, gap: float = GAP) -> SessionFit | None:
    m = log.measured
    first, last, n, clients = _split(m, gap)
    notes = []
    span = last - first
    two = (n >= 2) & (span > 0)
    if not two.any():
        notes.append(f"sessions: {len(n)} sessions of {clients} clients never send a second request within {gap:g} s: "
                     f"request_rate and session_length are left at the base scenario's")
        return None
    est = span[two] * (n[two] + 1) / (n[two] - 1)
    k, exposure = int(n[two].sum()), float(est.sum())
    rate = k / exposure
    lo, hi = stats.chi2.ppf([0.025, 0.975], [2 * k, 2 * k + 2]) / (2 * exposure)
    lengths = np.where(two, span * (n + 1) / np.maximum(n - 1, 1), 1.0 / rate)
    length = fit_distribution(lengths) if len(lengths) >= MIN_SAMPLES else None
    notes.append(f"sessions: {len(n)} sessions of {clients} clients (a new one after {gap:g} s of silence)")
    notes.append(f"request_rate = {rate:.4g}/s per user [95% CI {lo:.4g}, {hi:.4g}]: {k} requests of {int(two.sum())} "
                 f"sessions over their estimated {exposure:.6g} s")
    if length is not None:
        notes.append(f"session_length: {length.describe()} (span x (n + 1)/(n - 1); one request: 1/request_rate)")
    else:
        notes.append(f"session_length: {len(n)} sessions, a fit needs {MIN_SAMPLES}: the base scenario's")
    if arrivals is not None and arrivals.peak_rate:
        busiest, what = arrivals.peak_rate, "the busiest weekday hour's"
    elif arrivals is not None and arrivals.hourly_rates is not None and len(arrivals.hourly_rates):
        busiest, what = float(arrivals.hourly_rates.rate.max()), "the busiest whole clock hour's"
    else:
        busiest, what = float(len(m) / max(float(m.t.max() - m.t.min()), 1e-9)), "the log's mean"
    peak = busiest / rate
    notes.append(f"peak_users = {peak:.4g}: {what} {busiest:.4g} requests/s over request_rate (Little's law)")
    return SessionFit(len(n), clients, rate, (float(lo), float(hi)), length, peak, gap, notes)
