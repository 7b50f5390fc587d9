"""What the ``capsim`` subcommands share: argument types, scenario loading, output folders, reports."""
from __future__ import annotations

import argparse
import re
import sys

from capsim.scenario.loader import load, load_text

__all__ = ["BUILTIN", "scenario_of", "slo_of_args", "slug", "positive", "duration", "seed", "report_options",
           "write_report"]

BUILTIN = "<built-in scenario>"


def scenario_of(file: str | None, overrides: list[str]):
    return load(file, overrides) if file else load_text("", BUILTIN, overrides)


def slo_of_args(args):
    from capsim.scenario.loader import load_slo
    return load_slo(args.slo) if getattr(args, "slo", None) else None


def slug(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "scenario"


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
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
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


# -- reports ----------------------------------------------------------------------------
def report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", choices=("png", "svg"),
                        help="also write each report figure as an image in OUT/images (needs kaleido and Chrome/Chromium)")
    parser.add_argument("--plotly-js", metavar="DIR", dest="plotly_js",
                        help="load plotly.js from one shared copy in DIR (written once, e.g. the folder above "
                             "several output folders) instead of embedding 5 MB in each report.html")


def write_report(out, images: str | None, quiet: bool = False, plotly_js=None) -> int:
    """Write ``out/report.html`` (and images); print where. 1 when asked-for images could not be written.
    ``plotly_js``: a folder for the shared copy of plotly.js (None: embedded in the page)."""
    from capsim.report import write_report as write
    path, written, problem = write(out, images, plotly_js=plotly_js)
    if not quiet:
        print(f"report     {path}" + (f" and {len(written)} {images} images in {path.parent / 'images'}"
                                    if written else ""))
    if problem:
        print(f"capsim: images not written: {problem}", file=sys.stderr)
        return 1
    return 0
