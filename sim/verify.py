"""Print capsim's results beside queueing and caching theory.

    python -m capsim.verify                # a few minutes on 2 cores
    python -m capsim.verify --replications 10

Each check runs R independent replications and prints the theory, the replication
mean with its 95% confidence half-width (Student t), and whether theory lies within
max(4 standard errors, a stated floor) — the same criterion the tests use.
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np
from scipy import stats

import capsim
from capsim import scenarios
from capsim.models.cache import CacheClass, CacheConfig, CacheStore, zipf_keys
from capsim.theory import che_hit_rate, erlang_c, mm1_mean_sojourn, mm1_sojourn_quantile, mmc_mean_wait, mmcd, ttl_hit_rate

VALIDATION = scenarios.DIR / "validation"


def _row(label: str, theory: float, values: list[float], floor: float = 0.0) -> str:
    n, mean = len(values), statistics.fmean(values)
    sd = statistics.stdev(values) if n > 1 else 0.0
    half = stats.t.ppf(0.975, n - 1) * sd / n ** 0.5 if n > 1 else float("nan")
    ok = abs(mean - theory) <= max(4 * sd / n ** 0.5, floor)
    return f"{label:<44} {theory:>10.4f} {mean:>10.4f} ± {half:<8.4f} {'ok' if ok else 'OFF'}"


def _runs(name: str, r: int) -> list[dict]:
    sc = capsim.load_scenario(VALIDATION / f"{name}.yaml")
    return [capsim.run(sc, seed=1000 + i).summary for i in range(r)], sc


def queueing(r: int) -> list[str]:
    out = []
    runs, sc = _runs("mm1", r)
    lam, mu = sc.workload.open_loop[0].rate, 1 / sc.workload.endpoints["job"].cpu_pre.mean
    out.append(_row("M/M/1 mean sojourn (s)", mm1_mean_sojourn(lam, mu), [s["latency_ms"]["mean"] / 1000 for s in runs]))
    out.append(_row("M/M/1 p95 sojourn (s)", mm1_sojourn_quantile(lam, mu, 0.95), [s["latency_ms"]["p95"] / 1000 for s in runs]))
    out.append(_row("M/M/1 utilisation", lam / mu, [s["cpu_util_mean"] for s in runs]))
    runs, sc = _runs("mmc", r)
    ep = next(iter(sc.workload.endpoints.values()))
    lam, mu, c = sc.workload.open_loop[0].rate, 1 / ep.cpu_pre.mean, sc.instances.threads
    out.append(_row(f"M/M/{c} mean wait (s) [Erlang C {erlang_c(c, lam / mu):.3f}]", mmc_mean_wait(lam, mu, c),
                    [s["latency_ms"]["mean"] / 1000 - 1 / mu for s in runs]))
    runs, sc = _runs("pool_mmc_timeout", r)
    ep = next(iter(sc.workload.endpoints.values()))
    lam, mu, c = sc.workload.open_loop[0].rate, 1 / ep.query_time.mean, sc.database.pool.max
    th = mmcd(lam, mu, c, sc.database.pool.acquire_timeout)
    out.append(_row(f"pool M/M/{c}+D P(pool_timeout)", th["p_abandon"],
                    [s["requests"]["pool_timeout"] / s["requests"]["completed"] for s in runs]))
    return out


def caches(r: int) -> list[str]:
    out = []
    for s_, c in ((0.8, 500), (1.1, 100)):
        vals = [_drive(5000, s_, 1e9, c, 1.0, 50_000, 200_000, 10 + i) for i in range(r)]
        out.append(_row(f"LRU Zipf s={s_} N=5000 C={c} hit rate (Che)", che_hit_rate(5000, s_, c), vals, floor=0.005))
    vals = [_drive(200, 1.0, 2.0, 10_000, 50.0, 10_000, 100_000, 20 + i) for i in range(r)]
    out.append(_row("TTL 2 s, Zipf s=1 N=200, 50/s hit rate", ttl_hit_rate(200, 1.0, 50.0, 2.0), vals))
    return out


def _drive(n, s, ttl, max_keys, rate, warmup, measure, seed) -> float:
    store = CacheStore(CacheConfig(max_keys=max_keys, classes={"c": CacheClass(ttl=ttl, keys=n, zipf=s)},
                                   invalidations=[]))
    rng = np.random.default_rng(seed)
    keys, gaps, t = zipf_keys(n, s, rng), iter(rng.exponential(1 / rate, warmup + measure).tolist()), 0.0
    for i in range(warmup + measure):
        if i == warmup:
            store.hits[0] = store.misses[0] = 0
        t += next(gaps)
        k = next(keys)
        if not store.get(0, k, t):
            store.put(0, k, t)
    return store.hits[0] / measure


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m capsim.verify", description=__doc__.split("\n")[0])
    ap.add_argument("--replications", type=int, default=5)
    r = ap.parse_args(argv).replications
    print(f"{'check':<44} {'theory':>10} {'capsim':>10}   95% CI       (R = {r})")
    rows = queueing(r) + caches(r)
    print("\n".join(rows))
    return 0 if all(row.endswith("ok") for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
