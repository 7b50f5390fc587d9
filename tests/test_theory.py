"""The simulator against queueing theory (formulas in sim/theory.py).

Each check runs R independent replications (seeds 1..R) of a scenario from
scenarios/validation/ and compares the replication mean of an estimator with theory:

    |mean - theory| < max(4 s / sqrt(R), floor)

where s is the sample standard deviation across replications (so the tolerance is ~4
standard errors: a correct simulator fails a check with probability ~1% at R = 6,
Student t with 5 degrees of freedom), and ``floor`` is a small absolute allowance for
known estimator bias (0.5% histogram error of quantiles, finite warm-up). Runs are
cached per module, so a scenario's replications are simulated once for all its checks.

Default run: R = 6 replications of 20,000 s (19,000 s measured), ~15 s in total.
``-m slow``: R = 10 replications of 100,000 s, same checks, ~5x tighter.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from capsim.engine.model import Model
from capsim.results.result import summarize
from capsim.scenario.config import Scenario
from capsim.theory import (erlang_c, mm1_mean_in_system, mm1_mean_sojourn, mm1_sojourn_quantile,
                          mmc_mean_wait, mmcd, replication_check, simulate_mmcd)

VALIDATION = Path(__file__).resolve().parent.parent / "scenarios" / "validation"
R_FAST, R_SLOW = 6, 10
SLOW_HORIZON = 100_000.0



# -- scenarios and runs -------------------------------------------------------------------
def raw(name: str) -> dict:
    """The validation scenario ``name`` as a plain dict (ruamel safe load)."""
    return YAML(typ="safe").load((VALIDATION / f"{name}.yaml").read_text())


def scenario(name: str, horizon: float | None = None, **patch) -> Scenario:
    d = copy.deepcopy(raw(name))
    if horizon is not None:
        d["horizon"] = horizon
    for dotted, value in patch.items():           # e.g. database__pool__acquire_timeout=0
        *path, last = dotted.split("__")
        node = d
        for key in path:
            node = node.setdefault(key, {})
        node[last] = value
    return Scenario.model_validate(d)


_RUNS: dict = {}


def reps(name: str, r: int, horizon: float | None = None, patch: tuple = ()) -> tuple:
    """R replications (seeds 1..R): (summary, time-series rows, P(pool wait > 0)) each; cached."""
    key = (name, r, horizon, repr(patch))
    if key not in _RUNS:
        _RUNS[key] = _simulate(scenario(name, horizon, **dict(patch)), r)
    return _RUNS[key]


def _simulate(sc: Scenario, r: int) -> tuple:
    out = []
    for seed in range(1, r + 1):
        m = Model(sc, seed).run()
        h = m.metrics.total_pool_wait
        p_wait = 1.0 - h.counts[0] / h.count if h.count else float("nan")
        out.append((summarize(m), m.metrics.rows, p_wait))
    return tuple(out)


def rates(name: str) -> tuple[float, float, int]:
    """(lambda, mu, c) of a validation scenario, read from the scenario itself."""
    sc = scenario(name)
    lam = sc.workload.open_loop[0].rate
    ep = next(iter(sc.workload.endpoints.values()))
    if ep.queries:
        return lam, 1.0 / ep.query_time.mean, sc.database.pool.max
    return lam, 1.0 / ep.cpu_pre.mean, sc.instances.threads


def check(values, theory, floor, label):
    ok, mean, tol = replication_check(values, theory, floor=floor)
    assert ok, f"{label}: replication mean {mean:.6g} vs theory {theory:.6g} (tolerance {tol:.3g}; values {values})"


def time_avg(rows, key):
    rows = [r for r in rows if not r["warmup"]]
    return sum(r[key] * (r["t_end"] - r["t_start"]) for r in rows) / sum(r["t_end"] - r["t_start"] for r in rows)


FAST = pytest.param(R_FAST, None, id="fast")
SLOW = pytest.param(R_SLOW, SLOW_HORIZON, id="slow", marks=pytest.mark.slow)
SIZES = [FAST, SLOW]


# -- the theory itself --------------------------------------------------------------------
def test_mmcd_formula_matches_brute_force():
    """The level-crossing M/M/c+D formula against a plain-Python FCFS simulation."""
    for lam, mu, c, D in [(11.0, 2.0, 5, 2.0), (3.0, 1.0, 2, 0.5), (4.5, 1.0, 5, 2.0)]:
        th = mmcd(lam, mu, c, D)
        bf = [simulate_mmcd(lam, mu, c, D, n=100_000, seed=seed) for seed in range(5)]
        for key in ("p_abandon", "p_wait", "mean_wait", "mean_sojourn"):
            check([b[key] for b in bf], th[key], 1e-4, f"brute-force M/M/{c}+D {key} at lam={lam}, mu={mu}, D={D}")
    # limits: D -> infinity gives Erlang C; c = 1 gives M/M/1
    big = mmcd(3.4, 1.0, 4, 1e3)
    assert big["p_wait"] == pytest.approx(erlang_c(4, 3.4), rel=1e-9)
    assert big["mean_wait"] == pytest.approx(mmc_mean_wait(3.4, 1.0, 4), rel=1e-9)
    assert mmcd(0.8, 1.0, 1, 1e3)["mean_sojourn"] == pytest.approx(mm1_mean_sojourn(0.8, 1.0), rel=1e-9)
    # and lambda = c mu exactly (the b = 0 branch) is continuous
    assert mmcd(5.0, 1.0, 5, 2.0)["p_abandon"] == pytest.approx(mmcd(5.0 + 1e-7, 1.0, 5, 2.0)["p_abandon"], rel=1e-5)


def test_validation_yaml_headers_and_figures():
    """Each file starts with the schema comment, and its comment's figures match theory."""
    for name in ("mm1", "mmc", "pool_mmc_timeout"):
        text = (VALIDATION / f"{name}.yaml").read_text()
        assert text.startswith("# yaml-language-server: $schema=../capsim.schema.json\n"), name
        assert scenario(name).name == name
    lam, mu, c = rates("mm1")
    assert (lam, mu, c) == (8.0, 10.0, 1)
    assert mm1_mean_sojourn(lam, mu) == 0.5 and round(mm1_sojourn_quantile(lam, mu, 0.95), 4) == 1.4979
    lam, mu, c = rates("mmc")
    assert round(1000 * mmc_mean_wait(lam, mu, c), 1) == 459.5
    lam, mu, c = rates("pool_mmc_timeout")
    th = mmcd(lam, mu, c, scenario("pool_mmc_timeout").database.pool.acquire_timeout)
    assert round(th["p_abandon"], 4) == 0.1007 and round(th["mean_sojourn"], 4) == 1.7945


