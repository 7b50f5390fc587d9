"""The ``capsim`` command: run, compare, sweep, plan, backtest, report, validate, schema, docs.

Exit codes: 0 success; 1 an output file could not be written; 2 bad input (a scenario
problem, listed one per line on stderr, or a bad command line).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from capsim.models.autoscaling import CodeNotAllowed
from capsim.cli import experiments as exp
from capsim.cli.backtest import add_backtest
from capsim.cli.common import (BUILTIN, duration, positive, report_options, scenario_of, seed, slo_of_args, slug,
                             write_report)
from capsim.scenario.loader import ScenarioError
from capsim.results.text import format_summary

__all__ = ["main", "format_summary"]


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:   # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        if not _cluster_ok(args):
            return 2
        return args.func(args)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"capsim: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("capsim: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="capsim", description="Capacity and cost simulator for the game server.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="simulate a scenario and write summary.json and timeseries.csv")
    run.add_argument("file", nargs="?", help="scenario YAML (default: the built-in launch scenario)")
    run.add_argument("--seed", type=seed, help="base random seed (default: the scenario's seed)")
    run.add_argument("--out", help="output directory (default: capsim-out/<scenario name>)")
    run.add_argument("--quiet", action="store_true", help="print only the output directory")
    run.add_argument("--allow-code", action="store_true",
                     help="let the scenario import the custom policy class it names (autoscaler.path)")
    run.add_argument("--replications", "-r", type=positive, metavar="R",
                     help="run R replications (seeds spawned from the base seed) and report 95%% intervals")
    run.add_argument("--artillery-report", metavar="FILE",
                     help="also write an Artillery 2 report.json of the run (10 s periods, http.response_time as "
                          "Artillery measures it)")
    _set_option(run)
    _experiment_options(run)
    report_options(run)
    run.set_defaults(func=_run)
    cmp = sub.add_parser("compare", help="A/B: run two scenarios with common random numbers and compare them")
    cmp.add_argument("a", metavar="A.yaml", help="scenario A")
    cmp.add_argument("b", metavar="B.yaml", nargs="?", help="scenario B (default: A again, changed by --set-b)")
    cmp.add_argument("--replications", "-r", type=positive, default=5, metavar="R", help="replications (default 5)")
    cmp.add_argument("--seed", type=seed, help="base random seed (default: A's seed)")
    cmp.add_argument("--no-crn", dest="crn", action="store_false",
                     help="give B independent seeds (to see what common random numbers buy); Welch t-test")
    cmp.add_argument("--out", help="output directory (default: capsim-out/<A's name>-compare)")
    cmp.add_argument("--quiet", action="store_true", help="no progress lines")
    cmp.add_argument("--allow-code", action="store_true", help="as for run")
    _set_option(cmp)
    for side in ("a", "b"):
        cmp.add_argument(f"--set-{side}", action="append", default=[], metavar="PATH=VALUE", dest=f"overrides_{side}",
                         help=f"override a field of {side.upper()} only (repeatable)")
    _experiment_options(cmp)
    report_options(cmp)
    cmp.set_defaults(func=exp.compare_cmd)
    swp = sub.add_parser("sweep", help="run a grid of parameter values with replications; write sweep.csv")
    swp.add_argument("file", nargs="?", help="scenario YAML (default: the built-in launch scenario)")
    swp.add_argument("--param", action="append", default=[], required=True, metavar="PATH=V1,V2,...",
                     help="a parameter and its values, parsed as YAML (repeatable; the grid is every combination), "
                          "e.g. workload.sessions.peak_users=100,250 or 'autoscaler={policy: hpa, max_instances: 10},null'")
    swp.add_argument("--replications", "-r", type=positive, default=3, metavar="R", help="replications per point (default 3)")
    swp.add_argument("--seed", type=seed, help="base random seed (default: the scenario's seed)")
    swp.add_argument("--out", help="output directory (default: capsim-out/<scenario name>-sweep)")
    swp.add_argument("--resume", action="store_true", help="skip the (point, replication) runs already in DIR/sweep_points.jsonl")
    swp.add_argument("--quiet", action="store_true", help="no progress lines")
    swp.add_argument("--allow-code", action="store_true", help="as for run")
    _set_option(swp)
    _experiment_options(swp)
    report_options(swp)
    swp.set_defaults(func=exp.sweep_cmd)
    pln = sub.add_parser("plan", help="recompute the seed's capacity-planning table by simulation")
    pln.add_argument("file", nargs="?", help="scenario YAML whose system is planned (default: the built-in one)")
    pln.add_argument("--replications", "-r", type=positive, default=3, metavar="R", help="replications per configuration (default 3)")
    pln.add_argument("--seed", type=seed, help="base random seed (default: the scenario's seed)")
    pln.add_argument("--horizon", type=duration, default=600.0, help="measured time per run, after the warm-up (default 10m)")
    pln.add_argument("--warmup", type=duration, default=300.0, help="warm-up per run (default 5m)")
    pln.add_argument("--max-instances", type=positive, default=10, help="largest instance count tried (default 10)")
    pln.add_argument("--plans", help="comma-separated plans to try (default: every plan in pricing.plans)")
    pln.add_argument("--levels", help="comma-separated load levels (default: all; light, medium, heavy, weekend, event)")
    pln.add_argument("--latency-ms", type=float, default=200.0, help="objective: average response (default 200)")
    pln.add_argument("--error-rate", type=float, default=0.01, help="objective: error rate (default 0.01 = 1%%)")
    pln.add_argument("--out", help="output directory (default: capsim-out/<scenario name>-plan)")
    pln.add_argument("--quiet", action="store_true", help="no progress lines")
    _set_option(pln)
    _experiment_options(pln, slo=False)
    report_options(pln)
    pln.set_defaults(func=exp.plan_cmd)
    add_backtest(sub, _set_option, _experiment_options, positive, duration, seed)
    rep = sub.add_parser("report", help="(re)draw report.html from an output folder of run, compare, sweep or plan")
    rep.add_argument("folder", help="the output folder")
    report_options(rep)
    rep.set_defaults(func=_report)
    val = sub.add_parser("validate", help="check a scenario file; print every problem")
    val.add_argument("file", help="scenario YAML")
    _set_option(val)
    val.set_defaults(func=_validate)
    for name, func, what in (("schema", _schema, "JSON Schema of scenario files (for editors)"),
                             ("docs", _docs, "Markdown reference of every scenario field")):
        cmd = sub.add_parser(name, help=f"print the {what}")
        cmd.add_argument("--out", help="write to this file instead of stdout")
        cmd.set_defaults(func=func)
    return p


def _set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="overrides",
                        help="override a field, e.g. database.pool.max=30 or workload.open_loop.0.rate=50/s (repeatable)")


def _experiment_options(parser: argparse.ArgumentParser, slo: bool = True) -> None:
    parser.add_argument("--workers", type=positive, metavar="N",
                        help="local worker processes (default: every core; 1 runs in this process)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run on this Dask scheduler (default: $DASK_SCHEDULER_ADDRESS if set, else locally)")
    if slo:
        parser.add_argument("--slo", metavar="FILE",
                            help="objectives, thresholds and alerts (YAML; default: the scenario's, else the seed's)")


def _cluster_ok(args) -> bool:
    """With --cluster (or DASK_SCHEDULER_ADDRESS), Dask distributed must be importable."""
    from capsim.experiments.parallel import cluster_address
    parallel = args.command in ("compare", "sweep", "plan", "backtest") or getattr(args, "replications", None)
    if not parallel or cluster_address(getattr(args, "cluster", None)) is None:
        return True
    try:
        import distributed  # noqa: F401  (only to check it is installed)
    except ImportError:
        print("capsim: --cluster needs Dask distributed: pip install 'capsim[cluster]'", file=sys.stderr)
        return False
    return True


# -- commands ---------------------------------------------------------------------------
def _run(args) -> int:
    import capsim
    from capsim.results.slo import evaluate, format_slo, slo_of
    scenario = scenario_of(args.file, args.overrides)
    slo = slo_of_args(args)
    out = Path(args.out) if args.out else Path("capsim-out") / slug(scenario.name)
    if args.replications:
        if args.artillery_report:
            print("capsim run: --artillery-report writes one run's report; drop --replications", file=sys.stderr)
            return 2
        return exp.replications(args, scenario, slo, out)
    recorder = None
    if args.artillery_report:
        from capsim.results.artillery import ArtilleryRecorder
        recorder = ArtilleryRecorder()
    try:
        result = capsim.run(scenario, args.seed, allow_code=args.allow_code, watchers=[recorder] if recorder else [])
    except CodeNotAllowed as exc:
        print(f"{args.file or BUILTIN}: {exc}", file=sys.stderr)
        return 2
    result.summary["slo"] = evaluate(result.rows, slo_of(scenario, slo))
    result.write(out)
    if args.quiet:
        print(out)
    else:
        print(format_summary(result.summary, result.rows))
        print(f"{'slo':<10} {format_slo(result.summary['slo'])}")
        print(f"wrote      {out / 'summary.json'}, {out / 'timeseries.csv'}, {out / 'instances.csv'}, "
              f"{out / 'scaling_events.csv'}, {out / 'scenario.json'}")
    if recorder is not None:
        recorder.write(args.artillery_report)
        if not args.quiet:
            print(f"artillery  {args.artillery_report} (Artillery 2 report.json: aggregate + "
                  f"{len(recorder.periods)} periods of 10 s)")
    return write_report(out, args.images, quiet=args.quiet)


def _report(args) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"capsim report: {folder}: no such folder", file=sys.stderr)
        return 2
    if (folder / "backtest.json").is_file():          # a backtest folder: its own page, not a comparison's
        from capsim.backtest import backtest_page_from
        print(f"report     {backtest_page_from(folder).write(folder / 'report.html')}")
        return 0
    try:
        return write_report(folder, args.images)
    except FileNotFoundError as exc:
        print(f"capsim report: {exc}", file=sys.stderr)
        return 2


def _validate(args) -> int:
    from capsim.scenario.checks import warnings
    scenario = scenario_of(args.file, args.overrides)
    for text in warnings(scenario):
        print(f"warning: {text}")
    print("ok")
    return 0


def _schema(args) -> int:
    from capsim.scenario.docs import schema_text
    return _emit(schema_text(), args.out)


def _docs(args) -> int:
    from capsim.scenario.docs import markdown
    return _emit(markdown(), args.out)


def _emit(text: str, out: str | None) -> int:
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    return 0


