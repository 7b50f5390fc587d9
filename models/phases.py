"""Artillery's phase scheduler: when a phase's virtual users arrive, as Artillery 2 makes them.

Facts carried over from Artillery 2.0 (``packages/artillery/lib/core/phases.ts`` and the
``arrivals`` package it uses), not its code:

- ``arrivalRate`` r for ``duration`` d (no ``rampTo``): one arrival every
  ``tick = floor(1e6 / r)`` microseconds, the first one tick after the phase starts,
  ``floor(d * 1e6 / tick)`` in all; the phase ends with its last arrival. ``arrivalRate: 0``
  is a pause of d.
- ``arrivalCount`` n over d: the same evenly spaced process with ``tick = floor(d * 1e6 / n)``
  microseconds; ``arrivalCount: 0`` ends the phase at once.
- ``rampTo``: second i of the phase (i = 0 .. d-1) gets ``n_i = floor(r + (rampTo - r) * i / (d - 1))``
  arrivals (``floor((r + rampTo) / 2)`` when d = 1), spaced ``min(floor(1000 / n_i), 1000)`` ms
  apart from that second's start (the first one tick in); the phase lasts d whole seconds.
- ``pause`` p: no arrivals for p.
- Phases run one after another; ``mode: poisson`` (capsim: ``arrivals: poisson``) draws
  exponential gaps instead.
"""
from __future__ import annotations

from math import ceil, floor
from typing import Iterator

__all__ = ["even_arrivals", "phase_arrivals", "phase_end"]


def _ticks(phase) -> tuple[str, float]:
    """("uniform", tick in µs), ("ramp", 0), or ("none", 0) for a phase without arrivals."""
    if phase.pause is not None:
        return "none", 0
    if phase.arrivalCount is not None:
        return ("uniform", floor(phase.duration * 1000 / phase.arrivalCount * 1000)) if phase.arrivalCount else ("none", 0)
    if phase.rampTo is not None:
        return "ramp", 0
    return ("uniform", floor(1000 / phase.arrivalRate * 1000)) if phase.arrivalRate > 0 else ("none", 0)


def phase_end(phase, t0: float) -> float:
    """When a phase started at ``t0`` ends (the next one starts)."""
    kind, tick = _ticks(phase)
    if kind == "uniform":
        return t0 + floor(phase.duration * 1e6 / tick) * tick / 1e6 if tick > 0 else t0
    if kind == "ramp":
        return t0 + ceil(phase.duration)
    if phase.pause is not None:
        return t0 + phase.pause
    return t0 if phase.arrivalCount == 0 else t0 + phase.duration


def phase_arrivals(phase, t0: float) -> Iterator[float]:
    """The arrival times of one phase started at ``t0``, lazily."""
    kind, tick = _ticks(phase)
    if kind == "uniform" and tick > 0:
        for k in range(1, floor(phase.duration * 1e6 / tick) + 1):
            yield t0 + k * tick / 1e6
    elif kind == "ramp":
        d, r0, r1 = phase.duration, phase.arrivalRate, phase.rampTo
        for i in range(ceil(d)):
            n = floor((r0 + r1) / 2) if d == 1 else floor((r1 - r0) / (d - 1) * i + r0)
            if n > 0:
                step = min(floor(1000 / n), 1000) / 1000
                for j in range(1, n + 1):
                    yield t0 + i + j * step


def even_arrivals(phases, start: float) -> Iterator[float]:
    """Every arrival of ``phases`` (run one after another from ``start``), in time order."""
    t = start
    for ph in phases:
        yield from phase_arrivals(ph, t)
        t = phase_end(ph, t)
