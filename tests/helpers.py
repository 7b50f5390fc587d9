"""Test helpers shared by the request-path, lifecycle and socket tests."""
from __future__ import annotations

from capsim.models.request import OUTCOMES, Request
from capsim.engine.model import Model
from capsim.results.result import summarize
from capsim.scenario.config import Scenario

__all__ = ["Driver", "conserved", "arrivals_log", "cli"]


def cli(capsys, *argv):
    """``capsim ARGV`` in this process: (exit code, stdout, stderr), never a traceback."""
    from capsim.cli import main
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


class Driver:
    """A model with hand-made requests and a log of every outcome: (request, outcome, time)."""

    def __init__(self, sc: Scenario, seed: int = 1):
        self.model = m = Model(sc, seed=seed)
        self.log: list[tuple[Request, str, float]] = []
        self.probes: dict[float, object] = {}
        m.watch(on_done=lambda req, outcome, now: self.log.append((req, OUTCOMES[outcome], now)))

    @property
    def fleet(self):
        return self.model.fleet

    def at(self, t: float, fn) -> None:
        self.model.kernel.at(t, lambda _: fn())

    def send(self, t, cpu=0.001, query=None, post=0.0, cls=-1, key=0, tier=None, client=None, db=0) -> Request:
        req = Request(t, 0, cpu, post, None if query is None else [query], client, None)
        req.cls, req.key, req.tier, req.db = cls, key, tier, db
        self.at(t, lambda: self.model.route(req))
        return req

    def probe(self, t: float, fn) -> None:
        self.at(t, lambda: self.probes.__setitem__(t, fn()))

    def run(self) -> dict:
        self.model.run()
        return summarize(self.model)

    def outcome(self, req) -> tuple[str, float]:
        ends = [(o, t) for r, o, t in self.log if r is req]
        assert len(ends) == 1, f"expected exactly one outcome, got {ends}"
        return ends[0]

    def latency(self, req) -> float:
        return self.outcome(req)[1] - req.t0


def conserved(s: dict) -> bool:
    r = s["requests"]
    return (r["in_flight_start"] + r["total"] == r["completed"] + r["in_flight_end"]
            and r["completed"] == sum(r[o] for o in OUTCOMES))


def arrivals_log(model) -> list:
    """Every request that arrives (``Model.watch``), in arrival order."""
    seen: list = []
    model.watch(on_arrive=seen.append)
    return seen
