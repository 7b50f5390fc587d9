"""Instances and processes: the FCFS event-loop queue, busy-time accounting, CPU as the
platform measures it, processes and speed, and what an autoscaler sees around a crash."""
import heapq
import random
from collections import deque

import numpy as np
import pytest

from capsim.engine.kernel import Kernel
from capsim.engine.model import Model
from capsim.models.event_loop import EventLoopConfig
from capsim.models.fleet import Fleet
from capsim.models.instance import Instance, InstancesConfig, loop_capacity
from capsim.models.pricing import DEFAULT_PLANS, Plan
from capsim.models.process import Process
from capsim.models.request import OK, Request
from capsim.results.result import summarize
from capsim.scenario.config import Scenario


class _Inst:
    """Records finishes for a bare process."""

    def __init__(self, kernel):
        self.kernel, self.done = kernel, []

    def finish(self, req, outcome):
        self.done.append((self.kernel.now, req, outcome))


def _process(threads=1, **loop):
    k = Kernel()
    inst = _Inst(k)
    return k, inst, Process(k, inst, 0, EventLoopConfig(**loop), threads, 1.0, 0.0)


def _req(t, pre, post=0.0, name=None):
    return Request(t, 0, pre, post, None, name, None)


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


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_event_loop_queue_is_fcfs(threads, seed):
    """The process's queue against a brute-force FCFS c-server queue, exactly (same float sums)."""
    rng = random.Random(seed)
    n, t, arrivals = 400, 0.0, []
    for _ in range(n):
        t += rng.expovariate(threads * 1.0 / 0.9)            # load 0.9: long queues form
        arrivals.append(round(t, 2) if rng.random() < 0.3 else t)   # some ties on a grid
    arrivals.sort()
    durations = [rng.expovariate(1.0) for _ in range(n)]
    k, inst, proc = _process(threads)
    for i, (a, d) in enumerate(zip(arrivals, durations)):
        k.at(a, proc.accept, _req(a, d, 0.0, i))
    k.run(1e9)
    got = {r.client: t for t, r, o in inst.done if o == OK}
    assert [got[i] for i in range(n)] == _brute_fcfs(arrivals, durations, threads)


def test_busy_time_counts_work_done_by_now_and_a_crash_loses_the_rest():
    k, inst, proc = _process()
    k.at(0.5, proc.accept, _req(0.5, 1.0))                 # [0.5, 1.5]
    k.at(1.2, proc.accept, _req(1.2, 0.6))                 # [1.5, 2.1]
    k.run(1.0)
    assert proc.busy_total(1.0) == pytest.approx(0.5)
    k.run(2.0)
    assert proc.busy_total(2.0) == pytest.approx(1.5)
    k.remove(lambda h, a: True)                           # a crash at 2.0: its events are taken out
    proc.reset(2.0)
    assert proc.busy_total(2.0) == pytest.approx(1.5) and proc.busy_total(5.0) == pytest.approx(1.5)
    assert (proc.running, len(proc.queue), proc.ends) == (0, 0, [])


def _fleet(**config):
    class _LB:
        ready = []
    k = Kernel()
    done = []

    class _Pool:
        in_use = waiting = total = max = 0

        def resize(self, n):
            pass

        def held_seconds(self, now):
            return 0.0

    def make_pool(proc):
        proc.pool = _Pool()
        proc.pools = [proc.pool]
    fleet = Fleet(k, InstancesConfig(**config), DEFAULT_PLANS, _LB(), make_pool,
                  lambda req, out: done.append((k.now, req, out)), np.random.default_rng(0))
    return k, fleet, done


def test_fleet_sample_cpu_util_and_loop_queue_deterministic():
    """Standard, one loop: a (pre 0.4, post 0.2) runs [0, 0.6] in one task; b (at 0.5) [0.6, 0.9].
    [0, 0.5]: busy 0.5 -> 1.0; [0.5, 1.0]: 0.1 + 0.3 -> 0.8; [1.0, 2.0]: 0. At 0.5 b is queued."""
    k, fleet, done = _fleet()
    inst = fleet.start(ready_after=0.0)
    k.at(0.0, inst.accept, _req(0.0, 0.4, 0.2, "a"))
    k.at(0.5, inst.accept, _req(0.5, 0.3, 0.0, "b"))
    rows = []
    for a, b in [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0)]:
        k.at(b, lambda ab: rows.append(fleet.sample(*ab)), (a, b))
    k.run(2.0)
    assert [r["cpu_util"] for r in rows] == pytest.approx([1.0, 0.8, 0.0])
    assert [r["elu"] for r in rows] == pytest.approx([1.0, 0.8, 0.0])
    assert [r["loop_queue"] for r in rows] == [1, 0, 0]
    assert [(t, r.client) for t, r, _ in done] == [(pytest.approx(0.6), "a"), (pytest.approx(0.9), "b")]


