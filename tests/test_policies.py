"""Scaling policies on small hand-made traces, called at explicit times."""
import math
from datetime import datetime

import pytest
from pydantic import ValidationError

from capsim.models.autoscaling.base import Decision, InstanceView, Observation, Policy
from capsim.models.autoscaling.fixed import FixedConfig
from capsim.models.autoscaling.predictive import PredictiveConfig, WithPredictive
from capsim.models.autoscaling.scheduled import (NIGHT_SCALING, Prescale, Schedule, ScheduledAction,
                                          SchedulePolicyConfig, parse_at)
from capsim.models.autoscaling.step import StepConfig, percent_change
from capsim.models.autoscaling.target import TargetConfig
from capsim.models.autoscaling.threshold import ThresholdConfig

H, D = 3600.0, 86400.0
MONDAY = datetime(2026, 1, 5)  # a Monday, 00:00


def obs(now, current, cpu=None, memory=None, rps=None, ready=None, lo=1, hi=10, unready=0):
    """``ready`` instances (default: all but ``unready``) with the same samples."""
    ready = current - unready if ready is None else ready
    views = [InstanceView(ready=True, age=600, cpu=cpu, memory=memory, rps=rps, since_ready=500)] * ready
    views += [InstanceView(ready=False, age=10)] * (current - ready)
    return Observation(now=now, current=current, instances=tuple(views), min_instances=lo, max_instances=hi)


# ---------------------------------------------------------------- fixed

def test_fixed():
    p = FixedConfig(instances=3).build()
    assert isinstance(p, Policy)
    assert p.decide(obs(0, 1, lo=3, hi=3)).desired == 3
    assert FixedConfig(instances=3).min_instances == FixedConfig(instances=3).max_instances == 3
    with pytest.raises(ValidationError):
        FixedConfig(instances=0)


# ---------------------------------------------------------------- threshold

def test_threshold_up_cooldown_then_up_again():
    p = ThresholdConfig().build()
    assert isinstance(p, Policy) and (p.interval, p.window) == (60, 300)
    d = p.decide(obs(0, 2, cpu=0.8, memory=0.4))
    assert d.desired == 3 and "cpu 80% > 70%" in d.reason and d.metrics == {"cpu": 0.8, "memory": 0.4}
    for t in (60, 120, 299):
        assert p.decide(obs(t, 3, cpu=0.9, memory=0.4)) is None
    assert p.decide(obs(300, 3, cpu=0.9, memory=0.4)).desired == 4


def test_threshold_down_needs_both_low():
    p = ThresholdConfig().build()
    assert p.decide(obs(0, 4, cpu=0.2, memory=0.6)) is None   # memory not low
    assert p.decide(obs(60, 4, cpu=0.5, memory=0.3)) is None  # cpu not low
    assert p.decide(obs(120, 4, cpu=0.4, memory=0.6)) is None  # in the band
    d = p.decide(obs(180, 4, cpu=0.2, memory=0.4))
    assert d.desired == 3 and "cpu 20% < 30% and memory 40% < 50%" in d.reason


def test_threshold_memory_alone_scales_up():
    d = ThresholdConfig().build().decide(obs(0, 2, cpu=0.1, memory=0.85))
    assert d.desired == 3 and "memory 85% > 80%" in d.reason


def test_threshold_no_ready_samples():
    p = ThresholdConfig().build()
    assert p.decide(obs(0, 2, ready=0)) is None
    assert p.decide(obs(60, 2)) is None  # ready, no samples
    # booting instances' samples are ignored; the ready one decides
    views = (InstanceView(ready=False, age=5, cpu=0.99), InstanceView(ready=True, age=600, cpu=0.5, memory=0.6))
    o = Observation(now=120, current=2, instances=views, min_instances=1, max_instances=10)
    assert p.decide(o) is None


def test_threshold_clamped_at_max():
    assert ThresholdConfig().build().decide(obs(0, 10, cpu=0.95)) is None
    d = ThresholdConfig(step_up=3).build().decide(obs(0, 9, cpu=0.95))
    assert d.desired == 10
    assert ThresholdConfig().build().decide(obs(0, 1, cpu=0.1, memory=0.1)) is None  # at min


