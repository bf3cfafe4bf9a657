"""Run the real Lambda handler locally, as `sam local invoke` would, without Docker.

`invoke(event)` calls the renewer's `lambda_handler` (or the handler given) in this process with a
`LocalContext`, the handler's logs on stderr and its result returned, so the caller can print the
result alone on stdout, as `sam local invoke` does. `certrenew invoke EVENT`, `make demo`, the
memory benchmark and the tests all run the handler this way: the same code path as in Lambda.

- `LocalContext`: enough of the Lambda context object for the handler and Powertools; its
  timeout and memory are settable, the remaining time counts down on a monotonic clock.
- `logs_to_stderr()`: moves the `certrenew` logger's stdout handlers (Powertools' JSON logs) to
  stderr.

Public API: the CLI and the development tooling (devstack/, bench/) import these names, never the
CLI's internals.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable

from .app import lambda_handler

DEFAULT_TIMEOUT = 900.0  # seconds: the Lambda maximum
DEFAULT_MEMORY_MB = 512

Handler = Callable[[Any, Any], Any]


class LocalContext:
    """Enough of the Lambda context object for the handler and Powertools."""

    function_name = "certrenew-local"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:certrenew-local"
    aws_request_id = "local-invoke"
    log_group_name = "/aws/lambda/certrenew-local"
    log_stream_name = "local"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, *, memory_mb: int = DEFAULT_MEMORY_MB,
                 clock: Callable[[], float] | None = None) -> None:
        self.memory_limit_in_mb = memory_mb
        self._clock = clock or time.monotonic
        self._end = self._clock() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - self._clock()) * 1000))


def logs_to_stderr() -> None:
    """Send the `certrenew` logs that go to stdout (Powertools' JSON logs) to stderr instead."""
    for handler in logging.getLogger("certrenew").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def invoke(event: Any, *, timeout: float = DEFAULT_TIMEOUT, handler: Handler = lambda_handler) -> dict:
    """Run `handler` on `event` with a `LocalContext` of `timeout` seconds; logs go to stderr,
    the handler's result is returned (a run report, or an SQS partial batch response)."""
    logs_to_stderr()
    return handler(event, LocalContext(timeout))
