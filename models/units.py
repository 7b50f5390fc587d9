"""Human units at the YAML edge, seconds inside.

``Duration`` accepts ``90s``, ``15m``, ``2h``, ``1d``, ``250ms``, ``50us`` or a plain
number of seconds. ``Rate`` accepts ``50/s``, ``3000/m``, ``10/h`` or a plain number
per second. Both validate to ``float`` in SI units (seconds, events per second).
"""
from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

__all__ = ["Duration", "PositiveDuration", "Rate", "parse_duration", "parse_rate",
           "DURATION_UNITS", "human_duration"]

DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0,
                  "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION = re.compile(rf"^\s*({_NUM})\s*(us|ms|s|min|m|h|d|w)?\s*$")
_RATE = re.compile(rf"^\s*({_NUM})\s*(?:/\s*(us|ms|s|min|m|h|d|w))?\s*$")
_UNUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_COMPOUND = re.compile(rf"({_UNUM})\s*(us|ms|s|min|m|h|d|w)")


def _number(value: object, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got {value!r}")
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x):
        raise ValueError(f"expected a finite value for {what}, got {value!r}")
    return x


def parse_duration(value: object) -> float:
    """Seconds from ``'90s'``, ``'1h30m'``, ``'2d'``, ``'250ms'`` or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value, "a duration")
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return _number(m.group(1), "a duration") * DURATION_UNITS[m.group(2) or "s"]
        body = value.strip()
        sign = -1.0 if body[:1] == "-" else 1.0
        body = body[1:] if body[:1] in "+-" else body
        parts = _COMPOUND.findall(body)
        if parts and _COMPOUND.sub("", body).strip() == "":
            return sign * sum(float(n) * DURATION_UNITS[u] for n, u in parts)
    raise ValueError(
        f"expected a duration such as 90s, 15m, 2h, 1d, 250ms or a number of seconds, got {value!r}")


def parse_rate(value: object) -> float:
    """Events per second from ``'50/s'``, ``'3000/m'``, ``'10/h'`` or a number per second."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value, "a rate")
    if isinstance(value, str):
        m = _RATE.match(value)
        if m:
            return _number(m.group(1), "a rate") / DURATION_UNITS[m.group(2) or "s"]
    raise ValueError(f"expected a rate such as 50/s, 3000/m, 10/h or a number per second, got {value!r}")


_DUR_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*(us|ms|s|min|m|h|d|w)"}],
               "description": "duration: 90s, 15m, 2h, 1d, 250ms or seconds"}
_RATE_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*(/\s*(us|ms|s|min|m|h|d|w))?\s*$"}],
                "description": "rate: 50/s, 3000/m, 10/h or events per second"}


def _non_negative(x: float) -> float:
    if x < 0:
        raise ValueError(f"expected a duration >= 0, got {x:g} s")
    return x


def _positive(x: float) -> float:
    if x <= 0:
        raise ValueError(f"expected a duration > 0, got {x:g} s")
    return x


def _rate_non_negative(x: float) -> float:
    if x < 0:
        raise ValueError(f"expected a rate >= 0, got {x:g}/s")
    return x


Duration = Annotated[float, BeforeValidator(lambda v: _non_negative(parse_duration(v))),
                     WithJsonSchema(_DUR_SCHEMA)]
PositiveDuration = Annotated[float, BeforeValidator(lambda v: _positive(parse_duration(v))),
                             WithJsonSchema(_DUR_SCHEMA)]
Rate = Annotated[float, BeforeValidator(lambda v: _rate_non_negative(parse_rate(v))),
                 WithJsonSchema(_RATE_SCHEMA)]


def human_duration(seconds: float) -> str:
    """``86400`` -> ``1d``, ``0.004`` -> ``4ms``, ``5400`` -> ``1.5h``."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        n = seconds / size
        if abs(n) >= 1 and round(n, 3) == round(n, 9):
            return f"{round(n, 3):g}{unit}"
    return f"{seconds:g}s"
