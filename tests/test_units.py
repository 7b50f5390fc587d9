"""Units at the YAML edge: durations and rates parse to seconds and events per second."""
import math

import pytest
from pydantic import BaseModel, ValidationError

from capsim.models.units import Duration, PositiveDuration, Rate, parse_duration, parse_rate


class _M(BaseModel):
    d: Duration = 0.0
    p: PositiveDuration = 1.0
    r: Rate = 0.0


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), ("1w", 604800.0),
    ("250ms", 0.25), ("50us", 50e-6), ("5min", 300.0),
    ("1h30m", 5400.0), ("1d2h3m4s", 86400 + 7200 + 180 + 4), ("2m30s", 150.0), ("1h 30m", 5400.0),
    ("1.5h", 5400.0), (".5s", 0.5), ("1e3ms", 1.0), (" 90 s ", 90.0),
    ("90", 90.0), ("0.004", 0.004), (90, 90.0), (0.25, 0.25), (0, 0.0),
])
def test_parse_duration(text, seconds):
    got = parse_duration(text)
    assert isinstance(got, float)
    assert got == pytest.approx(seconds, rel=1e-12, abs=1e-18)


@pytest.mark.parametrize("text, per_second", [
    ("50/s", 50.0), ("3000/m", 50.0), ("10/h", 10 / 3600), ("86400/d", 1.0), ("1/ms", 1000.0),
    ("120/min", 2.0), ("50 / s", 50.0), ("50", 50.0), ("0.5", 0.5), (50, 50.0), (2.5, 2.5), ("0/s", 0.0),
])
def test_parse_rate(text, per_second):
    got = parse_rate(text)
    assert isinstance(got, float)
    assert got == pytest.approx(per_second, rel=1e-12)


@pytest.mark.parametrize("bad", ["", "abc", "10 parsecs", "5x", "1h30", "h", "1.2.3s", "10/s", "s10",
                                 "1h-", None, [1], {"s": 1}, True, False, "nan", "inf", float("nan"),
                                 float("inf")])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["", "abc", "50/x", "50/", "/s", "50 per s", "1h", "10/s/s", None, [1],
                                 True, False, "nan/s", float("nan"), float("inf")])
def test_parse_rate_rejects(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def test_types_in_a_model():
    m = _M(d="1h30m", p="250ms", r="3000/m")
    assert (m.d, m.p, m.r) == (5400.0, 0.25, 50.0)
    assert all(isinstance(v, float) for v in (m.d, m.p, m.r))
    assert _M(d=0).d == 0.0 and _M(r=0).r == 0.0   # zero is a valid duration and rate


@pytest.mark.parametrize("field, value", [
    ("d", "-5s"), ("d", -1), ("d", "-1h30m"), ("p", 0), ("p", "0s"), ("p", "-2m"),
    ("r", "-1/s"), ("r", -3), ("d", True), ("p", True), ("r", True), ("r", False),
    ("d", "garbage"), ("r", "5/parsec"), ("d", None), ("r", None),
])
def test_types_reject(field, value):
    with pytest.raises(ValidationError):
        _M(**{field: value})


def test_error_message_names_examples():
    with pytest.raises(ValueError, match="90s"):
        parse_duration("soon")
    with pytest.raises(ValueError, match="50/s"):
        parse_rate("fast")
    with pytest.raises(ValidationError, match=">= 0"):
        _M(d="-5s")


def test_compound_parts_are_summed_not_overwritten():
    assert parse_duration("1h1h") == 7200.0
    assert math.isclose(parse_duration("1m500ms"), 60.5)


@pytest.mark.parametrize("bad", ["1h-30m", "1h+-30m", "2h-2h"])
def test_compound_rejects_signs_inside(bad):
    """A sign belongs in front of the whole duration (as Go's ParseDuration), not inside it:
    '1h-30m' is a typo, not 30 minutes."""
    with pytest.raises(ValueError):
        parse_duration(bad)


# -- every number of a scenario is finite and bounded, by type (issue 13 item 3) ---------------------
def _config_models():
    """Every pydantic model reachable from Scenario's fields (and the SLO file's)."""
    import types
    import typing

    from capsim.scenario.config import Scenario
    from capsim.scenario.slo import SLOConfig
    seen, todo = [], [Scenario, SLOConfig]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.append(m)
        for f in m.model_fields.values():
            stack = [f.annotation]
            while stack:
                tp = stack.pop()
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    todo.append(tp)
                elif typing.get_origin(tp) in (typing.Annotated, typing.Union, types.UnionType, list, dict, tuple):
                    stack.extend(typing.get_args(tp))
    return seen


def _unbounded_numbers(tp, top_metadata=()) -> list:
    """The bare float/int types inside an annotation that no Annotated[..., BOUNDED] covers."""
    import types
    import typing

    from capsim.models.units import BOUNDED
    if any(m is BOUNDED for m in top_metadata):
        return []
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        args = typing.get_args(tp)
        return [] if any(m is BOUNDED for m in args[1:]) else _unbounded_numbers(args[0])
    if origin in (typing.Union, types.UnionType, list, dict, tuple):
        return [x for a in typing.get_args(tp) for x in _unbounded_numbers(a)]
    return [tp] if tp in (float, int) else []


def test_every_numeric_config_field_is_bounded_by_type():
    bad = []
    for model in _config_models():
        for name, f in model.model_fields.items():
            if _unbounded_numbers(f.annotation, f.metadata):
                bad.append(f"{model.__name__}.{name}: {f.annotation}")
    assert not bad, "use a type of capsim.models.units (Real, Share, Count, Duration, ...):\n" + "\n".join(bad)
    assert len(_config_models()) > 40          # the walk reaches the whole tree


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "nan", ".inf", 1e13, -1e13, True])
def test_real_rejects_non_finite_and_meaningless_values(value):
    from capsim.models.units import NonNegative, Real

    class M(BaseModel):
        x: Real() = 0.0
        y: NonNegative = 0.0
    with pytest.raises(ValidationError):
        M(x=value)
    with pytest.raises(ValidationError):
        M(y=value)


def test_counts_and_durations_have_upper_bounds():
    from capsim.models.units import Count

    class M(BaseModel):
        n: Count = 1
        d: Duration = 0.0
        r: Rate = 0.0
    for bad in ({"n": 0}, {"n": 10 ** 9 + 1}, {"n": True}, {"d": "1e308w"}, {"d": "101y"}, {"d": 4e9},
                {"r": "1e10/s"}, {"d": "1e308h1s"}):
        with pytest.raises(ValidationError):
            M(**bad)
    assert M(n=10 ** 9, d="100w", r="1e9/s").r == 1e9
    with pytest.raises(ValueError, match="finite"):
        parse_duration("1e308w")
