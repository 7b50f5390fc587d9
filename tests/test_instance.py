"""Instances: FCFS workers (Kiefer-Wolfowitz), busy-time accounting, cpu_util, worker count."""
import heapq
import random
from collections import deque

import pytest

import capsim
import numpy as np

from capsim.models.fleet import Fleet
from capsim.models.instance import Instance, InstancesConfig
from capsim.models.pricing import DEFAULT_PLANS, Plan
from capsim.models.request import OK, Request
from capsim.engine.kernel import Kernel
from capsim.engine.model import Model
from capsim.scenario.config import Scenario


class _FakePool:
    in_use = waiting = total = 0

    def resize(self, n):
        pass

    def acquire(self, req):
        raise AssertionError("no request here needs the database")


def _instance(workers=1):
    k = Kernel()
    done = []
    inst = Instance(k, 0, "standard", workers, _FakePool(), lambda req, out: done.append((k.now, req, out)))
    return k, inst, done


def _req(t, pre, post=0.0, name=None):
    return Request(t, 0, pre, post, None, name, None)


def test_one_worker_fcfs_exact_two_slices():
    """a: pre [0, 1], its post slice rejoins the queue at 1 behind b's pre [1, 2] -> [2, 2.5];
    b: post joins at 2 -> [2.5, 3]; c arrives to an idle worker at 5 -> done at 6.5."""
    k, inst, done = _instance(1)
    for t, name in [(0.0, "a"), (0.2, "b"), (5.0, "c")]:
        k.at(t, inst.accept, _req(t, 1.0, 0.5, name))
    k.run(10)
    assert [(t, r.client, o) for t, r, o in done] == [(2.5, "a", OK), (3.0, "b", OK), (6.5, "c", OK)]
    assert inst.in_flight == 0


def test_one_worker_back_to_back_queue():
    k, inst, done = _instance(1)
    for i in range(5):
        k.at(0.0, inst.accept, _req(0.0, 0.1, 0.0, i))
    k.run(1)
    # FIFO; a post slice of zero work needs no worker, so each leaves when its slice ends
    assert [r.client for _, r, _ in done] == [0, 1, 2, 3, 4]
    assert [t for t, _, _ in done] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert inst.in_flight == 0


def _brute_fcfs(arrivals, durations, c):
    """Event-driven FCFS c-server queue with an explicit waiting line: end times per job."""
    order = sorted(range(len(arrivals)), key=lambda i: (arrivals[i], i))
    free, line, deps, end = c, deque(), [], [None] * len(arrivals)

    def depart_until(t):
        nonlocal free
        while deps and deps[0][0] <= t:
            td, _ = heapq.heappop(deps)
            if line:
                j = line.popleft()
                end[j] = td + durations[j]
                heapq.heappush(deps, (end[j], j))
            else:
                free += 1

    for i in order:
        depart_until(arrivals[i])
        if free:
            free -= 1
            end[i] = arrivals[i] + durations[i]
            heapq.heappush(deps, (end[i], i))
        else:
            line.append(i)
    depart_until(float("inf"))
    return end


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("seed", [1, 2])
def test_kiefer_wolfowitz_equals_brute_force_fcfs(workers, seed):
    rng = random.Random(seed)
    n = 400
    t, arrivals = 0.0, []
    for _ in range(n):
        t += rng.expovariate(workers * 1.0 / 0.9)            # load 0.9: long queues form
        arrivals.append(round(t, 2) if rng.random() < 0.3 else t)   # some ties on a grid
    arrivals.sort()
    durations = [rng.expovariate(1.0) for _ in range(n)]
    k, inst, done = _instance(workers)
    reqs = []
    for i, (a, d) in enumerate(zip(arrivals, durations)):
        r = _req(a, d, 0.0, i)
        r.stage = 1                      # a single slice: its end finishes the request
        inst.in_flight += 1
        r.inst = inst
        reqs.append(r)
        k.at(a, lambda r: inst.cpu(r, r.cpu_pre), r)
    k.run(1e9)
    got = {r.client: t for t, r, _ in done}
    expect = _brute_fcfs(arrivals, durations, workers)
    assert len(got) == n
    assert [got[i] for i in range(n)] == expect       # exact: the same float sums


def test_take_busy_one_worker_carries_work_over():
    k, inst, _ = _instance(1)
    r1, r2 = _req(0.5, 1.0), _req(1.2, 0.6)
    r1.stage = r2.stage = 1
    inst.in_flight = 2
    k.at(0.5, lambda r: inst.cpu(r, 1.0), r1)            # [0.5, 1.5]
    k.at(1.2, lambda r: inst.cpu(r, 0.6), r2)            # [1.5, 2.1]
    k.run(1.0)
    assert inst.take_busy(1.0) == pytest.approx(0.5)
    assert inst.queued_cpu(1.0) == pytest.approx(0.5)
    k.run(2.0)
    assert inst.take_busy(2.0) == pytest.approx(1.0)     # 0.5 of the first + 0.5 of the second
    k.run(3.0)
    assert inst.take_busy(3.0) == pytest.approx(0.1)
    assert inst.take_busy(4.0) == pytest.approx(0.0)


def test_take_busy_two_workers_with_queue():
    k, inst, _ = _instance(2)
    for i in range(3):                                   # A [0,1], B [0,1], A [1,2]
        r = _req(0.0, 1.0)
        r.stage = 1
        inst.in_flight += 1
        k.at(0.0, lambda r: inst.cpu(r, 1.0), r)
    k.run(0.5)
    assert inst.queued_cpu(0.5) == pytest.approx(2.0)
    parts = [inst.take_busy(0.5)]
    k.run(1.5)
    parts.append(inst.take_busy(1.5))
    k.run(3.0)
    parts.append(inst.take_busy(3.0))
    assert parts == pytest.approx([1.0, 1.5, 0.5])
    assert sum(parts) == pytest.approx(3.0)