def test_loader_agrees_with_ruamel_route():
    """If capsim.scenario.loader exists, it reads the validation files to the same Scenario."""
    import capsim.scenario.loader as loader
    for name in ("mm1", "mmc", "pool_mmc_timeout"):
        assert loader.load(VALIDATION / f"{name}.yaml", []) == scenario(name)


# -- M/M/1 --------------------------------------------------------------------------------
@pytest.mark.parametrize("r, horizon", SIZES)
def test_mm1_utilisation_law(r, horizon):
    lam, mu, _ = rates("mm1")
    util = [s["cpu_util_mean"] for s, _, _ in reps("mm1", r, horizon)]
    check(util, lam / mu, 0.003, "M/M/1 cpu_util_mean")


@pytest.mark.parametrize("r, horizon", SIZES)
def test_mm1_mean_latency(r, horizon):
    lam, mu, _ = rates("mm1")
    lat = [s["latency_ms"]["mean"] / 1000 for s, _, _ in reps("mm1", r, horizon)]
    check(lat, mm1_mean_sojourn(lam, mu), 0.005, "M/M/1 mean latency (s)")


@pytest.mark.parametrize("r, horizon", SIZES)
def test_mm1_p95_latency(r, horizon):
    """FCFS M/M/1 sojourn ~ Exponential(mu - lambda): p95 = ln 20/(mu - lambda)."""
    lam, mu, _ = rates("mm1")
    p95 = [s["latency_ms"]["p95"] / 1000 for s, _, _ in reps("mm1", r, horizon)]
    theory = mm1_sojourn_quantile(lam, mu, 0.95)
    check(p95, theory, 0.01 * theory, "M/M/1 p95 latency (s)")   # floor: 0.5% histogram + bias


@pytest.mark.parametrize("r, horizon", SIZES)
def test_mm1_mean_in_system(r, horizon):
    lam, mu, _ = rates("mm1")
    n = [time_avg(rows, "in_system_mean") for _, rows, _ in reps("mm1", r, horizon)]
    check(n, mm1_mean_in_system(lam, mu), 0.04, "M/M/1 time-average number in system")


# -- Little's law (holds whatever the queue discipline, so also with the bug above) ---------
@pytest.mark.parametrize("name", ["mm1", "mmc", "pool_mmc_timeout"])
def test_littles_law(name):
    """Per replication: time-average in_system (time series) = arrival rate x mean latency,
    within 2% (edge effects at the window's ends are ~E[N]/(lambda x 19,000 s), negligible)."""
    for s, rows, _ in reps(name, R_FAST):
        L = time_avg(rows, "in_system_mean")
        lam_hat = s["requests"]["total"] / s["measured_seconds"]
        W = s["latency_ms"]["mean"] / 1000
        assert L == pytest.approx(lam_hat * W, rel=0.02), (name, s["seed"], L, lam_hat, W)


# -- M/M/c (Erlang C) ---------------------------------------------------------------------
@pytest.mark.parametrize("r, horizon", SIZES)
def test_mmc_utilisation_law(r, horizon):
    lam, mu, c = rates("mmc")
    util = [s["cpu_util_mean"] for s, _, _ in reps("mmc", r, horizon)]
    check(util, lam / (c * mu), 0.003, "M/M/c cpu_util_mean")


