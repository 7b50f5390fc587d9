"""The event kernel: time order, deterministic ties, interleaving with SimPy, run(until)."""
import random

import simpy

from capsim.engine.kernel import Kernel


def _rec(log, kernel, tag):
    return lambda arg: log.append((kernel.now, tag, arg))


def test_time_order_and_ties_in_scheduling_order():
    k = Kernel()
    log = []
    rng = random.Random(3)
    times = [rng.choice([0.5, 1.0, 1.0, 2.0, 3.25, 3.25, 3.25, 7.0]) for _ in range(200)]
    for i, t in enumerate(times):
        k.at(t, _rec(log, k, "e"), i)
    k.run(10.0)
    assert [a for _, _, a in log] == sorted(range(200), key=lambda i: (times[i], i))
    assert [t for t, _, _ in log] == sorted(times)   # kernel.now is the event's time


def test_after_is_relative_to_now_and_same_time_events_run_in_order():
    k = Kernel()
    log = []

    def first(_):
        log.append(("first", k.now))
        k.after(0.0, lambda _: log.append(("child", k.now)))   # same time, scheduled later
        k.after(1.5, lambda _: log.append(("later", k.now)))

    k.at(2.0, first)
    k.at(2.0, lambda _: log.append(("second", k.now)))
    k.run(5.0)
    assert log == [("first", 2.0), ("second", 2.0), ("child", 2.0), ("later", 3.5)]


def test_kernel_events_run_before_simpy_events_at_equal_times():
    k = Kernel()
    env = k.env
    log = []

    def proc():
        for _ in range(3):
            yield env.timeout(1.0)
            log.append(("simpy", env.now))

    env.process(proc())
    for t in (0.5, 1.0, 2.0, 2.5, 3.0):
        k.at(t, lambda _, t=t: log.append(("kernel", k.now)))
    k.run(4.0)
    assert log == [("kernel", 0.5), ("kernel", 1.0), ("simpy", 1.0), ("kernel", 2.0),
                   ("simpy", 2.0), ("kernel", 2.5), ("kernel", 3.0), ("simpy", 3.0)]


def test_simpy_process_scheduling_kernel_event_at_now_runs_before_next_simpy_event():
    k = Kernel()
    env = k.env
    log = []

    def a():
        yield env.timeout(1.0)
        k.at(env.now, lambda _: log.append(("kernel-from-a", k.now)))
        log.append(("a", env.now))

    def b():
        yield env.timeout(1.0)
        log.append(("b", env.now))

    env.process(a())
    env.process(b())
    k.run(2.0)
    assert log == [("a", 1.0), ("kernel-from-a", 1.0), ("b", 1.0)]


def test_kernel_now_is_current_inside_simpy_process():
    """A SimPy process that reads ``kernel.now`` or uses ``kernel.after`` (the documented way
    for control processes to schedule request-path events) must see the current time,
    also when the last event processed was a kernel event at an earlier time."""
    k = Kernel()
    env = k.env
    seen, fired = [], []

    def control():
        yield env.timeout(5.0)
        seen.append(k.now)
        k.after(1.0, lambda _: fired.append(k.now))

    env.process(control())
    k.at(2.0, lambda _: None)          # the kernel's clock was last moved to 2.0
    k.run(10.0)
    assert seen == [5.0]
    assert fired == [6.0]


def test_run_until_includes_events_at_until_and_none_after():
    k = Kernel()
    env = k.env
    log = []
    for t in (1.0, 5.0, 5.0, 5.000001, 8.0):
        k.at(t, lambda _, t=t: log.append(("k", t)))

    def proc():
        yield env.timeout(5.0)
        log.append(("s", env.now))
        yield env.timeout(1.0)
        log.append(("s", env.now))

    env.process(proc())
    k.run(5.0)
    assert log == [("k", 1.0), ("k", 5.0), ("k", 5.0), ("s", 5.0)]
    assert k.now == 5.0 and env.now == 5.0
    assert len(k.heap) == 2

    k.run(7.0)                                           # a second run continues
    assert log[4:] == [("k", 5.000001), ("s", 6.0)]
    assert k.now == 7.0 and env.now == 7.0

    k.run(20.0)
    assert log[-1] == ("k", 8.0) and k.heap == []
    assert k.now == 20.0 and env.now == 20.0