def test_threshold_outside_change_starts_cooldown():
    p = ThresholdConfig().build()
    assert p.decide(obs(0, 2, cpu=0.5, memory=0.6)) is None
    assert p.decide(obs(60, 4, cpu=0.9, memory=0.6)) is None  # 2 -> 4 by someone else at ~60 s
    assert p.decide(obs(300, 4, cpu=0.9, memory=0.6)) is None
    assert p.decide(obs(360, 4, cpu=0.9, memory=0.6)).desired == 5


def test_threshold_config_checks():
    with pytest.raises(ValidationError):
        ThresholdConfig(min_instances=5, max_instances=2)
    with pytest.raises(ValidationError):
        ThresholdConfig(cpu_down=0.8)
    with pytest.raises(ValidationError):
        ThresholdConfig(cpu_up=70)
    assert ThresholdConfig(cooldown="5m", interval="1m").cooldown == 300


# ---------------------------------------------------------------- target

def test_target_render_example():
    p = TargetConfig(cpu_target=0.6).build()
    d = p.decide(obs(0, 2, cpu=0.8))
    assert d.desired == 3 and d.metrics["cpu"] == 0.8 and d.metrics["desired_cpu"] == 3
    assert TargetConfig(cpu_target=0.6).build().decide(obs(0, 3, cpu=0.6)) is None  # no float noise


def test_target_booting_instances_count_as_idle():
    p = TargetConfig(cpu_target=0.6).build()
    assert p.decide(obs(0, 3, cpu=0.8, unready=1)) is None  # 2 x 80% / 60% -> 3 = current


def test_target_scale_down_delay():
    p = TargetConfig(cpu_target=0.6, scale_down_delay=300).build()
    assert p.decide(obs(0, 4, cpu=0.15)) is None       # proposes 1
    assert p.decide(obs(150, 4, cpu=0.3)) is None      # proposes 2
    assert p.decide(obs(299, 4, cpu=0.15)) is None
    d = p.decide(obs(300, 4, cpu=0.15))
    assert d.desired == 2 and "largest proposal 2" in d.reason
    # a proposal at the current count restarts the delay
    assert p.decide(obs(330, 2, cpu=0.1)) is None
    assert p.decide(obs(400, 2, cpu=0.6)) is None
    assert p.decide(obs(630, 2, cpu=0.1)) is None      # the delay starts again here
    assert p.decide(obs(929, 2, cpu=0.1)) is None
    assert p.decide(obs(930, 2, cpu=0.1)).desired == 1


def test_target_larger_metric_wins():
    p = TargetConfig(cpu_target=0.7, memory_target=0.6).build()
    d = p.decide(obs(0, 2, cpu=0.5, memory=0.9))   # cpu -> 2, memory -> 3
    assert d.desired == 3 and d.reason.startswith("memory 90%")
    assert d.metrics["desired_cpu"] == 2 and d.metrics["desired_memory"] == 3


def test_target_clamps_and_validates():
    assert TargetConfig(cpu_target=0.5).build().decide(obs(0, 4, cpu=0.9, hi=5)).desired == 5
    with pytest.raises(ValidationError):
        TargetConfig(cpu_target=None)
    with pytest.raises(ValidationError):
        TargetConfig(cpu_target=0.95)


# ---------------------------------------------------------------- step

AWS_STEPS = [{"lower": 0, "upper": 10, "adjustment": 0}, {"lower": 10, "upper": 20, "adjustment": 10},
             {"lower": 20, "upper": None, "adjustment": 30}]


def test_step_aws_documented_example():
    p = StepConfig(threshold=50, adjustment_type="PercentChangeInCapacity", steps=AWS_STEPS, max_instances=20).build()
    assert p.decide(obs(0, 10, cpu=0.55, hi=20)) is None        # step [0, 10): +0%
    d = p.decide(obs(60, 10, cpu=0.60, hi=20))                 # 10% of 10 = 1
    assert d.desired == 11 and d.metrics == {"cpu": 60.0}
    # once the new instance runs (cooldown over), 70 applies 30% to the current 11: 3.3 -> 3
    assert p.decide(obs(360, 11, cpu=0.70, hi=20)).desired == 14


