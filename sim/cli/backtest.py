"""``capsim backtest LOG --scenario S``: the log's own traffic through the scenario, measured beside simulated."""
from __future__ import annotations

import sys
from pathlib import Path

from capsim.cli.common import duration, output_dir, positive, seed, slug
from capsim.results.files import OutputFolder
from capsim.scenario.loader import ScenarioError, load

__all__ = ["backtest_options", "backtest_cmd"]


def backtest_options(bt) -> None:
    """The options of ``capsim backtest`` (``--set``, ``--workers``, ``--cluster``: ``capsim.cli.parser``)."""
    bt.add_argument("log", metavar="LOG", help="request log: a node-pg run (runs/NAME.csv.gz) or CSV/JSONL with t, "
                                               "latency_ms, route, status")
    bt.add_argument("--scenario", required=True, metavar="S.yaml", help="the scenario (e.g. a calibrated one)")
    bt.add_argument("--interval", type=duration, default=60.0, metavar="DURATION",
                    help="interval of the comparison (default 60s)")
    bt.add_argument("--replications", "-r", type=positive, default=5, metavar="R", help="replications (default 5)")
    bt.add_argument("--seed", type=seed, metavar="N", help="base random seed (default: the scenario's)")
    bt.add_argument("--out", metavar="DIR", help="output folder (default: capsim-out/<log name>-backtest; when that "
                                                 "holds an earlier output, a numbered sibling)")
    bt.add_argument("--overwrite", action="store_true", help="replace --out DIR if it holds an earlier output "
                                                             "(the old one is removed only once the new one is complete)")
    bt.add_argument("--set-b", action="append", default=[], metavar="PATH=VALUE", dest="overrides_b",
                    help="a counterfactual B on the same traffic: the scenario changed by this (repeatable)")


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
    out = output_dir(args, Path("capsim-out") / f"{slug(log.name)}-backtest")
    sets = lambda ov: "".join(f" + {o}" for o in ov)  # noqa: E731
    with OutputFolder(out, overwrite=args.overwrite, command="backtest") as folder:
        try:        # the replayed traffic (trace.csv.gz) is written into the folder being made, and read from there
            bt = backtest(log, a, folder.stage, args.interval, args.replications, args.seed, b, args.workers,
                          args.cluster, not args.quiet, label_a=f"{args.scenario}{sets(args.overrides)}",
                          label_b=f"{args.scenario}{sets(args.overrides + args.overrides_b)}")
        except (LogError, ValueError) as exc:
            if isinstance(exc, ScenarioError):
                raise
            folder.discard()
            print(f"capsim backtest: {exc}", file=sys.stderr)
            return 2
        errors = bt.a.errors + (bt.b.errors if bt.b is not None else [])
        if errors and not bt.a.summaries:
            folder.discard()
            print(f"capsim backtest: {errors[0]}", file=sys.stderr)
            return 2
        names = bt.write_into(folder.stage)
        backtest_page(bt).write(folder.stage / "report.html")
        folder.publish("interrupted" if bt.interrupted else "complete")
    if not args.quiet:
        print(bt.format())
        print("wrote " + ", ".join(str(out / n) for n in names) + f", {out / 'trace.csv.gz'} (the replayed traffic)")
        print(f"report     {out / 'report.html'}")
    else:
        print(out)
    return 130 if bt.interrupted else 0
