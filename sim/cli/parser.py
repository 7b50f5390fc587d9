"""The ``capsim`` command line: subcommands, their options, metavars and examples."""
from __future__ import annotations

import argparse

from capsim.cli.common import duration, finite_float, positive, seed

__all__ = ["parser", "version"]

QUIET = "print nothing on stdout but the output folder (no progress, no tables); warnings and errors still go to stderr"
ALLOW_CODE = ("let the scenario import the policy its autoscaler.path names (module:Name): only a class with a "
              "decide(obs) method, or a function annotated to return one, is accepted; it runs with your permissions")
FORCE = "run even when the work estimate (requests, events, memory) is beyond the limits"
EXAMPLES = {
    "run": """examples:
  capsim run                                        the built-in launch scenario
  capsim run scenarios/growth.yaml --seed 7 --out out/growth
  capsim run --set workload.sessions.peak_users=500 --set instances.count=3
  capsim run scenarios/launch.yaml -r 10 --out out/r10   10 replications with 95% intervals""",
    "compare": """examples:
  capsim compare --set-b instances.count=2          the built-in scenario against itself with 2 instances
  capsim compare scenarios/growth.yaml --set-b 'autoscaler={policy: hpa, min_instances: 2, max_instances: 5}'
  capsim compare scenarios/growth.yaml scenarios/fullscale.yaml --set horizon=2h -r 10""",
    "sweep": """examples:
  capsim sweep --param instances.count=1,2,3
  capsim sweep scenarios/launch.yaml --param workload.sessions.peak_users=100,250,500 \\
      --param 'autoscaler=null,{policy: hpa, min_instances: 1, max_instances: 10}' --out out/sweep
  capsim sweep ... --out out/sweep --resume         after Ctrl-C, a kill or a full disk""",
    "plan": """examples:
  capsim plan                                       the seed's capacity-planning table (~2-3 min)
  capsim plan --levels light,medium --plans standard -r 5""",
    "report": """examples:
  capsim report capsim-out/launch
  capsim report out/ab --images png""",
    "validate": """examples:
  capsim validate scenarios/fullscale.yaml          problems with FILE:LINE:COL, and warnings
  capsim validate --set instances.count=3           the built-in scenario with an override
  capsim validate my.yaml --strict                  warnings are errors (exit code 2)""",
    "schema": "examples:\n  capsim schema --out scenarios/capsim.schema.json",
    "docs": "examples:\n  capsim docs --out docs/scenario-reference.md",
}


def version() -> str:
    try:
        from importlib.metadata import version as v
        return v("capsim")
    except Exception:            # noqa: BLE001 (run from a source tree without installing)
        return "unknown"


