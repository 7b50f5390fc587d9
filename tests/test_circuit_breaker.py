"""The seed's circuit breaker and peak-load shedding on exact small traces."""
import math

import pytest
from pydantic import ValidationError

from capsim.models.circuit_breaker import CLOSED, HALF_OPEN, OPEN, BreakerConfig, CircuitBreaker, LoadShedder


def breaker(**kw):
    return CircuitBreaker(BreakerConfig(**kw))


def fail(cb, *times):
    for t in times:
        cb.failure(t)


# --- configuration -------------------------------------------------------------

def test_defaults_are_the_seeds():
    c = BreakerConfig()
    assert (c.failure_threshold, c.recovery_timeout) == (5, 60.0)
    assert (c.shed_rps, c.shed_window, c.shed_duration) == (1000.0, 1.0, 300.0)


def test_config_parses_units():
    c = BreakerConfig.model_validate({"recovery_timeout": "90s", "shed_rps": "600/m",
                                      "shed_window": "500ms", "shed_duration": "5m"})
    assert (c.recovery_timeout, c.shed_rps, c.shed_window, c.shed_duration) == (90.0, 10.0, 0.5, 300.0)
    assert BreakerConfig(shed_rps=None).shed_rps is None


@pytest.mark.parametrize("bad", [{"failure_threshold": 0}, {"recovery_timeout": 0}, {"shed_rps": 0},
                                 {"shed_window": "0s"}, {"shed_duration": -1}, {"timeout": 5}])
def test_config_rejects(bad):
    with pytest.raises(ValidationError):
        BreakerConfig.model_validate(bad)


# --- breaker -------------------------------------------------------------------

def test_fifth_failure_opens_then_fails_fast_for_the_recovery_timeout():
    cb = breaker()
    fail(cb, 1, 2, 3, 4)
    assert cb.state == CLOSED and cb.failures == 4 and cb.allow(4.5)
    cb.failure(10.0)
    assert cb.state == OPEN and cb.last_failure == 10.0
    assert [cb.allow(t) for t in (10.0, 30.0, 69.999, 70.0)] == [False] * 4   # 70 - 10 = 60, not > 60
    assert cb.rejected == 4 and cb.state == OPEN
    assert cb.allow(70.001) is True and cb.state == HALF_OPEN


def test_half_open_success_closes_and_resets():
    cb = breaker()
    fail(cb, 1, 2, 3, 4, 5)
    assert cb.allow(65.5) and cb.state == HALF_OPEN
    assert cb.allow(65.6)                  # the seed does not limit trial calls in half-open
    cb.success(65.7)
    assert cb.state == CLOSED and cb.failures == 0
    fail(cb, 66, 67, 68, 69)
    assert cb.state == CLOSED              # needs 5 fresh failures again
    cb.failure(70)
    assert cb.state == OPEN and cb.last_failure == 70


def test_half_open_failure_reopens_at_once_with_a_new_last_failure():
    cb = breaker()
    fail(cb, 1, 2, 3, 4, 5)
    assert cb.allow(66.0) and cb.state == HALF_OPEN
    cb.failure(66.5)                       # the count is 6: never reset on opening
    assert cb.state == OPEN and cb.last_failure == 66.5 and cb.failures == 6
    assert cb.allow(126.5) is False and cb.allow(126.6) is True


def test_a_success_in_between_resets_the_count():
    cb = breaker()
    fail(cb, 1, 2, 3)
    cb.success(3.5)
    fail(cb, 4, 5, 6, 7)
    assert cb.state == CLOSED and cb.failures == 4
    assert list(cb.transitions) == [] and cb.counts == {}   # success when closed: no transition


def test_failures_while_open_push_the_recovery_on():
    cb = breaker()
    fail(cb, 1, 2, 3, 4, 5)
    cb.failure(30.0)                       # a call already in flight when it opened
    assert cb.state == OPEN and cb.last_failure == 30.0
    assert cb.allow(65.5) is False and cb.allow(90.5) is True


def test_success_while_open_closes_it():
    cb = breaker()
    fail(cb, 1, 2, 3, 4, 5)
    cb.success(6.0)                        # a call in flight when it opened succeeded
    assert cb.state == CLOSED and cb.allow(6.1)


def test_threshold_one():
    cb = breaker(failure_threshold=1, recovery_timeout=2)
    cb.failure(0.0)
    assert cb.state == OPEN and not cb.allow(2.0) and cb.allow(2.5)


