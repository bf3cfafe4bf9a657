"""Running one step for many certificates at once, on a small thread pool."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

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
