"""Injected faults: instance crashes (at given times or at a rate) and database outages.

A crash kills the instance's requests (``crashed``) and it is healthy again after
``instances.restart_after`` (Render restarts after 60 s). Random crashes hit each
running instance as a Poisson process of ``crash_rate`` per instance-hour, from their
own random stream. During a database outage every request in its database step fails
with ``db_error`` and new connections cannot be opened. During a Redis outage the
shared cache is unavailable: reads miss (the database answers) and writes are lost.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.distributions import Exponential, draws, uniforms
from capsim.models.units import Amount, Duration, NonNegative, PositiveDuration

__all__ = ["FaultsConfig", "Crash", "Outage", "FaultInjector"]


class Crash(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    at: Duration = Field(description="when (offset from the start)")
    instance: Amount = Field(0, description="index among the running instances at that time (oldest first)")


class Outage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    start: Duration
    duration: PositiveDuration


class FaultsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    crashes: list[Crash] = Field(default_factory=list, description="crashes at given times")
    crash_rate: NonNegative = Field(0.0, description="random crashes per running instance per hour")
    database_outages: list[Outage] = Field(default_factory=list)
    redis_outages: list[Outage] = Field(default_factory=list, description="the shared Redis is unreachable: cache reads miss, writes are lost")


class FaultInjector:
    """SimPy processes that inject the configured faults."""

    def __init__(self, config: FaultsConfig, fleet, db, rng_times, rng_pick, redis_down=None):
        self.config, self.fleet, self.db, self._redis_down = config, fleet, db, redis_down
        self._gaps = draws(Exponential(mean=1.0), rng_times)
        self._pick = uniforms(rng_pick)
        self.crashes = 0

    def start(self, env) -> None:
        for crash in self.config.crashes:
            env.process(self._crash_at(env, crash))
        for outage in self.config.database_outages:
            env.process(self._outage(env, outage))
        for outage in self.config.redis_outages:
            env.process(self._redis_outage(env, outage))
        if self.config.crash_rate > 0:
            env.process(self._random_crashes(env))

    def _crash_at(self, env, crash: Crash):
        yield env.timeout(crash.at)
        running = self.fleet.running
        if crash.instance < len(running):
            self._crash(running[crash.instance])

    def _random_crashes(self, env):
        """Superposed Poisson crashes: total rate = rate x running instances (memoryless,
        so re-drawing after each crash with the current count is exact between changes)."""
        rate = self.config.crash_rate / 3600.0
        while True:
            n = len(self.fleet.running)
            if n == 0:
                yield env.timeout(60.0)
                continue
            yield env.timeout(next(self._gaps) / (rate * n))
            running = self.fleet.running
            if running:
                self._crash(running[int(next(self._pick) * len(running))])

    def _outage(self, env, outage: Outage):
        yield env.timeout(outage.start)
        self.db.outage(outage.duration)

    def _redis_outage(self, env, outage: Outage):
        yield env.timeout(outage.start)
        if self._redis_down is not None:
            self._redis_down(True)
            yield env.timeout(outage.duration)
            self._redis_down(False)

    def _crash(self, inst) -> None:
        self.crashes += 1
        self.fleet.crash(inst)
