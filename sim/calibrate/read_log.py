"""Read a request log (CSV or JSON lines, optionally gzipped) into a ``RequestLog``.

``read_request_log(path, mapping)``: columns by ``capsim.calibrate.columns`` (field names,
units, time stamps); each bad value is an ``InputError`` with its line and column. The
process totals of the server over the measured window are read from a JSON file beside
the log when there is one: ``<log>.stats.json`` (capsim's request-log writer) or
``<run>.json`` with ``/stats`` snapshots (node-pg-measurements); a capsim log's stats also
give its calendar start (``workload.start``) for its relative times.
"""
from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from capsim.calibrate.columns import DURATIONS, NODE_PG, TIMES, UNITS, Mapping, resolve, suffix_unit
from capsim.calibrate.errors import InputError, InputProblem
from capsim.calibrate.logs import RequestLog, outcome_of_status, process_totals

__all__ = ["read_request_log", "read_node_pg_run", "read_table", "is_node_pg", "parse_times", "numbers", "bad_values", "MAX_LISTED"]

MAX_LISTED = 5          # bad values listed per column (then: "and N more")


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _jsonl(path: Path) -> pd.DataFrame:
    rows, problems = [], []
    with _open(path) as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(InputProblem(str(path), f"expected one JSON object a line: {exc.msg} "
                                                        f"(character {exc.pos + 1})", i))
                continue
            if not isinstance(row, dict):
                problems.append(InputProblem(str(path), f"expected a JSON object, got {type(row).__name__}", i))
                continue
            row["__line"] = i
            rows.append(row)
    if problems:
        raise InputError(problems[:MAX_LISTED])
    return pd.DataFrame(rows)


def read_table(path) -> pd.DataFrame:
    """The raw rows, with ``__line``: each row's line in the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError.one(path, "no such file")
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith((".jsonl", ".ndjson", ".json")):
        raw = _jsonl(path)
    else:
        try:
            with _open(path) as fh:
                raw = pd.read_csv(fh, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError.one(path, f"expected a CSV file with a header line: {exc}") from None
        except pd.errors.EmptyDataError:
            raise InputError.one(path, "empty file: expected a CSV header line and one row per request") from None
        raw["__line"] = np.arange(2, len(raw) + 2)
    if raw.empty:
        raise InputError.one(path, "no requests in the file")
    return raw


def is_node_pg(header) -> bool:
    return {"sched_ms", "cpu1_ms", "srv_in_ms"} <= set(header)


def bad_values(path, raw, mask, col, field, expected) -> InputProblem:
    lines = raw["__line"][mask].tolist()
    values = raw[col][mask].tolist()
    more = f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else ""
    return InputProblem(str(path), f"expected {expected}, got {values[0]!r}{more}", int(lines[0]),
                        f"column {col!r} ({field})")


def numbers(path, raw, col, field, expected, problems) -> pd.Series:
    text = raw[col].astype(str).str.strip()
    empty = text.isin(["", "nan", "NaN", "null", "None"]) | raw[col].isna()
    x = pd.to_numeric(text.where(~empty), errors="coerce")
    bad = x.isna() & ~empty
    if bad.any():
        problems.append(bad_values(path, raw, bad, col, field, expected))
    return x.astype(float)


def _duration(path, raw, field, col, unit, mapping, problems) -> pd.Series | None:
    unit = unit or suffix_unit(col) or mapping.durations
    if unit is None:
        problems.append(InputProblem(str(path), f"unknown unit: say it with --col {field}={col}:ms (or :s, :us) "
                                                f"or --durations ms", None, f"column {col!r} ({field})"))
        return None
    x = numbers(path, raw, col, field, f"a duration in {unit} >= 0", problems)
    neg = x < 0
    if neg.any():
        problems.append(bad_values(path, raw, neg, col, field, f"a duration in {unit} >= 0"))
    return x * UNITS[unit]


def parse_times(path, raw, fields: dict, mapping: Mapping, problems) -> tuple[dict, pd.Timestamp | None]:
    """Every time field in seconds from one origin (the first send time), and that origin's date."""
    col, unit = fields["t"]
    text = raw[col].astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().mean() > 0.5:
        return _numeric_times(path, raw, fields, mapping, problems)
    out, start = {}, None
    for f in TIMES:
        if f not in fields:
            continue
        c = fields[f][0]
        stamp = pd.to_datetime(raw[c].astype(str).str.strip(), format="ISO8601", errors="coerce", utc=False)
        bad = stamp.isna() & (raw[c].astype(str).str.strip() != "")
        if bad.any():
            problems.append(bad_values(path, raw, bad, c, f, "an ISO 8601 time such as 2026-01-05T18:00:00.123Z "
                                                       "or an epoch number"))
            continue
        try:
            stamp = stamp.dt.tz_localize(mapping.tz) if stamp.dt.tz is None else stamp.dt.tz_convert(mapping.tz)
        except Exception as exc:     # an unknown zone name
            problems.append(InputProblem(str(path), f"time zone: {exc}", None, "tz"))
            continue
        if start is None:
            start = stamp.min().floor("min")         # t = 0 on a whole minute: minute bins are clock minutes
        out[f] = (stamp - start).dt.total_seconds()
    return out, start


