"""Recorded traffic on disk, read as a stream: a request log or a per-interval rate series.

Files are CSV or JSON lines, optionally gzip-compressed (``.csv``, ``.csv.gz``, ``.jsonl``,
``.jsonl.gz``, ``.ndjson``); rows are read one at a time, so memory does not grow with the
trace's length. A time is a number (in ``time_unit``: seconds, ms or µs, e.g. epoch or
from the log's start) or an ISO 8601 date-time (``2026-01-05T18:00:00.250Z``; without a
zone it is taken as UTC). Rows must come in time order.

``scan`` reads a file once to check it (every row's time, the routes it names) and
``requests`` / ``rate_points`` yield its rows for a run. A bad row raises ``TraceError``
with the file, the line (the CSV header is line 1), the column and what was expected.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterator

__all__ = ["TraceError", "TraceInfo", "scan", "rows", "requests", "rate_points", "file_format", "TIME_UNITS"]

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


class TraceError(ValueError):
    """A problem at a place in a trace file (``line`` 1-based; None: the whole file)."""

    def __init__(self, file: str, message: str, line: int | None = None, column: str | None = None):
        self.file, self.line, self.column, self.message = file, line, column, message
        where = file if line is None else f"{file}:{line}"
        col = f": column {column!r}" if column else ""
        super().__init__(f"{where}{col}: {message}")


@dataclass(frozen=True)
class TraceInfo:
    """What ``scan`` found: row count, first and last time (s), and each route's count and first line."""
    rows: int
    first: float
    last: float
    routes: dict = field(default_factory=dict)     # route -> (count, first line)


def file_format(path: str, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    name = path.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    raise TraceError(path, "expected a .csv, .jsonl or .ndjson file (optionally .gz), or format: csv|jsonl")


def _open(path: str):
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise TraceError(path, "no such file") from None
    except OSError as exc:
        raise TraceError(path, f"cannot read: {exc.strerror or exc}") from None
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8", newline="")
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def rows(path: str, fmt: str, wanted: dict[str, str | None]) -> Iterator[tuple[int, dict]]:
    """(line, {key: raw value}) for each row; ``wanted`` maps our keys to the file's columns
    (None: optional and absent). A missing required column is an error that lists the file's."""
    fmt = file_format(path, fmt)
    with _open(path) as fh:
        try:
            yield from (_csv_rows if fmt == "csv" else _jsonl_rows)(path, fh, wanted)
        except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, csv.Error) as exc:
            raise TraceError(path, f"cannot read: {exc}") from None


def _csv_rows(path, fh, wanted):
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        raise TraceError(path, "empty file: expected a header row and at least one request")
    header = [h.strip() for h in header]
    where = {}
    for key, col in wanted.items():
        if col is None:
            continue
        if col not in header:
            raise TraceError(path, f"no column {col!r} (for {key}); the file has {header}", 1)
        where[key] = header.index(col)
    for cells in reader:
        if not cells:
            continue
        line = reader.line_num
        if len(cells) < len(header):
            raise TraceError(path, f"expected {len(header)} fields, got {len(cells)}", line)
        yield line, {k: cells[i] for k, i in where.items()}


def _jsonl_rows(path, fh, wanted):
    for line, text in enumerate(fh, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TraceError(path, f"expected a JSON object per line: {exc.msg} at column {exc.colno}", line) from None
        if not isinstance(obj, dict):
            raise TraceError(path, f"expected a JSON object per line, got {type(obj).__name__}", line)
        out = {}
        for key, col in wanted.items():
            if col is None:
                continue
            if col not in obj:
                raise TraceError(path, f"no field {col!r} (for {key}); this line has {sorted(obj)}", line)
            out[key] = obj[col]
        yield line, out


def parse_time(value, unit: float, path: str, line: int, column: str) -> float:
    """Seconds: a number times ``unit``, or an ISO 8601 date-time as seconds since the epoch."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) * unit
    text = str(value).strip()
    try:
        return float(text) * unit
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(path, f"expected a number or an ISO 8601 date-time, got {text!r}", line, column) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def _number(value, path: str, line: int, column: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TraceError(path, f"expected a number >= 0, got {value!r}", line, column) from None
    if not x >= 0 or x == float("inf"):
        raise TraceError(path, f"expected a finite number >= 0, got {value!r}", line, column)
    return x


def _timed(config) -> Iterator[tuple[int, float, dict]]:
    """(line, time in s, row) in time order; out-of-order rows are an error."""
    cols = config.columns
    wanted = {"time": cols.time}
    if config.kind == "requests":
        wanted["route"] = cols.route
    else:
        wanted["rate"] = config.rate_column
        wanted["requests"] = cols.requests
    unit, last = TIME_UNITS[config.time_unit], float("-inf")
    for line, row in rows(config.file, config.format, wanted):
        t = parse_time(row["time"], unit, config.file, line, cols.time)
        if t < last:
            raise TraceError(config.file, f"expected rows in time order; this one is {last - t:.6g} s before "
                             "the previous one", line, cols.time)
        last = t
        yield line, t, row


def scan(config) -> TraceInfo:
    """Read the whole file once and check it (cached while the file is unchanged)."""
    try:
        st = os.stat(config.file)
    except FileNotFoundError:
        raise TraceError(config.file, "no such file") from None
    key = (config.model_dump_json(), st.st_mtime_ns, st.st_size)
    if key not in _SCANNED:
        if len(_SCANNED) >= 16:
            _SCANNED.pop(next(iter(_SCANNED)))
        _SCANNED[key] = _scan(config)
    return _SCANNED[key]


_SCANNED: dict = {}


def _scan(config) -> TraceInfo:
    n, first, last, routes = 0, None, None, Counter()
    lines: dict = {}
    for line, t, row in _timed(config):
        n += 1
        first = t if first is None else first
        last = t
        if config.kind == "requests":
            r = "" if row.get("route") is None else str(row["route"])
            routes[r] += 1
            lines.setdefault(r, line)
        else:
            _rate_of(row, config, line, None)
    if n == 0:
        raise TraceError(config.file, "no rows: expected at least one request" if config.kind == "requests"
                         else "no rows: expected at least two rate points")
    if config.kind == "rates" and n < 2:
        raise TraceError(config.file, "one rate point: expected at least two (each holds until the next)")
    return TraceInfo(n, first, last, {r: (c, lines[r]) for r, c in routes.items()})


def _rate_of(row, config, line, gap):
    cols = config.columns
    if config.rate_column is not None:
        return _number(row["rate"], config.file, line, cols.rate)
    count = _number(row["requests"], config.file, line, cols.requests)
    return count / gap if gap else 0.0


def requests(config) -> Iterator[tuple[float, str]]:
    """(time in s, route) of every recorded request, in order."""
    route_col = config.columns.route
    for _, t, row in _timed(config):
        yield t, ("" if route_col is None or row.get("route") is None else str(row["route"]))


def rate_points(config) -> Iterator[tuple[float, float]]:
    """(time in s, rate per s from then on) of each row; with a ``requests`` column the rate is
    that count over the time to the next row (the last row: over the previous gap)."""
    prev = None
    gap = None
    for line, t, row in _timed(config):
        if config.rate_column is not None:
            yield t, _rate_of(row, config, line, None)
            continue
        if prev is not None:
            pt, pline, prow = prev
            gap = t - pt
            yield pt, _rate_of(prow, config, pline, gap) if gap > 0 else 0.0
        prev = (t, line, row)
    if prev is not None and config.rate_column is None:
        pt, pline, prow = prev
        yield pt, _rate_of(prow, config, pline, gap)
