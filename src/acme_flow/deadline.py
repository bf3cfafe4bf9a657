"""The one wait primitive: a `Deadline` and its `poll` and `retry`, the only places that wait.

Every wait goes through the injected clock (`SystemClock` in production, a fake in tests) and
never past the deadline, which comes from the Lambda's remaining time (or a per-call budget where
an adapter has no run deadline).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar, Union

from .errors import DeadlineExceeded

log = logging.getLogger("certrenew.wait")
T = TypeVar("T")
# The nominal backoff delay of a retry -> the wait actually taken (see `spread`).
Jitter = Callable[[float], float]
# Whether an exception is worth another try: exception classes, or a predicate.
Retryable = Union[type[BaseException], tuple[type[BaseException], ...], Callable[[BaseException], bool]]


class SystemClock:
    """Wall time, monotonic time and sleep of the machine: the clock of a real run."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class Wait:
    """What a poll's check returns when it is not done and the other side said how long to wait
    before the next look (a Retry-After): that wait replaces the backoff interval once."""

    seconds: float


def spread(low: float, high: float, rng: random.Random | None = None) -> Jitter:
    """Jitter that waits a random `low` to `high` times the nominal delay (`rng`: a seeded
    `random.Random` makes it deterministic)."""
    source: Any = rng or random
    return lambda delay: delay * source.uniform(low, high)


class Deadline:
    """A point in monotonic time by which a wait must give up. The clock is given."""

    def __init__(self, clock: Any, seconds: float) -> None:
        self._clock = clock
        self._end = clock.monotonic() + max(0.0, seconds)

    def remaining(self) -> float:
        return max(0.0, self._end - self._clock.monotonic())

    def within(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now, never later than this one."""
        return Deadline(self._clock, min(seconds, self.remaining()))

    def expired(self) -> bool:
        return self.remaining() <= 0

    def poll(self, check: Callable[[], T | Wait | None], what: str, *, interval: float,
             max_interval: float | None = None, backoff: float = 1.0, wait_first: bool = False,
             last_look: bool = False) -> T:
        """Call `check` until it is done, and return what it returned.

        `check` returns None (or a `Wait`, to wait that long next) while not done; anything
        else is done. Between looks: `interval`, times `backoff` after each wait, at most
        `max_interval`. `wait_first`: wait before the first look. When the next wait would reach
        the deadline, wait out what is left, then (`last_look`) take one last look, and raise
        DeadlineExceeded(what) if still not done.
        """
        result: T | Wait | None = None if wait_first else check()
        delay = interval
        while result is None or isinstance(result, Wait):
            wait = result.seconds if isinstance(result, Wait) else delay
            if wait >= self.remaining():
                self._clock.sleep(self.remaining())
                result = check() if last_look else None
                if result is None or isinstance(result, Wait):
                    raise DeadlineExceeded(what)
                break
            self._clock.sleep(max(0.0, wait))
            delay = min(delay * backoff, max_interval if max_interval is not None else math.inf)
            result = check()
        return result

    def retry(self, fn: Callable[[], T], what: str, *, retryable: Retryable, attempts: int, base: float,
              factor: float = 2.0, cap: float = math.inf, jitter: Jitter | None = None,
              asked: Callable[[BaseException], float | None] | None = None,
              longest: float = math.inf) -> T:
        """Call `fn`; on a `retryable` exception wait and call it again, `attempts` calls at most.

        The wait before try n+1 is `base * factor**(n-1)`, at most `cap`, through `jitter`; or
        what the error itself asked for (`asked(exc)`, e.g. a Retry-After). A wait over `longest`
        is not taken: the error is raised at once. The last error is raised when the attempts
        are used up, a non-retryable one at once; a wait that would reach the deadline raises
        DeadlineExceeded(what) (from the last error) without waiting.
        """
        is_retryable = _predicate(retryable)
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except Exception as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
                wait = asked(exc) if asked is not None else None
                if wait is None:
                    nominal = min(cap, base * factor ** (attempt - 1))
                    wait = jitter(nominal) if jitter is not None else nominal
                if wait > longest:
                    raise
                if wait >= self.remaining() and wait > 0:
                    raise DeadlineExceeded(what) from exc
                log.warning("%s; trying again in %.1f s (try %d of %d: %s)", exc, wait, attempt + 1, attempts, what)
                if wait > 0:
                    self._clock.sleep(wait)
        raise AssertionError("unreachable")


def _predicate(retryable: Retryable) -> Callable[[BaseException], bool]:
    if isinstance(retryable, (type, tuple)):
        return lambda exc: isinstance(exc, retryable)
    return retryable
