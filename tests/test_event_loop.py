"""Node.js as it runs: the event loop, the pool hand-over and the loop's own work, on exact
small traces (hand-computed times; constant durations; connect_time and rtt 0 unless said).

Each test names the mechanism (issue 10) and the old behaviour it replaces.
"""
import pytest

from capsim.scenario.config import Scenario
from tests.helpers import Driver, conserved

EPS = 1e-9


def scenario(**over) -> Scenario:
    base = {"horizon": 100.0, "warmup": 0.0, "metrics": {"interval": 10.0},
            "workload": {"sessions": None, "endpoints": {"x": {}}},
            "cache": None, "rate_limit": None, "circuit_breaker": None, "sockets": None,
            "instances": {"request_timeout": None},
            "database": {"connect_time": 0.0, "rtt": 0.0, "pool": {"max": 1, "acquire_timeout": 0}}}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Scenario.model_validate(base)


def loop(**cpu) -> dict:
    return {"request_timeout": None, "event_loop": cpu}


# -- 1. CPU between two awaits is one contiguous slice ----------------------------------------
def test_a_handler_without_a_database_step_runs_both_slices_back_to_back():
    """a: [0, 1] + [1, 1.5] in one task; b (arrived at 0.2) runs [1.5, 3.0]. The old model
    queued a's second slice behind b's first: a at 2.5."""
    d = Driver(scenario())
    a = d.send(0.0, cpu=1.0, post=0.5)
    b = d.send(0.2, cpu=1.0, post=0.5)
    s = d.run()
    assert d.outcome(a) == ("ok", 1.5) and d.outcome(b) == ("ok", 3.0)
    assert conserved(s)


# -- 2. a database result is an event-loop callback --------------------------------------------
def test_a_result_waits_for_the_busy_loop_and_the_waiter_sends_after_the_releasing_task():
    """Pool of 1. a: pre 0.1, query 0.2, post 0.3; b the same from 0.05; c (no database) cpu 1.0 from 0.15.
    a [0, 0.1] asks the pool (a new connection, ready at once but handled by the loop), b runs
    [0.1, 0.2] and waits for the connection, a's READY [0.2, 0.2] sends its query [0.2, 0.4], c runs
    [0.2, 1.2]: a's result waits for it. a's reply task [1.2, 1.5] releases the connection to b at 1.2,
    b's query is sent when a's task ends: [1.5, 1.7], its reply [1.7, 2.0].
    The old model released at 0.4 and b's query ran [0.4, 0.6]."""
    d = Driver(scenario())
    a = d.send(0.0, cpu=0.1, query=0.2, post=0.3)
    b = d.send(0.05, cpu=0.1, query=0.2, post=0.3)
    c = d.send(0.15, cpu=1.0)
    pool = lambda: d.fleet.instances[0].proc.pool
    d.probe(1.2 - EPS, lambda: (pool().in_use, pool().waiting))
    d.probe(1.2 + EPS, lambda: (pool().in_use, pool().waiting))
    d.probe(2.5, lambda: pool().held_seconds(2.5))
    d.run()
    assert d.outcome(a) == ("ok", 1.5) and d.outcome(c) == ("ok", 1.2)
    assert d.outcome(b) == ("ok", pytest.approx(2.0))
    # at 1.2 a releases it and it goes to b, whose handler holds it only once it runs at 1.5
    assert d.probes[1.2 - EPS] == (1, 1) and d.probes[1.2 + EPS] == (0, 0)
    # held by handlers: a from its connection at 0.1 to its release at 1.2; b from 1.5 to 1.7
    assert d.probes[2.5] == pytest.approx((1.2 - 0.1) + (1.7 - 1.5))


def test_a_response_without_post_cpu_still_needs_the_loop_to_send_it():
    """w opens the connection and leaves it idle by 0.02. a [1.0, 1.1] queries [1.1, 1.3] while b holds
    the loop [1.1, 3.1]: a answers at 3.1, not 1.3."""
    d = Driver(scenario())
    d.send(0.0, cpu=0.01, query=0.01)
    a = d.send(1.0, cpu=0.1, query=0.2)
    b = d.send(1.05, cpu=2.0)
    d.run()
    assert d.outcome(b) == ("ok", pytest.approx(3.1)) and d.outcome(a) == ("ok", pytest.approx(3.1))


