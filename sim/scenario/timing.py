"""Warnings about things timed outside the run: they never happen (or only in part).

A run covers ``[workload.start, workload.start + horizon)``. Workload events, open-loop
sources with their load-test phases and schedule steps, scheduled actions (``schedule``
and the ``scheduled`` policy's own) and injected faults that start outside it are named,
each at its dotted path (``capsim validate`` adds FILE:LINE where the file has it).
"""
from __future__ import annotations

from datetime import timedelta

from capsim.models.autoscaling.scheduled import Schedule
from capsim.models.units import human_duration
from capsim.models.workload import Calendar

__all__ = ["outside_horizon"]


def outside_horizon(sc) -> list[str]:
    """One warning per event, phase, step, scheduled action or fault starting outside [0, horizon)."""
    out = [_timed_warning(sc, path, what, t0, t1) for path, what, t0, t1 in _timed(sc)
           if not 0 <= t0 < sc.horizon]
    return out + [_action_warning(sc, path, action) for path, action in _actions(sc) if not _occurs(sc, action)]


def _timed(sc):
    """(path, what, start, end) of everything with a start time, in seconds from t = 0."""
    ss, faults = sc.workload.sessions, sc.faults
    cal = Calendar(sc.workload.start, [])
    for i, ev in enumerate(ss.events if ss is not None else []):
        t = cal.offset(ev.start)
        yield f"workload.sessions.events[{i}]", f"event {ev.name!r}", t, t + ev.duration
    for i, src in enumerate(sc.workload.open_loop):
        yield from _source(i, src, sc.horizon)
    for i, crash in enumerate(faults.crashes):
        yield f"faults.crashes[{i}]", "crash", crash.at, crash.at
    for kind in ("database_outages", "redis_outages"):
        for i, o in enumerate(getattr(faults, kind)):
            yield f"faults.{kind}[{i}]", kind[:-1].replace("_", " "), o.start, o.start + o.duration


def _source(i: int, src, horizon: float):
    """An open-loop source; when it starts inside the run, its phases or steps that do not."""
    path, pieces = f"workload.open_loop[{i}]", src.segments()
    end = max((b for _, b, _, _ in pieces), default=src.start)
    if not src.start < horizon:
        yield path, f"open-loop source {src.name!r}", src.start, end
        return
    if src.phases is not None:
        for j, (ph, (a, b, _, _)) in enumerate(zip(src.phases, pieces)):
            yield f"{path}.phases[{j}]", f"load-test phase {ph.name or j!r} of {src.name!r}", a, b
    elif src.schedule is not None:
        for j, (a, b, _, _) in enumerate(pieces):
            yield f"{path}.schedule[{j}]", f"rate step {j} of {src.name!r}", a, b


def _actions(sc):
    if sc.schedule is not None:
        yield from ((f"schedule.actions[{i}]", a) for i, a in enumerate(sc.schedule.actions))
    if sc.autoscaler is not None and sc.autoscaler.policy == "scheduled":
        yield from ((f"autoscaler.actions[{i}]", a) for i, a in enumerate(sc.autoscaler.actions))


def _occurs(sc, action) -> bool:
    """Some occurrence of ``action`` lies in [0, horizon)."""
    return any(t < sc.horizon for t, _ in Schedule([action], sc.workload.start, 1, 1).occurrences(sc.horizon))


def _run(sc) -> str:
    return f"the run covers {_when(sc, 0)} to {_when(sc, sc.horizon)} (horizon {human_duration(sc.horizon)})"


def _when(sc, t: float) -> str:
    return (sc.workload.start + timedelta(seconds=t)).strftime("%a %Y-%m-%d %H:%M")


def _timed_warning(sc, path: str, what: str, t0: float, t1: float) -> str:
    at = f"{what} starts at {_when(sc, t0)} (t = {human_duration(t0)})"
    if t0 < 0 < t1:
        return (f"{path}: {at}, before the run starts: {_run(sc)}, so only its part from {_when(sc, 0)} on "
                f"happens. Fix: move it, or workload.start earlier")
    if t0 < 0:
        return f"{path}: {at}, before the run starts: {_run(sc)}, so it never happens. Fix: move it, or workload.start"
    return (f"{path}: {at}, at or after the run's end: {_run(sc)}, so it never happens. "
            f"Fix: horizon > {human_duration(t0)}, or move it inside the run")


def _action_warning(sc, path: str, action) -> str:
    return (f"{path}: scheduled action at {action.at!s} never occurs: {_run(sc)}. "
            f"Fix: a longer horizon, another workload.start, or move the action inside the run")
