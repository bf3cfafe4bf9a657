"""Settings of the Lambda entry points that the core does not need (fan-out, events, alarms).

| variable | meaning |
|---|---|
| `CERTRENEW_QUEUE_URL` | SQS queue of the fan-out worker; unset: every run renews inline |
| `CERTRENEW_FANOUT_THRESHOLD` | with a queue: fan out when more certificates than this are due (default 10; 0: whenever any is due) |

(`CERTRENEW_EVENT_BUS` and `CERTRENEW_EXPIRING_DAYS` are the core's: `acme_flow.bootstrap.Settings`.)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from acme_flow.bootstrap import env_number

DEFAULT_FANOUT_THRESHOLD = 10


@dataclass(frozen=True)
class HandlerSettings:
    queue_url: str | None = None
    fanout_threshold: int = DEFAULT_FANOUT_THRESHOLD

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HandlerSettings:
        env = os.environ if env is None else env
        return cls(
            queue_url=env.get("CERTRENEW_QUEUE_URL") or None,
            fanout_threshold=env_number(env, "CERTRENEW_FANOUT_THRESHOLD", DEFAULT_FANOUT_THRESHOLD, int),
        )

    def fans_out(self, due: int) -> bool:
        """Whether a run with `due` certificates to renew goes through the queue."""
        return self.queue_url is not None and due > 0 and due > self.fanout_threshold