def test_transitions_are_recorded_and_bounded():
    cb = breaker()
    fail(cb, 1, 2, 3, 4, 5)
    cb.allow(65.5)
    cb.failure(66)
    cb.allow(126.5)
    cb.success(127)
    assert list(cb.transitions) == [(5, CLOSED, OPEN), (65.5, OPEN, HALF_OPEN), (66, HALF_OPEN, OPEN),
                                    (126.5, OPEN, HALF_OPEN), (127, HALF_OPEN, CLOSED)]
    assert cb.counts == {(CLOSED, OPEN): 1, (OPEN, HALF_OPEN): 2, (HALF_OPEN, OPEN): 1, (HALF_OPEN, CLOSED): 1}
    small = CircuitBreaker(BreakerConfig(failure_threshold=1, recovery_timeout=1), keep=3)
    t = 0.0
    for _ in range(10):                    # open, half-open, closed: 3 transitions per cycle
        small.failure(t)
        small.allow(t + 1.5)
        small.success(t + 1.6)
        t += 2
    assert len(small.transitions) == 3 and small.transitions[-1] == (19.6, HALF_OPEN, CLOSED)
    assert sum(small.counts.values()) == 30


# --- load shedding -------------------------------------------------------------

def shedder(**kw):
    return LoadShedder(BreakerConfig(**{"shed_rps": 10, "shed_window": 1.0, "shed_duration": 300.0, **kw}))


def test_exactly_the_threshold_does_not_shed():
    ls = shedder()
    for k in range(5):                     # 10 per bucket for 5 buckets
        assert all(ls.admit(k + i / 16) for i in range(10))
    assert ls.shed == ls.activations == 0


def test_one_more_sheds_for_exactly_the_duration():
    ls = shedder()
    assert all(ls.admit(i / 16) for i in range(10))
    assert ls.admit(0.75) is False         # the 11th in [0, 1) triggers; it gets the maintenance page
    assert ls.activations == 1 and ls.shedding(0.75)
    assert [ls.admit(t) for t in (0.8, 1.0, 150.0, 300.74)] == [False] * 4
    assert ls.admit(300.75) is True and not ls.shedding(300.75)   # ends exactly shed_duration later
    assert ls.shed == 5 and ls.activations == 1


def test_shedding_can_trigger_again():
    ls = shedder(shed_duration=10.0)
    assert sum(ls.admit(i / 32) for i in range(20)) == 10      # 20 in [0, 0.625): 10 pass
    assert (ls.shed, ls.activations) == (10, 1)                # 10 shed: the trigger and 9 after
    assert ls.admit(10.25) is False                            # on till 0.3125 + 10
    assert ls.admit(10.5) is True and ls.shed == 11
    assert sum(ls.admit(11 + i / 32) for i in range(11)) == 10 and ls.activations == 2


def test_bucket_length_scales_the_threshold():
    ls = shedder(shed_window=0.5)          # 10/s over 0.5 s: 5 per bucket
    assert all(ls.admit(i / 16) for i in range(5))
    assert all(ls.admit(0.5 + i / 16) for i in range(5))       # a new bucket at 0.5
    assert ls.admit(0.9) is False and ls.activations == 1


def test_arrivals_while_shedding_still_count():
    ls = shedder(shed_duration=0.5)
    assert sum(ls.admit(i / 64) for i in range(30)) == 10      # [0, 0.47): trigger at the 11th, 0.15625
    assert ls.shedding(0.6) and not ls.shedding(0.65625)       # off at 0.15625 + 0.5
    assert ls.admit(0.75) is False and ls.activations == 2     # off, but bucket [0, 1) holds 31: on again
    assert ls.admit(1.0) is False                              # on till 1.25, though a new bucket
    assert ls.admit(1.25) is True and ls.shed == 22
    ls2 = shedder(shed_duration=0.5)
    assert sum(ls2.admit(i / 64) for i in range(11)) == 10
    assert ls2.admit(1.0) is True and ls2.activations == 1     # off at 0.65625; a fresh bucket


def test_no_threshold_never_sheds():
    ls = LoadShedder(BreakerConfig(shed_rps=None))
    assert ls.cap == math.inf
    assert all(ls.admit(i * 1e-6) for i in range(100000))
    assert ls.shed == ls.activations == 0
