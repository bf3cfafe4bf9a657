"""Running one step for many certificates at once, on a small thread pool."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_all(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """`fn` of every item, in order, concurrently. An exception `fn` lets out is a bug of the
    step (steps settle their own failures): the first is raised here, once every item has run
    (none is cancelled half-way through a run)."""
    outcomes = map_settled(fn, items, workers)
    failed = next((o for o in outcomes if isinstance(o, Exception)), None)
    if failed is not None:
        raise failed
    return outcomes  # type: ignore[return-value]  # no Exception among them


def map_settled(fn: Callable[[T], R], items: list[T], workers: int) -> list[R | Exception]:
    """`fn` of every item concurrently; each result is the value or the exception it raised."""
    if len(items) <= 1 or workers <= 1:
        return [settle(lambda item=item: fn(item)) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(lambda item: settle(lambda: fn(item)), items))


def settle(thunk: Callable[[], R]) -> R | Exception:
    try:
        return thunk()
    except Exception as exc:  # every failure belongs to its certificate
        return exc


class Background(Generic[R]):
    """A step started on a thread of its own while the caller goes on; `join` waits for it and
    returns its value. The step settles its own failures: one it lets out is a bug, raised by `join`."""

    def __init__(self, fn: Callable[[], R] | None, name: str, value: R | None = None) -> None:
        self._outcome: list[R | Exception] = [] if fn else [value]  # type: ignore[list-item]
        self._thread = threading.Thread(target=lambda: self._outcome.append(settle(fn)), name=name,
                                        daemon=True) if fn else None
        if self._thread:
            self._thread.start()

    @classmethod
    def done(cls, value: R) -> Background[R]:
        """A step with nothing left to do: `join` returns `value` at once (no thread)."""
        return cls(None, "done", value)

    def join(self) -> R:
        if self._thread:
            self._thread.join()
        (outcome,) = self._outcome
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
