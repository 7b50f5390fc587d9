"""Every file capsim writes goes through here.

- ``write_text`` / ``write_bytes`` / ``write_json`` / ``write_csv``: a temporary file beside
  the target (created new, never through a symlink), fsynced, then renamed over the target
  (``os.replace`` replaces a symlink itself, never its target). A failure (a full disk)
  raises ``OSError`` naming the file.
- ``to_json``: strict JSON; a NaN or infinity anywhere is an error naming its key, never
  ``Infinity`` in a file.
- ``OutputFolder``: an output folder is written in a staging folder beside it
  (``.NAME.XXXX.partial``) and published by a rename once complete, with ``manifest.json``
  listing every file's SHA-256. An existing, non-empty folder is never replaced unless
  asked (``overwrite``), and then only after the new one is complete.
- ``check_folder``: the manifest of a folder, or ``IncompleteFolder`` saying what is wrong
  (no manifest: the run was killed or is still running; a file missing or changed).
- ``Journal`` / ``read_journal``: an append-only JSON-lines log (sweeps' finished runs),
  each line fsynced; a torn last line (a full disk, a kill) is skipped when read back.
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["write_text", "write_bytes", "write_json", "write_csv", "to_json", "safe_dir", "OutputFolder",
           "OutputExists", "IncompleteFolder", "check_folder", "staging_folders", "Journal", "read_journal", "MANIFEST",
           "DERIVED", "PID_FILE"]

MANIFEST = "manifest.json"
DERIVED = ("report.html", "images")   # drawn from the data files, again at any time: not in the manifest
PID_FILE = ".capsim-pid"               # in a staging folder: which process writes it
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


# -- single files ---------------------------------------------------------------------------
def _named(exc: OSError, path) -> OSError:
    """The same error, naming ``path`` (a write() error carries no file name)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of ``data`` (a short write is retried; a full disk then raises ENOSPC/EFBIG)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, never through a symlink; returns ``path``."""
    path = Path(path)
    fd, tmp = -1, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        _write_all(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise _named(exc, path) from None
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def _finite(obj, where: str):
    """``obj`` with numpy scalars as Python numbers; ValueError at the first NaN/infinity."""
    if isinstance(obj, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(obj):
            raise ValueError(f"{where or 'value'} is {float(obj)}: refusing to write a non-finite number")
        return float(obj)
    return obj


def to_json(obj, indent: int | None = 2) -> str:
    """Strict JSON text of ``obj`` (ValueError naming the key of a NaN or infinity)."""
    return json.dumps(_finite(obj, ""), indent=indent, allow_nan=False) + ("\n" if indent is not None else "")


def write_json(path, obj) -> Path:
    try:
        text = to_json(obj)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return write_text(path, text)


def write_csv(path, frame) -> Path:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return write_text(path, buf.getvalue())


def safe_dir(path) -> Path:
    """``path`` as a folder to write in: made if missing; a symlink is refused."""
    path = Path(path)
    if path.is_symlink():
        raise OSError(40, "is a symbolic link: capsim writes into real folders only", str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _named(exc, path) from None
    return path


# -- journals --------------------------------------------------------------------------------------
class Journal:
    """Append-only JSON lines at ``path``, one fsynced line per record."""

    def __init__(self, path):
        self.path = Path(path)

    def append(self, record: dict) -> None:
        line = (to_json(record, indent=None) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
            try:
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _named(exc, self.path) from None


def read_journal(path) -> tuple[list[dict], int]:
    """(records, lines skipped): lines that are not a JSON object (a torn last line) are skipped."""
    records, skipped = [], 0
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(rec, dict):
            records.append(rec)
        else:
            skipped += 1
    return records, skipped


# -- folders ---------------------------------------------------------------------------------
class OutputExists(FileExistsError):
    """The output folder holds files already (the message says how to go on)."""


class IncompleteFolder(ValueError):
    """Not a complete capsim output folder: no manifest, or a file missing or changed."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _data_files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if rel.parts[0] in DERIVED or rel.name in (MANIFEST, PID_FILE) or p.is_dir():
            continue
        out.append(p)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("capsim")
    except Exception:            # noqa: BLE001 (not installed as a distribution)
        return "unknown"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class OutputFolder:
    """An output folder written in a staging folder and published whole.

    ``with OutputFolder(out) as folder: ...write files into folder.stage...`` publishes on
    success (status ``complete``); ``folder.publish("interrupted")`` inside the block
    publishes what is there, marked so, and ``folder.discard()`` publishes nothing. On an
    error nothing is published; the staging folder is removed, unless it holds a journal
    (``keep``: a sweep's finished runs, for ``--resume``).
    """

    def __init__(self, out, *, overwrite: bool = False, command: str = "run", keep: tuple[str, ...] = ()):
        self.out = Path(out)
        self.overwrite, self.command, self.keep = overwrite, command, keep
        self.stage: Path | None = None
        self.leftovers: list[Path] = []      # staging folders of runs that were killed
        self.published = self.discarded = False

    # -- opening ------------------------------------------------------------------------
    def open(self) -> Path:
        out = self.out
        if out.is_symlink() or (out.exists() and not out.is_dir()):
            raise OutputExists(f"{out}: exists and is not a folder (a file or a symbolic link): choose another --out")
        if out.is_dir() and any(out.iterdir()) and not self.overwrite:
            raise OutputExists(f"{out}: holds an earlier output: choose another --out, or pass --overwrite to "
                               "replace it (the old one is removed only once the new one is complete)")
        parent = safe_dir(out.parent if str(out.parent) else Path("."))
        self.leftovers = self._leftovers(parent)
        try:
            self.stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
            write_text(self.stage / PID_FILE, f"{os.getpid()}\n")
        except OSError as exc:
            raise _named(exc, parent) from None
        return self.stage

    def _leftovers(self, parent: Path) -> list[Path]:
        found = []
        for p in staging_folders(self.out):
            try:
                pid = int((p / PID_FILE).read_text().strip())
            except (OSError, ValueError):
                pid = None
            if pid is not None and pid != os.getpid() and _alive(pid):
                raise OutputExists(f"{self.out}: another capsim (process {pid}) is writing it now ({p})")
            found.append(p)
        return found

    def __enter__(self) -> "OutputFolder":
        self.open()
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            if not (self.published or self.discarded):
                self.publish()
            return False
        if not self.published:
            self.discard()
        if isinstance(exc, OSError) and exc.filename and self.stage is not None:
            name = str(exc.filename)
            if name.startswith(str(self.stage)):   # name the file as it would have been published
                rel = os.path.relpath(name, self.stage)
                raise OSError(exc.errno, f"{exc.strerror} (nothing was published; {self.out} is as it was)",
                              str(self.out / rel)) from None
        return False

    # -- closing ------------------------------------------------------------------------
    def discard(self) -> None:
        """Give up: remove the staging folder, unless it holds a journal to resume from."""
        self.discarded = True
        if self.stage is None or not self.stage.exists():
            return
        if any((self.stage / name).exists() for name in self.keep):
            (self.stage / PID_FILE).unlink(missing_ok=True)
            return
        shutil.rmtree(self.stage, ignore_errors=True)

    def publish(self, status: str = "complete") -> Path:
        """Write the manifest, sync everything, and move the staging folder to ``out``."""
        stage, out = self.stage, self.out
        if stage is None:
            raise RuntimeError("OutputFolder.publish before open")
        files = {str(p.relative_to(stage)): {"sha256": _sha256(p), "bytes": p.stat().st_size}
                 for p in _data_files(stage)}
        write_json(stage / MANIFEST, {"format": "capsim output folder", "capsim": _version(),
                                      "command": self.command, "status": status, "files": files})
        for d in [stage] + [p for p in stage.rglob("*") if p.is_dir()]:
            _fsync_dir(d)
        (stage / PID_FILE).unlink(missing_ok=True)
        self._swap(stage, out)
        self.published = True
        for p in self.leftovers:
            shutil.rmtree(p, ignore_errors=True)
        return out

    def _swap(self, stage: Path, out: Path) -> None:
        old = None
        try:
            if out.exists():
                if any(out.iterdir()) and not self.overwrite:
                    raise OutputExists(f"{out}: appeared while capsim was running; the results are kept in {stage}")
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
                os.rmdir(old)
                os.rename(out, old)
            os.rename(stage, out)
        except OSError as exc:
            if old is not None and not out.exists():
                os.rename(old, out)            # put the previous folder back
            raise _named(exc, out) from None
        _fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def staging_folders(out) -> list[Path]:
    """The staging folders of output folder ``out`` (``.NAME.XXXXXXXX.partial``, ours or left
    by runs that were killed), not those of a folder whose name merely starts the same."""
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    pattern = re.compile(rf"\.{re.escape(out.name)}\.[a-z0-9_]{{8}}\.partial")
    return [p for p in sorted(parent.glob(f".{glob.escape(out.name)}.*.partial"))
            if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]


def check_folder(folder) -> dict:
    """The manifest of a complete (or interrupted) output folder; IncompleteFolder otherwise."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file() or path.is_symlink():
        raise IncompleteFolder(f"{folder}: no {MANIFEST}: expected an output folder of capsim run, compare, sweep or "
                               "plan, written to the end (a run that was killed or is still running has none)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise IncompleteFolder(f"{path}: damaged (not the manifest capsim writes)") from None
    for rel, info in files.items():
        p = folder / rel
        if not p.is_file() or p.is_symlink():
            raise IncompleteFolder(f"{p}: missing (listed in {MANIFEST})")
        try:
            same = p.stat().st_size == info["bytes"] and _sha256(p) == info["sha256"]
        except (KeyError, TypeError):
            raise IncompleteFolder(f"{path}: damaged (not the manifest capsim writes)") from None
        if not same:
            raise IncompleteFolder(f"{p}: changed since capsim wrote it (its SHA-256 differs from {MANIFEST})")
    return manifest
