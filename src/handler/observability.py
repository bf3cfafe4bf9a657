"""Logging, metrics and tracing of the Lambda entry points (Powertools lives here, not in the core).

- `logger`: Powertools JSON logger `certrenew`; the core's `certrenew.*` loggers are its children.
- `metrics`: Powertools Metrics (CloudWatch EMF). EMF documents are printed; `emf_to_stderr()`
  sends them to stderr so stdout keeps only the handler's result (`certrenew invoke` prints the
  result alone on stdout, as `sam local invoke` does). Lambda ships stdout and stderr alike to
  CloudWatch Logs, where the EMF lines become metrics.
- `tracer()`: Powertools Tracer when tracing can work (in Lambda, `POWERTOOLS_TRACE_DISABLED`
  unset, not `sam local`, aws-xray-sdk installed), else a no-op. `phase(name)` opens an X-Ray
  subsegment on the handler's thread; nothing it wraps has its return value recorded, so no
  response (which may hold key material) ever reaches a trace.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
import warnings
from typing import Any, Callable, Iterator

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "certrenew"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "certrenew"

# The core logs to `certrenew.*` loggers: children of this one, so they share its JSON format.
logger = Logger(service="certrenew")
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

_log = logging.getLogger("certrenew.handler")
_TRUE = {"1", "true", "yes", "on"}

Handler = Callable[[Any, Any], Any]


def entry_point(handle: Handler) -> Handler:
    """A Lambda entry point around `handle(event, context)`: Lambda context in the logs, EMF
    metrics flushed at the end (with the cold-start metric), EMF on stderr, a traced phase."""

    @logger.inject_lambda_context(log_event=False)
    @metrics.log_metrics(capture_cold_start_metric=True)
    def measured(event: Any, context: Any) -> Any:
        with phase("handler"):
            return handle(event, context)

    @functools.wraps(handle)
    def lambda_handler(event: Any, context: Any) -> Any:
        with emf_to_stderr(), warnings.catch_warnings():
            # an invocation refused before it measured anything (a malformed event) has nothing to publish
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            return measured(event, context)

    return lambda_handler


@contextlib.contextmanager
def emf_to_stderr() -> Iterator[None]:
    """Powertools prints EMF documents with print(): send them to stderr while the handler runs."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def tracing_disabled(env: dict[str, str] | os._Environ = os.environ) -> bool:
    """Powertools' own rule: off when asked, outside Lambda, and under `sam local`."""
    if env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in _TRUE:
        return True
    if not env.get("LAMBDA_TASK_ROOT"):
        return True
    return bool(env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"))


class NoTracer:
    """Stands in for the Tracer when tracing is off: imports nothing, records nothing."""

    disabled = True

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    @contextlib.contextmanager
    def subsegment(self, name: str) -> Iterator[None]:
        yield None


class XrayTracer:
    """Powertools Tracer; subsegments only on the thread that runs the handler."""

    disabled = False

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer
        self._thread = threading.main_thread()

    def put_annotation(self, key: str, value: Any) -> None:
        if threading.current_thread() is self._thread:
            self._tracer.put_annotation(key=key, value=value)

    @contextlib.contextmanager
    def subsegment(self, name: str) -> Iterator[Any]:
        if threading.current_thread() is not self._thread:
            yield None  # X-Ray's context is per thread: the core's worker threads are not traced
            return
        with self._tracer.provider.in_subsegment(name) as sub:
            yield sub


@functools.lru_cache(maxsize=1)
def tracer() -> NoTracer | XrayTracer:
    if tracing_disabled():
        return NoTracer()
    try:
        from aws_lambda_powertools import Tracer

        # botocore and requests are patched: AWS and ACME calls appear with their URL and status
        # only (X-Ray records no bodies); responses are never captured.
        return XrayTracer(Tracer(service=SERVICE, patch_modules=("botocore", "requests")))
    except ImportError as exc:  # aws-xray-sdk is not in the package
        _log.warning("tracing is off: %s (add aws-xray-sdk to the function's requirements)", exc)
        return NoTracer()


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """One step of a run as an X-Ray subsegment `## name` (no-op when tracing is off)."""
    with tracer().subsegment(f"## {name}"):
        yield


class TracedPort:
    """Wraps a port (state store, DNS, importer, ...) as it is built: every call of one of its
    public methods becomes a subsegment `## <label>.<method>`. Arguments and results are never
    recorded; attributes that are not methods pass through."""

    def __init__(self, label: str, inner: Any) -> None:
        self._inner = inner
        self._label = label

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with phase(f"{self._label}.{name}"):
                return attr(*args, **kwargs)

        return traced