def test_an_acquire_timeout_answers_when_the_loop_gets_to_it():
    """Pool of 1, response_cpu 0.01. a [0, 0.1] opens the connection; b [0.1, 0.14] waits for it from
    0.14; a's READY [0.14, 0.14] sends its 5 s query; c holds the loop [0.15, 2.16] (2 s + its
    response). b's 1 s timeout fires at 1.14, its 503 task runs [2.16, 2.17]."""
    d = Driver(scenario(instances=loop(response_cpu=0.01),
                        database={"pool": {"max": 1, "acquire_timeout": 1.0}}))
    a = d.send(0.0, cpu=0.1, query=5.0)
    b = d.send(0.0, cpu=0.04)
    b.queries = [0.1]
    c = d.send(0.15, cpu=2.0)
    d.run()
    assert d.outcome(b) == ("pool_timeout", pytest.approx(2.17))
    assert d.outcome(c) == ("ok", pytest.approx(2.16))
    assert d.outcome(a) == ("ok", pytest.approx(5.15))


def test_multiple_queries_each_reply_is_a_loop_task():
    """Two queries of 0.2 on one connection: the second is sent by the first reply's task; a hog
    between them delays it. a: [0, 0.1], q1 [0.1, 0.3]; b hog [0.12, 1.12]; reply1 [1.12, 1.12], q2
    [1.12, 1.32], reply2 -> done 1.32."""
    d = Driver(scenario())
    a = d.send(0.0, cpu=0.1, query=0.2)
    a.queries = [0.2, 0.2]
    d.send(0.12, cpu=1.0)
    d.run()
    assert d.outcome(a) == ("ok", pytest.approx(1.32))


# -- 3. the loop's own work per request, per query, per wake-up --------------------------------
def test_request_response_and_wakeup_cpu_on_the_loop():
    """request 0.01, response 0.02, wake-up 0.005 (only when the loop was idle).
    a at 0: 0.005 + 0.01 + 0.1 + 0.02 = 0.135; b at 0.05 queued: [0.135, 0.265]; c at 1 wakes it: 1.135."""
    d = Driver(scenario(instances=loop(request_cpu=0.01, response_cpu=0.02, wakeup_cpu=0.005)))
    a, b, c = d.send(0.0, cpu=0.1), d.send(0.05, cpu=0.1), d.send(1.0, cpu=0.1)
    d.probe(2.0, lambda: (d.fleet.instances[0].proc.busy_total(2.0), d.fleet.instances[0].proc.wakeups,
                          d.fleet.instances[0].proc.handler))
    d.run()
    assert [d.outcome(r)[1] for r in (a, b, c)] == pytest.approx([0.135, 0.265, 1.135])
    assert d.probes[2.0] == pytest.approx((0.135 + 0.13 + 0.135, 2, 0.3))


def test_query_cpu_is_paid_when_the_reply_is_handled():
    """query_cpu 0.003: a [0, 0.1], query [0.1, 0.3], reply 0.003 + post 0.05 -> 0.353."""
    d = Driver(scenario(instances=loop(query_cpu=0.003)))
    a = d.send(0.0, cpu=0.1, query=0.2, post=0.05)
    d.run()
    assert d.outcome(a) == ("ok", pytest.approx(0.353))


def test_turned_away_requests_pay_request_reject_and_response_cpu():
    sc = scenario(instances={"event_loop": {"request_cpu": 0.01, "response_cpu": 0.02}, "reject_cpu": 0.005,
                             "request_timeout": None},
                  rate_limit={"limits": {"auth": 1}})
    d = Driver(sc)
    ok = d.send(0.0, cpu=0.1, tier="auth", client=7)
    limited = d.send(0.0, cpu=0.1, tier="auth", client=7)
    d.run()
    assert d.outcome(ok) == ("ok", pytest.approx(0.13))
    assert d.outcome(limited) == ("rate_limited", pytest.approx(0.13 + 0.035))


# -- 4. latency outside the server ---------------------------------------------------------------
@pytest.mark.parametrize("outside", [0.0, 0.0023])
def test_latency_outside_the_server_adds_to_every_response(outside):
    d = Driver(scenario(load_balancer={"latency": outside}))
    a, b = d.send(0.0, cpu=0.1), d.send(0.05, cpu=0.1)
    d.run()
    lat = d.model.metrics.latency_ms()
    assert lat["mean"] == pytest.approx(1000 * ((0.1 + outside) + (0.15 + outside)) / 2, rel=1e-9)
    assert d.outcome(b) == ("ok", pytest.approx(0.2))       # the server's timeline is unchanged


# -- 5. processes vs vCPUs, CPU as the platform measures it --------------------------------------------
def test_one_saturated_loop_on_a_two_vcpu_plan_shows_half_the_cpu():
    """Pro (2 vCPUs), one process busy [0, 10]: cpu_util 0.5, event-loop utilisation 1.0 in [0, 10]."""
    d = Driver(scenario(instances={"plan": "pro", "request_timeout": None}))
    d.send(0.0, cpu=10.0)
    d.run()
    row = d.model.metrics.rows[0]
    assert (row["t_end"], row["cpu_util"], row["elu"]) == (10.0, pytest.approx(0.5), pytest.approx(1.0))


