"""A backtest: replay a log's own traffic through a scenario; measured beside simulated per interval.

The log's arrivals (every row, warm-up included, each at its own time, its route mapped to one of
the scenario's endpoints) become the scenario's only traffic (``workload.trace``, written to
``OUT/trace.csv.gz``; sessions and open-loop sources are dropped). The scenario's warm-up is the
log's: its measured window starts at the first measured arrival. The run lasts until the last
arrival plus ``drain`` (default: 10 s or 5 times the log's slowest response, whichever is longer),
so requests that arrive in the window get their answers.

Each of ``replications`` runs has its own seed (``SeedSequence(seed).spawn(R)``); the replayed
arrivals are the same in all of them, the service times differ. Per interval: each figure's
mean over the replications with a Student-t 95% interval, and the prediction error
(simulated / measured - 1; the error share as the difference in percentage points).

``scenario_b`` (``--set-b``): a counterfactual on the same traffic. Replication i of B has
replication i's seed (common random numbers), and ``capsim.experiments.compare``'s paired
comparison gives B - A per headline metric.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capsim.backtest.intervals import STATS, IntervalRecorder, edges_of, measured_intervals
from capsim.backtest.logs import route_map, write_trace
from capsim.experiments.compare import Comparison
from capsim.experiments.intervals import clean, mean_ci
from capsim.experiments.parallel import Interrupted, Progress, run_jobs
from capsim.experiments.replications import Replications, replication_seeds
from capsim.results.files import OutputFolder, safe_dir, write_csv, write_json
from capsim.scenario.config import Scenario

__all__ = ["backtest", "Backtest", "replay_scenario", "run_backtest_job"]

LABELS = {"rate": "rate/s", "mean_ms": "mean ms", "p95_ms": "p95 ms", "p99_ms": "p99 ms", "errors": "errors %"}


def replay_scenario(scenario: Scenario, trace: Path, warmup: float, horizon: float) -> Scenario:
    """``scenario`` with the trace as its only traffic, and the log's warm-up and length."""
    data = scenario.model_dump(by_alias=True)
    wl = data["workload"]
    wl.update(sessions=None, open_loop=[], artillery=None,
              trace={"file": str(trace), "origin": 0.0, "default_endpoint": None, "routes": {}})
    data.update(horizon=horizon, warmup=warmup)
    return Scenario.model_validate(data)


def run_backtest_job(job: tuple) -> dict:
    """One replication (in a worker): ``(scenario, seed, edges, keep_rows)`` -> summary and intervals."""
    import capsim
    from capsim.results.slo import evaluate, slo_of
    scenario, seed, edges, keep = job
    try:
        rec = IntervalRecorder(edges)
        result = capsim.run(scenario, seed, watchers=[rec])
    except Exception as exc:            # recorded for this replication; the others go on
        return {"error": f"{type(exc).__name__}: {exc}", "seed": seed}
    summary = dict(result.summary)
    summary["slo"] = evaluate(result.rows, slo_of(scenario, None))
    out = {"summary": summary, "intervals": rec.intervals()}
    if keep:
        out["rows"], out["events"], out["instance_rows"] = result.rows, result.events, result.instance_rows
    return out