def _numeric_times(path, raw, fields, mapping, problems):
    out, start, origin = {}, None, None
    for f in TIMES:
        if f not in fields:
            continue
        c, unit = fields[f]
        x = numbers(path, raw, c, f, "a time stamp (a number or ISO 8601)", problems)
        unit = unit or suffix_unit(c) or mapping.time_unit
        scale = UNITS[unit] if unit else None
        if scale is None:
            med = float(np.nanmedian(x)) if x.notna().any() else 0.0
            if 1e8 <= med < 1e11:
                scale = 1.0
            elif 1e11 <= med < 1e14:
                scale = 1e-3
            else:
                problems.append(InputProblem(str(path), f"numbers around {med:.6g} are neither epoch seconds "
                                             "[1e8, 1e11) nor epoch ms [1e11, 1e14): relative times need a unit "
                                             f"(--col {f}={c}:s or :ms, or --time-unit)", None, f"column {c!r} ({f})"))
                continue
        secs = x * scale
        if origin is None:
            epoch = float(np.nanmin(secs)) >= 1e8
            origin = float(np.floor(np.nanmin(secs) / 60.0) * 60.0) if epoch else 0.0   # on a whole minute
            start = pd.Timestamp(origin, unit="s", tz="UTC").tz_convert(mapping.tz) if epoch else None
        out[f] = secs - origin
    return out, start


def read_request_log(path, mapping: Mapping | None = None, name: str | None = None) -> RequestLog:
    """One request log as a ``RequestLog`` (see the module docstring)."""
    path = Path(path)
    mapping = mapping or Mapping()
    raw = read_table(path)
    header = [c for c in raw.columns if c != "__line"]
    if is_node_pg(header) and not mapping.columns:
        mapping = mapping.with_columns({f: (c, None) for f, c in NODE_PG.items()})
    fields = resolve(mapping, header, str(path))
    problems: list[InputProblem] = []
    times, start = parse_times(path, raw, fields, mapping, problems)
    frame = pd.DataFrame(times)
    for f in DURATIONS:
        if f in fields:
            x = _duration(path, raw, f, *fields[f], mapping, problems)
            if x is not None:
                frame[f] = x.to_numpy()
    _others(path, raw, fields, frame, problems)
    if problems:
        raise InputError(problems)
    used = {c for c, _ in fields.values()}
    meta = _stats(path)
    log = RequestLog(frame.sort_values("t", kind="stable").reset_index(drop=True),
                     name or path.name.split(".")[0], meta.get("process", {}), meta.get("config", {}))
    log.start = None if start is None else start.to_pydatetime()
    if log.start is None and meta.get("start"):          # relative times from t = 0 of a capsim run
        log.start = datetime.fromisoformat(meta["start"])
    log.source = str(path)
    log.columns = {f: c for f, (c, _) in fields.items()}
    log.ignored = [c for c in header if c not in used]
    return log


