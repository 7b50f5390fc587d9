"""capsim: a discrete-event capacity and cost simulator.

Python API::

    import capsim
    scenario = capsim.load_scenario("scenarios/launch.yaml")
    result = capsim.run(scenario, seed=7)
    result.summary["latency_ms"]["p95"]
    result.timeseries  # pandas DataFrame, one row per interval
"""
from __future__ import annotations

from capsim.engine.model import Model
from capsim.experiments import capacity_plan, compare, replicate, sweep
from capsim.results import Result, summarize
from capsim.scenario import Scenario

__all__ = ["Scenario", "Model", "Result", "run", "load_scenario", "default_scenario",
           "replicate", "compare", "sweep", "capacity_plan"]


def default_scenario() -> Scenario:
    """The built-in default: the seed's Phase 1 launch."""
    return Scenario()


def run(scenario: Scenario | None = None, seed: int | None = None, policy=None,
        allow_code: bool = False, watchers=()) -> Result:
    """Simulate ``scenario`` (default: the built-in one) with ``seed`` (default: its own).

    ``policy``: a custom autoscaling policy object (``interval``, ``window``,
    ``decide(obs)``) used instead of the scenario's. ``allow_code``: let a scenario's
    ``autoscaler: {policy: custom, path: ...}`` import its class. ``watchers``: objects whose
    ``attach(model)`` is called before the run (e.g. ``capsim.results.artillery.ArtilleryRecorder``).
    """
    model = Model(scenario if scenario is not None else Scenario(), seed, policy, allow_code)
    for w in watchers:
        w.attach(model)
    model.run()
    events = [e.row() for e in model.controller.events] if model.controller is not None else []
    return Result(summarize(model), model.metrics.rows, events, model.fleet.instance_rows, model.scenario)


def load_scenario(path, overrides: list[str] | None = None) -> Scenario:
    """Read and validate a scenario YAML file (``overrides``: ``dotted.path=value``)."""
    from capsim.scenario.loader import load
    return load(path, overrides or [])