def test_step_evaluation_periods_and_cooldown():
    steps = [{"lower": 0, "adjustment": 1}]
    p = StepConfig(threshold=70, evaluation_periods=3, steps=steps).build()
    assert p.decide(obs(0, 2, cpu=0.8)) is None
    assert p.decide(obs(60, 2, cpu=0.8)) is None
    assert p.decide(obs(120, 2, cpu=0.5)) is None        # resets the count
    assert p.decide(obs(180, 2, cpu=0.8)) is None
    assert p.decide(obs(240, 2, cpu=0.8)) is None
    assert p.decide(obs(300, 2, cpu=0.8)).desired == 3
    assert p.decide(obs(360, 3, cpu=0.9)) is None        # cooldown until 600
    assert p.decide(obs(599, 3, cpu=0.9)) is None
    assert p.decide(obs(600, 3, cpu=0.9)).desired == 4   # alarm still firing


@pytest.mark.parametrize("capacity, percent, magnitude, change", [
    (10, 15, None, 1),     # 1.5 -> floor 1
    (10, 25, None, 2),     # 2.5 -> floor 2
    (10, 5, None, 1),      # 0.5 -> 1
    (10, -5, None, -1),    # -0.5 -> -1
    (10, -15, None, -1),   # -1.5 -> ceil -1
    (10, -25, None, -2),   # -2.5 -> ceil -2
    (10, 10, None, 1), (10, -10, None, -1), (10, 0, None, 0),
    (10, 10, 3, 3), (10, -10, 2, -2), (10, 50, 2, 5),
])
def test_percent_rounding(capacity, percent, magnitude, change):
    assert percent_change(capacity, percent, magnitude) == change


def test_step_min_magnitude_in_policy():
    p = StepConfig(threshold=70, adjustment_type="PercentChangeInCapacity", min_adjustment_magnitude=2,
                   steps=[{"lower": 0, "adjustment": 10}]).build()
    assert p.decide(obs(0, 4, cpu=0.8)).desired == 6   # 0.4 -> 1, raised to 2


def test_step_exact_capacity_and_scale_in():
    p = StepConfig(threshold=70, adjustment_type="ExactCapacity", steps=[{"lower": 0, "adjustment": 6}]).build()
    assert p.decide(obs(0, 2, cpu=0.7)).desired == 6   # at the threshold breaches
    down = StepConfig(threshold=30, comparison="below", steps=[{"upper": -10, "adjustment": -2},
                                                               {"lower": -10, "upper": 0, "adjustment": -1}]).build()
    assert down.decide(obs(0, 5, cpu=0.3)).desired == 4    # delta 0: (-10, 0]
    assert down.decide(obs(300, 4, cpu=0.2)).desired == 2  # delta -10: (-inf, -10]
    assert down.decide(obs(600, 2, cpu=0.5)) is None


def test_step_rps_metric():
    p = StepConfig(metric="rps", threshold=100, steps=[{"lower": 0, "adjustment": 2}]).build()
    assert p.decide(obs(0, 2, rps=120)).desired == 4
    assert p.window == p.interval == 60


def test_step_validation():
    with pytest.raises(ValidationError, match="gap"):
        StepConfig(threshold=50, steps=[{"lower": 0, "upper": 10, "adjustment": 1},
                                        {"lower": 20, "adjustment": 2}])
    with pytest.raises(ValidationError, match="overlap"):
        StepConfig(threshold=50, steps=[{"lower": 0, "upper": 30, "adjustment": 1},
                                        {"lower": 20, "adjustment": 2}])
    with pytest.raises(ValidationError):
        StepConfig(threshold=50, min_adjustment_magnitude=2, steps=[{"lower": 0, "adjustment": 1}])
    with pytest.raises(ValidationError):
        StepConfig(threshold=50, steps=[{"lower": 0, "adjustment": 1.5}])


# ---------------------------------------------------------------- scheduled

def test_night_scaling_over_a_day():
    s = Schedule(NIGHT_SCALING, MONDAY, 2, 10)
    assert s.bounds(1 * H) == (2, 10)      # no action yet in this run: base
    assert s.bounds(2 * H) == (1, 2)
    assert s.bounds(3 * H) == (1, 2)
    assert s.bounds(19 * H) == (1, 10)
    assert s.bounds(D + 1 * H) == (1, 10)  # Tuesday 01:00: Monday 18:00 holds
    assert s.bounds(D + 3 * H) == (1, 2)


