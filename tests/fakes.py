"""Fakes shared by unit tests."""
from __future__ import annotations

import datetime as dt

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


class FakeClock:
    """Monotonic time that only moves when something sleeps; wall time fixed at `now`."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(round(s, 3))
        self.t += s
