"""Artillery phases arrive as Artillery 2 spaces them (capsim.models.phases): exact small
traces computed by hand from Artillery's rules (see the module docstring), through the
scheduler alone and through a model run; ``arrivals: poisson`` keeps the Poisson process."""
import math

import pytest
from pydantic import ValidationError

from capsim.engine.model import Model
from capsim.models.phases import even_arrivals, phase_end
from capsim.models.workload import OpenLoopConfig, Phase
from capsim.scenario.config import Scenario

API = {"api": {"cpu_pre": 0.0005, "queries": 0}}


def times(*phases, start=0.0):
    return list(even_arrivals([Phase.model_validate(p) for p in phases], start))


def test_constant_rate_one_tick_apart_first_one_tick_in():
    assert times({"duration": 2, "arrivalRate": 10}) == pytest.approx([0.1 * k for k in range(1, 21)], abs=1e-12)


def test_tick_is_whole_microseconds_and_the_phase_ends_at_its_last_arrival():
    # 1000/3 ms -> 333333 µs; floor(1e6 / 333333) = 3 arrivals; the next phase starts at 0.999999 s
    got = times({"duration": 1, "arrivalRate": 3}, {"duration": 1, "arrivalRate": 1})
    assert got == pytest.approx([0.333333, 0.666666, 0.999999, 1.999999], abs=1e-12)
    assert phase_end(Phase(duration=1, arrivalRate=3), 0.0) == pytest.approx(0.999999, abs=1e-12)


def test_ramp_steps_once_a_second_with_floored_counts():
    # 0 -> 4 over 3 s: second i gets floor(4 / 2 * i) = 0, 2, 4 arrivals, 1000/n ms apart
    assert times({"duration": 3, "arrivalRate": 0, "rampTo": 4}) == pytest.approx([1.5, 2.0, 2.25, 2.5, 2.75, 3.0])
    # down 5 -> 1 over 2 s: 5 then 1
    assert times({"duration": 2, "arrivalRate": 5, "rampTo": 1}) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 2.0])
    # one second: the mean of the two rates, floored (3), floor(1000 / 3) = 333 ms apart
    assert times({"duration": 1, "arrivalRate": 2, "rampTo": 5}) == pytest.approx([0.333, 0.666, 0.999], abs=1e-12)


def test_arrival_count_pause_and_zero_rate():
    got = times({"duration": 2, "arrivalCount": 4}, {"pause": 5}, {"duration": 3, "arrivalRate": 0},
                {"duration": 1, "arrivalCount": 0}, {"duration": 1, "arrivalRate": 2}, start=10)
    # 0.5 s apart; pause to 17; rate 0 = pause to 20; count 0 ends at once; then 20.5, 21
    assert got == pytest.approx([10.5, 11, 11.5, 12, 20.5, 21.0])


def test_model_arrivals_are_the_schedule_exactly():
    sc = Scenario.model_validate({
        "horizon": 30, "warmup": 0, "metrics": {"interval": 10},
        "workload": {"sessions": None, "endpoints": API, "open_loop": [
            {"start": 1, "phases": [{"duration": 2, "arrivalRate": 4}, {"duration": 3, "arrivalRate": 0, "rampTo": 4}]}]}})
    model = Model(sc, seed=1)
    seen = []
    model.watch(on_arrive=lambda req: seen.append(req.t0))
    model.run()
    want = [1 + 0.25 * k for k in range(1, 9)] + [3 + 1.5, 3 + 2.0, 3 + 2.25, 3 + 2.5, 3 + 2.75, 3 + 3.0]
    assert seen == pytest.approx(want, abs=1e-12)


