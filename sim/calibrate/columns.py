"""Which column of a request log holds which field, and in which unit.

Fields (``FIELDS``; ``RequestLog`` documents their meaning):

- times, on one clock: ``t`` (required: when the client sent it), ``send``, ``srv_in``, ``srv_out``;
- durations: ``latency``, ``server``, ``cpu_pre``, ``cpu_post``, ``db_acquire``, ``db_query``;
- others: ``route``, ``status``, ``outcome``, ``client`` (a session or user id), ``db`` (0/1),
  ``phase`` (``warmup`` rows are read but not measured), ``instance``, ``process``.

A mapping gives ``FIELD=COLUMN`` or ``FIELD=COLUMN:UNIT`` (``--col latency=rt:ms``, or a
YAML/JSON mapping file: ``{columns: {latency: "rt:ms"}, durations: ms, time_unit: s, tz: UTC}``).
A field not mapped is looked for under its own name, then (times and durations) with a unit
suffix (``latency_ms``, ``latency_s``, ``latency_us``), among the columns no field took: so
capsim's own logs need no mapping.

Units: a duration's unit is the mapping's, else its column's suffix (``_ms``, ``_us``,
``_s``, ``_sec``, ``_seconds``), else ``durations``; with none of these it is an error (a log
in seconds read as milliseconds is off by 1000). Times: ISO 8601 text (naive times are in
``tz``, default UTC), or numbers: in the mapping's or suffix's unit or ``time_unit``; else by
magnitude, as epoch seconds when the values lie in [1e8, 1e11) (1973-5138) and epoch
milliseconds in [1e11, 1e14); smaller numbers are relative times and need a unit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from capsim.calibrate.errors import InputError

__all__ = ["FIELDS", "METRIC_FIELDS", "TIMES", "DURATIONS", "UNITS", "Mapping", "parse_col", "read_mapping", "NODE_PG"]

TIMES = ("t", "send", "srv_in", "srv_out")
DURATIONS = ("latency", "server", "cpu_pre", "cpu_post", "db_acquire", "db_query")
OTHERS = ("route", "status", "outcome", "client", "db", "phase", "instance", "process")
FIELDS = TIMES + DURATIONS + OTHERS
METRIC_FIELDS = ("requests", "cpu", "memory", "instances")     # a metrics CSV's (``capsim.calibrate.metrics``)
UNITS = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "ms": 1e-3, "us": 1e-6}
SUFFIXES = ("_ms", "_us", "_seconds", "_sec", "_s")

# the per-request logs of node-pg-measurements (gen.js + server.js)
NODE_PG = {"t": "sched_ms", "send": "send_ms", "latency": "latency_ms", "status": "status", "outcome": "outcome",
           "phase": "phase", "cpu_pre": "cpu1_ms", "cpu_post": "cpu2_ms", "db": "db", "db_acquire": "db_acquire_ms",
           "db_query": "db_query_ms", "server": "server_ms", "srv_in": "srv_in_ms", "srv_out": "srv_out_ms"}


@dataclass(frozen=True)
class Mapping:
    """``columns``: field -> (column, unit or None); the defaults for units and time zone."""
    columns: dict = field(default_factory=dict)
    durations: str | None = None
    time_unit: str | None = None
    tz: str = "UTC"

    def with_columns(self, extra: dict) -> "Mapping":
        return Mapping({**self.columns, **extra}, self.durations, self.time_unit, self.tz)


def _unit(text: str | None, what: str, source: str) -> str | None:
    if text is None or text in UNITS:
        return text
    raise InputError.one(source, f"{what}: expected a unit among {sorted(UNITS)}, got {text!r}")


def parse_col(spec: str, source: str = "--col") -> tuple[str, tuple[str, str | None]]:
    """``FIELD=COLUMN[:UNIT]`` -> (field, (column, unit))."""
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not rest or not name:
        raise InputError.one(source, f"expected FIELD=COLUMN or FIELD=COLUMN:UNIT, got {spec!r}")
    if name not in FIELDS + METRIC_FIELDS:
        raise InputError.one(source, f"unknown field {name!r} in {spec!r}; expected one of "
                                     f"{', '.join(FIELDS + METRIC_FIELDS)}")
    column, _, unit = rest.rpartition(":") if ":" in rest and rest.rsplit(":", 1)[1] in UNITS else (rest, "", "")
    return name, (column, _unit(unit or None, f"{name}'s unit", source))


def read_mapping(path, cols: list[str] | None = None, durations: str | None = None, time_unit: str | None = None,
                 tz: str | None = None) -> Mapping:
    """A mapping file (or none: ``path`` None) with ``--col`` specs and unit flags on top."""
    columns, file_durations, file_time, file_tz = {}, None, None, None
    if path is not None:
        from capsim.scenario.yaml_io import read_plain
        name = str(path)
        try:
            data = read_plain(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError.one(name, "no such file") from None
        except Exception as exc:       # YAML syntax: the parser's message says where
            raise InputError.one(name, f"expected a YAML or JSON mapping: {exc}") from None
        if not isinstance(data, dict) or set(data) - {"columns", "durations", "time_unit", "tz"}:
            raise InputError.one(name, "expected a mapping with columns (FIELD: COLUMN[:UNIT]) and optionally "
                                       f"durations, time_unit, tz; got {data!r:.80}")
        for k, v in (data.get("columns") or {}).items():
            f, spec = parse_col(f"{k}={v}", f"{name}: columns")
            columns[f] = spec
        file_durations = _unit(data.get("durations"), "durations", name)
        file_time = _unit(data.get("time_unit"), "time_unit", name)
        file_tz = data.get("tz")
    for spec in cols or []:
        f, c = parse_col(spec)
        columns[f] = c
    return Mapping(columns, _unit(durations, "--durations", "--durations") or file_durations,
                   _unit(time_unit, "--time-unit", "--time-unit") or file_time, tz or file_tz or "UTC")


def suffix_unit(column: str) -> str | None:
    for s in SUFFIXES:
        if column.endswith(s):
            return s[1:]
    return None


def resolve(mapping: Mapping, header: list[str], source: str) -> dict:
    """field -> (column, unit or None) for the fields this file has; errors name the missing columns."""
    out, missing = {}, []
    for f, (col, unit) in mapping.columns.items():
        if f not in FIELDS:
            continue
        if col not in header:
            missing.append(f"{f}={col}")
        out[f] = (col, unit)
    if missing:
        raise InputError.one(source, f"no column for {', '.join(missing)}; the file's columns are {', '.join(header)}")
    taken = {c for c, _ in out.values()}
    for f in FIELDS:
        if f in out:
            continue
        names = [f] + ([f + s for s in SUFFIXES] if f in TIMES + DURATIONS else [])
        for col in names:
            if col in header and col not in taken:
                out[f] = (col, None)
                taken.add(col)
                break
    if "t" not in out:
        raise InputError.one(source, "no send-time column: map one with --col t=COLUMN (a timestamp); "
                                     f"the file's columns are {', '.join(header)}")
    return out
