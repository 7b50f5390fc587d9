"""Kubernetes HPA: the cases taken from the Kubernetes tests, then exact traces of the policy."""
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from capsim.models.autoscaling.base import InstanceView, Observation, Policy
from capsim.models.autoscaling.hpa import (
    DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HPA, HPAConfig, PodSample, Rules, average_value_replicas,
    normalize_legacy, rate_limit, resource_replicas, stabilize)

# cases taken from the Kubernetes test suite (kubernetes/kubernetes pkg/controller/podautoscaler),
# copied from the project's shared reference material
VECTORS = Path(__file__).resolve().parent / "data" / "k8s-hpa-vectors.json"
CASES = json.loads(VECTORS.read_text())


def _pods(case) -> list[PodSample]:
    """Pods in milli-cores; a short usage list means missing samples, extra samples are dropped."""
    requests = case["pod_cpu_request_cores"]
    usage = case["pod_cpu_usage_milli"]
    n = len(requests)
    ready = case.get("pod_ready") or [True] * n
    phase = case.get("pod_phase") or ["Running"] * n
    deleting = case.get("pod_deleting") or [False] * n
    return [PodSample(round(requests[i] * 1000), usage[i] if i < len(usage) else None,
                      ready[i], phase[i], deleting[i]) for i in range(n)]


def _rules(spec, default: Rules) -> Rules:
    if spec == "default":
        return default
    return Rules(spec["stab"], spec["select"], tuple(tuple(p) for p in spec["policies"]))


def _events(events):
    return [(e["age_s"], e["change"]) for e in events]


@pytest.mark.parametrize("case", CASES, ids=[c["test"] for c in CASES])
def test_kubernetes_vector(case):
    kind, current, expected = case["kind"], case["current_replicas"], case["expected_replicas"]
    if kind == "resource_utilization":
        got = resource_replicas(current, _pods(case), case["target_utilization_pct"])
    elif kind == "pods_metric_average_value":
        values, n = case["pod_metric_milli"], len(case["pod_metric_milli"])
        ready = case.get("pod_ready") or [True] * n
        phase = case.get("pod_phase") or ["Running"] * n
        pods = [PodSample(1.0, v, r, ph) for v, r, ph in zip(values, ready, phase)]
        got = average_value_replicas(current, pods, case["target_average_value_milli"])
    elif kind == "behavior_rate_limit":
        got = rate_limit(current, case["prenormalized_desired"], _events(case["scale_up_events"]),
                         _events(case["scale_down_events"]),
                         _rules(case["scale_up_rules"], DEFAULT_SCALE_UP),
                         _rules(case["scale_down_rules"], DEFAULT_SCALE_DOWN), case["min"], case["max"])
    elif kind == "behavior_stabilization":
        recs = [(r["age_s"], r["replicas"]) for r in case["past_recommendations"]]
        up = Rules(case["scale_up_window_s"], "Max", DEFAULT_SCALE_UP.policies)
        down = Rules(case["scale_down_window_s"], "Max", DEFAULT_SCALE_DOWN.policies)
        got = stabilize(current, case["prenormalized_desired"], recs, up, down)
    elif kind == "end_to_end_no_behavior":
        raw = resource_replicas(current, _pods(case), case["target_utilization_pct"])
        assert raw == case["raw"]
        got = normalize_legacy(current, raw, 0.0, [], case["min"], case["max"])
    else:
        pytest.fail(f"unknown kind {kind}")
    assert got == expected


def test_all_vectors_are_here():
    assert len(CASES) == 13


# ---------------------------------------------------------------- pure functions, edge cases
def test_missing_pods_on_scale_down_count_at_full_request():
    # 2 ready at 10 %, 1 missing: r = 0.2; recount with the missing one at 100 %: 40 % -> 0.8
    pods = [PodSample(1.0, 0.1), PodSample(1.0, 0.1), PodSample(1.0, None)]
    assert resource_replicas(3, pods, 50) == 3          # ceil(0.8 * 3) = 3: kept
    pods = [PodSample(1.0, 0.1)] * 4 + [PodSample(1.0, None)]
    assert resource_replicas(5, pods, 50) == 3          # (0.4 + 1) / 5 = 28 % -> ceil(0.56 * 5)