def test_schedule_policy_follows_bounds():
    cfg = SchedulePolicyConfig(actions=[{"at": "02:00", "min_instances": 1, "max_instances": 2},
                                        {"at": "18:00", "min_instances": 1, "max_instances": 10}])
    assert cfg.actions == NIGHT_SCALING
    s, p = cfg.schedule(MONDAY), cfg.build()
    lo, hi = s.bounds(3 * H)
    assert p.decide(obs(3 * H, 5, lo=lo, hi=hi)).desired == 2
    lo, hi = s.bounds(19 * H)
    assert p.decide(obs(19 * H, 2, lo=lo, hi=hi)) is None


def test_weekly_actions():
    s = Schedule([ScheduledAction(at="Sat 00:00", min_instances=4, max_instances=20),
                  ScheduledAction(at="Mon-Fri 08:00", min_instances=2)], MONDAY, 1, 10)
    assert s.bounds(7 * H) == (1, 10)
    assert s.bounds(8 * H) == (2, 10)
    assert s.bounds(5 * D - 1) == (2, 10)          # Friday 23:59:59
    assert s.bounds(5 * D) == (4, 20)              # Saturday 00:00
    assert s.bounds(7 * D + 7 * H) == (4, 20)      # next Monday 07:00
    assert s.bounds(7 * D + 8 * H) == (2, 20)
    assert parse_at("Fri-Mon 10:30") == (7 * D, [0 * D + 37800, 4 * D + 37800, 5 * D + 37800, 6 * D + 37800])
    assert parse_at("sat,sun 00:00")[1] == [5 * D, 6 * D]


def test_once_only_actions():
    s = Schedule([ScheduledAction(at="2026-01-06T12:00", min_instances=3, desired=5),
                  ScheduledAction(at="3d", max_instances=4)], MONDAY, 1, 10)
    assert s.desired_at(36 * H - 60, 36 * H - 120) is None
    assert s.desired_at(36 * H, 36 * H - 60) == 5
    assert s.desired_at(36 * H + 60, 36 * H) is None           # fired once
    assert s.desired_at(10 * D, None) == 5                     # not yet evaluated: it did fire
    assert s.bounds(36 * H - 1) == (1, 10)
    assert s.bounds(36 * H) == (3, 10)
    assert s.bounds(3 * D) == (3, 4)
    assert s.bounds(30 * D) == (3, 4)


def test_schedule_validation():
    for bad in ["25:00", "Sat", "Funday 10:00", "tomorrow"]:
        with pytest.raises(ValidationError):
            ScheduledAction(at=bad, min_instances=1)
    with pytest.raises(ValidationError):
        ScheduledAction(at="02:00")
    with pytest.raises(ValidationError):
        ScheduledAction(at="02:00", min_instances=3, max_instances=2)


def test_prescale_weekend():
    p = Prescale(weekend_multiplier=1.5, lead="15m").build(MONDAY)
    fri_2345 = 5 * D - 900
    assert p.bounds(fri_2345 - 60, 2, 1, 10) == (1, 10)
    assert p.bounds(fri_2345, 2, 1, 10) == (3, 10)          # ceil(1.5 x 2)
    assert p.bounds(5 * D + 12 * H, 5, 1, 10) == (3, 10)    # reference stays 2
    assert p.bounds(7 * D - 60, 6, 1, 4) == (3, 4)
    assert p.bounds(7 * D, 6, 1, 10) == (1, 10)             # Monday 00:00: over
    assert p.bounds(12 * D - 900, 4, 1, 10) == (6, 10)      # next weekend: new reference 4


def test_prescale_event_with_lead():
    p = Prescale(event_multiplier=2.0, lead="15m").build(MONDAY, events=[(10 * H, 12 * H)])
    assert p.bounds(10 * H - 901, 3, 1, 10) == (1, 10)
    assert p.bounds(10 * H - 900, 3, 1, 10) == (6, 10)
    assert p.bounds(11 * H, 6, 1, 10) == (6, 10)
    assert p.bounds(12 * H, 6, 1, 10) == (1, 10)
    assert p.bounds(10 * H - 900, 3, 8, 10) == (8, 10)      # floor below min: min holds


# ---------------------------------------------------------------- predictive

BASE = [10 + 5 * h for h in range(24)]


