"""A run's output folder read back, with the same attributes as ``capsim.Result``.

Figures take either: anything with ``summary`` (dict), ``timeseries``, ``instances``,
``scaling_events`` (DataFrames) and ``scenario`` (a Scenario, a plain dict, or None).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["RunFiles", "scenario_value", "scenario_model", "time_hours"]


def _csv(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=columns)
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=columns)


@dataclass
class RunFiles:
    """``summary.json``, ``timeseries.csv``, ``instances.csv``, ``scaling_events.csv``,
    ``latency_histogram.csv`` and ``scenario.json`` of one run folder (missing tables are empty)."""
    folder: Path
    summary: dict
    timeseries: pd.DataFrame = field(repr=False)
    instances: pd.DataFrame = field(repr=False)
    scaling_events: pd.DataFrame = field(repr=False)
    scenario: dict | None = field(default=None, repr=False)
    latency_histogram: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @classmethod
    def read(cls, folder) -> "RunFiles":
        folder = Path(folder)
        summary_file = folder / "summary.json"
        if not summary_file.exists():
            raise FileNotFoundError(f"{folder}: no summary.json (expected the output folder of capsim run)")
        scenario_file = folder / "scenario.json"
        return cls(folder, json.loads(summary_file.read_text()), _csv(folder / "timeseries.csv"),
                   _csv(folder / "instances.csv"),
                   _csv(folder / "scaling_events.csv", ["time", "from", "to", "reason"]),
                   json.loads(scenario_file.read_text()) if scenario_file.exists() else None,
                   _csv(folder / "latency_histogram.csv"))


def scenario_value(run, dotted: str, default=None):
    """``run.scenario``'s field at ``dotted`` (``database.max_connections``), or ``default``."""
    node = getattr(run, "scenario", None)
    for part in dotted.split("."):
        if node is None:
            return default
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
    return default if node is None else node


def scenario_model(run):
    """``run.scenario`` as a validated ``Scenario`` (read back from scenario.json), or None."""
    from capsim.scenario.config import Scenario
    sc = getattr(run, "scenario", None)
    if sc is None or isinstance(sc, Scenario):
        return sc
    try:
        return Scenario.model_validate(sc)
    except Exception:        # noqa: BLE001 (a scenario.json of another version: no calendar marks)
        return None


def time_hours(df: pd.DataFrame, column: str = "t_end") -> pd.Series:
    """Simulated time in hours (the x axis of every time-series figure)."""
    return df[column].astype(float) / 3600.0