def test_missing_pods_on_scale_up_count_as_zero_and_never_flip_direction():
    pods = [PodSample(1.0, 0.9), PodSample(1.0, None)]
    assert resource_replicas(2, pods, 50) == 2          # 90 % -> recount 45 %: other side of 1, keep
    pods = [PodSample(1.0, 1.0), PodSample(1.0, 1.0), PodSample(1.0, None)]
    assert resource_replicas(3, pods, 50) == 4          # 200 % -> 66 % -> ceil(1.32 * 3)


def test_ignored_and_pending_pods():
    pods = [PodSample(1.0, 0.8), PodSample(1.0, 5.0, phase="Failed"), PodSample(1.0, 5.0, deleting=True),
            PodSample(1.0, None, phase="Pending")]
    # only the first counts: 80 % vs 40 % -> r = 2; the pending one counts as 0: 40 % -> keep
    assert resource_replicas(4, pods, 40) == 4
    with pytest.raises(ValueError):
        resource_replicas(1, [PodSample(1.0, None, ready=False)], 50)


def values(*vs, ready=None, phase=None):
    return [PodSample(1.0, v, True if ready is None else ready[i], "Running" if phase is None else phase[i])
            for i, v in enumerate(vs)]


def test_average_value_missing_counts_as_target_on_scale_down():
    # r = 0.5 (ceil(0.5 x 2) = 1 without it); recount (5 + 5 + 10) / 3 = 6.666 -> ceil(2.0) = 2
    assert average_value_replicas(3, values(5000, 5000, None), 10000) == 2
    assert average_value_replicas(4, values(2000, 2000, 2000, None), 10000) == 2   # 4000 -> 1.6 -> 2
    # Pending pods count as 0 on a scale-up: 20000 -> r 2; recount 10000 -> keep
    assert average_value_replicas(2, values(20000, 50000, phase=["Running", "Pending"]), 10000) == 2


def test_readiness_counts_for_cpu_only():
    # a Running pod that is not Ready: unready for CPU (the vector TestReplicaCalcScaleUpUnreadyLessScale) ...
    pods = [PodSample(1.0, 0.3, False), PodSample(1.0, 0.5), PodSample(1.0, 0.7)]
    assert resource_replicas(3, pods, 30) == 4
    # ... but counted for memory, as for a Pods metric: (30 + 50 + 70) / 3 = 50 % -> ceil(5/3 x 3) = 5
    assert resource_replicas(3, pods, 30, resource="memory") == 5
    assert average_value_replicas(2, values(20000, 50000, ready=[True, False]), 10000) == 7   # 35000 -> 3.5 x 2
    # Pending is unready for every metric
    pending = [PodSample(1.0, 0.3, False, "Pending"), PodSample(1.0, 0.5), PodSample(1.0, 0.7)]
    assert resource_replicas(3, pending, 30, resource="memory") == 4


def test_legacy_keeps_the_highest_recent_proposal():
    history = [(0.0, 6), (100.0, 5)]
    assert normalize_legacy(6, 2, 299.0, history, 1, 10) == 6
    assert normalize_legacy(6, 2, 300.0, history, 1, 10) == 5      # age 300 is out
    assert normalize_legacy(6, 2, 400.0, history, 1, 10) == 2
    assert normalize_legacy(1, 50, 0.0, [], 1, 100) == 4           # max(2 x 1, 4)
    assert normalize_legacy(10, 50, 0.0, [], 1, 100) == 20         # 2 x 10


def test_rate_limit_select_policies():
    up = Rules(0, "Min", (("Pods", 4, 60), ("Percent", 100, 60)))
    assert rate_limit(10, 50, [], [], up, DEFAULT_SCALE_DOWN, 1, 100) == 14
    down = Rules(0, "Min", (("Pods", 5, 60), ("Percent", 10, 60)))
    assert rate_limit(100, 1, [], [], DEFAULT_SCALE_UP, down, 1, 100) == 95
    down = Rules(0, "Max", (("Pods", 5, 60), ("Percent", 10, 60)))
    assert rate_limit(100, 1, [], [], DEFAULT_SCALE_UP, down, 1, 100) == 90
    disabled = Rules(0, "Disabled", (("Pods", 5, 60),))
    assert rate_limit(100, 1, [], [], DEFAULT_SCALE_UP, disabled, 1, 100) == 100
    assert rate_limit(10, 50, [], [], disabled, DEFAULT_SCALE_DOWN, 1, 100) == 10
    # events younger than the period only; a scale-down within the period raises the base
    up = Rules(0, "Max", (("Pods", 2, 60),))
    assert rate_limit(10, 50, [(59.9, 2)], [], up, DEFAULT_SCALE_DOWN, 1, 100) == 10
    assert rate_limit(10, 50, [(60.0, 2)], [], up, DEFAULT_SCALE_DOWN, 1, 100) == 12
    assert rate_limit(10, 50, [], [(30.0, 3)], up, DEFAULT_SCALE_DOWN, 1, 100) == 15
    assert rate_limit(10, 50, [], [], DEFAULT_SCALE_UP, DEFAULT_SCALE_DOWN, 1, 12) == 12   # max


