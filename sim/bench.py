"""Benchmark: capsim against a plain one-SimPy-process-per-request model of the same work.

    python -m capsim.bench                 # throughput, latency agreement, memory growth, fast mode
    python -m capsim.bench --repeat 5 --no-memory --no-flow

The work is ``scenarios/bench/webtier.yaml`` (Poisson 500 req/s for 600 s, round robin
over 6 single-worker instances, 20% of requests borrow a pooled connection for an
Exp(15 ms) query between two Exp(4 ms) CPU slices). Both models run in this process,
alternately, ``--repeat`` times each with the same seeds; the figures are medians.
Memory: peak RSS of a 1 h and a 6 h capsim run, each in a fresh subprocess.

Full-scale peak: the evening-peak hour of ``scenarios/fullscale.yaml`` at the request level
(requests per CPU second, and the projected wall time of a simulated day and week).

Fast mode (``fidelity: flow``): the whole-process wall time (interpreter start and
imports included) and peak RSS of ``--flow-days`` simulated days of
``scenarios/fullscale.yaml`` and of one day, each in a fresh subprocess; and the agreement
table: the fast mode against the request level (3 replications) on a few scenarios with
short horizons, with the tolerances of ``capsim.experiments.agreement``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from capsim import scenarios

SCENARIO = scenarios.path("bench/webtier")
TARGET_RATIO, TARGET_LATENCY, TARGET_MEMORY = 5.0, 0.03, 0.20
TARGET_DAY_MINUTES = 3.5         # a simulated full-scale day at the request level, one core
TARGET_FLOW_SECONDS = 5.0        # 30 simulated days of fullscale.yaml in the fast mode, whole process, one core
PEAK = "workload.start=2026-01-05T19:00:00"
AGREEMENT_CASES = [("bench/webtier", ["horizon=300s", "instances.count=3", "workload.open_loop.0.rate=150/s"]),
                   ("launch", ["horizon=40m", "warmup=10m", PEAK]),
                   ("fullscale", ["horizon=30m", "warmup=10m", PEAK])]


def _scenario(path: Path = SCENARIO, horizon: float | None = None):
    import capsim
    overrides = [] if horizon is None else [f"horizon={horizon}"]
    return capsim.load_scenario(path, overrides)


def run_capsim(seed: int, horizon: float | None = None) -> dict:
    import capsim
    r = capsim.run(_scenario(horizon=horizon), seed=seed)
    s = r.summary
    return {"requests": s["requests"]["completed"], "wall_seconds": s["wall_seconds"],
            "throughput": s["requests"]["completed"] / s["wall_seconds"],
            "latency_mean_ms": s["latency_ms"]["mean"], "latency_p95_ms": s["latency_ms"]["p95"]}


def run_plain(seed: int) -> dict:
    from capsim.bench_reference import run_reference
    return run_reference(seed=seed)


def peak_rss_mb(horizon: float, seed: int = 1) -> float:
    """Peak resident memory of a fresh process that runs the benchmark work for ``horizon``."""
    code = ("import resource, capsim.bench as b; b.run_capsim(%d, %r); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)" % (seed, horizon))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024.0   # Linux reports KiB


def flow_run(days: float) -> dict:
    """Whole-process wall time and peak RSS of ``days`` simulated days of fullscale.yaml in the fast mode."""
    import time
    code = ("import resource, capsim; from capsim import scenarios; "
            "sc = capsim.load_scenario(scenarios.path('fullscale'), ['horizon=%rd', 'fidelity=flow']); "
            "r = capsim.run(sc); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "int(r.summary['fidelity']['valid']))" % days)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    rss, valid = out.stdout.split()[-2:]
    return {"days": days, "wall_seconds": wall, "rss_mb": int(rss) / 1024.0, "valid": bool(int(valid))}


def agreement_rows(replications: int = 3) -> list[dict]:
    """The fast mode beside the request level on ``AGREEMENT_CASES``: one row per case and metric."""
    import capsim
    from capsim.experiments.agreement import agreement
    from capsim.experiments.replications import replicate
    rows = []
    for name, overrides in AGREEMENT_CASES:
        sc = capsim.load_scenario(scenarios.path(name), overrides)
        flow = capsim.run(sc, fidelity="flow").summary
        reps = replicate(sc, replications, workers=1, progress=False)
        for r in agreement(flow, reps.summaries):
            rows.append({"scenario": name, **r, "flow_valid": flow["fidelity"]["valid"]})
    return rows


def peak_hour(seed: int = 1) -> dict:
    """The full-scale evening-peak hour at the request level (from 19:00 on a Monday, no warm-up):
    simulated requests per CPU second of this process, and the projected wall time of a simulated
    weekday (that Monday) and week at the peak hour's speed per request (the day's requests from
    ``capsim.estimate``)."""
    import time
    import capsim
    sc = capsim.load_scenario(scenarios.path("fullscale"), [PEAK, "horizon=1h", "warmup=0"])
    t = time.process_time()
    summary = capsim.run(sc, seed=seed).summary
    cpu = time.process_time() - t
    rps = summary["requests"]["total"] / cpu
    monday = capsim.load_scenario(scenarios.path("fullscale"), ["workload.start=2026-01-05T00:00:00", "horizon=1d"])
    day = capsim.estimate(monday).requests      # the same weekday as the peak hour (the file's own day is a Saturday)
    return {"requests": summary["requests"]["total"], "cpu_seconds": cpu, "rps": rps,
            "day_requests": day, "day_seconds": day / rps, "week_seconds": 7 * day / rps}


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m capsim.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of each model (default 3)")
    ap.add_argument("--no-memory", action="store_true", help="skip the 1 h / 6 h memory check")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--no-flow", action="store_true", help="skip the fast-mode figures (wall time, RSS, agreement)")
    ap.add_argument("--flow-days", type=float, default=30.0, help="simulated days of the fast-mode run (default 30)")
    ap.add_argument("--no-peak", action="store_true", help="skip the full-scale evening-peak hour at the request level")
    args = ap.parse_args(argv)
    caps, plain = [], []
    for seed in range(1, args.repeat + 1):
        plain.append(run_plain(seed))
        caps.append(run_capsim(seed))
    fig = {"capsim_rps": _median(caps, "throughput"), "plain_rps": _median(plain, "throughput")}
    fig["ratio"] = fig["capsim_rps"] / fig["plain_rps"]
    for key in ("latency_mean_ms", "latency_p95_ms"):
        a, b = statistics.mean(r[key] for r in caps), statistics.mean(r[key] for r in plain)
        fig[f"capsim_{key}"], fig[f"plain_{key}"], fig[f"{key}_rel_diff"] = a, b, abs(a - b) / b
    if not args.no_memory:
        fig["rss_1h_mb"], fig["rss_6h_mb"] = peak_rss_mb(3600.0), peak_rss_mb(21600.0)
        fig["rss_growth"] = fig["rss_6h_mb"] / fig["rss_1h_mb"] - 1
    if not args.no_peak:
        fig["peak"] = peak_hour()
    if not args.no_flow:
        fig["flow_day"] = flow_run(1.0)
        fig["flow_month"] = flow_run(args.flow_days)
        fig["flow_agreement"] = agreement_rows()
    ok = _report(fig, args.repeat, as_json=args.json)
    return 0 if ok else 1


def _report(fig: dict, repeat: int, as_json: bool) -> bool:
    checks = [fig["ratio"] >= TARGET_RATIO, fig["latency_mean_ms_rel_diff"] <= TARGET_LATENCY,
              fig["latency_p95_ms_rel_diff"] <= TARGET_LATENCY]
    if "rss_growth" in fig:
        checks.append(fig["rss_growth"] <= TARGET_MEMORY)
    if "peak" in fig:
        checks.append(fig["peak"]["day_seconds"] <= 60 * TARGET_DAY_MINUTES)
    if "flow_month" in fig:
        checks.append(fig["flow_month"]["wall_seconds"] <= TARGET_FLOW_SECONDS * fig["flow_month"]["days"] / 30)
        checks.append(all(r["ok"] is not False for r in fig["flow_agreement"]))
    fig["targets_met"] = all(checks)
    if as_json:
        print(json.dumps(fig, indent=2))
        return fig["targets_met"]
    print(f"work: {SCENARIO.name} (Poisson 500/s, 600 s, 6 instances x 1 worker), median of {repeat} runs each")
    print(f"capsim            {fig['capsim_rps']:>10,.0f} simulated requests / wall s")
    print(f"process-per-req   {fig['plain_rps']:>10,.0f} simulated requests / wall s")
    print(f"ratio             {fig['ratio']:>10.2f}x   (target >= {TARGET_RATIO:g}x)")
    for key, label in (("latency_mean_ms", "latency mean"), ("latency_p95_ms", "latency p95")):
        print(f"{label:<17} capsim {fig['capsim_' + key]:.2f} ms, plain {fig['plain_' + key]:.2f} ms, "
              f"difference {100 * fig[key + '_rel_diff']:.2f}% (target <= {100 * TARGET_LATENCY:g}%)")
    if "rss_growth" in fig:
        print(f"peak RSS          1 h run {fig['rss_1h_mb']:.0f} MB, 6 h run {fig['rss_6h_mb']:.0f} MB, "
              f"growth {100 * fig['rss_growth']:.1f}% (target <= {100 * TARGET_MEMORY:g}%)")
    if "peak" in fig:
        p = fig["peak"]
        print(f"full-scale peak   {p['rps']:>10,.0f} simulated requests / CPU s (19:00-20:00, {p['requests']:,} requests); "
              f"projected: a simulated day {p['day_seconds'] / 60:.1f} min (target <= {TARGET_DAY_MINUTES:g}), "
              f"a week {p['week_seconds'] / 60:.0f} min")
    if "flow_month" in fig:
        _report_flow(fig)
    print("targets met" if fig["targets_met"] else "TARGETS NOT MET")
    return fig["targets_met"]


def _report_flow(fig: dict) -> None:
    from capsim.experiments.agreement import format_agreement
    day, month = fig["flow_day"], fig["flow_month"]
    target = TARGET_FLOW_SECONDS * month["days"] / 30
    print(f"fast mode         {month['days']:g} simulated days of fullscale.yaml: {month['wall_seconds']:.1f} s whole "
          f"process (target <= {target:g} s); 1 day: {day['wall_seconds']:.1f} s")
    print(f"fast-mode RSS     1 day {day['rss_mb']:.0f} MB, {month['days']:g} days {month['rss_mb']:.0f} MB "
          f"(growth {100 * (month['rss_mb'] / day['rss_mb'] - 1):.0f}%: the time series keeps one row per interval)")
    print("fast mode vs request level (3 replications; tolerance widened by the request level's 95% half-width):")
    for name, _ in AGREEMENT_CASES:
        rows = [r for r in fig["flow_agreement"] if r["scenario"] == name]
        print(f"  {name}" + ("" if rows and rows[0]["flow_valid"] else " (fast mode flagged it invalid)"))
        print("\n".join("    " + line for line in format_agreement(rows).splitlines()))


if __name__ == "__main__":
    sys.exit(main())
