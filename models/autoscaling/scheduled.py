"""Scheduled actions and pre-scaling, combinable with any reactive policy.

A ``ScheduledAction`` sets min, max and/or desired at a time: ``"HH:MM"`` every day,
``"Sat HH:MM"`` / ``"Mon-Fri HH:MM"`` / ``"Sat,Sun HH:MM"`` on those weekdays (ranges may
wrap: ``Fri-Mon``), or once at an ISO date-time or an offset from t = 0 (``36h``, 7200).
Clock times follow the calendar the way the workload does: wall time = ``start`` + t
(no daylight-saving jumps).

``Schedule.bounds(now)``: for min and for max separately, the value of the most recent
action at or before ``now`` that sets it (a tie goes to the later action in the list);
the base bounds when none has occurred. Occurrences before t = 0 do not count: a run
starts from the base bounds. If the result crosses, min is lowered to max.
``Schedule.desired_at(now, last_eval)``: the desired count of the latest action that
fired in (last_eval, now], or None. As on AWS, scheduled actions ignore cooldowns.

The seed's night scaling is ``NIGHT_SCALING``: 02:00 -> 1..2 instances, 18:00 -> 1..10.

``Prescale`` is the seed's ``scheduled_scaling`` (weekend x1.5, events x2.0): from
``lead`` before a weekend (Sat 00:00 - Mon 00:00) or an event window until its end, the
min bound becomes max(min, ceil(multiplier x reference)), where the reference is the
instance count at the first evaluation inside the window (the capacity the normal day
needed), held for the whole window, so the floor does not ratchet up on itself. When
windows overlap, the largest floor wins (multipliers do not compound). Min stays <= max.
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from capsim.models.autoscaling.base import Decision, Observation
from capsim.models.autoscaling.fixed import Bounded, ceil_count, clamp
from capsim.models.units import Count, Duration, NonNegative, Positive, PositiveDuration, parse_duration

__all__ = ["ScheduledAction", "Schedule", "Prescale", "Prescaler", "SchedulePolicyConfig",
           "SchedulePolicy", "NIGHT_SCALING", "SEED_PRESCALE"]

DAY, WEEK = 86400.0, 604800.0
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_CLOCK = re.compile(r"^\s*(?:([A-Za-z][A-Za-z,\- ]*?)\s+)?(\d{1,2}):(\d{2})\s*$")


def _day(name: str) -> int:
    key = name.strip().lower()[:3]
    if key not in _DAYS:
        raise ValueError(f"unknown weekday {name!r}; expected Mon..Sun")
    return _DAYS.index(key)


def _days(text: str) -> list[int]:
    out: set[int] = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        first, last = _day(a), _day(b) if b else _day(a)
        out.update((first + k) % 7 for k in range((last - first) % 7 + 1))
    return sorted(out)


def parse_at(at: str | float | datetime) -> tuple[float | None, list[float] | float | datetime]:
    """(period, positions in the period) for a clock time; (None, offset or datetime) for once."""
    if isinstance(at, str) and (m := _CLOCK.match(at)):
        hh, mm = int(m.group(2)), int(m.group(3))
        if hh > 23 or mm > 59:
            raise ValueError(f"at: bad clock time {at!r}; expected HH:MM from 00:00 to 23:59")
        tod = hh * 3600.0 + mm * 60.0
        if m.group(1) is None:
            return DAY, [tod]
        return WEEK, [d * DAY + tod for d in _days(m.group(1))]
    if isinstance(at, datetime):
        return None, at
    if isinstance(at, str) and len(at) >= 10 and at[4] == "-" and at[:4].isdigit():
        return None, datetime.fromisoformat(at)
    try:
        return None, parse_duration(at)
    except ValueError:
        raise ValueError(f"at: expected 'HH:MM', 'Sat HH:MM', 'Mon-Fri HH:MM', an ISO date-time "
                         f"or an offset such as 36h; got {at!r}") from None


class ScheduledAction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    at: str | NonNegative | datetime = Field(description="'HH:MM' daily, 'Sat HH:MM' / 'Mon-Fri HH:MM' weekly, "
                                                   "or once: ISO date-time or offset such as 36h")
    min_instances: Count | None = Field(None, description="new min bound (null: unchanged)")
    max_instances: Count | None = Field(None, description="new max bound (null: unchanged)")
    desired: Count | None = Field(None, description="instances to set when it fires (null: none)")

    @model_validator(mode="after")
    def _check(self):
        parse_at(self.at)
        lo, hi, want = self.min_instances, self.max_instances, self.desired
        if lo is None and hi is None and want is None:
            raise ValueError("expected at least one of min_instances, max_instances, desired")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_instances {lo} > max_instances {hi}")
        if want is not None and not (lo or want) <= want <= (hi or want):
            raise ValueError(f"desired {want} outside [{lo}, {hi}]")
        return self


NIGHT_SCALING = [ScheduledAction(at="02:00", min_instances=1, max_instances=2),
                 ScheduledAction(at="18:00", min_instances=1, max_instances=10)]


def _week_seconds(start: datetime) -> float:
    """Seconds from the Monday 00:00 of ``start``'s week to ``start``."""
    return start.weekday() * DAY + start.hour * 3600.0 + start.minute * 60.0 + start.second + start.microsecond / 1e6


