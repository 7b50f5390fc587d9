"""Peak memory of a trace replay, for a trace and one ten times longer (workload.trace streams).

    python scripts/trace_memory.py [--requests 100000] [--rate 50]

Writes two gzip CSV request logs (N and 10 N requests at ``rate``/s, two routes) in a temporary
folder, replays each through a one-instance scenario in a fresh process and prints that
process's peak resident memory (``ru_maxrss``) and the requests it simulated.
"""
from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys
from capsim.engine.model import Model
from capsim.results.result import summarize
from capsim.scenario.config import Scenario
path, horizon = sys.argv[1], float(sys.argv[2])
sc = Scenario.model_validate({
    "horizon": horizon, "warmup": 0, "metrics": {"interval": 3600},
    "workload": {"sessions": None, "endpoints": {"a": {"cpu_pre": 0.001, "queries": 0},
                                                 "b": {"cpu_pre": 0.002, "queries": 0}},
                 "trace": {"file": path, "routes": {"/a": "a", "/b": "b"}}},
    "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None})
model = Model(sc, seed=1).run()
s = summarize(model)
print(json.dumps({"requests": s["requests"]["total"], "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_log(path: Path, n: int, rate: float) -> None:
    with gzip.open(path, "wt") as fh:
        fh.write("t,route\n")
        for i in range(n):
            fh.write(f"{i / rate:.6f},{'/a' if i % 3 else '/b'}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=50.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (1, 10):
            n = args.requests * factor
            path = Path(tmp) / f"log{factor}.csv.gz"
            write_log(path, n, args.rate)
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(n / args.rate + 10)],
                                 capture_output=True, text=True, check=True)
            res = json.loads(out.stdout)
            print(f"{factor:>2}x trace: {n:>9} rows, {path.stat().st_size / 1e6:6.1f} MB gz -> "
                  f"{res['requests']:>9} requests simulated, peak RSS {res['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
