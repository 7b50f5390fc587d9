"""What the ``capsim`` subcommands share: argument types, scenario loading, output folders, reports."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from capsim.scenario.loader import BUILTIN, load, load_builtin

__all__ = ["BUILTIN", "scenario_of", "slo_of_args", "slug", "positive", "duration", "seed", "finite_float",
           "write_report", "output_dir", "admit", "say"]

def scenario_of(file: str | None, overrides: list[str]):
    return load(file, overrides) if file else load_builtin(overrides)


def slo_of_args(args):
    from capsim.scenario.loader import load_slo
    return load_slo(args.slo) if getattr(args, "slo", None) else None


def _used(path: Path) -> bool:
    return path.is_symlink() or path.is_file() or (path.is_dir() and any(path.iterdir()))


def output_dir(args, default: Path) -> Path:
    """``--out DIR``; else ``default`` (``capsim-out/NAME``), or when that holds an earlier
    output, its first free numbered sibling (``NAME-2``, ``NAME-3``, ...), said on stderr.
    With ``--overwrite`` or ``--resume`` the default itself."""
    if getattr(args, "out", None):
        return Path(args.out)
    if getattr(args, "overwrite", False) or getattr(args, "resume", False) or not _used(default):
        return default
    n = 2
    while _used(default.with_name(f"{default.name}-{n}")):
        n += 1
    new = default.with_name(f"{default.name}-{n}")
    print(f"capsim: {default} holds an earlier output: writing {new} (--out DIR chooses, --overwrite replaces)",
          file=sys.stderr)
    return new


def slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "scenario"


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 1000000, got {text!r}")
    return value


def duration(text: str) -> float:
    from capsim.models.units import parse_duration
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a duration > 0, got {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2 ** 63:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 2^63 - 1, got {text!r}")
    return value


def finite_float(*, gt: float | None = None, ge: float | None = None, le: float | None = None):
    """An argparse type: a finite number within the bounds (``--latency-ms nan`` is an error)."""
    import math

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (gt is None or value > gt) and (ge is None or value >= ge) \
            and (le is None or value <= le)
        if not ok:
            bounds = " and ".join(f"{op} {b:g}" for op, b in (("> ", gt), (">= ", ge), ("<= ", le)) if b is not None)
            raise argparse.ArgumentTypeError(f"expected a finite number {bounds.replace('  ', ' ')}, got {text!r}")
        return value
    return parse


def say(args, *lines) -> None:
    """Print to stdout unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line)


def admit(args, scenario, label: str) -> None:
    """The work estimate before running: refused beyond the limits (TooMuchWork, exit code 2)
    unless ``--force``; a long run is said on stderr."""
    from capsim.engine.estimate import check
    work = check(scenario, force=getattr(args, "force", False))
    warning = work.warning()
    if warning:
        print(f"capsim: {label}: {warning}", file=sys.stderr)


# -- reports ----------------------------------------------------------------------------
def write_report(out, images: str | None, quiet: bool = False, plotly_js=None) -> int:
    """Write ``out/report.html`` (and images); print where. 1 when the page or asked-for images
    could not be written (the data files stay as they are). ``plotly_js``: a folder for the
    shared copy of plotly.js (None: embedded in the page)."""
    from capsim.report import write_report as write
    try:
        path, written, problem = write(out, images, plotly_js=plotly_js)
    except OSError:
        raise
    except Exception as exc:              # noqa: BLE001 (a folder whose files capsim cannot draw)
        print(f"capsim: {out}: report.html not drawn: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not quiet:
        print(f"report     {path}" + (f" and {len(written)} {images} images in {path.parent / 'images'}"
                                    if written else ""))
    if problem:
        print(f"capsim: images not written: {problem}", file=sys.stderr)
        return 1
    return 0
