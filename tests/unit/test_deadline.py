"""The one wait primitive: Deadline.poll and Deadline.retry against a fake clock (no real sleep)."""
from __future__ import annotations

import random

import pytest

from acme_flow.deadline import Deadline, Wait, spread
from acme_flow.errors import DeadlineExceeded
from fakes import FakeClock


class Flaky:
    """Fails `failures` times with `error`, then returns "done"; records the clock at each call."""

    def __init__(self, clock, failures, error=ConnectionError):
        self.clock, self.left, self.error, self.calls = clock, failures, error, []

    def __call__(self):
        self.calls.append(self.clock.t)
        if self.left:
            self.left -= 1
            raise self.error(f"failure {len(self.calls)}")
        return "done"


def done_after(clock, looks, answer="ready", not_yet=None):
    """A poll check that is done on its `looks`-th call; records the clock at each call."""
    seen = []

    def check():
        seen.append(clock.t)
        return answer if len(seen) >= looks else not_yet
    check.seen = seen
    return check


# ---- poll -------------------------------------------------------------------------------------


def test_poll_returns_at_once_when_the_first_look_is_done():
    clock = FakeClock()
    assert Deadline(clock, 10).poll(done_after(clock, 1), "x", interval=1) == "ready"
    assert clock.sleeps == []


def test_poll_backs_off_to_a_cap():
    clock = FakeClock()
    check = done_after(clock, 7)
    Deadline(clock, 600).poll(check, "x", interval=0.5, backoff=2, max_interval=5)
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert check.seen == [0.0, 0.5, 1.5, 3.5, 7.5, 12.5, 17.5]


def test_poll_can_wait_before_the_first_look():
    clock = FakeClock()
    check = done_after(clock, 2)
    Deadline(clock, 60).poll(check, "x", interval=0.5, backoff=1.5, wait_first=True)
    assert clock.sleeps == [0.5, 0.75] and check.seen == [0.5, 1.25]


def test_poll_never_sleeps_past_the_deadline_and_names_what_it_waited_for():
    clock = FakeClock()
    check = done_after(clock, 1_000)
    with pytest.raises(DeadlineExceeded, match="deadline reached while waiting for the order"):
        Deadline(clock, 10).poll(check, "the order", interval=3)
    assert clock.t == pytest.approx(10) and sum(clock.sleeps) == pytest.approx(10)
    assert check.seen == [0, 3, 6, 9], "no look at the deadline unless asked for"


def test_poll_takes_one_last_look_at_the_deadline_when_asked():
    clock = FakeClock()
    check = done_after(clock, 5)
    assert Deadline(clock, 10).poll(check, "x", interval=3, last_look=True) == "ready"
    assert check.seen == [0, 3, 6, 9, 10] and clock.t == pytest.approx(10)

    clock = FakeClock()
    never = done_after(clock, 1_000)
    with pytest.raises(DeadlineExceeded):
        Deadline(clock, 10).poll(never, "x", interval=3, last_look=True)
    assert never.seen[-1] == pytest.approx(10)


def test_poll_honours_a_wait_the_check_asks_for_and_keeps_backing_off():
    clock = FakeClock()
    answers = iter([Wait(7.0), None, Wait(0.0), "ready"])
    assert Deadline(clock, 60).poll(lambda: next(answers), "x", interval=1, backoff=2) == "ready"
    assert clock.sleeps == [7.0, 2.0, 0.0], "Retry-After replaces the interval once; the backoff goes on"


def test_poll_fails_at_once_when_the_asked_wait_passes_the_deadline():
    clock = FakeClock()
    with pytest.raises(DeadlineExceeded):
        Deadline(clock, 30).poll(lambda: Wait(3600.0), "x", interval=1)
    assert clock.t == pytest.approx(30), "waits out the deadline, not the hour asked for"


# ---- retry ------------------------------------------------------------------------------------


def test_retry_returns_the_first_success_with_exponential_backoff():
    clock = FakeClock()
    fn = Flaky(clock, 3)
    assert Deadline(clock, 60).retry(fn, "x", retryable=ConnectionError, attempts=5, base=1) == "done"
    assert clock.sleeps == [1.0, 2.0, 4.0] and fn.calls == [0, 1, 3, 7]