def _fleet(workers=1):
    class _LB:
        ready = []
    k = Kernel()
    done = []
    fleet = Fleet(k, InstancesConfig(workers=workers), DEFAULT_PLANS, _LB(), lambda inst: _FakePool(),
                  lambda req, out: done.append((k.now, req, out)), np.random.default_rng(0))
    return k, fleet, done


def test_fleet_sample_cpu_util_deterministic():
    """One worker: a pre [0, 0.4], post [0.4, 0.6]; b (at 0.5) pre [0.6, 0.9], post [0.9, 0.9].
    [0, 0.5]: busy 0.5 -> 1.0; [0.5, 1.0]: 0.1 + 0.3 -> 0.8; [1.0, 2.0]: 0."""
    k, fleet, done = _fleet(1)
    inst = fleet.start(ready_after=0.0)
    k.at(0.0, inst.accept, _req(0.0, 0.4, 0.2, "a"))
    k.at(0.5, inst.accept, _req(0.5, 0.3, 0.0, "b"))
    rows = []
    for a, b in [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0)]:
        k.at(b, lambda ab: rows.append(fleet.sample(*ab)), (a, b))
    k.run(2.0)
    assert [r["cpu_util"] for r in rows] == pytest.approx([1.0, 0.8, 0.0])
    # at 0.5, b (scheduled first) has already committed [0.6, 0.9]: backlog 0.1 + 0.3
    assert [r["cpu_backlog_s"] for r in rows] == pytest.approx([0.4, 0.0, 0.0])
    assert [(t, r.client) for t, r, _ in done] == [(pytest.approx(0.6), "a"), (pytest.approx(0.9), "b")]


def test_fleet_sample_two_workers_half_busy():
    k, fleet, _ = _fleet(2)
    inst = fleet.start(ready_after=0.0)
    k.at(0.0, inst.accept, _req(0.0, 3.0, 0.0))          # one of two workers busy [0, 3]
    rows = []
    for a, b in [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]:
        k.at(b, lambda ab: rows.append(fleet.sample(*ab)), (a, b))
    k.run(4.0)
    assert [r["cpu_util"] for r in rows] == pytest.approx([0.5, 0.5, 0.25])


def _scenario(plan="pro", workers=None, count=2, horizon=30.0, interval=2.5, **extra):
    inst = {"count": count, "plan": plan}
    if workers is not None:
        inst["workers"] = workers
    return Scenario.model_validate({
        "horizon": horizon, "warmup": 0, "metrics": {"interval": interval}, "instances": inst,
        "workload": {"sessions": None,
                     "open_loop": [{"phases": [{"duration": horizon - 5, "arrivalRate": 400}]}],
                     "endpoints": {"api": {"cpu_pre": {"dist": "exponential", "mean": 0.003},
                                           "cpu_post": 0.001, "queries": 1, "query_time": 0.004}}},
        **extra})


def test_cpu_util_in_timeseries_equals_recorded_cpu_work():
    """Record every CPU slice's [start, end] as it is committed; each interval's cpu_util
    must equal the slices' overlap with it over workers x instances x interval."""
    sc = _scenario()
    model = Model(sc, seed=2)
    fleet = model.fleet
    slices = []
    orig_start = type(fleet).start

    def start(*a, **kw):
        inst = orig_start(fleet, *a, **kw)
        orig_cpu = inst.cpu

        def cpu(req, seconds, inst=inst, orig_cpu=orig_cpu):
            s = max(inst.free_at[0], model.kernel.now)
            slices.append((s, s + seconds))
            orig_cpu(req, seconds)
        inst.cpu = cpu
        return inst

    fleet.start = start
    model.run()
    rows = model.metrics.rows
    summary = capsim.summarize(model)
    assert summary["requests"]["in_flight_end"] == 0
    n = summary["requests"]["completed"]
    assert len(slices) == 2 * n > 5000
    assert fleet.workers == 2 and len(fleet.running) == 2
    cap = 2 * 2
    total = 0.0
    for r in rows:
        a, b = r["t_start"], r["t_end"]
        busy = sum(max(0.0, min(e, b) - max(s, a)) for s, e in slices)
        assert r["cpu_util"] == pytest.approx(busy / (cap * (b - a)), rel=1e-9, abs=1e-12)
        total += r["cpu_util"] * cap * (b - a)
    assert total == pytest.approx(sum(e - s for s, e in slices), rel=1e-9)


@pytest.mark.parametrize("plan, workers, expect", [("standard", None, 1), ("pro", None, 2), ("standard", 3, 3),
                                                   ("pro", 1, 1)])
def test_default_workers_from_plan(plan, workers, expect):
    model = Model(_scenario(plan=plan, workers=workers, count=1, horizon=10.0), seed=1).run()
    assert model.fleet.workers == expect
    assert all(len(i.free_at) == expect for i in model.fleet.instances)


def test_fractional_vcpus_give_at_least_one_worker():
    plans = {"tiny": Plan(vcpus=0.5, memory_gb=0.5, usd_per_month=1), "big": Plan(vcpus=4, memory_gb=8, usd_per_month=50)}
    for plan, expect in [("tiny", 1), ("big", 4)]:
        f = Fleet(Kernel(), InstancesConfig(plan=plan), plans, None, None, None, np.random.default_rng(0))
        assert f.workers == expect
