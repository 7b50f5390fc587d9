"""Static images (PNG, SVG) of report figures, where a renderer is available.

plotly's ``write_image`` needs the ``kaleido`` package, which drives a Chrome or Chromium
browser. Tested pairs: plotly 6.1.0 and 7.1.0 with kaleido 1.1.0 and 1.5.1 (kaleido asks for
plotly >= 6.1.1, so that is the floor). plotly before 6.1 does not know kaleido 1.x (it says "requires the kaleido package" although kaleido is
installed) and kaleido 1.0 has no ``start_sync_server``: ``version_problem`` names such a
pair, so the message says what to upgrade rather than blaming the browser.
``image_support()`` says what is missing and how to get it; images are an extra, so a
missing renderer is reported, never raised. One browser serves the whole batch
(``kaleido.start_sync_server``: a start costs seconds).
"""
from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

from capsim.results.files import safe_dir, write_bytes

__all__ = ["FORMATS", "find_browser", "image_support", "write_images", "version_problem", "MIN_PLOTLY", "MIN_KALEIDO"]

FORMATS = ("png", "svg")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

MIN_PLOTLY, MIN_KALEIDO = (6, 1, 1), (1, 1, 0)     # kaleido 1.x itself asks for plotly >= 6.1.1
NO_KALEIDO = ("static images need the kaleido package (>= 1.1): pip install 'capsim[images]' "
              "(or pip install 'kaleido>=1.1')")
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


def _release(text: str) -> tuple[int, ...]:
    """``"6.1.0rc1"`` -> (6, 1, 0): the leading number of each of the first three parts."""
    return tuple(int(m.group()) if (m := re.match(r"\d+", piece)) else 0 for piece in (text.split(".") + ["0"] * 3)[:3])


def version_problem(plotly_version: str, kaleido_version: str) -> str | None:
    """What is wrong with this plotly / kaleido pair for static images, or None."""
    wanted = f"plotly >= {'.'.join(map(str, MIN_PLOTLY))} with kaleido >= {'.'.join(map(str, MIN_KALEIDO[:2]))}"
    if _release(plotly_version) < MIN_PLOTLY:
        return (f"plotly {plotly_version} cannot drive kaleido {kaleido_version} (it expects kaleido 0.x): static "
                f"images need {wanted}: pip install -U 'plotly>={'.'.join(map(str, MIN_PLOTLY))}'")
    if _release(kaleido_version) < MIN_KALEIDO:
        return (f"kaleido {kaleido_version} is too old (no start_sync_server): static images need {wanted}: "
                f"pip install -U 'kaleido>={'.'.join(map(str, MIN_KALEIDO[:2]))}'")
    return None


def _installed() -> tuple[str, str]:
    from importlib.metadata import version
    return version("plotly"), version("kaleido")


def image_support() -> str | None:
    """None when static images can be written here; otherwise what is missing and how to fix it."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return NO_KALEIDO
    problem = version_problem(*_installed())
    if problem:
        return problem
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
        browser = any(w in str(exc).lower() for w in ("browser", "chrome", "chromium"))
        hint = f" {NO_BROWSER}" if browser or find_browser() is None else (
            f" (plotly {_installed()[0]}, kaleido {_installed()[1]}, browser {find_browser()})")
        return written, f"static images stopped after {len(written)} of {len(figures)}: {type(exc).__name__}: {first}.{hint}"
    finally:
        try:
            kaleido.stop_sync_server(silence_warnings=True)
        except Exception:                                        # noqa: BLE001
            pass
    return written, None
