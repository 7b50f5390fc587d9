"""Bad input gives a problem with FILE:LINE:COL, never a traceback, a hang or a silent default
(issue 13 items 3-6, issue 12 item 8). Each case is one that went wrong before its fix."""
from __future__ import annotations

import pytest

from capsim.scenario.loader import ScenarioError, load_text


def problems(text: str, overrides=()) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "s.yaml", list(overrides))
    return [str(p) for p in info.value.problems]


def one(text: str, overrides=()) -> str:
    found = problems(text, overrides)
    assert len(found) == 1, found
    return found[0]


# -- item 3: NaN, infinity, negative and meaningless numbers -----------------------------------
@pytest.mark.parametrize("text, expected", [
    ("workload:\n  sessions:\n    daily_curve: [.nan, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n",
     "s.yaml:3:19: workload.sessions.daily_curve.0: expected a finite number, got nan"),
    ("pricing:\n  extras_usd_per_month: {redis: .inf}\n",
     "s.yaml:2:33: pricing.extras_usd_per_month.redis: expected a finite number, got inf"),
    ("pricing:\n  extras_usd_per_month: {redis: -100}\n",
     "s.yaml:2:33: pricing.extras_usd_per_month.redis: Input should be greater than or equal to 0, got -100"),
    ("pricing:\n  plans: {standard: {vcpus: .nan, memory_gb: 2, usd_per_month: 7}}\n",
     "s.yaml:2:29: pricing.plans.standard.vcpus: expected a finite number, got nan"),
    ("pricing:\n  plans: {standard: {vcpus: 1, memory_gb: 2, usd_per_month: -7}}\n",
     "pricing.plans.standard.usd_per_month: Input should be greater than or equal to 0, got -7"),
    ("pricing: {hours_per_month: .inf}\n", "s.yaml:1:28: pricing.hours_per_month: expected a finite number, got inf"),
    ("pricing: {hours_per_month: 1000}\n", "pricing.hours_per_month: Input should be less than or equal to 744, got 1000"),
    ("instances: {memory_base_mb: .nan}\n", "instances.memory_base_mb: expected a finite number, got nan"),
    ("instances: {memory_per_request_mb: -1}\n", "instances.memory_per_request_mb: Input should be greater than or equal to 0"),
    ("autoscaler: {policy: step, threshold: .nan, steps: [{lower: 0, adjustment: 1}]}\n",
     "autoscaler.threshold: expected a finite number, got nan"),
    ("autoscaler: {policy: step, threshold: 50, steps: [{lower: 0, adjustment: .inf}]}\n",
     "autoscaler.steps.0.adjustment: expected a finite number, got inf"),
    ("slo: {thresholds: [{name: x, metric: error_rate, above: .nan}]}\n",
     "slo.thresholds.0.above: expected a finite number, got nan"),
    ("slo: {alerts: [{name: x, metric: error_rate, above: -1, for: 1m}]}\n",
     "slo.alerts.0.above: Input should be greater than or equal to 0, got -1"),
    ("workload: {endpoints: {api: {weight: .nan}}}\n", "workload.endpoints.api.weight: expected a finite number, got nan"),
    ("faults: {crash_rate: .inf}\n", "faults.crash_rate: expected a finite number, got inf"),
    ("autoscaler: {policy: hpa, metrics: [{type: cpu, target: .inf}]}\n",
     "autoscaler.metrics.0.target: expected a finite number, got inf"),
    ("workload: {sessions: {weekend_multiplier: .nan}}\n",
     "workload.sessions.weekend_multiplier: expected a finite number, got nan"),
    ("workload: {sessions: {peak_users: 1e300}}\n",
     "workload.sessions.peak_users: Input should be less than or equal to 1000000000000"),
    ("horizon: 1e308w\n", "s.yaml:1:10: horizon: expected a finite value for a duration, got '1e308w'"),
    ("horizon: 200y\n", "s.yaml:1:10: horizon: expected a duration such as 90s"),
    ("horizon: 4e9\n", "s.yaml:1:10: horizon: expected a duration of at most 100 years"),
    ("instances: {count: 10000000000}\n", "instances.count: Input should be less than or equal to 1000000000"),
    ("seed: true\n", "s.yaml:1:7: seed: expected a number, got true"),
])
def test_non_finite_negative_and_meaningless_numbers_are_errors(text, expected):
    assert expected in one(text)


