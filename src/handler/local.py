"""Run the real Lambda handler locally, as `sam local invoke` would, without Docker.

`invoke(event)` calls the renewer's `lambda_handler` (or the handler given) in this process with a
`LocalContext`, the handler's logs on stderr and its result returned, so the caller can print the
result alone on stdout, as `sam local invoke` does. `certrenew invoke EVENT`, `make demo`, the
memory benchmark and the tests all run the handler this way: the same code path as in Lambda.

`invoke_function(config, event)` runs a function as template.yaml configures it
(`acme_flow.lambda_template.FunctionConfig`, `certrenew invoke --function NAME`): the Lambda
environment variables and the function's own over the caller's environment, the working
directory and import path at the code directory (Lambda's task root), the handler module imported
after that (its import-time settings read the function's environment, as in a cold start), a
context with the function's name, memory and timeout, and START/END/REPORT lines on stderr like
`sam local invoke`'s. Lambda stops a function at its timeout and its memory size; here the run
completes and the report says that the deployed function would have been stopped.

- `LocalContext`: enough of the Lambda context object for the handler and Powertools; its
  name, timeout and memory are settable, the remaining time counts down on a monotonic clock.
- `logs_to_stderr()`: moves the `certrenew` logger's stdout handlers (Powertools' JSON logs) to
  stderr.

Public API: the CLI and the development tooling (devstack/, bench/) import these names, never the
CLI's internals.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, TextIO

if TYPE_CHECKING:
    from acme_flow.lambda_template import FunctionConfig

DEFAULT_TIMEOUT = 900.0  # seconds: the Lambda maximum
DEFAULT_MEMORY_MB = 512
LOCAL_ACCOUNT = "000000000000"

Handler = Callable[[Any, Any], Any]


class LocalContext:
    """Enough of the Lambda context object for the handler and Powertools."""

    function_version = "$LATEST"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, *, memory_mb: int = DEFAULT_MEMORY_MB,
                 clock: Callable[[], float] | None = None, function_name: str = "certrenew-local",
                 request_id: str = "local-invoke", region: str = "us-east-1") -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._clock = clock or time.monotonic
        self._end = self._clock() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - self._clock()) * 1000))


def logs_to_stderr() -> None:
    """Send the `certrenew` logs that go to stdout (Powertools' JSON logs) to stderr instead."""
    for handler in logging.getLogger("certrenew").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def invoke(event: Any, *, timeout: float = DEFAULT_TIMEOUT, handler: Handler | None = None) -> dict:
    """Run `handler` (default: the renewer's `lambda_handler`) on `event` with a `LocalContext` of
    `timeout` seconds; logs go to stderr, the handler's result is returned (a run report, or an
    SQS partial batch response)."""
    if handler is None:
        # imported when it runs, not with this module: invoke_function sets the environment first
        from .app import lambda_handler as handler
    logs_to_stderr()  # after the import: Powertools' logger gets its stdout handler there
    return handler(event, LocalContext(timeout))


# ------------------------------------------------------------------------------ as configured

def lambda_environment(config: FunctionConfig, caller_env: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment (credentials, endpoint, CA bundle), the variables Lambda sets, then
    the function's Environment.Variables over both, as Lambda sets them."""
    region = caller_env.get("AWS_REGION") or caller_env.get("AWS_DEFAULT_REGION") or "us-east-1"
    runtime = config.runtime or f"python{sys.version_info.major}.{sys.version_info.minor}"
    lambda_vars = {
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(config.timeout)),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": caller_env.get("AWS_DEFAULT_REGION") or region,
        "LAMBDA_TASK_ROOT": str(config.code_dir),
        "_HANDLER": config.handler,
        # as `sam local invoke` sets it: Powertools then keeps X-Ray tracing off (no daemon here)
        "AWS_SAM_LOCAL": "true",
    }
    return {**caller_env, **lambda_vars, **config.variables}


@dataclass(frozen=True)
class Invocation:
    """An invocation's result and its REPORT figures."""

    result: Any
    request_id: str
    duration_ms: float
    init_ms: float | None
    memory_mb: int
    max_memory_mb: int
    timeout: float

    @property
    def timed_out(self) -> bool:
        return self.duration_ms > self.timeout * 1000

    @property
    def out_of_memory(self) -> bool:
        return self.max_memory_mb > self.memory_mb

    def report_line(self) -> str:
        init = f"Init Duration: {self.init_ms:.2f} ms\t" if self.init_ms is not None else ""
        line = (f"REPORT RequestId: {self.request_id}\t{init}Duration: {self.duration_ms:.2f} ms\t"
                f"Billed Duration: {math.ceil(self.duration_ms)} ms\tMemory Size: {self.memory_mb} MB\t"
                f"Max Memory Used: {self.max_memory_mb} MB")
        if self.timed_out:
            line += "\tStatus: timeout"
        elif self.out_of_memory:
            line += "\tStatus: error\tError Type: Runtime.OutOfMemory"
        return line

    def stopped_because(self) -> str | None:
        """Why the deployed function would have been stopped, or None."""
        if self.timed_out:
            return (f"Task timed out after {self.timeout:.2f} seconds: the deployed function would have been "
                    f"stopped (this run took {self.duration_ms / 1000:.2f} s; Timeout in template.yaml)")
        if self.out_of_memory:
            return (f"Max Memory Used {self.max_memory_mb} MB is over the function's Memory Size {self.memory_mb} MB: "
                    "the deployed function would have been stopped (MemorySize in template.yaml)")
        return None


def peak_memory_mb() -> int:
    """This process's peak resident memory (what Lambda reports as Max Memory Used), in MB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return math.ceil(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))


def invoke_function(config: FunctionConfig, event: Any, *, caller_env: Mapping[str, str] | None = None,
                    log: TextIO | None = None, clock: Callable[[], float] = time.perf_counter,
                    memory: Callable[[], int] = peak_memory_mb) -> Invocation:
    """Run the function `config` describes on `event`, as Lambda would (see the module docstring);
    START, END and REPORT go to `log` (stderr), the result is returned."""
    log = log or sys.stderr
    request_id = str(uuid.uuid4())
    env = lambda_environment(config, os.environ if caller_env is None else caller_env)
    with _lambda_process(env, config.code_dir):
        module_name, _, attribute = config.handler.rpartition(".")
        fresh = module_name not in sys.modules
        started = clock()
        handler = getattr(importlib.import_module(module_name), attribute)
        init_ms = (clock() - started) * 1000 if fresh else None  # a cold start, as Lambda reports it
        logs_to_stderr()
        context = LocalContext(config.timeout, memory_mb=config.memory_mb, function_name=config.name,
                               request_id=request_id, region=env["AWS_REGION"])
        print(f"START RequestId: {request_id} Version: $LATEST", file=log, flush=True)
        started = clock()
        result: Any = None
        try:
            result = handler(event, context)
        finally:
            done = Invocation(result, request_id, (clock() - started) * 1000, init_ms, config.memory_mb,
                              memory(), config.timeout)
            print(f"END RequestId: {request_id}\n{done.report_line()}", file=log, flush=True)
    return done


@contextlib.contextmanager
def _lambda_process(env: Mapping[str, str], code_dir: Any) -> Iterator[None]:
    """os.environ, the working directory and sys.path as in Lambda's task root; restored afterwards."""
    saved_env, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    os.environ.clear()
    os.environ.update(env)
    sys.path.insert(0, str(code_dir))
    try:
        os.chdir(code_dir)
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