def test_stabilize_both_windows():
    up, down = Rules(60, "Max", ()), Rules(120, "Max", ())
    recs = [(90.0, 9), (30.0, 4)]
    assert stabilize(5, 8, recs, up, down) == 5       # lowest recent 4 <= 5 <= highest 9
    assert stabilize(3, 8, recs, up, down) == 4       # raised to the lowest of the last 60 s
    assert stabilize(10, 2, recs, up, down) == 9      # lowered to the highest of the last 120 s


# ---------------------------------------------------------------- the policy, exact traces
def view(cpu, ready=True, rps=None, memory=None, age=1000.0):
    return InstanceView(ready=ready, age=age, cpu=cpu, memory=memory, rps=rps,
                        since_ready=age if ready else None)


def observe(now, views, lo=1, hi=10):
    return Observation(now=now, current=len(views), instances=tuple(views), min_instances=lo, max_instances=hi)


def run(config, demand, n0, t_end, lo=1, hi=10):
    """Call decide() every sync period; ``demand(t)`` is busy instance-equivalents shared
    evenly; decisions are carried out at once. Returns [(t, count)] at every change."""
    hpa = config.build()
    n, timeline = n0, [(0.0, n0)]
    t = 0.0
    while t <= t_end:
        d = hpa.decide(observe(t, [view(min(1.0, demand(t) / n))] * n, lo, hi))
        if d is not None and d.desired != n:
            n = d.desired
            timeline.append((t, n))
        t += config.sync_period
    return timeline


def test_build_and_protocol():
    hpa = HPAConfig(sync_period="30s", window="1m").build()
    assert isinstance(hpa, Policy) and isinstance(hpa, HPA)
    assert (hpa.interval, hpa.window) == (30.0, 60.0)
    assert hpa.decide(Observation(0.0, 0, (), 1, 10)) is None
    with pytest.raises(ValidationError):
        HPAConfig(min_instances=5, max_instances=2)
    with pytest.raises(ValidationError):
        HPAConfig(metrics=[{"type": "latency", "target": 1}])
    with pytest.raises(ValidationError):
        HPAConfig(behavior={"scale_up": {"policies": []}})


def test_step_up_then_down_after_the_stabilisation_window():
    cfg = HPAConfig(metrics=[{"type": "cpu", "target": 50}], behavior={})
    demand = lambda t: 1.8 if t < 600 else 0.4         # 2 x 90 %, later 4 x 10 %  # noqa: E731
    # up to 4 at once; the last proposal of 4 is at 585 s, so 4 holds until 885 s
    assert run(cfg, demand, 2, 1200) == [(0.0, 2), (0.0, 4), (885.0, 1)]


def test_step_up_decision_and_reason():
    hpa = HPAConfig(metrics=[{"type": "cpu", "target": 70}], behavior={}).build()
    d = hpa.decide(observe(0.0, [view(0.84)] * 3))
    assert d.desired == 4 and d.reason == "hpa: cpu 84% vs target 70% -> 4"
    assert d.metrics["cpu"] == 84 and d.metrics["proposal"] == 4


def test_start_holds_scale_down_for_the_window():
    cfg = HPAConfig(behavior={})      # the first sync remembers the current 4 as a proposal
    assert run(cfg, lambda t: 0.4, 4, 600) == [(0.0, 4), (300.0, 1)]


