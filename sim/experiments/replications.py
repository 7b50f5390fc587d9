"""Replications with confidence intervals (sweeps: ``capsim.experiments.sweep``).

Replication seeds come from the base seed: ``SeedSequence(base).spawn(R)``, child i
giving the integer seed ``child.generate_state(1)[0]``. Every random source draws from
its own named stream of that seed (``capsim.engine.streams``), so replication i of two scenarios
that differ only in policy, plan or capacity sees the same users, sessions, requests
and service times: common random numbers (``capsim.experiments.compare``).

Each replication's summary gains an ``slo`` block (``capsim.scenario.slo``); the warm-up is deleted
from every replication (the summary's measurement window), and every numeric summary
leaf gets a mean with a Student-t 95% interval (``capsim.experiments.intervals``).

Python API::

    from capsim.experiments import replicate, sweep
    reps = replicate(scenario, replications=5)          # reps.stats["latency_ms.p95"]
    table = sweep(scenario, {"instances.count": [1, 2, 3]}, replications=3)
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from capsim.experiments.parallel import Interrupted, Progress, run_jobs
from capsim.results.files import OutputFolder, safe_dir, write_csv, write_json
from capsim.results.slo import evaluate, slo_of
from capsim.scenario.slo import SLOConfig
from capsim.experiments.intervals import clean, flatten, mean_ci, metrics_of

__all__ = ["replication_seeds", "independent_seeds", "Job", "run_job", "run_all", "Replications", "replicate",
           "resolve", "warmup_note", "SERIES"]

# per-interval columns every replication keeps (replications_timeseries.csv: bands in the reports)
SERIES = ("t_end", "warmup", "arrivals", "instances_ready", "cpu_util", "latency_p95_ms", "server_error_rate",
          "rejected_rate")


# -- seeds and jobs -------------------------------------------------------------------------
def replication_seeds(base: int, n: int) -> list[int]:
    """Integer seeds of ``n`` replications: ``SeedSequence(base).spawn(n)``, one 32-bit word each."""
    return [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(int(base)).spawn(n)]


def independent_seeds(base: int, n: int) -> list[int]:
    """Seeds unrelated to ``replication_seeds(base, n)`` (spawned from the base ``[base, 1]``)."""
    return [int(c.generate_state(1)[0]) for c in np.random.SeedSequence([int(base), 1]).spawn(n)]


@dataclass(frozen=True)
class Job:
    """One simulation: a validated scenario (pydantic models pickle) and its seed."""
    scenario: object
    seed: int
    slo: SLOConfig | None = None
    keep_rows: bool = False
    allow_code: bool = False
    policy: object = None
    keep_series: bool = False       # a few per-interval columns (SERIES), for bands over replications
    force: bool = False          # run beyond the work limits (capsim.engine.estimate)


def run_job(job: Job) -> dict:
    """Run one job (in a worker): ``{"summary": ..., ["rows", "events"]}`` or ``{"error": text}``."""
    import capsim
    try:
        # a fresh copy of a custom policy per run, as a worker process gets: state (cooldowns,
        # history) never carries from one replication to the next, whatever the worker count
        policy = copy.deepcopy(job.policy)
        result = capsim.run(job.scenario, job.seed, policy=policy, allow_code=job.allow_code, force=job.force)
    except Exception as exc:            # recorded for its point; the others go on
        return {"error": f"{type(exc).__name__}: {exc}", "seed": job.seed}
    summary = dict(result.summary)
    summary["slo"] = evaluate(result.rows, slo_of(job.scenario, job.slo))
    out = {"summary": summary}
    if job.keep_series:
        out["series"] = [{c: r.get(c) for c in SERIES} for r in result.rows]
    if job.keep_rows:
        out["rows"], out["events"], out["instance_rows"] = result.rows, result.events, result.instance_rows
        out["histogram_rows"] = result.histogram_rows
    return out


def warmup_note(scenario) -> str:
    from capsim.models.units import human_duration
    measured = human_duration(scenario.horizon - scenario.warmup)
    if not scenario.warmup:
        return f"no warm-up deleted: all {measured} of each replication measured"
    return (f"warm-up deletion: the first {human_duration(scenario.warmup)} of each replication are left out; "
            f"statistics cover the {measured} after it")


# -- replications ---------------------------------------------------------------------------
@dataclass
class Replications:
    """R runs of one scenario: their summaries, and a 95% interval per metric."""
    scenario: object
    base_seed: int
    seeds: list[int]
    outputs: list[dict | None]          # run_job results in seed order; None: not run (interrupted)
    interrupted: bool = False
    label: str = ""

    @property
    def summaries(self) -> list[dict]:
        return [o["summary"] for o in self.outputs if o and "summary" in o]

    @property
    def errors(self) -> list[str]:
        return [o["error"] for o in self.outputs if o and "error" in o]

    def flat(self) -> list[dict | None]:
        """Flattened metrics per replication (None where it did not finish or failed)."""
        return [metrics_of(flatten(o["summary"])) if o and "summary" in o else None for o in self.outputs]

    @property
    def table(self) -> pd.DataFrame:
        rows = [{"replication": i + 1, "seed": s, **flatten(o["summary"])}
                for i, (s, o) in enumerate(zip(self.seeds, self.outputs)) if o and "summary" in o]
        return pd.DataFrame(rows)

    @property
    def series(self) -> pd.DataFrame:
        """The kept per-interval columns (``SERIES``) of every finished replication, one row per interval."""
        frames = [pd.DataFrame(o["series"]).assign(replication=i + 1, seed=s)
                  for i, (s, o) in enumerate(zip(self.seeds, self.outputs)) if o and "series" in o]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def stats(self) -> dict[str, dict]:
        flat = [f for f in self.flat() if f is not None]
        names = list(dict.fromkeys(k for f in flat for k in f))
        return {k: mean_ci([f.get(k) for f in flat]) for k in names}

    def result(self):
        """Replication 1 as a ``capsim.Result`` (curves included), when its rows were kept
        (``replicate(..., keep_first=True)``; ``compare`` keeps them for both sides)."""
        from capsim.results.result import Result
        first = self.outputs[0] if self.outputs else None
        if not first or "rows" not in first:
            raise ValueError("replication 1's curves were not kept: use replicate(..., keep_first=True)")
        return Result(first["summary"], first["rows"], first["events"], first.get("instance_rows", []),
                      self.scenario, first.get("histogram_rows", []))

    def block(self) -> dict:
        return clean(self.stats)

    def info(self) -> dict:
        return {"replications": len(self.seeds), "finished": len(self.summaries), "base_seed": self.base_seed,
                "seeds": self.seeds, "seed_rule": "numpy.random.SeedSequence(base_seed).spawn(R); "
                "seed = child.generate_state(1)[0]", "confidence": 0.95, "interval": "Student t",
                "warmup": warmup_note(self.scenario), "interrupted": self.interrupted}

    def write(self, out, overwrite: bool = False) -> Path:
        """``replications.csv``, ``replications_timeseries.csv`` (``SERIES`` of every replication) and
        ``summary.json`` (replication 1's summary + the replications block); replication 1's
        ``timeseries.csv``, ``scaling_events.csv`` and ``instances.csv`` when kept.
        The folder is written whole or not at all (``capsim.results.files.OutputFolder``)."""
        with OutputFolder(out, overwrite=overwrite, command="replications") as folder:
            self.write_into(folder.stage)
        return Path(out)

    def write_into(self, folder) -> Path:
        """The files of ``write`` in ``folder`` (part of an output folder being written)."""
        folder = safe_dir(folder)
        write_csv(folder / "replications.csv", self.table)
        series = self.series
        if len(series):
            write_csv(folder / "replications_timeseries.csv", series)
        first = self.outputs[0] if self.outputs and self.outputs[0] and "summary" in self.outputs[0] else None
        if first and "rows" in first:
            self.result().write_into(folder)   # then summary.json, below
        summary = dict(first["summary"]) if first else {"scenario": self.scenario.name}
        summary["replications"] = self.block()
        summary["replication_info"] = self.info()
        write_json(folder / "summary.json", clean(summary))
        return folder


def base_seed_of(scenario, seed):
    return int(seed if seed is not None else scenario.seed)


def replicate(scenario, replications: int = 5, seed: int | None = None, *, slo: SLOConfig | None = None,
              workers: int | None = None, cluster=None, progress: bool = True, keep_first: bool = False,
              allow_code: bool = False, policy=None, label: str = "replications", force: bool = False) -> Replications:
    """Run ``replications`` independent replications of ``scenario`` (CRN-ready seeds)."""
    from capsim.scenario.config import Scenario
    scenario = scenario if scenario is not None else Scenario()
    base = base_seed_of(scenario, seed)
    seeds = replication_seeds(base, replications)
    jobs = [Job(scenario, s, slo, keep_first and i == 0, allow_code, policy, keep_series=True, force=force)
            for i, s in enumerate(seeds)]
    outputs, interrupted = run_all(jobs, workers, cluster, Progress(len(jobs), f"capsim {label}", enabled=progress))
    return Replications(scenario, base, seeds, outputs, interrupted, label)


def resolve(scenario, overrides: list[str]):
    """A validated Scenario from a file path (errors carry FILE:LINE:COL), a Scenario or None, plus overrides."""
    from capsim.scenario.loader import load, load_builtin, load_text
    if scenario is None:
        return load_builtin(overrides)
    if isinstance(scenario, (str, Path)):
        return load(scenario, overrides)
    return load_text(scenario.model_dump_json(), f"<scenario {scenario.name}>", overrides)


def run_all(jobs, workers, cluster, progress, on_result=None) -> tuple[list, bool]:
    """``run_job`` over ``jobs`` (``capsim.experiments.parallel.run_jobs``): (outputs in job order, interrupted?).
    After Ctrl-C the outputs of unfinished jobs are None."""
    try:
        return run_jobs(run_job, jobs, workers=workers, cluster=cluster, progress=progress, on_result=on_result), False
    except Interrupted as exc:
        print(f"capsim: interrupted: kept the {len(exc.done)} of {len(jobs)} jobs that had finished", file=sys.stderr)
        return [exc.done.get(i) for i in range(len(jobs))], True
