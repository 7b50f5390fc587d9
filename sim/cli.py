"""The ``capsim`` command: run, compare, sweep, plan, validate, schema, docs.

Exit codes: 0 success; 1 an output file could not be written; 2 bad input (a scenario
problem, listed one per line on stderr, or a bad command line).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from models.autoscaling import CodeNotAllowed
from sim.loader import ScenarioError, load, load_text

__all__ = ["main", "format_summary"]

BUILTIN = "<built-in scenario>"


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
    run.add_argument("--seed", type=_seed, help="base random seed (default: the scenario's seed)")
    run.add_argument("--out", help="output directory (default: capsim-out/<scenario name>)")
    run.add_argument("--quiet", action="store_true", help="print only the output directory")
    run.add_argument("--allow-code", action="store_true",
                     help="let the scenario import the custom policy class it names (autoscaler.path)")
    run.add_argument("--replications", "-r", type=_positive, metavar="R",
                     help="run R replications (seeds spawned from the base seed) and report 95%% intervals")
    _set_option(run)
    _experiment_options(run)
    run.set_defaults(func=_run)
    cmp = sub.add_parser("compare", help="A/B: run two scenarios with common random numbers and compare them")
    cmp.add_argument("a", metavar="A.yaml", help="scenario A")
    cmp.add_argument("b", metavar="B.yaml", nargs="?", help="scenario B (default: A again, changed by --set-b)")
    cmp.add_argument("--replications", "-r", type=_positive, default=5, metavar="R", help="replications (default 5)")
    cmp.add_argument("--seed", type=_seed, help="base random seed (default: A's seed)")
    cmp.add_argument("--no-crn", dest="crn", action="store_false",
                     help="give B independent seeds (to see what common random numbers buy); Welch t-test")
    cmp.add_argument("--out", help="write comparison.json and comparison.csv to this directory")
    cmp.add_argument("--quiet", action="store_true", help="no progress lines")
    cmp.add_argument("--allow-code", action="store_true", help="as for run")
    _set_option(cmp)
    for side in ("a", "b"):
        cmp.add_argument(f"--set-{side}", action="append", default=[], metavar="PATH=VALUE", dest=f"overrides_{side}",
                         help=f"override a field of {side.upper()} only (repeatable)")
    _experiment_options(cmp)
    cmp.set_defaults(func=_compare)
    swp = sub.add_parser("sweep", help="run a grid of parameter values with replications; write sweep.csv")
    swp.add_argument("file", nargs="?", help="scenario YAML (default: the built-in launch scenario)")
    swp.add_argument("--param", action="append", default=[], required=True, metavar="PATH=V1,V2,...",
                     help="a parameter and its values, parsed as YAML (repeatable; the grid is every combination), "
                          "e.g. workload.sessions.peak_users=100,250 or 'autoscaler={policy: hpa, max_instances: 10},null'")
    swp.add_argument("--replications", "-r", type=_positive, default=3, metavar="R", help="replications per point (default 3)")
    swp.add_argument("--seed", type=_seed, help="base random seed (default: the scenario's seed)")
    swp.add_argument("--out", help="output directory (default: capsim-out/<scenario name>-sweep)")
    swp.add_argument("--resume", action="store_true", help="skip the (point, replication) runs already in DIR/sweep_points.jsonl")
    swp.add_argument("--quiet", action="store_true", help="no progress lines")
    swp.add_argument("--allow-code", action="store_true", help="as for run")
    _set_option(swp)
    _experiment_options(swp)
    swp.set_defaults(func=_sweep)
    pln = sub.add_parser("plan", help="recompute the seed's capacity-planning table by simulation")
    pln.add_argument("file", nargs="?", help="scenario YAML whose system is planned (default: the built-in one)")
    pln.add_argument("--replications", "-r", type=_positive, default=3, metavar="R", help="replications per configuration (default 3)")
    pln.add_argument("--seed", type=_seed, help="base random seed (default: the scenario's seed)")
    pln.add_argument("--horizon", type=_duration, default=600.0, help="measured time per run, after the warm-up (default 10m)")
    pln.add_argument("--warmup", type=_duration, default=300.0, help="warm-up per run (default 5m)")
    pln.add_argument("--max-instances", type=_positive, default=10, help="largest instance count tried (default 10)")
    pln.add_argument("--plans", help="comma-separated plans to try (default: every plan in pricing.plans)")
    pln.add_argument("--levels", help="comma-separated load levels (default: all; light, medium, heavy, weekend, event)")
    pln.add_argument("--latency-ms", type=float, default=200.0, help="objective: average response (default 200)")
    pln.add_argument("--error-rate", type=float, default=0.01, help="objective: error rate (default 0.01 = 1%%)")
    pln.add_argument("--out", help="write plan.csv, plan_tried.csv and plan.json to this directory")
    pln.add_argument("--quiet", action="store_true", help="no progress lines")
    _set_option(pln)
    _experiment_options(pln, slo=False)
    pln.set_defaults(func=_plan)
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
    parser.add_argument("--workers", type=_positive, metavar="N",
                        help="local worker processes (default: every core; 1 runs in this process)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run on this Dask scheduler (default: $DASK_SCHEDULER_ADDRESS if set, else locally)")
    if slo:
        parser.add_argument("--slo", metavar="FILE",
                            help="objectives, thresholds and alerts (YAML; default: the scenario's, else the seed's)")


def _cluster_ok(args) -> bool:
    """With --cluster (or DASK_SCHEDULER_ADDRESS), Dask distributed must be importable."""
    from sim.parallel import cluster_address
    parallel = args.command in ("compare", "sweep", "plan") or getattr(args, "replications", None)
    if not parallel or cluster_address(getattr(args, "cluster", None)) is None:
        return True
    try:
        import distributed  # noqa: F401  (only to check it is installed)
    except ImportError:
        print("capsim: --cluster needs Dask distributed: pip install 'capsim[cluster]'", file=sys.stderr)
        return False
    return True


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _duration(text: str) -> float:
    from models.units import parse_duration
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration > 0, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


# -- commands ---------------------------------------------------------------------------
def _scenario(file: str | None, overrides: list[str]):
    return load(file, overrides) if file else load_text("", BUILTIN, overrides)


def _run(args) -> int:
    import sim
    from sim.slo import evaluate, format_slo, slo_of
    scenario = _scenario(args.file, args.overrides)
    slo = _slo(args)
    out = Path(args.out) if args.out else Path("capsim-out") / _slug(scenario.name)
    if args.replications:
        return _replications(args, scenario, slo, out)
    try:
        result = sim.run(scenario, args.seed, allow_code=args.allow_code)
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
        print(f"wrote      {out / 'summary.json'}, {out / 'timeseries.csv'}, {out / 'instances.csv'}, {out / 'scaling_events.csv'}")
    return 0


def _slo(args):
    from sim.slo import load_slo
    return load_slo(args.slo) if getattr(args, "slo", None) else None


def _replications(args, scenario, slo, out: Path) -> int:
    from sim.compare import HEADLINE
    from sim.experiments import replicate
    reps = replicate(scenario, args.replications, args.seed, slo=slo, workers=args.workers, cluster=args.cluster,
                     progress=not args.quiet, keep_first=True, allow_code=args.allow_code)
    if reps.errors and not reps.summaries:
        print(f"{args.file or BUILTIN}: {reps.errors[0]}", file=sys.stderr)
        return 2
    reps.write(out)
    if args.quiet:
        print(out)
    else:
        stats = reps.stats
        print(f"{'scenario':<26} {scenario.name}: {len(reps.summaries)} of {len(reps.seeds)} replications, "
              f"seeds spawned from base seed {reps.base_seed}")
        from sim.experiments import warmup_note
        print(f"{'':<26} {warmup_note(scenario)}")
        print(f"{'metric':<26} {'mean':>12} {'95% CI':>25} {'± half-width':>13} {'n':>3}")
        for m, (label, unit, _, scale) in HEADLINE.items():
            c = stats.get(m)
            if not c or c["mean"] is None:
                continue
            name = f"{label} ({unit})" if unit else label
            ci = "n/a" if c["ci_low"] is None else f"[{_g(c['ci_low'] * scale)}, {_g(c['ci_high'] * scale)}]"
            hw = "n/a" if c["half_width"] is None else _g(c["half_width"] * scale)
            print(f"{name:<26} {_g(c['mean'] * scale):>12} {ci:>25} {hw:>13} {c['n']:>3}")
        print(f"wrote      {out / 'replications.csv'}, {out / 'summary.json'} (replications block: every metric), "
              f"replication 1's timeseries.csv")
    return 130 if reps.interrupted else 0


def _g(x: float) -> str:
    from sim.compare import _g as g
    return g(x)


def _compare(args) -> int:
    from sim.compare import compare
    from sim.sweep import policy_hint
    sides = []
    for path, ov in ((args.a, args.overrides + args.overrides_a), (args.b or args.a, args.overrides + args.overrides_b)):
        try:
            sides.append(load(path, ov))
        except ScenarioError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            hint = policy_hint(ov, exc.problems)
            if hint:
                print(hint, file=sys.stderr)
            return 2
    a, b = sides
    sets = lambda ov: "".join(f" + {o}" for o in ov)  # noqa: E731
    label_a = f"{args.a}{sets(args.overrides + args.overrides_a)}"
    label_b = f"{args.b or args.a}{sets(args.overrides + args.overrides_b)}"
    result = compare(a, b, args.replications, args.seed, crn=args.crn, slo=_slo(args), workers=args.workers,
                     cluster=args.cluster, progress=not args.quiet, allow_code=args.allow_code,
                     label_a=label_a, label_b=label_b)
    errors = result.a.errors + result.b.errors
    if errors and not (result.a.summaries and result.b.summaries):
        print(f"capsim compare: {errors[0]}", file=sys.stderr)
        return 2
    print(result.format())
    if args.out:
        files = result.write(args.out)
        print("wrote " + ", ".join(str(f) for f in files))
    return 130 if result.interrupted else 0


def _sweep(args) -> int:
    from sim.sweep import parse_value, split_values, sweep
    params = {}
    for arg in args.param:
        key, sep, text = arg.partition("=")
        if not sep or not key.strip():
            print(f"capsim sweep: --param {arg!r}: expected PATH=V1,V2,..., e.g. instances.count=1,2,3", file=sys.stderr)
            return 2
        try:
            params[key.strip()] = [parse_value(v) for v in split_values(text)]
        except Exception as exc:   # a YAML syntax error in a value
            print(f"capsim sweep: --param {arg!r}: {exc}", file=sys.stderr)
            return 2
    base = _scenario(args.file, args.overrides)   # the file itself must be valid
    out = Path(args.out) if args.out else Path("capsim-out") / f"{_slug(base.name)}-sweep"
    table = sweep(args.file, params, args.replications, args.seed, overrides=args.overrides, out=out,
                  resume=args.resume, slo=_slo(args), workers=args.workers, cluster=args.cluster,
                  progress=not args.quiet, allow_code=args.allow_code)
    print(format_sweep(table, list(params)))
    a = table.attrs
    if a.get("jobs_resumed"):
        print(f"resumed: {a['jobs_resumed']} runs taken from {out / 'sweep_points.jsonl'}, {a['jobs_run']} run now")
    print(f"wrote {out / 'sweep.csv'}" + (f", {out / 'sweep.parquet'}" if (out / "sweep.parquet").exists() else "")
          + f", {out / 'sweep_points.jsonl'}")
    if a.get("interrupted"):
        print("interrupted: the table holds the runs that finished; rerun with --resume to complete it", file=sys.stderr)
        return 130
    return 0


SHORT_LABELS = {"monthly_cost_usd": "cost $/month", "latency_ms.mean": "latency mean ms",
                "latency_ms.p95": "latency p95 ms", "error_rate": "error %", "slo.violation_minutes": "SLO violation min"}


def format_sweep(table, params: list[str]) -> str:
    """One line per point: its parameters and the headline metrics' mean ± half-width."""
    import pandas as pd
    from sim.compare import HEADLINE
    show = ["monthly_cost_usd", "latency_ms.mean", "latency_ms.p95", "error_rate", "slo.violation_minutes"]
    rows, errors = [], []
    for _, g in table.groupby("point", sort=True):
        first = g.iloc[0]
        row = {p: first[p] for p in params}
        by = g.dropna(subset=["metric"]).set_index("metric")
        for m in show:
            label, unit, _, scale = HEADLINE[m]
            cell = "n/a"
            if m in by.index and by.loc[m, "mean"] == by.loc[m, "mean"]:
                hw = by.loc[m, "half_width"]
                cell = _g(by.loc[m, "mean"] * scale) + ("" if hw != hw or hw is None else f" ± {_g(hw * scale)}")
            row[SHORT_LABELS[m]] = cell
        if isinstance(first["error"], str) and first["error"]:
            errors.append(f"point {first['point']} (" + ", ".join(f"{p}={first[p]}" for p in params)
                          + f"): {first['error']}")
        rows.append(row)
    return "\n".join([pd.DataFrame(rows).to_string(index=False)] + errors)


