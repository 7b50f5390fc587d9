"""Load balancer policies, readiness, and 503s when nothing is ready."""
import math

import numpy as np
import pytest

import capsim
from capsim.models.load_balancer import LoadBalancer, LoadBalancerConfig
from capsim.models.request import OUTCOMES
from capsim.engine.model import Model
from capsim.scenario.config import Scenario


class _Inst:
    def __init__(self, name, in_flight=0):
        self.name, self.in_flight = name, in_flight

    def __repr__(self):
        return f"{self.name}({self.in_flight})"


def _lb(policy, n=3, seed=0, in_flight=None):
    lb = LoadBalancer(LoadBalancerConfig(policy=policy), np.random.default_rng(seed))
    lb.ready.extend(_Inst(chr(97 + i), (in_flight or [0] * n)[i]) for i in range(n))
    return lb


def _names(lb, k):
    return "".join(lb.pick().name for _ in range(k))


def test_default_policy_is_round_robin():
    assert LoadBalancerConfig().policy == "round_robin"


def test_round_robin_cycles_exactly():
    lb = _lb("round_robin", 3)
    assert _names(lb, 9) == "abcabcabc"


def test_round_robin_follows_ready_changes():
    lb = _lb("round_robin", 3)
    assert _names(lb, 2) == "ab"
    lb.ready.append(_Inst("d"))              # joins: takes its turn in the cycle
    assert _names(lb, 6) == "cdabcd"
    b = lb.ready[1]
    lb.ready.remove(b)                       # leaves: never picked again
    got = _names(lb, 9)
    assert "b" not in got
    assert sorted(got) == sorted("acd" * 3)  # the others keep sharing equally
    lb.ready[:] = lb.ready[:1]
    assert _names(lb, 3) == "aaa"


def test_least_connections_picks_the_least_loaded():
    lb = _lb("least_connections", 4, in_flight=[3, 1, 2, 5])
    for _ in range(8):
        assert lb.pick().name == "b"
    lb.ready[3].in_flight = 0
    assert lb.pick().name == "d"


def test_least_connections_ties_rotate():
    lb = _lb("least_connections", 3)
    assert _names(lb, 6) == "abcabc"
    # a tie between b and c (a is busier): both share, a gets nothing
    lb = _lb("least_connections", 3, in_flight=[1, 0, 0])
    got = _names(lb, 30)
    assert "a" not in got and got.count("b") > 0 and got.count("c") > 0


def test_least_connections_with_live_counts_balances():
    """Each pick adds one in flight: with nothing finishing, counts stay within 1 of each other."""
    lb = _lb("least_connections", 4, in_flight=[2, 0, 1, 0])
    for _ in range(41):
        lb.pick().in_flight += 1
    counts = [i.in_flight for i in lb.ready]
    assert sum(counts) == 44 and max(counts) - min(counts) <= 1


def test_random_is_uniform_and_reproducible():
    n, k = 30000, 3
    a = _names(_lb("random", k, seed=42), n)
    b = _names(_lb("random", k, seed=42), n)
    c = _names(_lb("random", k, seed=43), n)
    assert a == b and a != c
    p = 1 / k
    for name in "abc":
        assert abs(a.count(name) - n * p) < 4 * math.sqrt(n * p * (1 - p)), name
    # no period-3 structure (unlike round robin): each (previous, next) pair ~ 1/9
    pairs = sum(1 for x, y in zip(a, a[1:]) if x == "a" and y == "b")
    q = 1 / 9
    assert abs(pairs - (n - 1) * q) < 4 * math.sqrt((n - 1) * q * (1 - q)) * 1.5


def _scenario(policy, count=3, rate=300, horizon=60):
    return Scenario.model_validate({
        "horizon": horizon, "warmup": 0, "metrics": {"interval": horizon},
        "instances": {"count": count},
        "load_balancer": {"policy": policy},
        "workload": {"sessions": None, "open_loop": [{"rate": rate}],
                     "endpoints": {"api": {"cpu_pre": 0.0005, "queries": 0}}}})


def _count_accepts(model):
    """Wrap every instance's accept as the fleet starts it."""
    counts = {}
    fleet = model.fleet
    orig_start = type(fleet).start

    def start(*a, **kw):
        inst = orig_start(fleet, *a, **kw)
        counts[inst.iid] = 0
        orig_accept = inst.accept

        def accept(req, inst=inst, orig_accept=orig_accept):
            counts[inst.iid] += 1
            orig_accept(req)
        inst.accept = accept
        return inst

    fleet.start = start
    return counts


def test_round_robin_in_a_run_splits_exactly():
    model = Model(_scenario("round_robin"), seed=1)
    counts = _count_accepts(model)
    model.run()
    total = capsim.summarize(model)["requests"]["total"]
    c = [counts[i] for i in range(3)]
    assert sum(c) == total and max(c) - min(c) <= 1


@pytest.mark.parametrize("policy", ["round_robin", "least_connections", "random"])
def test_instance_not_ready_gets_no_traffic(policy):
    model = Model(_scenario(policy, count=2), seed=2)
    counts = _count_accepts(model)
    late = model.fleet.start(ready_after=1e6)     # started, never healthy within the run
    model.run()
    assert counts[late.iid] == 0 and late.in_flight == 0
    assert late not in model.lb.ready
    s = capsim.summarize(model)
    assert s["requests"]["unavailable"] == 0
    assert sum(counts.values()) == s["requests"]["total"] > 10000
    others = [counts[i] for i in counts if i != late.iid]
    n = sum(others)
    assert all(abs(x - n / 2) < 4 * math.sqrt(n / 4) for x in others)


def test_instance_becomes_ready_later_then_gets_traffic():
    model = Model(_scenario("round_robin", count=1, horizon=60), seed=3)
    counts = _count_accepts(model)
    late = model.fleet.start(ready_after=30.0)
    model.run()
    assert late.ready_at == 30.0
    other = next(i for i in counts if i != late.iid)
    assert 0 < counts[late.iid] < counts[other]   # half the time at half the traffic: 1/4
    n = sum(counts.values())
    assert abs(counts[late.iid] - n / 4) < 4 * math.sqrt(n * (1 / 4) * (3 / 4)) + 1


def test_no_ready_instance_gives_unavailable_direct():
    sc = _scenario("round_robin")
    model = Model(sc, seed=1)        # not run: no instance started, nothing ready
    assert model.lb.ready == []
    for i in range(5):
        model.route(model.sources[0].factory.make(0.0, 0, None, None))
    m = model.metrics
    assert m.count[OUTCOMES.index("unavailable")] == 5 and sum(m.count) == 5
    assert m.arrivals == 5 and m.in_system == 0


def test_no_ready_instance_gives_unavailable_in_a_run():
    model = Model(_scenario("least_connections", count=2, rate=50), seed=4)
    fleet = model.fleet
    orig = type(fleet).start
    fleet.start = lambda *a, **kw: orig(fleet, ready_after=1e6)
    model.run()
    s = capsim.summarize(model)
    assert s["requests"]["total"] == s["requests"]["unavailable"] == s["requests"]["completed"] > 0
    assert s["requests"]["ok"] == 0
    assert s["server_error_rate"] == 1.0 and s["rejected_rate"] == 0.0   # a 503 is a server error
    assert s["latency_ms"]["p99"] <= 0.01 * 1.01        # 503 at once: latency 0