def test_two_processes_take_turns_and_fill_both_vcpus():
    d = Driver(scenario(instances={"plan": "pro", "processes": 2, "request_timeout": None}))
    a, b, c = d.send(0.0, cpu=10.0), d.send(0.0, cpu=10.0), d.send(0.0, cpu=1.0)
    d.run()
    assert d.outcome(a)[1] == d.outcome(b)[1] == 10.0          # one each: round robin
    assert d.outcome(c)[1] == pytest.approx(11.0)              # behind the first process's 10 s
    assert {a.proc, b.proc} == set(d.fleet.instances[0].procs) and c.proc is a.proc
    row = d.model.metrics.rows[0]
    assert row["cpu_util"] == pytest.approx(1.0) and row["elu"] == pytest.approx(1.0)


def test_more_processes_than_vcpus_share_the_cores():
    """4 processes on 2 vCPUs: each runs at half speed, 1 s of CPU takes 2 s; CPU reads 100%."""
    d = Driver(scenario(instances={"plan": "pro", "processes": 4, "request_timeout": None}))
    reqs = [d.send(0.0, cpu=5.0) for _ in range(4)]
    d.run()
    assert [d.outcome(r)[1] for r in reqs] == [10.0] * 4
    assert d.model.metrics.rows[0]["cpu_util"] == pytest.approx(1.0)


def test_helper_threads_count_in_the_cpu_metric_but_never_delay_the_loop():
    d = Driver(scenario(instances={"plan": "pro", "request_timeout": None, "event_loop": {"helper_cpu": 0.2}}))
    a = d.send(0.0, cpu=10.0)
    d.run()
    assert d.outcome(a) == ("ok", 10.0)
    assert d.model.metrics.rows[0]["cpu_util"] == pytest.approx(0.5 * 1.2)


def test_socket_requests_of_a_session_stay_on_one_process():
    from capsim.models.request import Request
    d = Driver(scenario(instances={"plan": "pro", "processes": 2, "request_timeout": None}))
    inst = lambda: d.fleet.instances[0]
    reqs = []
    for t in (0.0, 1.0, 2.0):
        r = Request(t, 0, 0.1, 0.0, None, 5, None)
        reqs.append(r)
        d.at(t, lambda r=r: d.model.route(r, inst(), 5))
    d.run()
    assert {r.proc for r in reqs} == {inst().procs[5 % 2]}


# -- 6. opening a connection costs time off the loop and CPU on it --------------------------------------
def test_a_new_connection_costs_connect_time_then_connect_cpu_on_the_loop():
    """connect_time 0.05, connect_cpu 0.01. a [0, 0.1] opens a connection, ready at 0.15; b holds the loop
    [0.12, 0.22]; a's READY task [0.22, 0.23] sends the query [0.23, 0.43]; reply -> done 0.43."""
    d = Driver(scenario(instances=loop(connect_cpu=0.01), database={"connect_time": 0.05}))
    a = d.send(0.0, cpu=0.1, query=0.2)
    b = d.send(0.12, cpu=0.1)
    d.probe(1.0, lambda: d.fleet.instances[0].proc.busy_total(1.0))
    d.run()
    assert d.outcome(b) == ("ok", pytest.approx(0.22)) and d.outcome(a) == ("ok", pytest.approx(0.43))
    assert d.probes[1.0] == pytest.approx(0.1 + 0.1 + 0.01)


# -- crashes and outages on the new path -------------------------------------------------------------------
def test_a_crash_ends_queued_and_running_tasks_and_handed_over_waiters():
    """a holds the pool's only connection; b waits; c queues behind a hog; the crash at 1.0 ends all four."""
    sc = scenario(faults={"crashes": [{"at": 1.0, "instance": 0}]}, instances={"restart_after": 1000.0,
                                                                              "request_timeout": None})
    d = Driver(sc)
    reqs = [d.send(0.0, cpu=0.1, query=5.0), d.send(0.0, cpu=0.1, query=0.1), d.send(0.3, cpu=2.0),
            d.send(0.4, cpu=0.1)]
    s = d.run()
    assert [d.outcome(r) for r in reqs] == [("crashed", 1.0)] * 4
    proc = d.fleet.instances[0].proc
    assert (proc.running, len(proc.queue), proc.pool.in_use, proc.pool.waiting, d.model.db.connections) == (0, 0, 0, 0, 0)
    assert conserved(s)