def _plan(args) -> int:
    from sim.plan import capacity_plan
    from sim.plan import LEVEL_KEYS, LEVELS
    plans = [p.strip() for p in args.plans.split(",")] if args.plans else None
    base = _scenario(args.file, args.overrides)
    wanted = [w.strip() for w in args.levels.split(",")] if args.levels else list(LEVEL_KEYS)
    unknown = [p for p in plans or [] if p not in base.pricing.plans] + [w for w in wanted if w not in LEVEL_KEYS]
    if unknown:
        print(f"capsim plan: unknown {', '.join(map(repr, unknown))}; plans: {', '.join(base.pricing.plans)}; "
              f"levels: {', '.join(LEVEL_KEYS)}", file=sys.stderr)
        return 2
    levels = [LEVELS[LEVEL_KEYS[w]] for w in wanted]
    result = capacity_plan(args.file, overrides=args.overrides, levels=levels, plans=plans,
                           max_instances=args.max_instances,
                           replications=args.replications, seed=args.seed, measured=args.horizon,
                           warmup=args.warmup, latency_mean_ms=args.latency_ms, error_rate=args.error_rate,
                           workers=args.workers, cluster=args.cluster, progress=not args.quiet)
    print(result.format())
    if args.out:
        print("wrote " + ", ".join(str(f) for f in result.write(args.out)))
    return 130 if result.interrupted else 0