def test_rate_limit_one_pod_per_minute():
    cfg = HPAConfig(metrics=[{"type": "cpu", "target": 50}],
                    behavior={"scale_up": {"policies": [{"type": "Pods", "value": 1, "period": "1m"}]}})
    assert run(cfg, lambda t: 2.0, 2, 300) == [(0.0, 2), (0.0, 3), (60.0, 4)]


def test_disabled_scale_down():
    cfg = HPAConfig(behavior={"scale_down": {"select_policy": "Disabled"}})
    assert run(cfg, lambda t: 0.1, 5, 1800) == [(0.0, 5)]


def test_scale_down_rate_limited():
    cfg = HPAConfig(behavior={"scale_down": {"stabilization_window": 0,
                                             "policies": [{"type": "Percent", "value": 50, "period": 60}]}})
    # 8 -> trunc(8 x 0.5) = 4; at 60 s 4 -> 2; at 120 s 2 -> 1
    assert run(cfg, lambda t: 0.1, 8, 300) == [(0.0, 8), (0.0, 4), (60.0, 2), (120.0, 1)]


def test_legacy_cap_and_stabilisation():
    cfg = HPAConfig(metrics=[{"type": "cpu", "target": 30}], max_instances=20)
    demand = lambda t: 1.8 if t < 300 else 0.3         # noqa: E731
    # 2 x 90 % wants 6, capped at max(2 x 2, 4) = 4; then 4 x 45 % wants 6 (cap 8): 6 x 30 % holds;
    # after the drop 6 x 5 % wants 1, held by the proposals of 6 up to 285 s: 1 at 585 s
    assert run(cfg, demand, 2, 900, hi=20) == [(0.0, 2), (0.0, 4), (15.0, 6), (585.0, 1)]
    hpa = HPAConfig(metrics=[{"type": "cpu", "target": 10}]).build()
    assert hpa.decide(observe(0.0, [view(1.0)])).desired == 4        # 1 wants 10: cap 4


def test_multiple_metrics_take_the_largest():
    hpa = HPAConfig(metrics=[{"type": "cpu", "target": 50}, {"type": "rps", "target": 50},
                             {"type": "memory", "target": 80}], behavior={}).build()
    d = hpa.decide(observe(0.0, [view(0.4, rps=80.0, memory=0.5)] * 4))
    # cpu 40 % -> ceil(0.8 x 4) = 4; rps 80 vs 50 -> ceil(1.6 x 4) = 7; memory 50 % -> ceil(2.5) = 3
    assert d.desired == 7
    assert d.metrics["rps_replicas"] == 7 and d.metrics["cpu_replicas"] == 4
    assert d.metrics["memory_replicas"] == 3
    assert "rps 80/s vs target 50/s -> 7" in d.reason


def test_unready_instances_left_out():
    behavior = {"scale_down": {"stabilization_window": 0}}
    hpa = HPAConfig(metrics=[{"type": "cpu", "target": 50}], behavior=behavior).build()
    # a booting instance at 100 % is left out: 2 x 30 % -> ceil(0.6 x 2) = 2
    d = hpa.decide(observe(0.0, [view(0.3), view(0.3), view(1.0, ready=False)]))
    assert d.desired == 2 and d.metrics["cpu"] == 30
    # the vector TestReplicaCalcScaleUpUnreadyLessScale through the policy: 60 % -> recount 40 % -> 4
    hpa = HPAConfig(metrics=[{"type": "cpu", "target": 30}], behavior={}).build()
    assert hpa.decide(observe(0.0, [view(0.3, ready=False), view(0.5), view(0.7)])).desired == 4


def restarting(rps=None, memory=None):
    """Ready once, not ready now (restarting after a crash): Kubernetes' Running but not Ready."""
    return InstanceView(ready=False, age=1000.0, cpu=None, memory=memory, rps=rps, since_ready=900.0)


