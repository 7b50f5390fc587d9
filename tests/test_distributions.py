import math

import numpy as np
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from scipy import stats

from capsim.models.distributions import (Constant, Distribution, Empirical, Exponential, Gamma,
                                  LogNormal, Uniform, draws)

N = 200_000
ADAPTER = TypeAdapter(Distribution)

CASES = {
    "constant": Constant(value="4ms"),
    "exponential": Exponential(mean="4ms"),
    "lognormal": LogNormal(mean="10ms", p99="40ms"),  # sigma ~ 0.70
    "gamma": Gamma(mean="20ms", cv=0.6),
    "uniform": Uniform(low="1ms", high="9ms"),
    "empirical": Empirical(samples=[0.001, 0.002, 0.002, 0.005, 0.030]),
}


@pytest.fixture(params=list(CASES), name="case")
def _case(request):
    dist = CASES[request.param]
    return dist, dist.sample(np.random.default_rng(12345), N)


def test_sample_shape_and_dtype(case):
    dist, x = case
    assert x.shape == (N,) and x.dtype == np.float64
    assert np.all(x >= 0)


def test_sample_mean_within_4_standard_errors(case):
    dist, x = case
    se = math.sqrt(dist.variance / N)
    assert abs(x.mean() - dist.mean) <= 4 * se + 1e-15


def test_sample_variance_within_4_standard_errors(case):
    # Tolerance: 4 standard errors of the sample variance, SE = sqrt((m4 - var^2) / n) with
    # m4 the sample 4th central moment. Here that is 0.8% (uniform) to 4% (lognormal)
    # relative; 5% flat would be under 3 SE for a lognormal with sigma ~ 1.
    dist, x = case
    se = math.sqrt(max(np.mean((x - x.mean()) ** 4) - x.var() ** 2, 0.0) / N)
    assert abs(x.var() - dist.variance) <= 4 * se + 1e-18


def test_lognormal_p99():
    dist = CASES["lognormal"]
    x = dist.sample(np.random.default_rng(7), N)
    assert np.quantile(x, 0.99) == pytest.approx(dist.p99, rel=0.02)
    # and the solved parameters reproduce mean and p99 exactly
    assert math.exp(dist.mu + dist.sigma ** 2 / 2) == pytest.approx(dist.mean, rel=1e-12)
    assert stats.lognorm(dist.sigma, scale=math.exp(dist.mu)).ppf(0.99) == pytest.approx(dist.p99, rel=1e-9)


SCIPY = {
    "exponential": lambda d: stats.expon(scale=d.mean),
    "gamma": lambda d: stats.gamma(d.shape, scale=d.scale),
    "lognormal": lambda d: stats.lognorm(d.sigma, scale=math.exp(d.mu)),
    "uniform": lambda d: stats.uniform(d.low, d.high - d.low),
}


@pytest.mark.parametrize("name", list(SCIPY))
def test_ks_against_scipy(name):
    dist = CASES[name]
    ref = SCIPY[name](dist)
    assert ref.mean() == pytest.approx(dist.mean, rel=1e-12)
    assert ref.var() == pytest.approx(dist.variance, rel=1e-12)
    x = dist.sample(np.random.default_rng(2024), N)
    assert stats.kstest(x, ref.cdf).pvalue > 1e-3


def test_empirical_moments_are_those_of_the_list():
    d = Empirical(samples=["1ms", 0.002, "3ms", "10ms"])
    values = np.array([0.001, 0.002, 0.003, 0.010])
    assert d.mean == pytest.approx(values.mean()) and d.variance == pytest.approx(values.var())
    assert set(d.sample(np.random.default_rng(0), 1000).tolist()) == set(values.tolist())


@pytest.mark.parametrize("bad", [
    {"dist": "lognormal", "mean": "10ms", "p99": "10ms"},     # p99 <= mean
    {"dist": "lognormal", "mean": "10ms", "p99": "5ms"},
    {"dist": "lognormal", "mean": "10ms", "p99": "200ms"},    # p99 > ~14.97 * mean
    {"dist": "uniform", "low": "5ms", "high": "1ms"},
    {"dist": "empirical", "samples": []},
    {"dist": "exponential", "mean": -1},
    {"dist": "exponential", "mean": 0},
    {"dist": "gamma", "mean": 1, "cv": 0},
    {"dist": "weibull", "mean": 1},
    {"mean": 1},                                               # no dist key
    {"dist": "constant", "value": 1, "extra": 2},
    "-4ms",
    "fast",
])
def test_validation_errors(bad):
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(bad)


def test_error_messages_are_helpful():
    with pytest.raises(ValidationError, match=r"maximum p99 is 0\.1496"):
        LogNormal(mean=0.01, p99=0.2)
    with pytest.raises(ValidationError, match="exponential, lognormal"):
        ADAPTER.validate_python({"mean": 1})


def test_error_location_inside_a_model():
    class Station(BaseModel):
        cpu: Distribution

    with pytest.raises(ValidationError) as info:
        Station(cpu={"dist": "exponential", "mean": -1})
    assert info.value.errors()[0]["loc"] == ("cpu", "exponential", "mean")


@pytest.mark.parametrize("raw", ["4ms", 0.004, "0.004s"])
def test_bare_duration_is_constant(raw):
    assert ADAPTER.validate_python(raw) == Constant(value=0.004)


def test_mapping_forms_and_schema():
    assert ADAPTER.validate_python({"dist": "exponential", "mean": "4ms"}) == Exponential(mean=0.004)
    assert ADAPTER.validate_python(CASES["gamma"]) is CASES["gamma"]
    for dist in CASES.values():
        assert ADAPTER.validate_python(dist.model_dump()) == dist
    schema = ADAPTER.json_schema()
    assert set(schema["$defs"]) >= {"Constant", "Exponential", "LogNormal", "Gamma", "Uniform", "Empirical"}


def test_frozen():
    with pytest.raises(ValidationError):
        CASES["exponential"].mean = 1.0


@pytest.mark.parametrize("name", list(CASES))
def test_draws_matches_sample(name):
    dist = CASES[name]
    gen = draws(dist, np.random.default_rng(99), block=64)
    got = [next(gen) for _ in range(200)]
    rng = np.random.default_rng(99)
    want = np.concatenate([dist.sample(rng, 64) for _ in range(4)])[:200].tolist()
    assert got == want
    assert all(type(v) is float for v in got)


@pytest.mark.parametrize("dist", [Constant(value=0.004), Exponential(mean=0.004), LogNormal(mean=0.004, p99=0.02),
                                  Gamma(mean=0.004, cv=0.5), Uniform(low=0.001, high=0.003),
                                  Empirical(samples=[0.001, 0.002, 0.006])])
def test_scaled_multiplies_the_mean_and_the_variance(dist):
    s = dist.scaled(1.25)
    assert s.dist == dist.dist
    assert s.mean == pytest.approx(1.25 * dist.mean, rel=1e-12)
    assert s.variance == pytest.approx(1.25 ** 2 * dist.variance, rel=1e-9)
