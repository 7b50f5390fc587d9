"""The ``capsim`` command: run, validate, schema, docs.

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
    _set_option(run)
    run.set_defaults(func=_run)
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
    scenario = _scenario(args.file, args.overrides)
    try:
        result = sim.run(scenario, args.seed, allow_code=args.allow_code)
    except CodeNotAllowed as exc:
        print(f"{args.file or BUILTIN}: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("capsim-out") / _slug(scenario.name)
    result.write(out)
    if args.quiet:
        print(out)
    else:
        print(format_summary(result.summary, result.rows))
        print(f"wrote      {out / 'summary.json'}, {out / 'timeseries.csv'}, {out / 'scaling_events.csv'}")
    return 0


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