class Schedule:
    """Scheduled actions resolved on the calendar that starts at ``start`` (t = 0)."""

    def __init__(self, actions: list[ScheduledAction], start: datetime, min_instances: int, max_instances: int):
        self.base = (min_instances, max_instances)
        self._s0 = _week_seconds(start)
        self._items = [(a, self._resolve(a, start)) for a in actions]

    @staticmethod
    def _resolve(action: ScheduledAction, start: datetime):
        period, where = parse_at(action.at)
        if isinstance(where, datetime):
            if (where.tzinfo is None) != (start.tzinfo is None):
                raise ValueError(f"at {where.isoformat()} and start {start.isoformat()}: "
                                 "expected both with a time zone or both without")
            where = (where - start).total_seconds()
        return period, where

    def _last(self, when, now: float) -> float | None:
        """Time of the latest occurrence in [0, now], or None."""
        period, where = when
        if period is None:
            return where if 0 <= where <= now else None
        s = self._s0 + now
        t = max(s - (s - p) % period for p in where) - self._s0
        return t if t >= 0 else None

    def _latest(self, now: float, field: str) -> tuple[float, int] | None:
        best = None
        for action, when in self._items:
            value, t = getattr(action, field), self._last(when, now)
            if value is not None and t is not None and (best is None or t >= best[0]):
                best = (t, value)
        return best

    def occurrences(self, until: float) -> list[tuple[float, ScheduledAction]]:
        """Every (time, action) in [0, until], by time (for reports)."""
        out = []
        for action, (period, where) in self._items:
            starts = [where] if period is None else [(p - self._s0) % period for p in where]
            step = period or math.inf
            for t in starts:
                while 0 <= t <= until:
                    out.append((t, action))
                    t += step
        return sorted(out, key=lambda item: item[0])

    def bounds(self, now: float) -> tuple[int, int]:
        lo, hi = self._latest(now, "min_instances"), self._latest(now, "max_instances")
        hi_v = self.base[1] if hi is None else hi[1]
        lo_v = self.base[0] if lo is None else lo[1]
        return min(lo_v, hi_v), hi_v

    def desired_at(self, now: float, last_eval: float | None) -> int | None:
        got = self._latest(now, "desired")
        return got[1] if got and (last_eval is None or got[0] > last_eval) else None


class Prescale(BaseModel):
    """The seed's scheduled_scaling: raise the min bound ahead of weekends and events."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    weekend_multiplier: Positive | None = Field(None, description="Sat-Sun floor x reference (seed: 1.5)")
    event_multiplier: Positive | None = Field(None, description="event floor x reference (seed: 2.0)")
    lead: Duration = Field(900.0, lt=DAY, description="start this long before the window")

    def build(self, start: datetime, events: list[tuple[float, float]] = ()) -> Prescaler:
        return Prescaler(self, start, events)


SEED_PRESCALE = Prescale(weekend_multiplier=1.5, event_multiplier=2.0)


class Prescaler:
    """Stateful: remembers each window's reference count."""

    def __init__(self, config: Prescale, start: datetime, events: list[tuple[float, float]] = ()):
        self.config, self._s0, self.events = config, _week_seconds(start), list(events)
        self._refs: dict[tuple, int] = {}

    def _windows(self, now: float) -> list[tuple[tuple, float]]:
        c, out = self.config, []
        if c.weekend_multiplier is not None:
            opens = 5 * DAY - c.lead
            into = (self._s0 + now - opens) % WEEK
            if into < 2 * DAY + c.lead:
                out.append((("weekend", round((self._s0 + now - into - opens) / WEEK)), c.weekend_multiplier))
        if c.event_multiplier is not None:
            out += [(("event", i), c.event_multiplier) for i, (a, b) in enumerate(self.events)
                    if a - c.lead <= now < b]
        return out

    def bounds(self, now: float, current: int, lo: int, hi: int) -> tuple[int, int]:
        """(min, max) with the pre-scaling floor applied; call once per evaluation."""
        windows = self._windows(now)
        self._refs = {key: self._refs.get(key, current) for key, _ in windows}
        floor = max([lo] + [ceil_count(m * self._refs[key]) for key, m in windows])
        return min(floor, hi), hi


class SchedulePolicyConfig(Bounded):
    """No reactive logic: a fixed fleet moved only by its scheduled actions."""
    policy: Literal["scheduled"] = "scheduled"
    actions: list[ScheduledAction] = Field(default_factory=list, description="scheduled actions")
    interval: PositiveDuration = Field(60.0, description="time between evaluations")

    def schedule(self, start: datetime) -> Schedule:
        return Schedule(self.actions, start, self.min_instances, self.max_instances)

    def build(self) -> SchedulePolicy:
        return SchedulePolicy(self.interval)


class SchedulePolicy:
    """desired = current clamped to the effective (scheduled) bounds of the observation."""

    def __init__(self, interval: float = 60.0):
        self.interval = self.window = interval

    def decide(self, obs: Observation) -> Decision | None:
        desired = clamp(obs.current, obs)
        if desired == obs.current:
            return None
        return Decision(desired, f"scheduled bounds {obs.min_instances}..{obs.max_instances}: "
                                 f"{obs.current} -> {desired}", {"min": float(obs.min_instances), "max": float(obs.max_instances)})
