"""The arrival curve: requests per second over time, and the hourly and weekly rhythm.

capsim's sessions (``workload.sessions``) scale one weekday curve of 24 hourly multipliers
(``daily_curve``, busiest hour = 1) by ``weekend_multiplier`` on Saturdays and Sundays.
From per-hour counts on the calendar (a request log with absolute times, or a metrics CSV):

- each clock hour the data covers whole gives a rate (its requests over its seconds);
- ``daily_curve[h]`` = the mean rate of weekday hour h over the days seen, over the largest
  such mean; ``peak_rate`` = that largest mean (requests/s at the busiest weekday hour);
- ``weekend_multiplier`` = the weekend hours' requests over what the weekday curve gives for
  the same hours of the day (its 95% interval: Student t over the weekend days' ratios; the
  weekday baseline's own noise is not in it).

Not identified (left at the base scenario, said in the notes): the curve when some weekday
hour of the day was never covered whole; the multiplier without a weekend hour.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capsim.calibrate.fit import mean_interval

__all__ = ["ArrivalFit", "arrivals_of_log", "curve_from_counts", "series_interval"]


@dataclass
class ArrivalFit:
    interval: float                              # s, of ``series``
    series: pd.DataFrame                         # t (s from the start), rate (requests/s)
    mean_rate: float
    hourly: list[float] | None = None            # 24 weekday multipliers (max 1), None: not identified
    hours_seen: list[int] | None = None          # weekday clock hours behind each multiplier
    peak_rate: float | None = None
    weekend_multiplier: float | None = None
    weekend_ci: tuple[float, float] | None = None
    weekend_days: int = 0
    hourly_rates: pd.DataFrame | None = None     # one row per whole clock hour: start, weekend, rate
    notes: list[str] = field(default_factory=list)


def series_interval(span: float) -> float:
    """The bin of the plotted rate: 10 s under 15 min of data, 1 min under a day, else 1 h."""
    return 10.0 if span < 900 else 60.0 if span < 86400 else 3600.0


def curve_from_counts(starts: pd.DatetimeIndex, counts: np.ndarray, seconds: np.ndarray, fit: ArrivalFit,
                      what: str) -> None:
    """Fill ``fit``'s calendar figures from per-interval counts (``starts`` local, interval lengths ``seconds``)."""
    df = pd.DataFrame({"hour": starts.floor("h"), "n": counts, "s": seconds})
    hours = df.groupby("hour").agg(n=("n", "sum"), s=("s", "sum"))
    hours = hours[hours.s >= 3600 - 1e-6]                        # whole clock hours only
    if hours.empty:
        fit.notes.append(f"arrival curve: {what} covers no whole clock hour; daily_curve, weekend_multiplier and "
                         f"peak_users are left at the base scenario's")
        return
    idx = hours.index
    hours = hours.assign(rate=hours.n / hours.s, hod=idx.hour, weekend=idx.day_of_week >= 5, day=idx.normalize())
    fit.hourly_rates = pd.DataFrame({"start": idx, "weekend": hours.weekend.to_numpy(), "rate": hours.rate.to_numpy()})
    wk = hours[~hours.weekend]
    by_hour = wk.groupby("hod").rate.mean()
    seen = wk.groupby("hod").size().reindex(range(24), fill_value=0)
    fit.hours_seen = [int(x) for x in seen]
    if len(by_hour) == 24 and by_hour.max() > 0:
        fit.peak_rate = float(by_hour.max())
        fit.hourly = [float(x) for x in (by_hour / by_hour.max()).reindex(range(24))]
        fit.notes.append(f"daily_curve: weekday hourly rates from {len(wk)} whole hours of {what} "
                         f"({min(fit.hours_seen)}-{max(fit.hours_seen)} days per hour of day), over the busiest "
                         f"hour's {fit.peak_rate:.4g} requests/s")
    else:
        missing = [h for h in range(24) if seen[h] == 0]
        fit.notes.append(f"daily_curve: {what} has no whole weekday hour at {missing[:6]}{'...' if len(missing) > 6 else ''}"
                         f" o'clock: left at the base scenario's")
    we = hours[hours.weekend]
    we = we[we.hod.isin(by_hour.index)]
    if len(we) and len(by_hour):
        base = we.hod.map(by_hour)
        fit.weekend_multiplier = float(we.rate.sum() / base.sum())
        days = we.assign(base=base).groupby("day")[["rate", "base"]].sum()
        per_day = (days.rate / days.base).to_numpy()
        fit.weekend_days = len(per_day)
        fit.weekend_ci = mean_interval(per_day) if len(per_day) >= 2 else None
        ci = (f"95% CI [{fit.weekend_ci[0]:.3f}, {fit.weekend_ci[1]:.3f}] over {len(per_day)} days, the weekday "
              f"baseline's own noise not included" if fit.weekend_ci else "one weekend day: no interval")
        fit.notes.append(f"weekend_multiplier = {fit.weekend_multiplier:.3f}: {len(we)} weekend hours over the "
                         f"weekday rate of the same hours ({ci})")
    else:
        fit.notes.append(f"weekend_multiplier: {what} has no whole weekend hour (or no weekday hour to compare "
                         f"with): left at the base scenario's")


def arrivals_of_log(log) -> ArrivalFit:
    m = log.measured
    t = np.sort(m.t.to_numpy(dtype=float))
    span = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    window = float(log.process.get("window") or span)
    step = series_interval(span)
    edges = np.arange(np.floor(t[0] / step) * step, t[-1] + step, step) if len(t) else np.array([0.0, step])
    counts, _ = np.histogram(t, bins=edges)
    if len(t):       # the first and last bins cover only part of a step: their rate over the part covered
        covered = np.minimum(edges[1:], t[-1]) - np.maximum(edges[:-1], t[0])
        seconds = np.where(covered > 0.1 * step, covered, step)
    else:
        seconds = np.full(len(counts), step)
    series = pd.DataFrame({"t": edges[:-1], "rate": counts / seconds})
    fit = ArrivalFit(step, series, len(t) / window if window else float("nan"))
    fit.notes.append(f"arrival rate: {fit.mean_rate:.4g} requests/s on average over {window:.6g} s ({len(t)} requests)")
    if log.start is None:
        fit.notes.append("arrival curve: the log's times are relative (no calendar): daily_curve and "
                         "weekend_multiplier are left at the base scenario's")
        return fit
    start = pd.Timestamp(log.start)
    secs = np.floor(t / 60.0) * 60.0                          # minute bins on the calendar
    mins, n = np.unique(secs, return_counts=True)
    full = np.arange(np.ceil(t[0] / 60.0) * 60.0, np.floor(t[-1] / 60.0) * 60.0, 60.0)
    counts = pd.Series(n, index=mins).reindex(full, fill_value=0)
    stamps = pd.DatetimeIndex(start + pd.to_timedelta(counts.index, unit="s"))
    curve_from_counts(stamps, counts.to_numpy(), np.full(len(counts), 60.0), fit, "the log")
    return fit