def periodic(t):
    """Hourly-constant daily pattern growing 10% a day."""
    day, hour = int(t // D), int(t % D // H)
    return BASE[hour] * (1 + 0.1 * day)


def test_no_forecast_before_min_history():
    pr = PredictiveConfig(target=100).build()
    for k in range(96):                      # one day minus 15 min
        pr.observe(k * 900.0, periodic(k * 900.0))
    assert pr.forecast(D + 3 * H) is None and pr.desired(D) is None
    pr.observe(D, periodic(D))
    assert pr.forecast(D + 3 * H) == BASE[3]


def test_seasonal_forecast_is_mean_of_previous_days():
    pr = PredictiveConfig(target=10).build()
    for k in range(3 * 96):
        pr.observe(k * 900.0, periodic(k * 900.0))
    for h in range(24):
        expected = sum(BASE[h] * (1 + 0.1 * d) for d in range(3)) / 3
        assert pr.forecast(3 * D + h * H + 1800) == pytest.approx(expected, rel=1e-12)


def test_desired_is_launched_buffer_ahead():
    pr = PredictiveConfig(target=10, buffer=300).build()
    for k in range(3 * 96):
        pr.observe(k * 900.0, periodic(k * 900.0))
    f = [sum(BASE[h] * (1 + 0.1 * d) for d in range(3)) / 3 for h in range(24)]
    assert pr.desired(3 * D + 10 * H - 301) == math.ceil(f[9] / 10)
    assert pr.desired(3 * D + 10 * H - 300) == math.ceil(f[10] / 10)


def test_holt_winters_repeats_a_pure_pattern():
    pr = PredictiveConfig(target=10, method="holt_winters").build()
    for k in range(3 * 96):
        pr.observe(k * 900.0, BASE[int(k * 900 % D // H)])
    for h in (0, 7, 23):
        assert pr.forecast(3 * D + h * H) == pytest.approx(BASE[h])


def test_history_is_bounded():
    with pytest.raises(ValidationError):
        PredictiveConfig(target=1, history="15d")
    pr = PredictiveConfig(target=10, history="2d").build()
    for k in range(3 * 96):
        pr.observe(k * 900.0, periodic(k * 900.0))
    expected = sum(BASE[5] * (1 + 0.1 * d) for d in (1, 2)) / 2   # day 0 forgotten
    assert pr.forecast(3 * D + 5 * H) == pytest.approx(expected)


class _Reactive:
    interval, window = 60.0, 60.0

    def __init__(self, desired=None):
        self.desired = desired

    def decide(self, o):
        return None if self.desired is None else Decision(self.desired, "reactive", {"cpu": 0.5})


def _trained(target=50.0):
    pr = PredictiveConfig(target=target).build()
    for k in range(2 * 96):
        pr.observe(k * 900.0, BASE[int(k * 900 % D // H)])   # hour 10 -> 60 rps
    return pr


def test_with_predictive_takes_the_larger():
    now = 2 * D + 10 * H - 300                                # forecast for hour 10: 60 rps / 20 -> 3
    p = WithPredictive(_Reactive(), _trained(20.0))
    assert isinstance(p, Policy) and p.interval == 60
    d = p.decide(obs(now, 1, rps=5))
    assert d.desired == 3 and d.reason.startswith("predictive") and d.metrics["forecast"] == 60
    d = WithPredictive(_Reactive(5), _trained(20.0)).decide(obs(now, 1, rps=5))
    assert d.desired == 5 and d.reason == "reactive"
    assert WithPredictive(_Reactive(), _trained(20.0)).decide(obs(now, 3, rps=5)) is None
    assert WithPredictive(_Reactive(), _trained(20.0)).decide(obs(now, 2, rps=5, hi=2)) is None


def test_with_predictive_never_scales_in_by_itself():
    now = 2 * D + 10 * H - 300                                # forecast 60 rps / 50 -> 2
    assert WithPredictive(_Reactive(), _trained(50.0)).decide(obs(now, 6, rps=5)) is None
    d = WithPredictive(_Reactive(1), _trained(50.0)).decide(obs(now, 6, rps=5))
    assert d.desired == 2 and d.reason.startswith("predictive") and "reactive" in d.reason


def test_with_predictive_records_total_load():
    pr = PredictiveConfig(target=20.0).build()
    WithPredictive(_Reactive(), pr).decide(obs(0, 3, rps=7, unready=1))
    assert pr._buckets == {0: [14.0, 1]}
