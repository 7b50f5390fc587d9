"""``capsim calibrate INPUT... [--base S] [--out DIR]``: a scenario from a user's measurements.

Writes ``DIR/calibrated.yaml`` (each calibrated value's source, sample size and uncertainty in
a comment) and ``DIR/calibration.html`` (fitted vs empirical distributions, QQ plots, the
arrival curve). Both are rendered first and published together as one output folder
(``capsim.results.files.OutputFolder``: staged, then renamed, with its manifest), so a
failure leaves nothing half-written and an earlier calibration is never silently replaced. Bad input: every problem with its file, line or
JSON path and column on stderr, exit code 2. Input formats: docs/calibration-inputs.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

from capsim.calibrate.errors import InputError
from capsim.cli.common import output_dir
from capsim.results.files import OutputFolder, write_text

__all__ = ["calibrate_options", "calibrate_cmd", "calibration_page"]


def calibrate_options(p) -> None:
    """The options of ``capsim calibrate`` (the parser is ``capsim.cli.parser``'s)."""
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a request log (CSV or JSON lines), an Artillery report.json or a metrics CSV; "
                        "KIND:FILE (log:, artillery:, metrics:) says which")
    p.add_argument("--base", metavar="S.yaml", help="the scenario whose other values are kept (default: the built-in)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: capsim-out/calibration; when that holds an "
                                                "earlier output, calibration-2, ...)")
    p.add_argument("--overwrite", action="store_true", help="replace --out DIR if it holds an earlier output "
                                                            "(the old one is removed only once the new one is complete)")
    p.add_argument("--col", action="append", default=[], metavar="FIELD=COLUMN[:UNIT]",
                   help="which column holds a field, e.g. t=timestamp, route=path, latency=rt:ms (repeatable)")
    p.add_argument("--map", metavar="FILE", help="a YAML/JSON mapping file: {columns: {FIELD: COLUMN[:UNIT]}, "
                                                 "durations: ms, time_unit: s, tz: UTC}")
    p.add_argument("--durations", choices=("s", "ms", "us"), help="unit of duration columns without a unit suffix")
    p.add_argument("--time-unit", choices=("s", "ms", "us"), help="unit of numeric times (default: by magnitude)")
    p.add_argument("--tz", metavar="ZONE", help="time zone of naive ISO times and of the hourly curve (default UTC)")
    p.add_argument("--name", help="the calibrated scenario's name (default: <base name>-calibrated)")
    p.add_argument("--quiet", action="store_true", help="print only the output folder")


def calibration_page(cal) -> "object":
    """The calibration report (a ``capsim.report.Page``)."""
    import pandas as pd
    from capsim.calibrate import figures as fg
    from capsim.report.html import Page
    built, inputs = cal.built, cal.inputs
    page = Page("capsim calibration", built.scenario.description)
    page.table("Calibrated values", pd.DataFrame(
        [{"field": ".".join(map(str, s.path)), "source": s.source, "how": s.comment} for s in built.settings]))
    if built.left:
        page.text("Left at the base scenario's value", "; ".join(built.left) + ".")
    for i, c in enumerate(inputs.logs):
        tag = f"log{i}"
        page.table(f"Notes: {c.source}", [(str(k + 1), n) for k, n in enumerate(c.notes)], collapsed=True)
        for route, ep in c.endpoints.items():
            for what in ("cpu_pre", "cpu_post", "query_time"):
                fit = getattr(ep, what)
                if fit is not None and fit.values is not None and (ep.own or route == next(iter(c.endpoints))):
                    page.figure(f"{tag}-{route}-{what}", fg.fit_figure(fit, f"{route} {what}"))
        if c.sessions is not None and c.sessions.length is not None:
            page.figure(f"{tag}-session-length", fg.fit_figure(c.sessions.length, "session length"))
        page.figure(f"{tag}-arrivals", fg.arrival_figure(c.arrivals, c.source))
        if c.arrivals.hourly_rates is not None:
            page.figure(f"{tag}-hourly", fg.hourly_figure(c.arrivals, c.source))
    for i, (run, svc) in enumerate(inputs.artillery):
        page.table(f"Notes: {run.source}", [(str(k + 1), n) for k, n in enumerate(svc.notes)], collapsed=True)
        page.figure(f"artillery{i}", fg.artillery_figure(run, svc, run.source))
    for i, mf in enumerate(inputs.metrics):
        page.table(f"Notes: {mf.run.source}", [(str(k + 1), n) for k, n in enumerate(mf.notes)], collapsed=True)
        page.figure(f"metrics{i}", fg.metrics_figure(mf, mf.run.source))
        page.figure(f"metrics{i}-arrivals", fg.arrival_figure(mf.arrivals, mf.run.source))
        if mf.arrivals.hourly_rates is not None:
            page.figure(f"metrics{i}-hourly", fg.hourly_figure(mf.arrivals, mf.run.source))
    return page


def calibrate_cmd(args) -> int:
    from capsim.calibrate.columns import read_mapping
    from capsim.calibrate.inputs import calibrate_files
    try:
        mapping = read_mapping(args.map, args.col, args.durations, args.time_unit, args.tz)
        cal = calibrate_files(args.inputs, mapping, args.base, args.name)
    except InputError as exc:
        for problem in exc.problems:
            print(f"capsim calibrate: {problem}", file=sys.stderr)
        return 2
    out = output_dir(args, Path("capsim-out") / "calibration")
    html = calibration_page(cal).render()
    with OutputFolder(out, overwrite=args.overwrite, command="calibrate") as folder:
        write_text(folder.stage / "calibrated.yaml", cal.yaml)
        write_text(folder.stage / "calibration.html", html)
    if args.quiet:
        print(out)
        return 0
    for s in cal.built.settings:
        print(f"{'.'.join(map(str, s.path)):<34} {s.source}")
    if cal.built.left:
        print(f"left at the base: {'; '.join(cal.built.left)}")
    print(f"wrote      {out / 'calibrated.yaml'}, {out / 'calibration.html'}")
    return 0
