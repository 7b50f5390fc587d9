import math

import numpy as np
import pytest

from capsim.engine.histogram import LogHistogram, RunningMoments, quantile_from_counts, row_quantiles

QS = (0.5, 0.9, 0.95, 0.99, 0.999)
SLACK = 1e-12  # floating point at bucket boundaries


def _samples(kind, n=100_000, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        return rng.lognormal(math.log(0.01), 1.0, n)
    return rng.exponential(0.004, n)


@pytest.mark.parametrize("rel_err", [0.005, 0.02])
@pytest.mark.parametrize("kind", ["lognormal", "exponential"])
def test_quantiles_within_rel_err(kind, rel_err):
    x = _samples(kind)
    h = LogHistogram(rel_err=rel_err)
    h.add_many(x)
    assert h.count == len(x)
    for q, got in zip(QS, h.quantiles(QS)):
        exact = np.quantile(x, q, method="inverted_cdf")
        assert abs(got - exact) <= (rel_err + SLACK) * exact, (q, got, exact)
        assert h.quantile(q) == got


def test_quantile_extremes_and_small_counts():
    h = LogHistogram()
    for v in (0.003, 0.001, 0.002):
        h.add(v)
    for q, exact in [(0.0, 0.001), (1 / 3, 0.001), (0.34, 0.002), (2 / 3, 0.002), (1.0, 0.003)]:
        assert h.quantile(q) == pytest.approx(exact, rel=h.rel_err), q
    with pytest.raises(ValueError):
        h.quantile(1.5)


def test_empty_is_nan():
    h = LogHistogram()
    assert math.isnan(h.quantile(0.5))
    assert all(math.isnan(v) for v in h.quantiles([0.5, 0.99]))


def test_zeros_go_to_bucket_zero():
    h = LogHistogram(min_value=1e-6)
    h.add(0.0)
    h.add_many([0.0, 5e-7, -1.0])
    assert h.counts[0] == 4 and h.count == 4
    assert h.index(0.0) == 0 and h.index(1e-6) == 1
    assert h.quantile(0.5) == 0.0
    h.add(1.0)
    assert h.quantile(0.8) == 0.0 and h.quantile(1.0) == pytest.approx(1.0, rel=h.rel_err)


def test_values_above_max_clamp_to_last_bucket():
    h = LogHistogram(max_value=10.0)
    h.add(1e9)
    h.add(math.inf)
    h.add_many([50.0, 10.0, math.inf])
    assert h.counts[-1] == 5 and h.count == 5
    assert h.quantile(0.5) == pytest.approx(10.0, rel=h.rel_err)


def test_nan_is_rejected():
    h = LogHistogram()
    with pytest.raises(ValueError):
        h.add(math.nan)
    with pytest.raises(ValueError):
        h.add_many([1.0, math.nan])


def test_add_and_add_many_agree():
    x = np.concatenate([_samples("lognormal", 20_000), [0.0, 1e-7, 1e-6, 1e5, 1e7]])
    one, many = LogHistogram(), LogHistogram()
    for v in x.tolist():
        one.add(v)
    many.add_many(x)
    assert one.counts == many.counts


def test_merge_equals_adding_everything():
    a_x, b_x = _samples("lognormal", seed=2), _samples("exponential", seed=3)
    a, b, both = LogHistogram(), LogHistogram(), LogHistogram()
    a.add_many(a_x)
    b.add_many(b_x)
    both.add_many(np.concatenate([a_x, b_x]))
    counts_ref = a.counts
    a.merge(b)
    assert a.counts == both.counts
    assert a.counts is counts_ref  # in place: inlined references stay valid
    with pytest.raises(ValueError):
        a.merge(LogHistogram(rel_err=0.01))


def test_quantile_from_counts_on_merged_arrays():
    hs = [LogHistogram() for _ in range(3)]
    xs = [_samples("lognormal", 10_000, seed=s) for s in range(3)]
    for h, x in zip(hs, xs):
        h.add_many(x)
    total = np.sum([h.counts for h in hs], axis=0)
    got = quantile_from_counts(total, QS, rel_err=0.005, min_value=1e-6)
    exact = np.quantile(np.concatenate(xs), QS, method="inverted_cdf")
    assert np.all(np.abs(got - exact) <= (0.005 + SLACK) * exact)


def test_row_quantiles_equal_quantile_from_counts_row_by_row():
    hs = [LogHistogram() for _ in range(4)]
    for i, h in enumerate(hs[:3]):
        h.add_many(_samples("lognormal", 2_000, seed=i))
    hs[1].add_many([0.0, 0.0])                       # values below min_value: bucket 0
    rows = np.array([h.counts for h in hs])           # the last row is empty
    for q in (0.0, 0.5, 0.95, 1.0):
        got = row_quantiles(rows, q, rel_err=0.005, min_value=1e-6)
        want = [quantile_from_counts(r, q, rel_err=0.005, min_value=1e-6) for r in rows]
        np.testing.assert_array_equal(got, want)
    assert np.isnan(got[3])
    with pytest.raises(ValueError):
        row_quantiles(rows, 1.5, rel_err=0.005, min_value=1e-6)


def test_memory_bound_and_copy_reset():
    h = LogHistogram()
    n0 = h.nbuckets
    assert len(h.counts) == n0 < 3000
    h.add_many(_samples("lognormal", 200_000))
    h.add_many(np.geomspace(1e-9, 1e9, 10_000))
    assert h.nbuckets == n0 and len(h.counts) == n0
    c = h.copy()
    assert c.counts == h.counts and c.counts is not h.counts
    ref = h.counts
    h.reset()
    assert h.count == 0 and h.counts is ref and c.count == 210_000


def test_running_moments():
    x = _samples("lognormal", 50_000)
    m = RunningMoments()
    for v in x.tolist():
        m.add(v)
    assert m.count == len(x)
    assert m.mean == pytest.approx(x.mean(), rel=1e-12)
    assert m.variance == pytest.approx(x.var(), rel=1e-9)
    a, b = RunningMoments(), RunningMoments()
    for v in x[:1000].tolist():
        a.add(v)
    for v in x[1000:].tolist():
        b.add(v)
    a.merge(b).merge(RunningMoments())
    assert a.count == len(x)
    assert a.mean == pytest.approx(x.mean(), rel=1e-12)
    assert a.variance == pytest.approx(x.var(), rel=1e-9)
    empty = RunningMoments()
    assert math.isnan(empty.mean) and math.isnan(empty.variance)
    assert empty.merge(a).mean == a.mean
