"""The ``capsim`` command: run, compare, sweep, plan, report, validate, schema, docs.

Exit codes: 0 success; 1 an output could not be written, or some runs failed; 2 bad input
(a scenario problem, listed one per line on stderr with FILE:LINE:COL, a bad command line,
an output folder in the way, too much work without ``--force``); 130 interrupted (Ctrl-C),
143 terminated (SIGTERM): both keep what finished. Never a traceback.
"""
from __future__ import annotations

import signal
import sys
import threading

from capsim.cli import commands as cmd
from capsim.cli import experiments as exp
from capsim.cli.parser import parser
from capsim.engine.estimate import TooMuchWork
from capsim.models.autoscaling import CodeNotAllowed
from capsim.results.files import IncompleteFolder, OutputExists
from capsim.results.text import format_summary
from capsim.scenario.loader import ScenarioError

__all__ = ["main", "format_summary", "Terminated"]

COMMANDS = {"run": cmd.run_cmd, "compare": exp.compare_cmd, "sweep": exp.sweep_cmd, "plan": exp.plan_cmd,
            "report": cmd.report_cmd, "validate": cmd.validate_cmd, "schema": cmd.schema_cmd, "docs": cmd.docs_cmd}


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: what finished is kept; exit code 143."""


_TERMINATED = []      # set when SIGTERM arrived (a command may have turned it into "interrupted")


def _terminate(signum, frame):
    _TERMINATED.append(signum)
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    p = parser(COMMANDS)
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:   # argparse: --help, --version (0) or a usage error (2)
        return int(exc.code or 0)
    if args.command is None:    # a bare `capsim`: what it can do
        p.print_help()
        return 0
    if getattr(args, "fidelity", None):          # the scenario field, as if given with --set
        args.overrides = [f"fidelity={args.fidelity}"] + args.overrides
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    _TERMINATED.clear()
    try:
        rc = _dispatch(args) if _cluster_ok(args) else 2
    except Terminated:
        rc = 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if _TERMINATED and rc == 130:
        print("capsim: terminated (SIGTERM)", file=sys.stderr)
        return 143
    return rc


def _dispatch(args) -> int:
    try:
        return args.func(args)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except (OutputExists, IncompleteFolder, TooMuchWork, CodeNotAllowed) as exc:
        print(f"capsim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"capsim: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:           # the JSON writer refusing a non-finite number
        print(f"capsim: not written: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if not _TERMINATED:
            print("capsim: interrupted", file=sys.stderr)
        return 130


def _cluster_ok(args) -> bool:
    """With --cluster (or DASK_SCHEDULER_ADDRESS), Dask distributed must be importable."""
    from capsim.experiments.parallel import cluster_address
    parallel = args.command in ("compare", "sweep", "plan") or getattr(args, "replications", None)
    if not parallel or cluster_address(getattr(args, "cluster", None)) is None:
        return True
    try:
        import distributed  # noqa: F401  (only to check it is installed)
    except ImportError:
        print("capsim: --cluster needs Dask distributed: pip install 'capsim[cluster]'", file=sys.stderr)
        return False
    return True