def _others(path, raw, fields, frame, problems) -> None:
    if "route" in fields:
        frame["route"] = raw[fields["route"][0]].astype(str).str.strip().replace("", "(none)").to_numpy()
    else:
        frame["route"] = "all"
    status = None
    if "status" in fields:
        c = fields["status"][0]
        status = numbers(path, raw, c, "status", "an HTTP status code", problems)
        frame["status"] = status.to_numpy()
    if "outcome" in fields:
        frame["outcome"] = raw[fields["outcome"][0]].astype(str).str.strip().to_numpy()
    elif status is not None:
        frame["outcome"] = [outcome_of_status(s) for s in status]
    else:
        frame["outcome"] = "ok"
    if "client" in fields:
        frame["client"] = raw[fields["client"][0]].astype(str).str.strip().replace("", None).to_numpy()
    for f in ("instance", "process"):
        if f in fields:
            frame[f] = raw[fields[f][0]].astype(str).str.strip().to_numpy()
    if "phase" in fields:
        frame["measured"] = (raw[fields["phase"][0]].astype(str).str.strip() != "warmup").to_numpy()
    else:
        frame["measured"] = True
    if "db" in fields:
        c = fields["db"][0]
        db = numbers(path, raw, c, "db", "0 or 1", problems)
        bad = ~db.isin([0, 1]) & db.notna()
        if bad.any():
            problems.append(bad_values(path, raw, bad, c, "db", "0 or 1"))
        frame["db"] = db.fillna(0).astype(int).to_numpy()
    elif "db_query" in frame or "db_acquire" in frame:
        frame["db"] = (frame.get("db_query", pd.Series(np.nan)).notna()
                       | frame.get("db_acquire", pd.Series(np.nan)).notna()).astype(int)
    if "db" in frame:
        for f in ("db_acquire", "db_query"):
            if f in frame:
                frame.loc[frame["db"] == 0, f] = np.nan
    frame["line"] = raw["__line"].to_numpy()


def _stats(path: Path) -> dict:
    """The process totals beside the log, if any (capsim's ``.stats.json`` or node-pg's ``.json``)."""
    base = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem = base.rsplit(".", 1)[0]
    for p in (path.with_name(stem + ".stats.json"), path.with_name(stem + ".json")):
        if p.is_file() and p != path:
            try:
                meta = json.loads(p.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError.one(p, f"expected JSON process totals beside the log: {exc}") from None
            if meta.get("source") == "capsim":
                return {"process": {k: meta[k] for k in ("window", "requests", "elu_active", "cpu", "main_thread_cpu",
                                                         "helper_threads_cpu", "processes") if k in meta},
                        "config": meta.get("config", {}), "start": meta.get("start")}
            if "stats" in meta:
                end = meta["stats"].get("end", {})
                process = process_totals(meta["stats"])
                process["rate"] = meta.get("rate")
                return {"process": process, "config": dict(end.get("config", {}))}
    return {}


def read_node_pg_run(csv_path, json_path=None, name: str | None = None) -> RequestLog:
    """A run of ``node-pg-measurements`` (its ``runs/NAME.csv.gz`` and, if given, ``NAME.json``)."""
    csv_path = Path(csv_path)
    log = read_request_log(csv_path, Mapping({f: (c, None) for f, c in NODE_PG.items()}), name)
    log.frame["route"] = "work"
    if json_path is None:
        log.process, log.config = {}, {}
    elif Path(json_path) != csv_path.with_name(log.name + ".json"):
        meta = json.loads(Path(json_path).read_text())
        log.process = process_totals(meta.get("stats", {}))
        log.config = dict(meta.get("stats", {}).get("end", {}).get("config", {}))
        log.process["rate"] = meta.get("rate")
    return log
