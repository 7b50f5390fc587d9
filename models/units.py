"""Human units at the YAML edge, seconds inside; the number types of every config field.

``Duration`` accepts ``90s``, ``15m``, ``2h``, ``1d``, ``250ms``, ``50us`` or a plain
number of seconds. ``Rate`` accepts ``50/s``, ``3000/m``, ``10/h`` or a plain number
per second. Both validate to ``float`` in SI units (seconds, events per second).

Every number in a scenario is finite and bounded by what it means, by type:
``Real(ge=..., le=...)`` is the one constrained float (NaN and infinity are errors, and
no value may exceed ``MAX_REAL`` in size), with the aliases ``NonNegative``, ``Positive``,
``Share`` (0..1), ``Money`` (>= 0); durations are 0 .. ``MAX_DURATION`` (a century), rates
0 .. ``MAX_RATE``; counts are whole numbers ``Count`` (1 .. ``MAX_COUNT``) and ``Amount``
(0 .. ``MAX_COUNT``). A test checks that every numeric config field uses one of them.
"""
from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

__all__ = ["Duration", "PositiveDuration", "Rate", "parse_duration", "parse_rate",
           "DURATION_UNITS", "human_duration", "Real", "NonNegative", "Positive", "Share", "Money",
           "Count", "Amount", "Seed", "MAX_REAL", "MAX_DURATION", "MAX_RATE", "MAX_COUNT", "BOUNDED"]

DURATION_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0,
                  "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION = re.compile(rf"^\s*({_NUM})\s*(us|ms|s|min|m|h|d|w)?\s*$")
_RATE = re.compile(rf"^\s*({_NUM})\s*(?:/\s*(us|ms|s|min|m|h|d|w))?\s*$")
_UNUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_COMPOUND = re.compile(rf"({_UNUM})\s*(us|ms|s|min|m|h|d|w)")


MAX_REAL = 1e12            # larger means nothing in a scenario (and keeps every product finite)
MAX_DURATION = 100 * 365.25 * 86400.0   # a century, in seconds
MAX_RATE = 1e9             # events per second
MAX_COUNT = 10 ** 9        # instances, connections, keys, queries, ...


class _Bounded:
    """Marks a number type of this module in ``Annotated`` metadata (the config-field test looks for it)."""

    def __repr__(self) -> str:
        return "BOUNDED"


BOUNDED = _Bounded()


def Real(*, ge: float | None = None, gt: float | None = None, le: float | None = None,  # noqa: N802
         lt: float | None = None):
    """The constrained float of config fields: finite, within the given bounds, and never
    beyond +-``MAX_REAL`` (bounds not given)."""
    if le is None and lt is None:
        le = MAX_REAL
    if ge is None and gt is None:
        ge = -MAX_REAL
    # constraints first, then the validator: pydantic keeps them in the JSON schema
    return Annotated[float, Field(allow_inf_nan=False, ge=ge, gt=gt, le=le, lt=lt), BeforeValidator(_not_bool),
                     BOUNDED]


def _not_bool(value):
    """Before pydantic's own checks: true/false and NaN/infinity are not numbers of a scenario."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {'true' if value else 'false'}")
    try:
        x = float(value) if isinstance(value, (int, float, str)) else 0.0
    except (ValueError, OverflowError):
        return value              # pydantic says what is wrong with it
    if not math.isfinite(x):
        raise ValueError(f"expected a finite number, got {value!r}")
    return value


NonNegative = Real(ge=0)
Positive = Real(gt=0)
Share = Real(ge=0, le=1)     # a probability or a fraction of a whole
Money = Real(ge=0)           # US dollars
Count = Annotated[int, Field(ge=1, le=MAX_COUNT), BeforeValidator(_not_bool), BOUNDED]
Amount = Annotated[int, Field(ge=0, le=MAX_COUNT), BeforeValidator(_not_bool), BOUNDED]
Seed = Annotated[int, Field(ge=0, le=2 ** 63 - 1), BeforeValidator(_not_bool), BOUNDED]


def _number(value: object, what: str, given: object = None) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got {value!r}")
    x = float(value)  # type: ignore[arg-type]
    if not math.isfinite(x):
        shown = value if given is None else given
        raise ValueError(f"expected a finite value for {what}, got {shown!r}"
                         + (" (beyond any duration or rate)" if given is not None else ""))
    return x


def parse_duration(value: object) -> float:
    """Seconds from ``'90s'``, ``'1h30m'``, ``'2d'``, ``'250ms'`` or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value, "a duration")
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return _number(_number(m.group(1), "a duration") * DURATION_UNITS[m.group(2) or "s"], "a duration", value)
        body = value.strip()
        sign = -1.0 if body[:1] == "-" else 1.0
        body = body[1:] if body[:1] in "+-" else body
        parts = _COMPOUND.findall(body)
        if parts and _COMPOUND.sub("", body).strip() == "":
            return _number(sign * sum(float(n) * DURATION_UNITS[u] for n, u in parts), "a duration", value)
    raise ValueError(
        f"expected a duration such as 90s, 15m, 2h, 1d, 250ms or a number of seconds, got {value!r}")


def parse_rate(value: object) -> float:
    """Events per second from ``'50/s'``, ``'3000/m'``, ``'10/h'`` or a number per second."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value, "a rate")
    if isinstance(value, str):
        m = _RATE.match(value)
        if m:
            return _number(_number(m.group(1), "a rate") / DURATION_UNITS[m.group(2) or "s"], "a rate", value)
    raise ValueError(f"expected a rate such as 50/s, 3000/m, 10/h or a number per second, got {value!r}")


_DUR_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*(us|ms|s|min|m|h|d|w)"}],
               "description": "duration: 90s, 15m, 2h, 1d, 250ms or seconds"}
_RATE_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*[0-9.eE+-]+\s*(/\s*(us|ms|s|min|m|h|d|w))?\s*$"}],
                "description": "rate: 50/s, 3000/m, 10/h or events per second"}


def _at_most_a_century(x: float) -> float:
    if x > MAX_DURATION:
        raise ValueError(f"expected a duration of at most 100 years ({MAX_DURATION:g} s), got {x:g} s")
    return x


def _non_negative(x: float) -> float:
    if x < 0:
        raise ValueError(f"expected a duration >= 0, got {x:g} s")
    return _at_most_a_century(x)


def _positive(x: float) -> float:
    if x <= 0:
        raise ValueError(f"expected a duration > 0, got {x:g} s")
    return _at_most_a_century(x)


def _rate_non_negative(x: float) -> float:
    if x < 0:
        raise ValueError(f"expected a rate >= 0, got {x:g}/s")
    if x > MAX_RATE:
        raise ValueError(f"expected a rate of at most {MAX_RATE:g}/s, got {x:g}/s")
    return x


Duration = Annotated[float, BeforeValidator(lambda v: _non_negative(parse_duration(v))),
                     WithJsonSchema(_DUR_SCHEMA), BOUNDED]
PositiveDuration = Annotated[float, BeforeValidator(lambda v: _positive(parse_duration(v))),
                             WithJsonSchema(_DUR_SCHEMA), BOUNDED]
Rate = Annotated[float, BeforeValidator(lambda v: _rate_non_negative(parse_rate(v))),
                 WithJsonSchema(_RATE_SCHEMA), BOUNDED]


def human_duration(seconds: float) -> str:
    """``86400`` -> ``1d``, ``0.004`` -> ``4ms``, ``5400`` -> ``1.5h``."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        n = seconds / size
        if abs(n) >= 1 and round(n, 3) == round(n, 9):
            return f"{round(n, 3):g}{unit}"
    return f"{seconds:g}s"
