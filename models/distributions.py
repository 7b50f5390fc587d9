"""Service-time distributions: each class is both the YAML config and the sampler.

A config value is either a mapping with a ``dist`` key (``{dist: exponential, mean: 4ms}``)
or a bare duration (``4ms``, ``0.004``), shorthand for ``{dist: constant, value: 4ms}``.
All times are seconds. ``mean`` and ``variance`` are exact, not estimated.
"""
from __future__ import annotations

import math
from itertools import chain
from statistics import NormalDist
from typing import Annotated, Iterator, Literal, Union

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from capsim.models.units import Duration, Positive, PositiveDuration, parse_duration

__all__ = ["Constant", "Exponential", "LogNormal", "Gamma", "Uniform", "Empirical",
           "Distribution", "DIST_NAMES", "draws", "uniforms", "blocks"]

_Z99 = NormalDist().inv_cdf(0.99)  # ~2.3263


class _Dist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Constant(_Dist):
    dist: Literal["constant"] = "constant"
    value: Duration

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value, dtype=np.float64)

    def scaled(self, factor: float) -> Constant:
        """The same shape with every value times ``factor`` (mean x factor, variance x factor^2)."""
        return Constant(value=self.value * factor)


class Exponential(_Dist):
    dist: Literal["exponential"] = "exponential"
    mean: PositiveDuration

    @property
    def variance(self) -> float:
        return self.mean ** 2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean, size)

    def scaled(self, factor: float) -> Exponential:
        return Exponential(mean=self.mean * factor)


class LogNormal(_Dist):
    """Log-normal given its mean and 99th percentile (p99 must be in (mean, ~14.97*mean])."""
    dist: Literal["lognormal"] = "lognormal"
    mean: PositiveDuration
    p99: PositiveDuration

    @model_validator(mode="after")
    def _check(self) -> LogNormal:
        if self.p99 <= self.mean:
            raise ValueError(f"lognormal needs p99 > mean, got mean={self.mean:g} s, p99={self.p99:g} s")
        if 2 * math.log(self.p99 / self.mean) > _Z99 ** 2:
            raise ValueError(f"lognormal p99={self.p99:g} s is too large for mean={self.mean:g} s: "
                             f"the maximum p99 is {self.mean * math.exp(_Z99 ** 2 / 2):g} s "
                             f"(exp(z99^2/2) ~ 14.97 times the mean)")
        return self

    @property
    def sigma(self) -> float:
        """Smaller root of sigma^2 - 2*z*sigma + 2*ln(p99/mean) = 0 (z = z_0.99)."""
        return _Z99 - math.sqrt(max(_Z99 ** 2 - 2 * math.log(self.p99 / self.mean), 0.0))

    @property
    def mu(self) -> float:
        return math.log(self.mean) - self.sigma ** 2 / 2

    @property
    def variance(self) -> float:
        return self.mean ** 2 * math.expm1(self.sigma ** 2)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.lognormal(self.mu, self.sigma, size)

    def scaled(self, factor: float) -> LogNormal:
        return LogNormal(mean=self.mean * factor, p99=self.p99 * factor)


class Gamma(_Dist):
    """Gamma given its mean and coefficient of variation (shape = 1/cv^2, scale = mean*cv^2)."""
    dist: Literal["gamma"] = "gamma"
    mean: PositiveDuration
    cv: Positive

    @property
    def shape(self) -> float:
        return 1 / self.cv ** 2

    @property
    def scale(self) -> float:
        return self.mean * self.cv ** 2

    @property
    def variance(self) -> float:
        return (self.mean * self.cv) ** 2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.gamma(self.shape, self.scale, size)

    def scaled(self, factor: float) -> Gamma:
        return Gamma(mean=self.mean * factor, cv=self.cv)


class Uniform(_Dist):
    dist: Literal["uniform"] = "uniform"
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _check(self) -> Uniform:
        if self.low > self.high:
            raise ValueError(f"uniform needs low <= high, got low={self.low:g} s, high={self.high:g} s")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def scaled(self, factor: float) -> Uniform:
        return Uniform(low=self.low * factor, high=self.high * factor)


class Empirical(_Dist):
    """Resamples the given values uniformly with replacement."""
    dist: Literal["empirical"] = "empirical"
    samples: Annotated[list[Duration], Field(min_length=1)]

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    @property
    def variance(self) -> float:
        return float(np.var(self.samples))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        values = np.asarray(self.samples, dtype=np.float64)
        return values[rng.integers(len(values), size=size)]

    def scaled(self, factor: float) -> Empirical:
        return Empirical(samples=[v * factor for v in self.samples])


_CLASSES = (Constant, Exponential, LogNormal, Gamma, Uniform, Empirical)
DIST_NAMES = tuple(cls.model_fields["dist"].default for cls in _CLASSES)


def _shorthand(value: object) -> object:
    """Bare duration -> constant; a mapping without ``dist`` -> a clear error."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            parse_duration(value)
        except ValueError:
            raise ValueError(f"expected a duration (shorthand for a constant) or a mapping "
                             f"with dist: one of {', '.join(DIST_NAMES)}; got {value!r}") from None
        return {"dist": "constant", "value": value}
    if isinstance(value, dict) and "dist" not in value:
        raise ValueError(f"a distribution needs a 'dist' key, one of {', '.join(DIST_NAMES)}; "
                         f"got keys {sorted(map(str, value))}")
    return value


_Tagged = Annotated[Union[Constant, Exponential, LogNormal, Gamma, Uniform, Empirical],
                    Field(discriminator="dist")]
Distribution = Annotated[_Tagged, BeforeValidator(_shorthand, json_schema_input_type=Union[Duration, _Tagged])]


def blocks(make) -> Iterator:
    """Endless values from ``make()``, which returns the next block as a list: a C-level
    iterator (``next`` costs no Python frame), the same values as looping over the blocks."""
    return chain.from_iterable(iter(make, None))


def draws(dist: Distribution, rng: np.random.Generator, block: int = 4096) -> Iterator[float]:
    """Endless Python floats from ``dist``, sampled ``block`` at a time (cheap ``next``)."""
    return blocks(lambda: dist.sample(rng, block).tolist())


def uniforms(rng: np.random.Generator, block: int = 4096) -> Iterator[float]:
    """Uniform(0, 1) Python floats forever, drawn in blocks."""
    return blocks(lambda: rng.random(block).tolist())
