"""Backtest every E1/E2 load run of the node-pg measurements through the scenario calibrated
from its experiment's low-load CAL run alone, with ``capsim backtest``; print the table.

    python scripts/backtest_node_pg.py ../shared/data/node-pg-measurements [-r 10] [--workers 2] [--out DIR]

For each experiment with ``runs/CAL_<exp>.csv.gz``: ``capsim.calibrate.calibrate`` of that run
-> ``Calibration.scenario`` written to ``OUT/CAL_<exp>.yaml``; then, for each load run
``runs/<exp>_u*.csv.gz``: ``capsim backtest RUN --scenario OUT/CAL_<exp>.yaml --interval 60s -r R
--out OUT/<run>``, which replays that run's own arrivals. The table: the whole measured
window's mean and p95 latency, measured and simulated (mean ± 95% half-width over R), and the
prediction error.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", help="the measurements folder (runs/)")
    ap.add_argument("-r", "--replications", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default="capsim-out/node-pg-backtests")
    args = ap.parse_args()
    from capsim.calibrate import calibrate, read_node_pg_run
    from capsim.cli import main as capsim
    runs, out = Path(args.folder) / "runs", Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| run | rate/s | mean ms real | capsim | error | p95 ms real | capsim | error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for cal_csv in sorted(runs.glob("CAL_*.csv.gz")):
        exp = cal_csv.name.split(".")[0].removeprefix("CAL_")
        loads = sorted(runs.glob(f"{exp}_u*.csv.gz"))
        if not loads:
            continue
        cal = calibrate(read_node_pg_run(cal_csv, cal_csv.with_name(f"CAL_{exp}.json")))
        scenario = out / f"CAL_{exp}.yaml"
        scenario.write_text(cal.scenario(1.0, 130.0, 10.0).model_dump_json(indent=1, by_alias=True))  # JSON is YAML
        for log in loads:
            name = log.name.removesuffix(".csv.gz")
            with contextlib.redirect_stdout(io.StringIO()):
                code = capsim(["backtest", str(log), "--scenario", str(scenario), "--interval", "60s",
                               "-r", str(args.replications), "--workers", str(args.workers),
                               "--out", str(out / name), "--quiet"])
            if code != 0:
                print(f"| {name} | capsim backtest exited {code} |")
                continue
            whole = json.loads((out / name / "backtest.json").read_text())["intervals"][-1]
            cells = [f"{whole['measured_rate']:.1f}"]
            for k in ("mean_ms", "p95_ms"):
                cells += [f"{whole[f'measured_{k}']:.1f}", f"{whole[f'capsim_{k}']:.1f} ± {whole[f'capsim_{k}_hw']:.1f}",
                          f"{100 * whole[f'capsim_{k}_error']:+.0f}%"]
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