def test_readiness_per_metric_in_the_policy():
    behavior = {"scale_down": {"stabilization_window": 0}}
    # the vector TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale through the policy (rps in 1/s)
    hpa = HPAConfig(metrics=[{"type": "rps", "target": 15}], behavior=behavior).build()
    d = hpa.decide(observe(0.0, [view(0.1, rps=50.0), view(0.1, rps=10.0), restarting(rps=30.0)]))
    assert d.desired == 6 and d.metrics["rps"] == 30
    # memory of a restarting instance counts: 90 % against 30 % -> 3 x 3 = 9 (as unready: 60 % -> 6)
    hpa = HPAConfig(metrics=[{"type": "memory", "target": 30}], behavior=behavior).build()
    d = hpa.decide(observe(0.0, [view(0.1, memory=0.9), view(0.1, memory=0.9), restarting(memory=0.9)]))
    assert d.metrics["memory_replicas"] == 9 and d.desired == 7     # 7: the default rate limit, max(3 + 4, 2 x 3)
    # a booting instance (never ready) is Pending: unready for rps too, counted as 0 on the way up
    hpa = HPAConfig(metrics=[{"type": "rps", "target": 15}], behavior=behavior).build()
    booting = InstanceView(ready=False, age=10.0, rps=30.0)
    d = hpa.decide(observe(0.0, [view(0.1, rps=50.0), view(0.1, rps=10.0), booting]))
    assert d.desired == 4                              # 30000 -> r 2; recount 20000 -> ceil(1.33 x 3)


def test_cpu_of_a_freshly_ready_instance_counts_as_unready():
    # ready 10 s ago (age 40 s < the 300 s initialization period, 10 s < the 60 s window)
    fresh = InstanceView(ready=True, age=40.0, cpu=1.0, since_ready=10.0)
    views = [view(0.2), view(0.2), fresh]
    cfg = dict(metrics=[{"type": "cpu", "target": 50}], behavior={"scale_down": {"stabilization_window": 0}})
    # left out: 2 x 20 % -> ceil(0.4 x 2) = 1
    assert HPAConfig(**cfg).build().decide(observe(0.0, views)).desired == 1
    # counted (no initialization period): 46 % -> within the tolerance -> 3
    hpa = HPAConfig(**cfg, cpu_initialization_period=0).build()
    assert hpa.decide(observe(0.0, views)).desired == 3


def test_tolerance_band_keeps_the_count():
    hpa = HPAConfig(behavior={"scale_down": {"stabilization_window": 0}}).build()
    assert hpa.decide(observe(0.0, [view(0.75)] * 4)).desired == 4     # 75/70 = 1.07
    assert hpa.decide(observe(15.0, [view(0.64)] * 4)).desired == 4    # 64/70 = 0.91
    assert hpa.decide(observe(30.0, [view(0.78)] * 4)).desired == 5    # 78/70 = 1.11 -> ceil(4.46)


def test_no_samples_no_opinion():
    hpa = HPAConfig().build()
    assert hpa.decide(observe(0.0, [view(None, ready=False)] * 2)) is None
    # one metric without samples and the other would scale down: keep (no opinion)
    hpa = HPAConfig(metrics=[{"type": "cpu", "target": 50}, {"type": "rps", "target": 10}],
                    behavior={"scale_down": {"stabilization_window": 0}}).build()
    assert hpa.decide(observe(0.0, [view(0.1)] * 4)) is None
    assert hpa.decide(observe(15.0, [view(0.9)] * 4)).desired == 8    # up is still allowed


def test_outside_bounds_goes_to_the_bound():
    hpa = HPAConfig().build()
    d = hpa.decide(observe(0.0, [view(0.9)] * 6, lo=1, hi=4))
    assert d.desired == 4 and "outside" in d.reason
    assert hpa.decide(observe(15.0, [view(0.1)] * 2, lo=3, hi=10)).desired == 3


def test_a_change_not_carried_out_does_not_use_up_the_rate():
    cfg = HPAConfig(metrics=[{"type": "cpu", "target": 50}],
                    behavior={"scale_up": {"policies": [{"type": "Pods", "value": 1, "period": 60}]}})
    hpa = cfg.build()
    assert hpa.decide(observe(0.0, [view(1.0)] * 2)).desired == 3
    # the controller could not start the instance: the +1 nets out with the -1 seen now
    assert hpa.decide(observe(15.0, [view(1.0)] * 2)).desired == 3
    # an outside change (a scheduled +2) counts toward the period like one of ours
    hpa = cfg.build()
    hpa.decide(observe(0.0, [view(0.5)] * 2))
    assert hpa.decide(observe(15.0, [view(1.0)] * 4)).desired == 4   # base 2 + 1 = 3 < 4: hold
    assert hpa.decide(observe(75.0, [view(1.0)] * 4)).desired == 5
