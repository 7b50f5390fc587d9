"""The seed's circuit breaker around database calls, and its peak-load shedding.

``CircuitBreaker`` follows the seed's ``circuitBreaker`` object (one per instance):
``execute`` fails fast while open unless ``now - lastFailureTime > recoveryTimeout``
(strictly: at exactly 60 s it is still open), which turns it half-open and lets the call
through; every result then applies ``onSuccess`` (count 0, closed) or ``onFailure``
(count + 1; at ``failureThreshold`` open and ``lastFailureTime = now``). As written:

* half-open does not limit trial calls: every call passes until a result arrives;
* the count is not reset on opening, so one failure in half-open re-opens it;
* a call already in flight that fails while open pushes ``lastFailureTime`` on; one
  that succeeds closes the breaker;
* failures need not be consecutive: any success resets the count.

(The seed's literal JavaScript uses arrow functions, whose ``this`` is not the object,
so as written it would never open; we model the evident intent.)

``LoadShedder`` is ``peakLoadStrategy.circuit_breaker``: above ``threshold`` requests/s
per instance the ``maintenance_page`` fallback answers for ``timeout`` (5 min). The
rate is every arrival (shed ones too) in fixed ``shed_window`` buckets from time 0.
"""
from __future__ import annotations

import math
from collections import deque

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.units import Count, PositiveDuration, Rate

__all__ = ["BreakerConfig", "CircuitBreaker", "LoadShedder", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class BreakerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    failure_threshold: Count = Field(5, description="failures (since the last success) that open the breaker")
    recovery_timeout: PositiveDuration = Field(60.0, description="open for more than this after the last failure, then half-open")
    shed_rps: Rate | None = Field(1000.0, gt=0, description="requests/s per instance above which the maintenance page answers; null = never shed")
    shed_window: PositiveDuration = Field(1.0, description="request rate = arrivals in fixed buckets of this length")
    shed_duration: PositiveDuration = Field(300.0, description="how long the maintenance page stays on once triggered (seed: 300000 ms)")


class CircuitBreaker:
    """One instance's breaker; ``allow`` before a database call, ``success``/``failure`` after."""

    def __init__(self, config: BreakerConfig, keep: int = 1000):
        self.threshold, self.timeout = config.failure_threshold, config.recovery_timeout
        self.state = CLOSED
        self.failures = 0
        self.last_failure = -math.inf
        self.rejected = 0                          # calls failed fast while open
        self.transitions: deque = deque(maxlen=keep)   # the last (time, from, to)
        self.counts: dict[tuple[str, str], int] = {}   # all transitions by (from, to)

    def allow(self, now: float) -> bool:
        if self.state is OPEN:
            if now - self.last_failure > self.timeout:
                self._to(now, HALF_OPEN)
                return True
            self.rejected += 1
            return False
        return True

    def success(self, now: float) -> None:
        self.failures = 0
        if self.state is not CLOSED:
            self._to(now, CLOSED)

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            if self.state is not OPEN:
                self._to(now, OPEN)
            self.last_failure = now

    def _to(self, now: float, state: str) -> None:
        kind = (self.state, state)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.transitions.append((now, self.state, state))
        self.state = state


class LoadShedder:
    """One instance's peak-load switch: ``admit`` is False while the maintenance page is on."""

    def __init__(self, config: BreakerConfig):
        self.window = config.shed_window
        self.cap = math.inf if config.shed_rps is None else config.shed_rps * config.shed_window
        self.duration = config.shed_duration
        self.n = 0                    # arrivals in the current bucket
        self.bucket_end = self.window
        self.until = -math.inf        # shedding until this time
        self.shed = 0
        self.activations = 0

    def admit(self, now: float) -> bool:
        if now >= self.bucket_end:
            self.bucket_end = (math.floor(now / self.window) + 1) * self.window
            if self.bucket_end <= now:
                self.bucket_end += self.window
            self.n = 0
        self.n += 1
        if now < self.until:
            self.shed += 1
            return False
        if self.n > self.cap:
            self.until = now + self.duration
            self.activations += 1
            self.shed += 1
            return False
        return True

    def shedding(self, now: float) -> bool:
        return now < self.until