def _validate(args) -> int:
    from sim.checks import warnings
    scenario = _scenario(args.file, args.overrides)
    for text in warnings(scenario):
        print(f"warning: {text}")
    print("ok")
    return 0


def _schema(args) -> int:
    from sim.docs import schema_text
    return _emit(schema_text(), args.out)


def _docs(args) -> int:
    from sim.docs import markdown
    return _emit(markdown(), args.out)


def _emit(text: str, out: str | None) -> int:
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    return 0


def _slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "scenario"


# -- the human summary -----------------------------------------------------------------------
def format_summary(s: dict, rows: list[dict]) -> str:
    """A dozen lines for a terminal from ``Result.summary`` (and the rows, for the run's speed)."""
    from sim.docs import human_duration
    req, lat, pool, inst = s["requests"], s["latency_ms"], s["pool"], s["instances"]
    from models.request import OUTCOMES
    outcomes = ", ".join(f"{k} {req[k]:,}" for k in OUTCOMES)
    for key, label in (("in_flight_start", "in flight at warm-up end"), ("in_flight_end", "in flight at the horizon")):
        if req.get(key):
            outcomes += f"; {label} {req[key]:,}"
    simulated = sum(r.get("arrivals", 0) for r in rows)
    speed = f"{simulated / s['wall_seconds']:,.0f} simulated requests per second" if s["wall_seconds"] else "instant"
    lines = [
        ("scenario", f"{s['scenario']} (seed {s['seed']})"),
        ("simulated", f"{human_duration(s['simulated_seconds'])}, " + (
            f"measured after {human_duration(s['warmup_seconds'])} of warm-up" if s.get("warmup_seconds")
            else "no warm-up")),
        ("requests", f"{req['total']:,} ({outcomes})"),
        ("error rate", _pct(s["error_rate"])),
        ("latency", "  ".join(f"{k} {_ms(lat[k])}" for k in ("mean", "p50", "p95", "p99"))),
        ("pool", f"wait p95 {_ms(pool['wait_p95_ms'])}, {pool['timeouts']:,} timeouts"),
        ("instances", f"mean {_num(inst['mean'], 2)}, max {inst['max']}, {_num(s['instance_hours'], 2)} instance-hours"),
        ("scaling", f"{s['scaling_events']} scaling events, {s['crashes']} crashes"),
        ("cost", f"${_num(s['cost_usd'], 4)} (projected ${_num(s['monthly_cost_usd'], 2)}/month: "
                 f"{s['monthly_cost_method']})"),
        ("wall time", f"{s['wall_seconds']:.2f} s ({speed})"),
    ]
    return "\n".join(f"{k:<10} {v}" for k, v in lines)


def _ms(x) -> str:
    return "n/a" if x is None else f"{x:.1f} ms"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.3f}%"


def _num(x, nd: int) -> str:
    return "n/a" if x is None else f"{x:,.{nd}f}"


if __name__ == "__main__":
    sys.exit(main())
