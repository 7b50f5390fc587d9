"""Static images (PNG, SVG) of report figures, where a renderer is available.

plotly's ``write_image`` needs the ``kaleido`` package (>= 1.0), which drives a Chrome or
Chromium browser. ``image_support()`` says what is missing and how to get it; images are
an extra, so a missing renderer is reported, never raised. One browser serves the whole
batch (``kaleido.start_sync_server``: a start costs seconds).
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from capsim.results.files import safe_dir, write_bytes

__all__ = ["FORMATS", "find_browser", "image_support", "write_images"]

FORMATS = ("png", "svg")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

NO_KALEIDO = ("static images need the kaleido package (>= 1.0): pip install 'capsim[images]' "
              "(or pip install kaleido)")
NO_BROWSER = ("static images need Chrome or Chromium for kaleido, and none was found. Install one: "
              "apt-get install -y chromium (Debian/Ubuntu), brew install --cask chromium (macOS), "
              "or, with internet access, python -c 'import kaleido; kaleido.get_chrome_sync()'; "
              "or point BROWSER_PATH at a Chrome/Chromium executable")


def find_browser() -> str | None:
    """The Chrome/Chromium kaleido would use (``BROWSER_PATH``, kaleido's own download, ``PATH``)."""
    try:
        from choreographer.browsers.chromium import Chromium   # kaleido's browser finder
        path = Chromium.find_browser(skip_local=False)
    except Exception:                                            # noqa: BLE001 (another kaleido layout)
        path = next((p for p in map(shutil.which, BROWSERS) if p), None)
    return path if path and Path(path).is_file() else None


def image_support() -> str | None:
    """None when static images can be written here; otherwise what is missing and how to fix it."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return NO_KALEIDO
    return None if find_browser() else NO_BROWSER


def write_images(figures: dict, out, fmt: str = "png") -> tuple[list[Path], str | None]:
    """Write ``out/NAME.fmt`` per figure; returns (files written, problem or None)."""
    if fmt not in FORMATS:
        raise ValueError(f"image format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    problem = image_support()
    if problem:
        return [], problem
    import kaleido
    out = safe_dir(out)                 # a symlinked images/ is refused: capsim never writes through one
    written: list[Path] = []
    try:
        kaleido.start_sync_server(silence_warnings=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The kopts argument is ignored")   # plotly, with a server
            for name, fig in figures.items():
                data = fig.to_image(format=fmt, width=1100, height=fig.layout.height or 450)
                written.append(write_bytes(out / f"{name}.{fmt}", data))
    except Exception as exc:                                     # noqa: BLE001 (a browser that will not start)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return written, f"static images stopped after {len(written)} of {len(figures)}: {first}. {NO_BROWSER}"
    finally:
        try:
            kaleido.stop_sync_server(silence_warnings=True)
        except Exception:                                        # noqa: BLE001
            pass
    return written, None