@dataclass
class Backtest:
    log_name: str
    interval: float
    edges: list[float]
    measured: list[dict]                       # per interval, then the whole window
    a: Replications
    b: Replications | None = None
    label_a: str = "A"
    label_b: str = "B"
    notes: list[str] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self.a.interrupted or (self.b is not None and self.b.interrupted)

    @staticmethod
    def simulated(reps: Replications) -> list[dict]:
        """Per interval (then the window): each figure's mean and 95% interval over the replications."""
        runs = [o["intervals"] for o in reps.outputs if o and "intervals" in o]
        if not runs:
            return []
        return [{k: mean_ci([r[i][k] for r in runs]) for k in STATS} for i in range(len(runs[0]))]

    def comparison(self) -> Comparison | None:
        return None if self.b is None else Comparison(self.a, self.b, True, self.label_a, self.label_b)

    def table(self) -> pd.DataFrame:
        sims = {"capsim": self.simulated(self.a)}
        if self.b is not None:
            sims["capsim_b"] = self.simulated(self.b)
        rows = []
        bounds = list(zip(self.edges[:-1], self.edges[1:])) + [(self.edges[0], self.edges[-1])]
        for i, ((t0, t1), meas) in enumerate(zip(bounds, self.measured)):
            row = {"interval": "all" if i == len(bounds) - 1 else str(i + 1), "t_start": t0, "t_end": t1,
                   "requests": meas["arrivals"]}
            for k in STATS:
                row[f"measured_{k}"] = meas[k]
                for name, sim in sims.items():
                    c = sim[i][k] if sim else {"mean": None, "half_width": None}
                    row[f"{name}_{k}"] = c["mean"]
                    row[f"{name}_{k}_hw"] = c["half_width"]
                    row[f"{name}_{k}_error"] = _error(k, meas[k], c["mean"])
            rows.append(row)
        return pd.DataFrame(rows)

    def format(self) -> str:
        t = self.table()
        n = len(self.a.summaries)
        lines = [f"backtest of {self.log_name}: {self.label_a}",
                 f"{n} of {len(self.a.seeds)} replications (base seed {self.a.base_seed}), the log's own "
                 f"{int(self.measured[-1]['arrivals'])} measured arrivals replayed; per interval of "
                 f"{self.interval:g} s by arrival; capsim: mean ± 95% half-width; error: capsim / real - 1 "
                 "(errors: percentage points)", *self.notes, ""]
        head = f"{'interval':<14}" + "".join(f"{LABELS[k] + ': real | capsim (error)':<40}" for k in STATS)
        lines += [head, "-" * len(head)]
        for _, r in t.iterrows():
            name = "all" if r["interval"] == "all" else f"{r['t_start']:.0f}-{r['t_end']:.0f} s"
            lines.append(f"{name:<14}" + "".join(f"{_cell(r, 'capsim', k):<40}" for k in STATS))
        if self.b is not None:
            lines += ["", f"counterfactual B on the same traffic: {self.label_b}", head, "-" * len(head)]
            for _, r in t.iterrows():
                name = "all" if r["interval"] == "all" else f"{r['t_start']:.0f}-{r['t_end']:.0f} s"
                lines.append(f"{name:<14}" + "".join(f"{_cell(r, 'capsim_b', k):<40}" for k in STATS))
            lines += ["", self.comparison().format()]
        return "\n".join(lines)

    def document(self) -> dict:
        t = self.table()
        return clean({"log": self.log_name, "interval_s": self.interval, "edges": self.edges,
                      "scenario_a": self.label_a, "scenario_b": self.label_b if self.b is not None else None,
                      "replications": len(self.a.seeds), "base_seed": self.a.base_seed, "seeds": self.a.seeds,
                      "notes": self.notes, "interrupted": self.interrupted,
                      "intervals": t.to_dict(orient="records"),
                      "comparison": self.comparison().metrics() if self.b is not None else None})

    def write(self, out, overwrite: bool = False) -> list[Path]:
        """The files of ``write_into`` as one output folder, written whole or not at all
        (``capsim.results.files.OutputFolder``; an earlier output is replaced only with ``overwrite``)."""
        with OutputFolder(out, overwrite=overwrite, command="backtest") as folder:
            names = self.write_into(folder.stage)
        return [Path(out) / n for n in names]

    def write_into(self, folder) -> list[str]:
        """``backtest.csv``, ``backtest.json`` and the replications (``comparison.*``, ``a/``, ``b/``
        with a counterfactual; else ``a/``) in ``folder``; the names written."""
        folder = safe_dir(folder)
        write_csv(folder / "backtest.csv", self.table())
        write_json(folder / "backtest.json", clean(self.document()))
        names = ["backtest.csv", "backtest.json"]
        if self.b is not None:
            self.comparison().write_into(folder)
            return names + ["comparison.json", "comparison.csv", "a", "b"]
        self.a.write_into(folder / "a")
        return names + ["a"]


def _error(k: str, measured, simulated):
    if simulated is None or measured is None or measured != measured or simulated != simulated:
        return None
    if k == "errors":
        return 100 * (simulated - measured)
    return simulated / measured - 1 if measured else None


