"""The thread pool of a run: settled results per item, and bugs that are not swallowed."""
import threading

import pytest

from acme_flow.parallel import map_all, map_settled


def test_map_all_keeps_order_and_raises_an_unexpected_error_after_every_item_ran():
    done, lock = [], threading.Lock()

    def step(i):
        with lock:
            done.append(i)
        if i == 2:
            raise KeyError("a bug in a step")
        return i * 10

    assert map_all(lambda i: i * 10, [3, 1, 2], workers=4) == [30, 10, 20]
    with pytest.raises(KeyError, match="a bug in a step"):
        map_all(step, [1, 2, 3, 4], workers=4)
    assert sorted(done) == [1, 2, 3, 4], "the others still ran"


def test_map_settled_hands_each_failure_back_with_its_item():
    out = map_settled(lambda i: 1 // i, [1, 0, 2], workers=3)
    assert out[0] == 1 and isinstance(out[1], ZeroDivisionError) and out[2] == 0