def test_even_is_the_default_for_phases_and_the_same_for_every_seed():
    sc = Scenario.model_validate({"horizon": 70, "warmup": 0, "metrics": {"interval": 10}, "workload": {
        "sessions": None, "endpoints": API, "open_loop": [{"phases": [{"duration": 60, "arrivalRate": 7}]}]}})
    assert sc.workload.open_loop[0].even
    counts = []
    for seed in (1, 2):
        m = Model(sc, seed=seed).run()
        counts.append([r["arrivals"] for r in m.metrics.rows])
    # tick floor(1e6/7) = 142857 µs: 420 arrivals; bins of 10 s hold 70 each (the 70th at 9.999990 s)
    assert counts[0] == counts[1] == [70] * 6 + [0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poisson_option_draws_a_poisson_count(seed):
    sc = Scenario.model_validate({"horizon": 100, "warmup": 0, "metrics": {"interval": 100}, "workload": {
        "sessions": None, "endpoints": API,
        "open_loop": [{"arrivals": "poisson", "phases": [{"duration": 50, "arrivalCount": 1000}, {"pause": 50}]}]}})
    n = Model(sc, seed=seed).run().metrics.rows[0]["arrivals"]
    assert abs(n - 1000) <= 4 * math.sqrt(1000) and n != 1000


@pytest.mark.parametrize("bad, where", [
    ({"pause": 5, "duration": 5}, "pause"),
    ({"arrivalRate": 5}, "duration"),
    ({"duration": 5, "arrivalCount": 3, "rampTo": 4}, "arrivalCount"),
    ({"duration": 5, "arrivalCount": -1}, "arrivalCount"),
])
def test_bad_phases(bad, where):
    with pytest.raises(ValidationError, match=where):
        Phase.model_validate(bad)


def test_even_only_for_phases():
    with pytest.raises(ValidationError, match="even spacing is for phases"):
        OpenLoopConfig.model_validate({"rate": 5, "arrivals": "even"})


def _flow_model(src, seed=1, horizon=30):
    eps = {"a": {"cpu_pre": 0.0005, "queries": 0}, "b": {"cpu_pre": 0.001, "queries": 0}}
    sc = Scenario.model_validate({"horizon": horizon, "warmup": 0, "metrics": {"interval": 10}, "workload": {
        "sessions": None, "endpoints": eps, "open_loop": [src]}})
    model = Model(sc, seed=seed)
    arrived, done = [], {}
    model.watch(on_arrive=lambda r: arrived.append((r.t0, r.endpoint, r.client)),
                on_done=lambda r, o, now: done.setdefault((r.client, r.endpoint, r.t0), now))
    return model.run(), arrived, done


def test_think_waits_after_the_previous_step_finished():
    model, arrived, done = _flow_model({"phases": [{"duration": 1, "arrivalRate": 1}],
                                        "flow": [{"think": 0.5}, "a", {"think": "2s"}, "b"]})
    a, b = model.sources[0].factory.index["a"], model.sources[0].factory.index["b"]
    assert [(ep, c) for _, ep, c in arrived] == [(a, 1), (b, 1)]
    assert arrived[0][0] == pytest.approx(1.5)                    # arrival at 1.0, think 0.5
    first_done = done[(1, a, arrived[0][0])]
    assert first_done > arrived[0][0]
    assert arrived[1][0] == pytest.approx(first_done - model.metrics.outside + 2.0)   # finished (server side) + 2 s


def test_weighted_flows_pick_by_weight_and_own_stream():
    src = {"phases": [{"duration": 100, "arrivalRate": 40}],
           "flows": [{"name": "x", "weight": 1, "flow": ["a"]}, {"name": "y", "weight": 3, "flow": ["b", "a"]}]}
    model, arrived, _ = _flow_model(src, horizon=120)
    n = model.sources[0].arrivals
    assert n == 4000
    firsts = {}
    for t, ep, c in arrived:
        firsts.setdefault(c, ep)
    b = model.sources[0].factory.index["b"]
    ys = sum(1 for ep in firsts.values() if ep == b)
    assert abs(ys - 3000) <= 4 * math.sqrt(4000 * 0.75 * 0.25)
    assert len(arrived) == n + ys                                  # y users make two requests
    assert model.sources[0].flow_names == ["x", "y"]