def test_retry_backoff_is_capped():
    clock = FakeClock()
    Deadline(clock, 600).retry(Flaky(clock, 5), "x", retryable=ConnectionError, attempts=6, base=1, factor=3, cap=10)
    assert clock.sleeps == [1.0, 3.0, 9.0, 10.0, 10.0]


def test_retry_raises_the_last_error_when_the_attempts_are_used_up():
    clock = FakeClock()
    fn = Flaky(clock, 10)
    with pytest.raises(ConnectionError, match="failure 4"):
        Deadline(clock, 60).retry(fn, "x", retryable=ConnectionError, attempts=4, base=0.5)
    assert len(fn.calls) == 4 and clock.sleeps == [0.5, 1.0, 2.0]


def test_retry_raises_a_non_retryable_error_at_once():
    clock = FakeClock()
    fn = Flaky(clock, 1, error=KeyError)
    with pytest.raises(KeyError):
        Deadline(clock, 60).retry(fn, "x", retryable=ConnectionError, attempts=4, base=1)
    assert len(fn.calls) == 1 and clock.sleeps == []


def test_retry_takes_a_predicate_for_what_is_retryable():
    clock = FakeClock()
    fn = Flaky(clock, 2, error=ValueError)
    retryable = lambda exc: "failure" in str(exc)  # noqa: E731
    assert Deadline(clock, 60).retry(fn, "x", retryable=retryable, attempts=3, base=1) == "done"


def test_retry_never_sleeps_past_the_deadline():
    clock = FakeClock()
    fn = Flaky(clock, 10)
    with pytest.raises(DeadlineExceeded, match="waiting for the change") as err:
        Deadline(clock, 5).retry(fn, "the change", retryable=ConnectionError, attempts=10, base=1)
    assert clock.sleeps == [1.0, 2.0], "the third wait (4 s) would pass the deadline: not taken"
    assert isinstance(err.value.__cause__, ConnectionError), "the last error is kept as the cause"


def test_retry_honours_the_wait_the_error_asks_for_and_refuses_one_too_long():
    class Throttled(Exception):
        def __init__(self, after):
            super().__init__(f"retry after {after}")
            self.after = after

    clock = FakeClock()
    errors = iter([Throttled(3.0), Throttled(None)])

    def fn():
        error = next(errors, None)
        if error:
            raise error
        return "done"
    assert Deadline(clock, 60).retry(fn, "x", retryable=Throttled, attempts=4, base=1,
                                     asked=lambda exc: exc.after) == "done"
    assert clock.sleeps == [3.0, 2.0], "Retry-After first, then the backoff of the second try"

    clock = FakeClock()
    with pytest.raises(Throttled, match="retry after 3600"):
        Deadline(clock, 7200).retry(lambda: (_ for _ in ()).throw(Throttled(3600.0)), "x", retryable=Throttled,
                                    attempts=4, base=1, asked=lambda exc: exc.after, longest=30)
    assert clock.sleeps == []


def test_retry_jitter_comes_from_an_injectable_random_source():
    def waits(seed):
        clock = FakeClock()
        Deadline(clock, 600).retry(Flaky(clock, 4), "x", retryable=ConnectionError, attempts=5, base=1,
                                   jitter=spread(0.5, 1.5, random.Random(seed)))
        return clock.sleeps

    assert waits(7) == waits(7), "the same seed, the same waits"
    for nominal, wait in zip([1, 2, 4, 8], waits(7)):
        assert 0.5 * nominal <= wait <= 1.5 * nominal


def test_retry_without_waiting_never_sleeps():
    clock = FakeClock()
    fn = Flaky(clock, 2)
    assert Deadline(clock, 0).retry(fn, "x", retryable=ConnectionError, attempts=3, base=0) == "done"
    assert clock.sleeps == [] and len(fn.calls) == 3


def test_within_is_never_later_than_the_outer_deadline():
    clock = FakeClock()
    outer = Deadline(clock, 10)
    assert outer.within(60).remaining() == 10 and outer.within(4).remaining() == 4
    clock.sleep(10)
    assert outer.expired() and outer.within(5).remaining() == 0