# -- items 4 and 5: contradictions that were capped, and divisions by zero ----------------------------
@pytest.mark.parametrize("text, expected", [
    ("database:\n  pool: {min: 30, max: 20}\n", "s.yaml:2:15: database.pool.min: expected at most pool.max (20), got 30"),
    ("workload:\n  sessions: {session_length: 0}\n",
     "s.yaml:2:30: workload.sessions.session_length: expected a mean > 0"),
    ("sockets: {ping_interval: 0}\n", "s.yaml:1:26: sockets.ping_interval: expected a duration > 0, got 0 s"),
    ("workload:\n  open_loop: [{rate: 5/s, mix: {health: 0, auth: 0}}]\n",
     "workload.open_loop.0.mix: expected some endpoint weight > 0"),
    ("workload:\n  sessions: null\n  open_loop: [{rate: 5/s}]\n  endpoints: {api: {weight: 0}}\n",
     "s.yaml:3:15: workload.open_loop.0: the endpoints' weights are all 0"),
])
def test_contradictions_and_zero_divisions_are_errors(text, expected):
    assert expected in one(text)


# -- items 4-6: YAML that is empty, recursive, tagged, deep, huge or endless ---------------------------
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


@pytest.mark.parametrize("text, expected", [
    ("", "s.yaml:1:1: the file is empty"),
    ("# only a comment\n", "s.yaml:1:1: the file is empty"),
    ("workload: &w {sessions: *w}\n", "s.yaml:1:25: recursive alias *w: the anchor &w contains itself"),
    ("workload: !custom {sessions: null}\n", "s.yaml:1:11: unknown tag !custom"),
    ("workload:\n  open_loop: !list [{rate: 5}]\n", "s.yaml:2:14: unknown tag !list"),
    ("horizon: !!python/name:os.system x\n", "s.yaml:1:10: unknown tag tag:yaml.org,2002:python/name:os.system"),
    ("seed: " + "1" * 5000 + "\n", "s.yaml:1:7: a whole number of 5000 digits (at most 100)"),
    ("name: " + "[" * 200 + "]" * 200 + "\n", "s.yaml:1:70: nested more than 64 levels deep"),
    (LAUGHS, "s.yaml:6:4: expands to more than 1,000,000 values"),
    ("seed: !!bool 5\n", "s.yaml:1:7: cannot read the value '5'"),
    ("name: 2026-13-45\n", "s.yaml:1:7: cannot read the value '2026-13-45': month must be in 1..12"),
    ("5\n", "s.yaml:1:1: expected a mapping of scenario fields"),
    ("name: x\nseed: 1\x00\n", "s.yaml:2:8: not YAML text: character #x0000 is not allowed"),
])
def test_yaml_that_is_empty_recursive_tagged_deep_or_huge_is_an_error(text, expected):
    assert one(text).startswith(expected), one(text)


@pytest.mark.parametrize("override, expected", [
    ("a=&x [*x]", "--set a=&x [*x]: in the value (column 5): recursive alias *x"),
    ("workload=" + "{a: " * 100 + "1" + "}" * 100, "in the value (column 254): nested more than 64 levels deep"),
    ("seed=" + "9" * 200, "in the value (column 1): a whole number of 200 digits"),
    ("workload=!x {}", "in the value (column 1): unknown tag !x"),
])
def test_override_values_are_bounded_too(override, expected):
    assert expected in one("name: x\n", [override])


