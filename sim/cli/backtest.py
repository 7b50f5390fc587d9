"""``capsim backtest LOG --scenario S``: the log's own traffic through the scenario, measured beside simulated."""
from __future__ import annotations

import sys
from pathlib import Path

from capsim.cli.common import slug
from capsim.scenario.loader import ScenarioError, load

__all__ = ["add_backtest", "backtest_cmd"]


def add_backtest(sub, set_option, experiment_options, positive, duration, seed) -> None:
    bt = sub.add_parser("backtest", help="replay a request log's own traffic through a scenario; measured beside "
                                         "simulated per interval (and counterfactuals with --set-b)")
    bt.add_argument("log", metavar="LOG", help="request log: a node-pg run (runs/NAME.csv.gz) or CSV/JSONL with t, "
                                               "latency_ms, route, status")
    bt.add_argument("--scenario", required=True, metavar="S.yaml", help="the scenario (e.g. a calibrated one)")
    bt.add_argument("--interval", type=duration, default=60.0, help="interval of the comparison (default 60s)")
    bt.add_argument("--replications", "-r", type=positive, default=5, metavar="R", help="replications (default 5)")
    bt.add_argument("--seed", type=seed, help="base random seed (default: the scenario's)")
    bt.add_argument("--out", help="output directory (default: capsim-out/<log name>-backtest)")
    bt.add_argument("--quiet", action="store_true", help="no progress lines")
    set_option(bt)
    bt.add_argument("--set-b", action="append", default=[], metavar="PATH=VALUE", dest="overrides_b",
                    help="a counterfactual B on the same traffic: the scenario changed by this (repeatable)")
    experiment_options(bt, slo=False)
    bt.set_defaults(func=backtest_cmd)


def backtest_cmd(args) -> int:
    from capsim.backtest import LogError, backtest, backtest_page, read_log
    from capsim.models.trace import TraceError
    try:
        log = read_log(args.log)
    except (LogError, TraceError) as exc:
        print(f"capsim backtest: {exc}", file=sys.stderr)
        return 2
    a = load(args.scenario, args.overrides)
    b = load(args.scenario, args.overrides + args.overrides_b) if args.overrides_b else None
    out = Path(args.out) if args.out else Path("capsim-out") / f"{slug(log.name)}-backtest"
    sets = lambda ov: "".join(f" + {o}" for o in ov)  # noqa: E731
    try:
        bt = backtest(log, a, out, args.interval, args.replications, args.seed, b, args.workers, args.cluster,
                      not args.quiet, label_a=f"{args.scenario}{sets(args.overrides)}",
                      label_b=f"{args.scenario}{sets(args.overrides + args.overrides_b)}")
    except (LogError, ValueError) as exc:
        if isinstance(exc, ScenarioError):
            raise
        print(f"capsim backtest: {exc}", file=sys.stderr)
        return 2
    errors = bt.a.errors + (bt.b.errors if bt.b is not None else [])
    if errors and not bt.a.summaries:
        print(f"capsim backtest: {errors[0]}", file=sys.stderr)
        return 2
    print(bt.format())
    files = bt.write(out)
    page = backtest_page(bt).write(out / "report.html")
    print("wrote " + ", ".join(str(f) for f in files) + f", {out / 'trace.csv.gz'} (the replayed traffic)")
    print(f"report     {page}")
    return 130 if bt.interrupted else 0