@pytest.mark.parametrize("r, horizon", SIZES)
def test_mmc_mean_wait(r, horizon):
    """Mean wait = mean latency - E[S] (the mean service time is exact); P(wait) is not
    observable on the CPU queue (no per-request wait in the outputs): it is checked on
    the pool below, where acquire waits are recorded."""
    lam, mu, c = rates("mmc")
    wait = [s["latency_ms"]["mean"] / 1000 - 1 / mu for s, _, _ in reps("mmc", r, horizon)]
    check(wait, mmc_mean_wait(lam, mu, c), 0.005, "M/M/c mean wait (s)")


# The same Erlang C queue on the database pool (no acquire timeout: D = infinity):
# c = 5 connections, E[S] = 500 ms, lambda = 8.5/s, a = 4.25, rho = 0.85.
POOL_MMC = (("workload__open_loop", [{"name": "poisson", "rate": 8.5, "mix": {"query": 1}}]),
            ("database__pool__acquire_timeout", 0))


@pytest.mark.parametrize("r, horizon", SIZES)
def test_pool_as_mmc_erlang_c(r, horizon):
    lam, mu, c = 8.5, 2.0, 5
    runs = reps("pool_mmc_timeout", r, horizon, POOL_MMC)
    assert all(s["requests"]["pool_timeout"] == 0 for s, _, _ in runs)
    check([p for _, _, p in runs], erlang_c(c, lam / mu), 0.005, "pool M/M/c P(wait > 0)")
    wait = [s["latency_ms"]["mean"] / 1000 - 1 / mu for s, _, _ in runs]
    check(wait, mmc_mean_wait(lam, mu, c), 0.005, "pool M/M/c mean wait (s)")


# The database server as an M/M/1 queue (database.concurrency = 1, pool large, CPU 0):
# lambda = 8/s, E[S] = 100 ms. Same theory as mm1.yaml, different code path (FIFO query slots).
DB_MM1 = (("workload__open_loop", [{"name": "poisson", "rate": 8.0, "mix": {"query": 1}}]),
          ("workload__endpoints__query__query_time", {"dist": "exponential", "mean": 0.1}),
          ("database__concurrency", 1), ("database__pool__max", 100),
          ("database__pool__acquire_timeout", 0))


@pytest.mark.parametrize("r, horizon", SIZES)
def test_db_server_as_mm1(r, horizon):
    lam, mu = 8.0, 10.0
    runs = reps("pool_mmc_timeout", r, horizon, DB_MM1)
    check([s["latency_ms"]["mean"] / 1000 for s, _, _ in runs], mm1_mean_sojourn(lam, mu), 0.005,
          "DB server M/M/1 mean latency (s)")
    p95 = mm1_sojourn_quantile(lam, mu, 0.95)
    check([s["latency_ms"]["p95"] / 1000 for s, _, _ in runs], p95, 0.01 * p95, "DB server M/M/1 p95 (s)")
    check([s["db_active_mean"] for s, _, _ in runs], lam / mu, 0.003, "DB server utilisation")


# -- M/M/c+D: the pool with an acquire timeout ----------------------------------------------
def _mmcd_theory():
    lam, mu, c = rates("pool_mmc_timeout")
    return mmcd(lam, mu, c, scenario("pool_mmc_timeout").database.pool.acquire_timeout), mu


@pytest.mark.parametrize("r, horizon", SIZES)
def test_pool_timeout_fraction(r, horizon):
    th, _ = _mmcd_theory()
    runs = reps("pool_mmc_timeout", r, horizon)
    frac = [s["requests"]["pool_timeout"] / s["requests"]["completed"] for s, _, _ in runs]
    check(frac, th["p_abandon"], 0.002, "M/M/c+D P(pool_timeout)")


@pytest.mark.parametrize("r, horizon", SIZES)
def test_pool_mean_latency(r, horizon):
    """Mean latency = mean wait (timeouts wait D) + P(served) E[S]."""
    th, mu = _mmcd_theory()
    runs = reps("pool_mmc_timeout", r, horizon)
    check([s["latency_ms"]["mean"] / 1000 for s, _, _ in runs], th["mean_wait"] + th["p_served"] / mu,
          0.005, "M/M/c+D mean latency (s)")


@pytest.mark.parametrize("r, horizon", SIZES)
def test_pool_wait_probability_and_busy_connections(r, horizon):
    th, _ = _mmcd_theory()
    runs = reps("pool_mmc_timeout", r, horizon)
    check([p for _, _, p in runs], th["p_wait"], 0.003, "M/M/c+D P(wait > 0)")
    check([s["db_active_mean"] for s, _, _ in runs], th["busy_servers"], 0.01, "M/M/c+D busy connections")


@pytest.mark.slow
def test_verify_report_agrees_with_theory(capsys):
    """`python -m capsim.verify` (the report quoted in the README) finds every check within tolerance."""
    from capsim.verify import main
    assert main(["--replications", "3"]) == 0
    assert "OFF" not in capsys.readouterr().out