def test_fleet_sample_two_threads_on_two_vcpus_half_busy():
    k, fleet, _ = _fleet(plan="pro", threads=2)
    inst = fleet.start(ready_after=0.0)
    k.at(0.0, inst.accept, _req(0.0, 3.0, 0.0))          # one of two threads busy [0, 3]
    rows = []
    for a, b in [(0.0, 1.0), (1.0, 2.0), (2.0, 4.0)]:
        k.at(b, lambda ab: rows.append(fleet.sample(*ab)), (a, b))
    k.run(4.0)
    assert [r["cpu_util"] for r in rows] == pytest.approx([0.5, 0.5, 0.25])


def _scenario(plan="pro", count=2, horizon=30.0, interval=2.5, **inst):
    return Scenario.model_validate({
        "horizon": horizon, "warmup": 0, "metrics": {"interval": interval},
        "instances": {"count": count, "plan": plan, **inst},
        "workload": {"sessions": None,
                     "open_loop": [{"phases": [{"duration": horizon - 5, "arrivalRate": 400}]}],
                     "endpoints": {"api": {"cpu_pre": {"dist": "exponential", "mean": 0.003},
                                           "cpu_post": 0.001, "queries": 1, "query_time": 0.004}}}})


def test_cpu_in_the_time_series_adds_up_to_the_loops_work():
    """Every request finishes before the horizon: the time series' CPU-seconds equal the
    handlers' slices plus the loop's own work (request, response, query, wake-ups, connections)."""
    loop = {"request_cpu": 0.0002, "response_cpu": 0.0003, "query_cpu": 0.0001, "wakeup_cpu": 0.00005,
            "connect_cpu": 0.001}
    model = Model(_scenario(processes=2, event_loop=loop), seed=2)
    reqs = []
    model.watch(on_arrive=reqs.append)
    model.run()
    s = summarize(model)
    assert s["requests"]["in_flight_end"] == 0 and s["requests"]["completed"] == len(reqs) > 5000
    procs = [p for i in model.fleet.instances for p in i.procs]
    opened = sum(p.pool.total for p in procs)                 # connections opened (none closed in 30 s)
    expect = (sum(r.cpu_pre + r.cpu_post for r in reqs) + len(reqs) * (0.0002 + 0.0003 + 0.0001)
              + sum(p.wakeups for p in procs) * 0.00005 + opened * 0.001)
    assert sum(p.handler for p in procs) == pytest.approx(sum(r.cpu_pre + r.cpu_post for r in reqs), rel=1e-9)
    cap = 2 * 2                                               # two Pro instances x 2 vCPUs
    total = sum(r["cpu_util"] * cap * (r["t_end"] - r["t_start"]) for r in model.metrics.rows)
    assert total == pytest.approx(expect, rel=1e-9)
    assert 0 < sum(p.wakeups for p in procs) < 2 * len(reqs)   # arrivals and replies that found the loop idle


@pytest.mark.parametrize("plan, processes, threads, speed, capacity", [
    ("standard", 1, 1, 1.0, 1.0), ("pro", 1, 1, 1.0, 1.0), ("pro", 2, 1, 1.0, 2.0), ("pro", 4, 1, 0.5, 2.0),
    ("tiny", 1, 1, 0.5, 0.5), ("tiny", 1, 2, 0.25, 0.5)])
def test_speed_and_capacity_from_vcpus(plan, processes, threads, speed, capacity):
    plans = {**DEFAULT_PLANS, "tiny": Plan(vcpus=0.5, memory_gb=0.5, usd_per_month=1)}
    cfg = InstancesConfig(plan=plan, processes=processes, threads=threads)
    inst = Instance(Kernel(), 0, plan, plans[plan].vcpus, cfg, None)
    assert inst.speed == speed and len(inst.procs) == processes
    assert loop_capacity(cfg, plans[plan]) == capacity
    assert inst.max_cpu() == pytest.approx(min(1.0, processes * threads * speed / plans[plan].vcpus))


def test_workers_is_an_error_that_says_what_replaced_it():
    with pytest.raises(ValueError, match="processes"):
        InstancesConfig.model_validate({"workers": 2})


def test_the_policy_sees_the_real_cpu_after_a_crash():
    """~30% CPU and one crash (restarted after 60 s): every observation the threshold policy
    makes stays near 0.3 (it once saw 237% and scaled out: busy time was counted over the
    whole window but capacity only since the restart)."""
    seen = []

    class Spy:
        interval, window = 15.0, 300.0

        def decide(self, obs):
            seen.extend(v.cpu for v in obs.instances if v.cpu is not None)
            return None

    sc = Scenario.model_validate({
        "horizon": 1800, "warmup": 0,
        "workload": {"sessions": None, "open_loop": [{"rate": 30.0}], "endpoints": {"x": {"cpu_pre": 0.01}}},
        "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None,
        "faults": {"crashes": [{"at": 600, "instance": 0}]}})
    model = Model(sc, seed=3, policy=Spy()).run()
    assert model.faults.crashes == 1 and len(seen) > 100
    assert max(seen) < 0.45 and min(seen) > 0.15, (min(seen), max(seen))
    rows = [r for r in model.metrics.rows if r["cpu_util"] == r["cpu_util"]]
    assert all(0.0 <= r["cpu_util"] <= 1.0 for r in rows)
