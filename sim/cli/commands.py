"""``capsim run`` (one run), ``report``, ``validate``, ``schema`` and ``docs``."""
from __future__ import annotations

import sys
from pathlib import Path

from capsim.cli import experiments as exp
from capsim.cli.common import admit, output_dir, say, scenario_of, slo_of_args, slug, write_report
from capsim.results.files import IncompleteFolder, OutputFolder, check_folder, write_text
from capsim.results.text import format_summary

__all__ = ["run_cmd", "report_cmd", "validate_cmd", "schema_cmd", "docs_cmd"]


def run_cmd(args) -> int:
    import capsim
    from capsim.experiments.progress import RunProgress
    from capsim.results.slo import evaluate, format_slo, slo_of
    scenario = scenario_of(args.file, args.overrides)
    slo = slo_of_args(args)
    admit(args, scenario, args.file or "the built-in scenario")
    out = output_dir(args, Path("capsim-out") / slug(scenario.name))
    for flag, value in (("--request-log", args.request_log), ("--artillery-report", args.artillery_report)):
        if value and (args.replications or scenario.fidelity == "flow"):
            why = "one run's requests: leave out --replications" if args.replications else \
                "the requests of a run at the request level: the fast mode computes none (leave out --fidelity flow)"
            print(f"capsim run: {flag} writes {why}", file=sys.stderr)
            return 2
    if args.replications:
        return exp.replications(args, scenario, slo, out)
    # opened before the run: an output folder in the way is said at once, not after it
    with OutputFolder(out, overwrite=args.overwrite, command="run") as folder:
        progress = RunProgress(scenario.horizon, enabled=not args.quiet)
        recorder = None
        if args.artillery_report:
            from capsim.results.artillery import ArtilleryRecorder
            recorder = ArtilleryRecorder()
        try:
            result = capsim.run(scenario, args.seed, allow_code=args.allow_code, progress=progress, force=True,
                                request_log=args.request_log, watchers=[recorder] if recorder else [])
        finally:
            progress.close()
        result.summary["slo"] = evaluate(result.rows, slo_of(scenario, slo))
        if args.check:
            result.summary["fidelity"]["check"] = _check(args, scenario)
        result.write_into(folder.stage)
    if args.quiet:
        print(out)
    else:
        print(format_summary(result.summary, result.rows))
        print(f"{'slo':<10} {format_slo(result.summary['slo'])}")
        print(f"wrote      {out / 'summary.json'}, {out / 'timeseries.csv'}, {out / 'instances.csv'}, "
              f"{out / 'scaling_events.csv'}, {out / 'latency_histogram.csv'}, {out / 'scenario.json'}")
        if args.request_log:
            from capsim.engine.request_log import stats_path
            print(f"request log {args.request_log} (process totals: {stats_path(args.request_log)})")
    if recorder is not None:
        recorder.write(args.artillery_report)
        say(args, f"artillery  {args.artillery_report} (Artillery 2 report.json: aggregate + "
                  f"{len(recorder.periods)} periods of 10 s)")
    return write_report(out, args.images, quiet=args.quiet, plotly_js=args.plotly_js)


def _check(args, scenario) -> dict:
    """``--check``: the fast mode beside the request level on a short window; printed and kept in the summary."""
    from capsim.experiments.agreement import check, format_agreement
    from capsim.models.units import human_duration
    if scenario.fidelity != "flow":
        print("capsim: --check compares the fast mode with the request level: add --fidelity flow", file=sys.stderr)
    res = check(scenario, args.check_window, args.check_replications, args.seed, workers=args.workers,
                progress=not args.quiet)
    if not args.quiet:
        print(f"check      the first {human_duration(args.check_window)} after the warm-up: fast mode vs "
              f"{res['replications']} request-level replications"
              + ("" if res["valid"] else " (the fast mode flagged this window: see its warnings)"))
        print(format_agreement(res["rows"]))
    return {"window_seconds": args.check_window, "replications": res["replications"], "valid": res["valid"],
            "rows": res["rows"], "agrees": all(r["ok"] is not False for r in res["rows"])}


def report_cmd(args) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"capsim report: {folder}: no such folder", file=sys.stderr)
        return 2
    try:
        manifest = check_folder(folder)      # complete (or interrupted), every file as capsim wrote it
    except IncompleteFolder as exc:
        print(f"capsim report: {exc}", file=sys.stderr)
        return 2
    if manifest.get("command") == "backtest":          # a backtest folder: its own page, not a comparison's
        from capsim.backtest import backtest_page_from
        page = backtest_page_from(folder).write(folder / "report.html")
        say(args, f"report     {page}")
        return 0
    if manifest.get("status") != "complete":
        print(f"capsim report: {folder}: the {manifest.get('command', 'run')} was {manifest.get('status')}: "
              "the report shows what finished", file=sys.stderr)
    rc = write_report(folder, args.images, quiet=args.quiet, plotly_js=args.plotly_js)
    if args.quiet:
        print(folder)
    return rc


def validate_cmd(args) -> int:
    from capsim.scenario.checks import warnings
    from capsim.scenario.placing import places
    scenario = scenario_of(args.file, args.overrides)
    found = warnings(scenario)
    where = places(found, args.file, args.overrides)        # FILE:LINE:COL of each warning's field, or --set ARG
    if args.strict and found:
        for text, place in zip(found, where):
            print(f"{place or args.file or '<built-in scenario>'}: error (--strict): {text}", file=sys.stderr)
        return 2
    for text, place in zip(found, where):
        print(f"warning: {place + ': ' if place else ''}{text}", file=sys.stderr if args.quiet else sys.stdout)
    say(args, "ok")
    return 0


def schema_cmd(args) -> int:
    from capsim.scenario.docs import schema_text
    return _emit(args, schema_text())


def docs_cmd(args) -> int:
    from capsim.scenario.docs import markdown
    return _emit(args, markdown())


def _emit(args, text: str) -> int:
    if args.out:
        write_text(args.out, text)
        say(args, f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0