def test_a_file_larger_than_the_bound_is_refused_without_reading_it_all(tmp_path):
    """`capsim validate /dev/zero` used to read until MemoryError."""
    from capsim.scenario.loader import load
    from capsim.scenario.yaml_io import MAX_BYTES
    big = tmp_path / "big.yaml"
    big.write_text("# x\n" * (MAX_BYTES // 4 + 1))
    for path in (big, "/dev/zero"):
        with pytest.raises(ScenarioError) as info:
            load(path)
        assert str(info.value) == f"{path}: larger than 10 MiB: not a scenario file"
    (tmp_path / "bin.yaml").write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ScenarioError, match="not UTF-8 text"):
        load(tmp_path / "bin.yaml")


def test_slo_files_are_bounded_and_placed(tmp_path):
    from capsim.scenario.loader import load_slo
    (tmp_path / "laughs.yaml").write_text(LAUGHS)
    (tmp_path / "bad.yaml").write_text("thresholds:\n  - {name: x, metric: error_rate, above: .nan}\n")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    for name, expected in (("laughs", "laughs.yaml:6:4: expands to more than 1,000,000 values"),
                           ("bad", "bad.yaml:2:42: thresholds.0.above: expected a finite number, got nan"),
                           ("empty", "empty.yaml:1:1: the file is empty")):
        with pytest.raises(ScenarioError) as info:
            load_slo(tmp_path / f"{name}.yaml")
        assert str(info.value).startswith(f"{tmp_path / expected}"), str(info.value)


# -- issue 12 item 8: suggestions from the chosen policy, a missing policy in plain words ---------------
@pytest.mark.parametrize("text, expected", [
    ("autoscaler: {policy: threshold, max_instance: 5}\n",
     "s.yaml:1:33: autoscaler.max_instance: unknown key 'max_instance'; did you mean 'max_instances'?"),
    ("autoscaler: {policy: threshold, cpu_upp: 0.8}\n",
     "s.yaml:1:33: autoscaler.cpu_upp: unknown key 'cpu_upp'; did you mean 'cpu_up'?"),
    ("autoscaler: {policy: step, threshold: 5, steps: [{lower: 0, adjustment: 1}], cooldwn: 5}\n",
     "s.yaml:1:78: autoscaler.cooldwn: unknown key 'cooldwn'; did you mean 'cooldown'?"),
    ("autoscaler:\n  min_instances: 2\n",
     "s.yaml:1:1: autoscaler.policy: required field is missing: which policy? one of fixed, threshold, target, hpa, "
     "step, scheduled, custom"),
])
def test_autoscaler_keys_are_checked_against_the_chosen_policy(text, expected):
    assert one(text) == expected


def test_a_misspelt_key_inside_a_policy_list_gets_its_suggestion():
    found = problems("autoscaler: {policy: hpa, metrics: [{type: cpu, targte: 5}]}\n")
    assert found == ["s.yaml:1:37: autoscaler.metrics.0.target: required field is missing",
                     "s.yaml:1:49: autoscaler.metrics.0.targte: unknown key 'targte'; did you mean 'target'?"]


# -- items 5 and 6: long flows with no instance ready, tiny rates over a long horizon -------------------
def _run(data: dict):
    import capsim
    from capsim.scenario.config import Scenario
    return capsim.run(Scenario.model_validate(data), seed=1).summary


def test_a_400_step_flow_with_no_instance_ready_is_a_loop_not_a_recursion():
    """Every step ends 'unavailable' at once (the only instance crashed at t = 0 and restarts
    after 60 s): the flow's 400 steps used to recurse 400 deep (RecursionError)."""
    s = _run({"horizon": 30, "warmup": 0, "cache": None, "rate_limit": None, "circuit_breaker": None,
              "sockets": None, "faults": {"crashes": [{"at": 0}]},
              "workload": {"sessions": None, "endpoints": {"api": {"cpu_pre": "1ms"}},
                           "open_loop": [{"rate": "0.5/s", "flow": ["api"] * 400}]}})
    q = s["requests"]
    assert q["total"] > 0 and q["total"] % 400 == 0 and q["unavailable"] == q["total"] == q["completed"], q


def test_arrivals_stop_at_the_horizon_however_small_the_rate():
    """peak_users 1e-9 over 100 years used to walk the daily curve hour by hour (a hang); with
    the walk bounded by the horizon it takes the time of the run's few hours."""
    import time
    t = time.perf_counter()
    from capsim.engine.model import Model
    from capsim.scenario.config import Scenario
    sc = Scenario.model_validate({"horizon": "2h", "warmup": 0, "workload": {"sessions": {"peak_users": 1e-9}}})
    m = Model(sc, 1)
    calls = []
    segment = m.sessions.segment
    m.sessions.segment = lambda t: calls.append(t) or segment(t)
    m.run()
    assert m.sessions.started == 0 and len(calls) <= 3 and time.perf_counter() - t < 30
