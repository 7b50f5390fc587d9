"""Plain SimPy reference model: the baseline that ``python -m capsim.bench`` compares against.

It models Poisson arrivals (``rate`` req/s, from t=0 until ``horizon``; none at or
after it) spread round robin over ``instances`` instances, each one Node.js process:
its event loop is a ``simpy.PriorityResource(capacity=1)`` (FIFO; a continuation that
runs right after the current callback, as a promise's does, asks at priority 0), and
its ``pg.Pool`` a ``simpy.Resource(capacity=pool_max)``. Each request is ONE SimPy process:

1. on the loop: CPU slice 1 ~ Exp(mean ``cpu_mean``); without a database step (1 -
   ``p_miss``) slice 2 ~ Exp(mean ``cpu_mean``) follows at once (no await between);
2. otherwise it asks the pool for a connection, waiting at most ``acquire_timeout`` s
   (not granted: the timeout's callback answers "pool_timeout" on the loop); a connection
   handed over by a release is used only once the releasing callback is done (priority
   0); the query ~ Exp(mean ``query_mean``) runs on an unbounded database;
3. its result is a callback on the loop: the connection is released, then slice 2; "ok".

After the horizon the environment runs until empty, so every arrival completes.
It is a deliberately straightforward, idiomatic implementation: no tricks either way.
"""
import argparse
import json
import random
import time
from collections import Counter

import numpy as np
import simpy


def run_reference(seed: int = 1, rate: float = 500.0, horizon: float = 600.0,
                  instances: int = 6, pool_max: int = 20, acquire_timeout: float = 2.0,
                  p_miss: float = 0.2, cpu_mean: float = 0.004,
                  query_mean: float = 0.015) -> dict:
    env = simpy.Environment()
    workers = [simpy.PriorityResource(env, capacity=1) for _ in range(instances)]
    pools = [simpy.Resource(env, capacity=pool_max) for _ in range(instances)]
    # One stream per purpose; string seeds are hashed with SHA-512 by random.Random,
    # so they are deterministic regardless of PYTHONHASHSEED.
    rng_arrivals, rng_cpu1, rng_miss, rng_query, rng_cpu2 = (
        random.Random(f"{seed}-{purpose}")
        for purpose in ("arrivals", "cpu1", "miss", "query", "cpu2"))
    latencies = []
    outcomes = Counter()

    def request(worker, pool):
        arrival = env.now
        with worker.request(priority=1) as loop:
            yield loop
            yield env.timeout(rng_cpu1.expovariate(1.0 / cpu_mean))
            if rng_miss.random() >= p_miss:            # no database step: slice 2 in the same callback
                yield env.timeout(rng_cpu2.expovariate(1.0 / cpu_mean))
                outcomes["ok"] += 1
                latencies.append(env.now - arrival)
                return
        asked = env.now
        conn = pool.request()
        result = yield conn | env.timeout(acquire_timeout)
        if conn not in result:
            conn.cancel()
            with worker.request(priority=1) as loop:   # the timeout's callback answers 503
                yield loop
            outcomes["pool_timeout"] += 1
            latencies.append(env.now - arrival)
            return
        if env.now > asked:                            # handed over: runs after the releasing callback
            with worker.request(priority=0) as loop:
                yield loop
        yield env.timeout(rng_query.expovariate(1.0 / query_mean))
        with worker.request(priority=1) as loop:       # the result is a callback on the loop
            yield loop
            pool.release(conn)
            yield env.timeout(rng_cpu2.expovariate(1.0 / cpu_mean))
        outcomes["ok"] += 1
        latencies.append(env.now - arrival)

    def arrivals():
        i = 0
        while True:
            gap = rng_arrivals.expovariate(rate)
            if env.now + gap >= horizon:
                return
            yield env.timeout(gap)
            k = i % instances
            env.process(request(workers[k], pools[k]))
            i += 1

    env.process(arrivals())
    start = time.perf_counter()
    env.run()  # until the event queue is empty: every arrival completes
    wall = time.perf_counter() - start

    lat = np.asarray(latencies)
    return {
        "requests": len(latencies),
        "outcomes": dict(outcomes),
        "wall_seconds": wall,
        "throughput": len(latencies) / wall,
        "latency_mean_ms": float(lat.mean() * 1000) if len(lat) else float("nan"),
        "latency_p95_ms": float(np.percentile(lat, 95) * 1000) if len(lat) else float("nan"),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--horizon", type=float, default=600.0)
    parser.add_argument("--instances", type=int, default=6)
    parser.add_argument("--pool-max", type=int, default=20)
    parser.add_argument("--acquire-timeout", type=float, default=2.0)
    parser.add_argument("--p-miss", type=float, default=0.2)
    parser.add_argument("--cpu-mean", type=float, default=0.004)
    parser.add_argument("--query-mean", type=float, default=0.015)
    print(json.dumps(run_reference(**vars(parser.parse_args())), indent=2))
