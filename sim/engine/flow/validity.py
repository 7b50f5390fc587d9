"""Where the fast mode is outside what its closed forms can do, with the times and numbers.

Each check records the steps where it fired and the worst value; ``warnings()`` merges
contiguous steps into periods and words them. The run is ``valid`` when no check fired
inside the measured window (after the warm-up); warm-up warnings are listed too.
"""
from __future__ import annotations

from capsim.models.units import human_duration

__all__ = ["Validity", "CHECKS"]

CHECKS = {
    "loop": "an event loop was busier than {limit:.0%} of its capacity (worst {worst:.0%}): queueing formulas lose accuracy",
    "backlog": "an event loop was overloaded: work beyond its capacity carried as a fluid backlog (worst {worst:.1f} s of work)",
    "pool": "a pg.Pool was near its connections (worst {worst:.0%} busy): at the edge of its acquire timeouts",
    "pool_timeout": "acquire timeouts were likely (worst {worst:.2%} of acquisitions): M/M/c+D at the edge",
    "database": "the database server's query slots were busier than {limit:.0%} (worst {worst:.0%})",
    "connections": "open connections reached database.max_connections (worst {worst:.0f}): refusals are a rough estimate",
    "cache": "a cache was far from steady state (hit rate at worst {worst:.0%} of its steady value): warming up",
    "shed": "load shedding was active (worst {worst:.1%} of requests shed): a threshold behaviour, approximated as fluid",
    "breaker": "the circuit breaker was open (worst {worst:.0%} of processes)",
    "outage": "a database or Redis outage: a transient, approximated step by step",
    "lost": "an instance crashed or stopped with requests in flight or sockets: a transient (reconnect burst of {worst:.0f} sessions)",
    "unavailable": "no instance was ready: requests failed as unavailable",
}


class Validity:
    def __init__(self, warmup: float, horizon: float, limit: float):
        self.warmup, self.horizon, self.limit = warmup, horizon, limit
        self.hits: dict[str, list] = {k: [] for k in CHECKS}

    def flag(self, kind: str, t0: float, t1: float, worst: float) -> None:
        spans = self.hits[kind]
        if spans and spans[-1][1] >= t0 - 1e-9:
            a, _, w = spans[-1]
            spans[-1] = (a, max(t1, spans[-1][1]), max(w, worst))
        else:
            spans.append((t0, t1, worst))

    def _measured(self, spans) -> bool:
        return any(b > self.warmup and a < self.horizon for a, b, _ in spans)

    @property
    def valid(self) -> bool:
        return not any(self._measured(s) for s in self.hits.values())

    def warnings(self) -> list[str]:
        out = []
        for kind, spans in self.hits.items():
            if not spans:
                continue
            worst = max(w for _, _, w in spans)
            seconds = sum(b - a for a, b, _ in spans)
            periods = ", ".join(f"{human_duration(a)}-{human_duration(b)}" for a, b, _ in spans[:5])
            more = f" and {len(spans) - 5} more periods" if len(spans) > 5 else ""
            where = "" if self._measured(spans) else " (warm-up only)"
            out.append(f"{kind}: {CHECKS[kind].format(limit=self.limit, worst=worst)}; "
                       f"{human_duration(seconds)} in all, at t = {periods}{more}{where}")
        return out

    def block(self, step: float) -> dict:
        spans = [s for v in self.hits.values() for s in v]
        flagged = sum(b - a for a, b, _ in spans if b > self.warmup)
        return {"mode": "flow", "step_seconds": step, "valid": self.valid, "flagged_seconds": round(flagged, 3),
                "max_utilisation": self.limit, "warnings": self.warnings()}
