"""``capsim calibrate``'s inputs: which kind each file is, read and fitted, and the calibrated scenario.

Kinds (``KIND:FILE`` says it; otherwise by content): ``artillery`` (a JSON report with
``aggregate`` and ``intermediate``), ``metrics`` (a CSV with requests and CPU or memory per
interval), ``log`` (a request log: anything else in CSV or JSON lines).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from capsim.calibrate.artillery import artillery_service, is_artillery, read_artillery
from capsim.calibrate.build import Built, Inputs, build
from capsim.calibrate.columns import Mapping
from capsim.calibrate.errors import InputError
from capsim.calibrate.metrics import looks_like_metrics, metrics_fits, read_metrics
from capsim.calibrate.read_log import read_request_log, read_table
from capsim.calibrate.service import calibrate
from capsim.calibrate.yaml_out import scenario_yaml
from capsim.scenario.config import Scenario

__all__ = ["KINDS", "kind_of", "read_inputs", "calibrate_files", "Calibrated"]

KINDS = ("log", "artillery", "metrics")


def _split_kind(spec: str) -> tuple[str | None, Path]:
    head, sep, rest = spec.partition(":")
    if sep and head in KINDS:
        return head, Path(rest)
    return None, Path(spec)


def kind_of(path: Path) -> str:
    if not path.is_file():
        raise InputError.one(path, "no such file")
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "log"               # JSON lines with a .json name: the log reader says what is wrong
        if is_artillery(data):
            return "artillery"
        if isinstance(data, dict) and "stats" in data:
            raise InputError.one(path, "a run's /stats summary, not a log: give the run's CSV log (the JSON beside "
                                       "it is read with it)")
        if isinstance(data, dict) and data.get("source") == "capsim":
            raise InputError.one(path, "a capsim request log's process totals: give the CSV log beside it")
        raise InputError.one(path, "expected an Artillery report (aggregate, intermediate) or JSON lines", None, "$")
    header = [c for c in read_table(path).columns if c != "__line"]
    return "metrics" if looks_like_metrics(header) else "log"


def read_inputs(specs: list[str], mapping: Mapping, base: Scenario) -> Inputs:
    out = Inputs()
    plan = base.pricing.plans[base.instances.plan]
    for spec in specs:
        kind, path = _split_kind(spec)
        kind = kind or kind_of(path)
        if kind == "artillery":
            run = read_artillery(path)
            out.artillery.append((run, artillery_service(run)))
        elif kind == "metrics":
            out.metrics.append(metrics_fits(read_metrics(path, mapping), plan.vcpus, plan.memory_gb,
                                            base.instances.plan))
        else:
            out.logs.append(calibrate(read_request_log(path, mapping)))
    return out


@dataclass
class Calibrated:
    inputs: Inputs
    built: Built
    yaml: str
    base_name: str


def calibrate_files(specs: list[str], mapping: Mapping | None = None, base_path=None,
                    name: str | None = None) -> Calibrated:
    """Read every input, fit, and build the calibrated scenario and its YAML (nothing is written)."""
    from capsim.scenario.loader import load
    from capsim.scenario.yaml_io import read_plain
    if base_path is not None:
        base = load(base_path)
        base_data = read_plain(Path(base_path).read_text(encoding="utf-8")) or {}
        base_name = f"the base scenario {base_path}"
    else:
        base, base_data, base_name = Scenario(), {}, "the built-in default scenario"
    inputs = read_inputs(specs, mapping or Mapping(), base)
    built = build(base_data, base, inputs, name)
    header = [f"Calibrated by `capsim calibrate {' '.join(specs)}` from {base_name}.",
              "Each calibrated value's comment gives its source, sample size and uncertainty. Durations in seconds.",
              *built.notes]
    text = scenario_yaml(built.data, built.settings, built.left, header)
    return Calibrated(inputs, built, text, base_name)
