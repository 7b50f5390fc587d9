"""``capsim calibrate INPUT... [--base S] [--out DIR]``: a scenario from a user's measurements.

Writes ``DIR/calibrated.yaml`` (each calibrated value's source, sample size and uncertainty in
a comment) and ``DIR/calibration.html`` (fitted vs empirical distributions, QQ plots, the
arrival curve). Both are rendered first and written to temporary files renamed into place,
so a failure leaves nothing half-written. Bad input: every problem with its file, line or
JSON path and column on stderr, exit code 2. Input formats: docs/calibration-inputs.md.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from capsim.calibrate.errors import InputError

__all__ = ["add_calibrate", "calibrate_cmd", "calibration_page", "write_atomically"]


def add_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="fit a scenario to request logs, an Artillery report or metrics; write "
                                         "calibrated.yaml and calibration.html")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a request log (CSV or JSON lines), an Artillery report.json or a metrics CSV; "
                        "KIND:FILE (log:, artillery:, metrics:) says which")
    p.add_argument("--base", metavar="S.yaml", help="the scenario whose other values are kept (default: the built-in)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: capsim-out/calibration)")
    p.add_argument("--col", action="append", default=[], metavar="FIELD=COLUMN[:UNIT]",
                   help="which column holds a field, e.g. t=timestamp, route=path, latency=rt:ms (repeatable)")
    p.add_argument("--map", metavar="FILE", help="a YAML/JSON mapping file: {columns: {FIELD: COLUMN[:UNIT]}, "
                                                 "durations: ms, time_unit: s, tz: UTC}")
    p.add_argument("--durations", choices=("s", "ms", "us"), help="unit of duration columns without a unit suffix")
    p.add_argument("--time-unit", choices=("s", "ms", "us"), help="unit of numeric times (default: by magnitude)")
    p.add_argument("--tz", help="time zone of naive ISO times and of the hourly curve (default UTC)")
    p.add_argument("--name", help="the calibrated scenario's name (default: <base name>-calibrated)")
    p.add_argument("--quiet", action="store_true", help="print only the output folder")
    p.set_defaults(func=calibrate_cmd)


def write_atomically(files: dict[Path, str]) -> None:
    """Write every file to a temporary file beside it, then rename them all into place."""
    temps = []
    mask = os.umask(0)
    os.umask(mask)
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o666 & ~mask)            # as open() would create it
            temps.append((tmp, path))
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


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
    out = Path(args.out) if args.out else Path("capsim-out") / "calibration"
    html = calibration_page(cal).render()
    files = {out / "calibrated.yaml": cal.yaml, out / "calibration.html": html}
    write_atomically(files)
    if args.quiet:
        print(out)
        return 0
    for s in cal.built.settings:
        print(f"{'.'.join(map(str, s.path)):<34} {s.source}")
    if cal.built.left:
        print(f"left at the base: {'; '.join(cal.built.left)}")
    print(f"wrote      {out / 'calibrated.yaml'}, {out / 'calibration.html'}")
    return 0
