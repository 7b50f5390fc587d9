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
           "replicate", "compare", "sweep", "capacity_plan", "estimate"]


def default_scenario() -> Scenario:
    """The built-in default: the seed's Phase 1 launch."""
    return Scenario()


def run(scenario: Scenario | None = None, seed: int | None = None, policy=None,
        allow_code: bool = False, progress=None, force: bool = False, fidelity: str | None = None) -> Result:
    """Simulate ``scenario`` (default: the built-in one) with ``seed`` (default: its own).

    ``policy``: a custom autoscaling policy object (``interval``, ``window``,
    ``decide(obs)``) used instead of the scenario's. ``allow_code``: let a scenario's
    ``autoscaler: {policy: custom, path: ...}`` import its class. ``progress(simulated,
    horizon)``: called as the run advances. A scenario beyond the work limits
    (``capsim.engine.estimate``: requests, events, memory) raises ``TooMuchWork`` with the
    numbers, unless ``force``. ``fidelity``: ``"request"`` or ``"flow"`` (the fast mode)
    instead of the scenario's ``fidelity``.
    """
    from capsim.engine.estimate import check
    scenario = scenario if scenario is not None else Scenario()
    if fidelity is not None and fidelity != scenario.fidelity:
        scenario = Scenario.model_validate({**scenario.model_dump(by_alias=True), "fidelity": fidelity})
    check(scenario, force)
    if scenario.fidelity == "flow":
        from capsim.engine.flow import FlowModel as model_class
    else:
        model_class = Model
    model = model_class(scenario, seed, policy, allow_code).run(progress)
    events = [e.row() for e in model.controller.events] if model.controller is not None else []
    summary = summarize(model)
    summary["fidelity"] = model.fidelity()
    return Result(summary, model.metrics.rows, events, model.fleet.instance_rows, model.scenario,
                  model.metrics.histogram_rows())


def estimate(scenario: Scenario | None = None):
    """What running ``scenario`` takes: requests, events, memory, wall time (``capsim.engine.estimate``)."""
    from capsim.engine.estimate import estimate as work
    return work(scenario if scenario is not None else Scenario())


def load_scenario(path, overrides: list[str] | None = None) -> Scenario:
    """Read and validate a scenario YAML file (``overrides``: ``dotted.path=value``)."""
    from capsim.scenario.loader import load
    return load(path, overrides or [])
