"""Settings of the Lambda entry points that the core does not need (fan-out, events, alarms).

| variable | meaning |
|---|---|
| `CERTRENEW_QUEUE_URL` | SQS queue of the fan-out worker; unset: every run renews inline |
| `CERTRENEW_FANOUT_THRESHOLD` | with a queue: fan out when more certificates than this are due (default 10; 0: whenever any is due) |
| `CERTRENEW_EVENT_BUS` | EventBridge bus for one event per certificate outcome (unset: no events) |
| `CERTRENEW_EXPIRING_DAYS` | fewer days left than this makes a certificate "expiring" (default 14) |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from acme_flow.errors import SettingsError

DEFAULT_FANOUT_THRESHOLD = 10
DEFAULT_EXPIRING_DAYS = 14.0


@dataclass(frozen=True)
class HandlerSettings:
    queue_url: str | None = None
    fanout_threshold: int = DEFAULT_FANOUT_THRESHOLD
    event_bus: str | None = None
    expiring_days: float = DEFAULT_EXPIRING_DAYS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerSettings:
        env = os.environ if env is None else env
        return cls(
            queue_url=env.get("CERTRENEW_QUEUE_URL") or None,
            fanout_threshold=_number(env, "CERTRENEW_FANOUT_THRESHOLD", DEFAULT_FANOUT_THRESHOLD, int),
            event_bus=env.get("CERTRENEW_EVENT_BUS") or None,
            expiring_days=_number(env, "CERTRENEW_EXPIRING_DAYS", DEFAULT_EXPIRING_DAYS, float),
        )

    def fans_out(self, due: int) -> bool:
        """Whether a run with `due` certificates to renew goes through the queue."""
        return self.queue_url is not None and due > 0 and due > self.fanout_threshold


def _number(env: Mapping[str, str], name: str, default, kind):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative")
    return value