def parser(commands: dict) -> argparse.ArgumentParser:
    """The parser; ``commands`` maps a subcommand name to its function."""
    p = argparse.ArgumentParser(prog="capsim", description="Capacity and cost simulator for the game server.",
                                epilog="Run 'capsim COMMAND --help' for a command's options and examples.")
    p.add_argument("--version", action="version", version=f"capsim {version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    helps = {"run": "simulate a scenario: summary.json, timeseries.csv, report.html",
             "compare": "A/B: two scenarios with common random numbers, paired differences with 95% intervals",
             "sweep": "a grid of parameter values with replications: sweep.csv",
             "plan": "recompute the seed's capacity-planning table by simulation",
             "report": "(re)draw report.html from an output folder of run, compare, sweep or plan",
             "validate": "check a scenario; print every problem with FILE:LINE:COL, and warnings",
             "schema": "print the JSON Schema of scenario files (for editors)",
             "docs": "print the Markdown reference of every scenario field"}
    for name, text in helps.items():
        cmd = sub.add_parser(name, help=text.replace("%", "%%"), description=text, epilog=EXAMPLES[name],
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        OPTIONS[name](cmd)
        cmd.set_defaults(func=commands[name])
    return p


# -- the subcommands ---------------------------------------------------------------------------------
def _run(cmd) -> None:
    _file(cmd, "scenario YAML (default: the built-in launch scenario)")
    _seed(cmd, "the scenario's seed")
    cmd.add_argument("--replications", "-r", type=positive, metavar="R",
                     help="run R replications (seeds spawned from the base seed) and report 95%% intervals")
    cmd.add_argument("--check", action="store_true",
                     help="with --fidelity flow: also run a short request-level window (--check-window) beside it "
                          "and print the agreement")
    cmd.add_argument("--check-window", type=duration, default=1800.0, metavar="DURATION",
                     help="measured time of the --check runs, after the warm-up (default 30m)")
    cmd.add_argument("--check-replications", type=positive, default=3, metavar="R",
                     help="request-level replications of the --check window (default 3)")
    _outputs(cmd, "capsim-out/NAME")
    _common(cmd, allow_code=True)


def _compare(cmd) -> None:
    cmd.add_argument("a", metavar="A.yaml", nargs="?", help="scenario A (default: the built-in launch scenario)")
    cmd.add_argument("b", metavar="B.yaml", nargs="?", help="scenario B (default: A again, changed by --set-b)")
    cmd.add_argument("--replications", "-r", type=positive, default=5, metavar="R", help="replications (default 5)")
    _seed(cmd, "A's seed")
    cmd.add_argument("--no-crn", dest="crn", action="store_false",
                     help="give B independent seeds (to see what common random numbers buy); Welch t-test")
    for side in ("a", "b"):
        cmd.add_argument(f"--set-{side}", action="append", default=[], metavar="PATH=VALUE", dest=f"overrides_{side}",
                         help=f"override a field of {side.upper()} only (repeatable)")
    _outputs(cmd, "capsim-out/A-NAME-compare")
    _common(cmd, allow_code=True)


def _sweep(cmd) -> None:
    _file(cmd, "scenario YAML (default: the built-in launch scenario)")
    cmd.add_argument("--param", action="append", default=[], required=True, metavar="PATH=V1,V2,...",
                     help="a parameter and its values, parsed as YAML (repeatable; the grid is every combination), "
                          "e.g. workload.sessions.peak_users=100,250 or 'autoscaler={policy: hpa, max_instances: 10},null'")
    cmd.add_argument("--replications", "-r", type=positive, default=3, metavar="R",
                     help="replications per point (default 3)")
    _seed(cmd, "the scenario's seed")
    cmd.add_argument("--resume", action="store_true",
                     help="skip the (point, replication) runs already done: in DIR/sweep_points.jsonl, or left by a "
                          "sweep into DIR that was killed or ran out of disk space")
    _screen(cmd, "points")
    cmd.add_argument("--rank", action="append", metavar="METRIC",
                     help="with --screen: order the screened points by this summary metric, ascending ('-METRIC': "
                          "descending; repeatable, ties broken by the next; default: slo.violation_minutes, then "
                          "monthly_cost_usd)")
    _outputs(cmd, "capsim-out/NAME-sweep")
    _common(cmd, allow_code=True)


def _plan(cmd) -> None:
    _file(cmd, "scenario YAML whose system is planned (default: the built-in one)")
    cmd.add_argument("--replications", "-r", type=positive, default=3, metavar="R",
                     help="replications per configuration (default 3)")
    _seed(cmd, "the scenario's seed")
    cmd.add_argument("--horizon", type=duration, default=600.0, metavar="DURATION",
                     help="measured time per run, after the warm-up (default 10m)")
    cmd.add_argument("--warmup", type=duration, default=300.0, metavar="DURATION", help="warm-up per run (default 5m)")
    cmd.add_argument("--max-instances", type=positive, default=10, metavar="N",
                     help="largest instance count tried (default 10)")
    cmd.add_argument("--plans", metavar="P1,P2", help="plans to try (default: every plan in pricing.plans)")
    cmd.add_argument("--levels", metavar="L1,L2",
                     help="load levels (default: all; light, medium, heavy, weekend, event)")
    cmd.add_argument("--latency-ms", type=finite_float(gt=0), default=200.0, metavar="MS",
                     help="objective: average response (default 200)")
    cmd.add_argument("--error-rate", type=finite_float(ge=0, le=1), default=0.01, metavar="SHARE",
                     help="objective: server error rate; 429s count only with --set slo.count_rejected=true "
                          "(default 0.01 = 1%%)")
    _screen(cmd, "configurations per level")
    _outputs(cmd, "capsim-out/NAME-plan")
    _common(cmd, slo=False)


def _report(cmd) -> None:
    cmd.add_argument("folder", metavar="DIR", help="an output folder written by capsim run, compare, sweep or plan")
    cmd.add_argument("--images", choices=("png", "svg"),
                     help="also write each figure as an image in DIR/images (needs kaleido and Chrome/Chromium)")
    cmd.add_argument("--plotly-js", metavar="DIR", dest="plotly_js",
                     help="load plotly.js from one shared copy in DIR (written once, e.g. the folder above "
                          "several output folders) instead of embedding 5 MB in each report.html")
    cmd.add_argument("--quiet", action="store_true", help=QUIET)


def _validate(cmd) -> None:
    _file(cmd, "scenario YAML (default: the built-in launch scenario)")
    cmd.add_argument("--strict", action="store_true", help="warnings are errors: printed on stderr, exit code 2")
    _set(cmd)
    cmd.add_argument("--quiet", action="store_true", help="print nothing on stdout (no 'ok'); problems and warnings "
                                                          "still go to stderr")


def _schema(cmd) -> None:
    cmd.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    cmd.add_argument("--quiet", action="store_true", help="no 'wrote FILE' line")


OPTIONS = {"run": _run, "compare": _compare, "sweep": _sweep, "plan": _plan, "report": _report,
           "validate": _validate, "schema": _schema, "docs": _schema}


# -- shared options -----------------------------------------------------------------------------------
def _file(cmd, text: str) -> None:
    cmd.add_argument("file", metavar="FILE.yaml", nargs="?", help=text)


def _seed(cmd, default: str) -> None:
    cmd.add_argument("--seed", type=seed, metavar="N", help=f"base random seed (default: {default})")


def _set(cmd) -> None:
    cmd.add_argument("--set", action="append", default=[], metavar="PATH=VALUE", dest="overrides",
                     help="override a field, e.g. database.pool.max=30 or workload.open_loop.0.rate=50/s (repeatable)")


def _outputs(cmd, default: str) -> None:
    cmd.add_argument("--out", metavar="DIR", help=f"output folder (default: {default}; when that holds an earlier "
                                                  "output, NAME-2, NAME-3, ...)")
    cmd.add_argument("--overwrite", action="store_true", help="replace --out DIR if it holds an earlier output "
                                                              "(the old one is removed only once the new one is complete)")
    cmd.add_argument("--images", choices=("png", "svg"),
                     help="also write each report figure as an image in DIR/images (needs kaleido and Chrome/Chromium)")
    cmd.add_argument("--plotly-js", metavar="DIR", dest="plotly_js",
                     help="load plotly.js from one shared copy in DIR (written once, e.g. the folder above "
                          "several output folders) instead of embedding 5 MB in each report.html")


def _screen(cmd, what: str) -> None:
    cmd.add_argument("--screen", choices=("flow",),
                     help="multi-fidelity: screen every configuration in the fast mode (once each), then confirm "
                          "the best at the request level with the replications")
    cmd.add_argument("--confirm", type=positive, default=3, metavar="K",
                     help=f"with --screen: {what} confirmed at the request level (default 3)")


def _common(cmd, allow_code: bool = False, slo: bool = True) -> None:
    _set(cmd)
    cmd.add_argument("--fidelity", choices=("request", "flow"),
                     help="request: simulate every request; flow: the fast mode (closed forms per step); "
                          "default: the scenario's fidelity")
    cmd.add_argument("--quiet", action="store_true", help=QUIET)
    cmd.add_argument("--force", action="store_true", help=FORCE)
    if allow_code:
        cmd.add_argument("--allow-code", action="store_true", help=ALLOW_CODE)
    cmd.add_argument("--workers", type=positive, metavar="N",
                     help="local worker processes (default: every core; 1 runs in this process)")
    cmd.add_argument("--cluster", metavar="ADDRESS",
                     help="run on this Dask scheduler (default: $DASK_SCHEDULER_ADDRESS if set, else locally)")
    if slo:
        cmd.add_argument("--slo", metavar="FILE",
                         help="objectives, thresholds and alerts (YAML; default: the scenario's, else the seed's)")