def _cell(r, side: str, k: str) -> str:
    scale = 100 if k == "errors" else 1
    m, s, hw, e = r[f"measured_{k}"], r[f"{side}_{k}"], r[f"{side}_{k}_hw"], r[f"{side}_{k}_error"]
    fmt = lambda v: "n/a" if v is None or v != v else f"{v * scale:.1f}"    # noqa: E731
    pm = "" if hw is None or hw != hw else f"±{hw * scale:.1f}"
    err = "" if e is None or e != e else (f" ({e:+.1f} pp)" if k == "errors" else f" ({100 * e:+.0f}%)")
    return f"{fmt(m)} | {fmt(s)}{pm}{err}"


def backtest(log, scenario: Scenario, out, interval: float = 60.0, replications: int = 5, seed: int | None = None,
             scenario_b: Scenario | None = None, workers: int | None = None, cluster=None, progress: bool = True,
             label_a: str | None = None, label_b: str | None = None, drain: float | None = None) -> Backtest:
    """Replay ``log`` (a ``RequestLog``) through ``scenario`` (and ``scenario_b``); see the module docstring."""
    frame = log.frame
    measured = frame[frame["measured"]]
    if len(measured) < 1:
        raise ValueError(f"{log.name}: no measured requests to compare with")
    start, end = float(measured["t"].min()), float(measured["t"].max())
    edges = edges_of(start, end, interval)
    trace, routes = _trace(log, scenario, Path(out), "trace.csv.gz")
    slow = float(frame["latency"].max()) if len(frame) else 0.0
    horizon = float(frame["t"].max()) + (drain if drain is not None else max(10.0, 5 * slow))
    sides = [replay_scenario(scenario, trace, start, horizon)]
    if scenario_b is not None:
        trace_b, routes_b = _trace(log, scenario_b, Path(out), "trace_b.csv.gz", routes)
        sides.append(replay_scenario(scenario_b, trace_b, start, horizon))
    base = int(seed if seed is not None else scenario.seed)
    seeds = replication_seeds(base, replications)
    jobs = [(sc, s, edges, i == 0) for sc in sides for i, s in enumerate(seeds)]
    try:
        outputs, interrupted = run_jobs(run_backtest_job, jobs, workers=workers, cluster=cluster,
                                        progress=Progress(len(jobs), "capsim backtest", enabled=progress)), False
    except Interrupted as exc:
        outputs, interrupted = [exc.done.get(i) for i in range(len(jobs))], True
    ra = Replications(sides[0], base, seeds, outputs[:replications], interrupted, "A")
    rb = Replications(sides[1], base, seeds, outputs[replications:], interrupted, "B") if scenario_b is not None else None
    notes = [f"measured window {start:g}-{end:g} s of the log ({len(measured)} requests; {len(frame)} replayed in all), "
             f"simulated until {horizon:g} s."]
    notes += _trust(ra, "A") + (_trust(rb, "B") if rb is not None else [])
    return Backtest(log.name, interval, edges, measured_intervals(measured, edges), ra, rb,
                    label_a or scenario.name, label_b or (scenario_b.name if scenario_b is not None else "B"), notes)


def _trust(reps: Replications, side: str) -> list[str]:
    """What makes a side's figures less than they seem: failed replications, unanswered requests."""
    out = []
    if reps.errors:
        out.append(f"NOT TRUSTWORTHY ({side}): {len(reps.errors)} of {len(reps.seeds)} replications failed: {reps.errors[0]}")
    if reps.interrupted:
        out.append(f"INCOMPLETE ({side}): interrupted; the figures cover the replications that finished")
    missing = [o["intervals"][-1]["arrivals"] - o["intervals"][-1]["answered"] for o in reps.outputs if o and "intervals" in o]
    if any(missing):
        out.append(f"NOT TRUSTWORTHY ({side}): up to {max(missing)} requests of the window had no answer when the "
                   "simulation ended, so their latencies are missing (a longer drain, or a system that never catches up)")
    return out


def _trace(log, scenario: Scenario, out: Path, name: str, same_as: dict | None = None) -> tuple[Path, dict]:
    """The log's traffic as a trace for ``scenario`` (B reuses A's file when its routes map alike)."""
    tr = scenario.workload.trace
    routes = route_map(log.frame["route"].unique(), list(scenario.workload.endpoints),
                       tr.routes if tr is not None else {}, tr.default_endpoint if tr is not None else None)
    if same_as is not None and routes == same_as:
        return out / "trace.csv.gz", routes
    return write_trace(log, out / name, routes), routes
