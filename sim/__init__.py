"""capsim: a discrete-event capacity and cost simulator.

Python API::

    import sim
    scenario = sim.load_scenario("scenarios/launch.yaml")
    result = sim.run(scenario, seed=7)
    result.summary["latency_ms"]["p95"]
    result.timeseries  # pandas DataFrame, one row per interval
"""
from __future__ import annotations

from sim.model import Model
from sim.results import Result, summarize
from sim.scenario import Scenario

__all__ = ["Scenario", "Model", "Result", "run", "load_scenario", "default_scenario"]


def default_scenario() -> Scenario:
    """The built-in default: the seed's Phase 1 launch."""
    return Scenario()


def run(scenario: Scenario | None = None, seed: int | None = None) -> Result:
    """Simulate ``scenario`` (default: the built-in one) with ``seed`` (default: its own)."""
    model = Model(scenario if scenario is not None else Scenario(), seed).run()
    return Result(summarize(model), model.metrics.rows)


def load_scenario(path, overrides: list[str] | None = None) -> Scenario:
    """Read and validate a scenario YAML file (``overrides``: ``dotted.path=value``)."""
    from sim.loader import load
    return load(path, overrides or [])
