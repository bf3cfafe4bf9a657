"""The fan-out queue: one SQS message per certificate, sent ten at a time (SendMessageBatch).

A message body is `{"certificate": "<name>"}` (plus `"force": true` for a forced run); the
worker function consumes them. `send` never raises for a rejected message: it returns what could
not be queued, so the caller reports those certificates as failed and queues the rest.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("certrenew.queue")

BATCH = 10  # SendMessageBatch takes at most ten entries


def message_body(name: str, force: bool = False) -> str:
    body: dict[str, Any] = {"certificate": name}
    if force:
        body["force"] = True
    return json.dumps(body, sort_keys=True)


class SqsQueue:
    def __init__(self, sqs, queue_url: str, attempts: int = 3) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._attempts = attempts

    def send(self, names: Iterable[str], force: bool = False) -> dict[str, str]:
        """Queue one message per name; returns {name: why} for those that could not be queued."""
        failed: dict[str, str] = {}
        names = list(names)
        for start in range(0, len(names), BATCH):
            failed.update(self._send_batch(names[start:start + BATCH], force))
        queued = len(names) - len(failed)
        log.info("queued %d certificate(s) on %s%s", queued, self.queue_url,
                 f"; {len(failed)} could not be queued" if failed else "")
        return failed

    def _send_batch(self, names: list[str], force: bool) -> dict[str, str]:
        pending = {str(i): name for i, name in enumerate(names)}
        why: dict[str, str] = {}
        for _ in range(self._attempts):
            entries = [{"Id": i, "MessageBody": message_body(n, force)} for i, n in pending.items()]
            try:
                got = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:  # botocore has retried throttling already
                return {n: f"could not queue: {exc}" for n in pending.values()}
            retry = {}
            for failure in got.get("Failed", []):
                name = pending[failure["Id"]]
                why[name] = f"could not queue: {failure.get('Code')}: {failure.get('Message', '')}".rstrip(": ")
                if not failure.get("SenderFault"):
                    retry[failure["Id"]] = name
            for ok in got.get("Successful", []):
                why.pop(pending[ok["Id"]], None)
            if not retry:
                break
            pending = retry
        return why
