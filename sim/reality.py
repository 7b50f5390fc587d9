"""How close to a real server: predict measured load runs from low-load calibration runs only.

    python -m capsim.reality ../shared/data/node-pg-measurements          # the table
    python -m capsim.reality DIR --replications 10 --measured 600 --workers 2 --json out.json

``DIR`` holds measurements of a real Node.js + pg.Pool + PostgreSQL server (its README):
``results.csv`` (one row per load run: experiment, achieved rate, measured latencies,
utilisations), ``runs/CAL_<experiment>.csv.gz`` + ``.json`` (the low-load calibration run
of each experiment: every request's timings, the process's /stats snapshots) and
``runs/<run>.csv.gz``. For each experiment with a calibration run, capsim is calibrated
from that run alone (``capsim.calibrate``: handler CPU, database share and query times,
the event loop's own work, the pool settings, the latency outside the server; never a
load run), then simulates each load run at its achieved rate, ``--replications`` times
for ``--measured`` seconds after a 10 s warm-up, and prints the measured figures (both
repetitions) beside the prediction. The target: each level's mean and p95 within 15% of
the average of its repetitions.

Beside each prediction: the range it spans when the handler's CPU is at either end of
its 95% interval from the calibration run (a few hundred requests estimate it to a few
per cent, and near saturation that moves the latency most).

``--diagnose`` adds a column that is not a prediction: capsim given the loop's work per
request *measured at that load* (``main_thread_overhead_per_req_ms`` of results.csv),
to separate what the mechanisms get right from what the calibration could not know.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["predict", "main"]

TARGET = 0.15
WARMUP = 10.0
METRICS = ("mean", "p50", "p95", "p99", "busy_util", "elu", "pool_busy", "db_mean")
MEASURED = {"mean": "mean_ms", "p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms", "busy_util": "measured_busy_util",
            "elu": "elu_util", "pool_busy": "measured_pool_busy", "db_mean": "db_path_mean_ms"}


def _simulate(args) -> dict:
    """One replication: (scenario, seed) -> the figures the measurements have."""
    from capsim.engine.model import Model
    from capsim.results.result import summarize
    scenario, seed = args
    model = Model(scenario, seed)
    acc = {"db_sum": 0.0, "db_n": 0, "handler": 0.0}
    outside = scenario.load_balancer.latency.mean

    def done(req, outcome, now):
        if req.t0 >= scenario.warmup:
            acc["handler"] += req.cpu_pre + (req.cpu_post if outcome == 0 else 0.0)
            if req.queries is not None:
                acc["db_sum"] += now - req.t0 + outside
                acc["db_n"] += 1
    model.watch(on_done=done)
    model.run()
    s = summarize(model)
    window = scenario.horizon - scenario.warmup
    lat = s["latency_ms"]
    return {"mean": lat["mean"], "p50": lat["p50"], "p95": lat["p95"], "p99": lat["p99"],
            "busy_util": acc["handler"] / window, "elu": s["elu_mean"], "pool_busy": s["pool_busy_mean"],
            "db_mean": 1000 * acc["db_sum"] / acc["db_n"] if acc["db_n"] else float("nan"),
            "requests": s["requests"]["completed"]}


def _ci(values: list[float]) -> tuple[float, float]:
    v = [x for x in values if x == x]
    if not v:
        return float("nan"), float("nan")
    from scipy import stats
    mean = statistics.fmean(v)
    half = stats.t.ppf(0.975, len(v) - 1) * statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else float("nan")
    return mean, half


def _float(row: dict, key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return float("nan")


def predict(folder, replications: int = 10, measured: float = 600.0, workers: int = 1,
            diagnose: bool = False, experiments: list[str] | None = None) -> dict:
    """Calibrate each experiment from its CAL run and predict its load runs (see the module docstring)."""
    from capsim.calibrate import calibrate, read_node_pg_run
    folder = Path(folder)
    rows = list(csv.DictReader(open(folder / "results.csv")))
    names = sorted({r["experiment"] for r in rows} if experiments is None else experiments)
    out = {"folder": str(folder), "replications": replications, "measured_s": measured, "experiments": {}}
    jobs, where = [], []
    cals = {}
    for name in names:
        cal_csv, cal_json = folder / "runs" / f"CAL_{name}.csv.gz", folder / "runs" / f"CAL_{name}.json"
        if not cal_csv.exists():
            out["experiments"][name] = {"skipped": f"no calibration run {cal_csv.name}"}
            continue
        cal = cals[name] = calibrate(read_node_pg_run(cal_csv, cal_json if cal_json.exists() else None))
        out["experiments"][name] = {"calibration": cal.notes, "event_loop": cal.loop.config(),
                                    "outside_ms": 1000 * cal.loop.outside, "runs": []}
        for row in (r for r in rows if r["experiment"] == name):
            rate = float(row["achieved_rate_rps"])
            entry = {"run": row["run"], "level": row["level"], "rep": row["rep"], "rate": rate,
                     "measured": {k: _float(row, v) for k, v in MEASURED.items()}}
            out["experiments"][name]["runs"].append(entry)
            lo, hi = cal.cpu_interval
            variants = [("predicted", cal.scenario(rate, WARMUP + measured, WARMUP)),
                        ("cpu_low", cal.scenario(rate, WARMUP + measured, WARMUP, cpu_factor=lo)),
                        ("cpu_high", cal.scenario(rate, WARMUP + measured, WARMUP, cpu_factor=hi))]
            if diagnose:
                o = _float(row, "main_thread_overhead_per_req_ms") / 1000
                loop = {"request_cpu": o / 2, "response_cpu": o / 2, "helper_cpu": cal.loop.helper_cpu}
                variants.append(("diagnostic", cal.scenario(rate, WARMUP + measured, WARMUP, event_loop=loop)))
            for label, sc in variants:
                for i in range(replications):
                    jobs.append((sc, 1000 + i))
                    where.append((entry, label))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_simulate, jobs, chunksize=1))
    else:
        results = [_simulate(j) for j in jobs]
    grouped: dict = {}
    for (entry, label), res in zip(where, results):
        grouped.setdefault((id(entry), label), (entry, label, []))[2].append(res)
    for entry, label, res in grouped.values():
        entry[label] = {k: _ci([r[k] for r in res]) for k in METRICS}
        entry[label + "_requests"] = sum(r["requests"] for r in res)
    out["levels"] = _levels(out)
    out["target_met"] = all(lv["within_target"] for lv in out["levels"])
    return out


def _levels(out: dict) -> list[dict]:
    levels = []
    for name, ex in out["experiments"].items():
        by: dict = {}
        for r in ex.get("runs", []):
            by.setdefault(r["level"], []).append(r)
        for level, runs in sorted(by.items()):
            lv = {"experiment": name, "level": level}
            for k in ("mean", "p95"):
                meas = statistics.fmean(r["measured"][k] for r in runs)
                pred = statistics.fmean(r["predicted"][k][0] for r in runs)
                lo, hi = (statistics.fmean(r[v][k][0] for r in runs) for v in ("cpu_low", "cpu_high"))
                lv[k] = {"measured": meas, "predicted": pred, "error": pred / meas - 1, "cpu_range": [lo, hi]}
                if "diagnostic" in runs[0]:
                    diag = statistics.fmean(r["diagnostic"][k][0] for r in runs)
                    lv[k]["diagnostic_error"] = diag / meas - 1
            lv["within_target"] = all(abs(lv[k]["error"]) <= TARGET for k in ("mean", "p95"))
            levels.append(lv)
    return levels


def _cell(meas: float, pred: tuple[float, float], nd: int = 1) -> str:
    m, h = pred
    err = f"{100 * (m / meas - 1):+.0f}%" if meas == meas and meas else ""
    return f"{meas:.{nd}f} | {m:.{nd}f}±{h:.{nd}f} {err}"


def format_table(out: dict) -> str:
    lines = []
    for name, ex in out["experiments"].items():
        if "skipped" in ex:
            lines.append(f"{name}: skipped ({ex['skipped']})")
            continue
        lines.append(f"== {name}: calibrated from CAL_{name} alone")
        for note in ex["calibration"]:
            lines.append(f"   {note}")
        head = (f"{'run':<13} {'rate/s':>7}  {'mean ms: real | capsim':<27} {'p95 ms':<27} {'p99 ms':<27} "
                f"{'ELU':<22} {'busy-loop util':<22} {'pool busy':<22} {'DB-path mean ms':<24}")
        lines.append(head)
        for r in ex["runs"]:
            m, p = r["measured"], r["predicted"]
            lines.append(f"{r['run']:<13} {r['rate']:>7.1f}  {_cell(m['mean'], p['mean']):<27} {_cell(m['p95'], p['p95']):<27} "
                         f"{_cell(m['p99'], p['p99']):<27} {_cell(m['elu'], p['elu'], 3):<22} "
                         f"{_cell(m['busy_util'], p['busy_util'], 3):<22} {_cell(m['pool_busy'], p['pool_busy'], 3):<22} "
                         f"{_cell(m['db_mean'], p['db_mean']):<24}")
    lines.append("")
    lines.append(f"per level (average of the repetitions; target: mean and p95 within {100 * TARGET:.0f}%)")
    diag = any("diagnostic_error" in lv["mean"] for lv in out["levels"])
    lines.append(f"{'level':<12} {'mean real':>10} {'capsim':>8} {'error':>7} {'CPU-CI range':>15}   {'p95 real':>9} "
                 f"{'capsim':>8} {'error':>7} {'CPU-CI range':>15}" + ("   diagnostic mean/p95" if diag else "") + "   target")
    for lv in out["levels"]:
        mn, p95 = lv["mean"], lv["p95"]
        rng = lambda x: f"{x['cpu_range'][0]:.1f}-{x['cpu_range'][1]:.1f}"   # noqa: E731
        extra = f"   {100 * mn['diagnostic_error']:+6.0f}% {100 * p95['diagnostic_error']:+5.0f}%" if diag else ""
        lines.append(f"{lv['experiment'] + ' ' + lv['level']:<12} {mn['measured']:>10.1f} {mn['predicted']:>8.1f} "
                     f"{100 * mn['error']:>+6.0f}% {rng(mn):>15}   {p95['measured']:>9.1f} {p95['predicted']:>8.1f} "
                     f"{100 * p95['error']:>+6.0f}% {rng(p95):>15}{extra}   {'met' if lv['within_target'] else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m capsim.reality", description=__doc__.split("\n")[0])
    ap.add_argument("folder", help="measurements folder (results.csv, runs/)")
    ap.add_argument("--replications", "-r", type=int, default=10, help="replications per load run (default 10)")
    ap.add_argument("--measured", type=float, default=600.0, help="simulated seconds per replication after the warm-up")
    ap.add_argument("--workers", type=int, default=1, help="worker processes")
    ap.add_argument("--experiment", action="append", help="only this experiment (repeatable)")
    ap.add_argument("--diagnose", action="store_true", help="add capsim given the loop work measured at each load")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    if not (folder / "results.csv").is_file():
        print(f"capsim reality: {folder}: expected a folder with results.csv and runs/", file=sys.stderr)
        return 2
    out = predict(folder, args.replications, args.measured, args.workers, args.diagnose, args.experiment)
    print(format_table(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