def test_later_events_run_in_the_same_order_as_at_events():
    """``later`` keeps an event on the far heap until it is near: the order is still (time,
    order of scheduling), ties included, whether it was scheduled before the run, from a
    handler inside the window being worked through, or from a SimPy process."""
    k = Kernel()
    env = k.env
    log = []

    def note(name):
        return lambda _: log.append((name, k.now))

    k.later(3.0, note("far-3"))
    k.at(3.0, note("near-3"))                            # scheduled after far-3: runs after it
    k.later(1.0, note("far-1"))                          # "later" but soon: still first
    k.at(2.0, lambda _: (log.append(("near-2", k.now)), k.later(2.5, note("far-2.5")),
                         k.at(2.5, note("near-2.5"))))

    def control():
        yield env.timeout(4.0)
        k.later(4.0, note("far-4-from-simpy"))
        k.later(100.0, note("far-100"))
    env.process(control())
    k.run(50.0)
    assert log == [("far-1", 1.0), ("near-2", 2.0), ("far-2.5", 2.5), ("near-2.5", 2.5),
                   ("far-3", 3.0), ("near-3", 3.0), ("far-4-from-simpy", 4.0)]
    assert k.heap == [] and len(k.far) == 1 and k.now == 50.0
    assert k.remove(lambda handler, arg: True) and k.far == []       # remove looks at both heaps
    k.run(200.0)
    assert log[-1] == ("far-4-from-simpy", 4.0)


def test_later_and_at_mixed_at_random_give_time_then_scheduling_order():
    """Handlers schedule 2000 events at random (near or far, ties frequent) with either call,
    under a SimPy ticker that cuts the run into windows: the run order is exactly the events
    sorted by (time, scheduling order)."""
    k = Kernel()
    rng, made, ran = random.Random(11), [], []

    def handler(i):
        ran.append(i)
        for _ in range(2):
            if len(made) < 2000:
                t = k.now + rng.choice([0.0, 0.5, 1.0, rng.uniform(0, 3), rng.uniform(0, 300)])
                made.append((t, len(made)))
                (k.later if rng.random() < 0.5 else k.at)(t, handler, len(made) - 1)

    def ticker(env):
        while True:
            yield env.timeout(1.0)
    k.env.process(ticker(k.env))
    made.append((0.0, 0))
    k.at(0.0, handler, 0)
    k.run(1e6)
    assert ran == [i for _, i in sorted(made)]


def test_run_moves_clocks_with_nothing_to_do():
    k = Kernel()
    k.run(3.0)
    assert k.now == 3.0 and k.env.now == 3.0
    k.run(3.5)
    fired = []
    k.after(0.5, lambda _: fired.append(k.now))          # relative to the new now
    k.run(10.0)
    assert fired == [4.0]


def test_custom_environment_is_used():
    env = simpy.Environment(initial_time=0)
    k = Kernel(env)
    assert k.env is env


def test_many_interleaved_events_are_globally_time_ordered():
    k = Kernel()
    env = k.env
    log = []
    rng = random.Random(11)

    def proc(name, gaps):
        for g in gaps:
            yield env.timeout(g)
            log.append((env.now, 1, name))
            k.at(env.now + rng.choice([0.0, 0.25, 1.0]), lambda _, n=name: log.append((k.now, 0, "k-" + n)))

    for i in range(4):
        env.process(proc(f"p{i}", [rng.choice([0.25, 0.5, 1.0]) for _ in range(30)]))
    for _ in range(100):
        k.at(rng.choice([x / 4 for x in range(120)]), lambda _: log.append((k.now, 0, "k")))
    k.run(40.0)
    times = [t for t, _, _ in log]
    assert times == sorted(times)
    assert len(log) == 100 + 2 * 4 * 30          # everything was due before 40 s
    first_simpy = {}
    for i, (t, kind, _) in enumerate(log):
        if kind == 1:
            first_simpy.setdefault(t, i)
    for i, (t, _, name) in enumerate(log):        # pre-scheduled kernel events precede SimPy's at t
        if name == "k" and t in first_simpy:
            assert i < first_simpy[t], (t, log[first_simpy[t]:i + 1])
