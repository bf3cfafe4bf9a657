"""The fan-out worker: renews the certificates of an SQS batch, with partial batch failure reporting.

Each record's body is `{"certificate": "name"}` (optionally `"force": true`). The whole batch is
renewed in one run (`RunOptions(only=<names>)`), so its certificates share one DNS round; then
Powertools' `BatchProcessor` maps the run's outcome back to the records: a record whose
certificate failed (or whose body is malformed) is reported in `batchItemFailures`, so SQS
delivers it again after the visibility timeout and, after `maxReceiveCount` attempts, moves it to
the dead-letter queue (which has an alarm). A name the config no longer has is dropped with a
warning: there is nothing left to renew. The return value is exactly the partial batch response
Lambda reads; the run report goes to the log, the notifications and the metrics.
"""
from __future__ import annotations

import time
from typing import Any

from acme_flow.errors import CertrenewError, EventError
from acme_flow.deadline import Deadline
from acme_flow.models import CertificateResult, Outcome, RunReport
from acme_flow.renewal import RunOptions

from . import metrics as run_metrics
from .events import WorkItem, is_sqs_batch, parse_work_item
from .observability import entry_point, logger, metrics, phase
from .wiring import build

CLEANUP_MARGIN_SECONDS = 60  # kept back from the remaining time to clean up DNS records


class CertificateFailed(CertrenewError):
    """A certificate of the batch failed: its record is reported as a batch item failure."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name} failed: {reason}")


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    items = _parse_records(event)
    started = time.monotonic()
    wired = build()
    started_at = wired.clock.now()
    known = set(wired.config.names())
    work = [item for item in items.values() if isinstance(item, WorkItem)]
    unknown = sorted({w.certificate for w in work if w.certificate not in known})
    if unknown:
        logger.warning("certificates no longer in the config: dropped", extra={"certificates": unknown})
    forced = _unique(w.certificate for w in work if w.force and w.certificate in known)
    normal = _unique(w.certificate for w in work if not w.force and w.certificate in known
                     and w.certificate not in forced)
    logger.info("worker batch", extra={"records": len(items), "certificates": normal + forced,
                                       "forced": forced, "malformed": len(items) - len(work)})
    deadline = Deadline(wired.clock, context.get_remaining_time_in_millis() / 1000 - CLEANUP_MARGIN_SECONDS)
    reports = [_run(wired, deadline, tuple(names), force) for force, names in ((False, normal), (True, forced))
               if names]
    outcomes = {r.name: r for report in reports for r in report.results}
    now = wired.clock.now()
    run_metrics.emit_results(metrics, outcomes.values(), now)
    run_metrics.add_run_metrics(metrics, time.monotonic() - started, *(r.issuance for r in reports if r.issuance))
    response = _batch_response(event, items, outcomes, set(unknown), context)
    report = RunReport(tuple(outcomes.values()), started_at, now)
    logger.info("worker batch finished", extra={
        "ok": report.ok, "counts": report.counts(), "failed": [r.name for r in report.results if r.outcome is Outcome.FAILED],
        "batch_item_failures": len(response.get("batchItemFailures", []))})
    return response


def _parse_records(event: dict[str, Any]) -> dict[str, WorkItem | EventError]:
    """Each record's work item by message id; a malformed body is kept as its error."""
    items: dict[str, WorkItem | EventError] = {}
    for index, record in enumerate(event["Records"]):
        message_id = str(record.get("messageId") or f"#{index}")
        try:
            items[message_id] = parse_work_item(record.get("body"))
        except EventError as exc:
            logger.error("malformed fan-out message", extra={"message_id": message_id, "problem": str(exc)})
            items[message_id] = exc
    return items


def _run(wired: Any, deadline: Deadline, names: tuple[str, ...], force: bool) -> RunReport:
    """One renewal run for these certificates; a run that cannot start fails each of them."""
    with phase("run"):
        try:
            renewer = wired.renewer
            return renewer.apply(renewer.plan(RunOptions(only=names, force=force)), deadline)
        except CertrenewError as exc:
            logger.error("worker run failed", extra={"certificates": list(names), "error": str(exc)})
            now = wired.clock.now()
            return RunReport(tuple(CertificateResult(n, Outcome.FAILED, str(exc)) for n in names), now, now)


def _batch_response(event: dict[str, Any], items: dict[str, WorkItem | EventError],
                    outcomes: dict[str, CertificateResult], unknown: set[str], context: Any) -> dict[str, Any]:
    """Powertools' partial batch response: a record fails when its certificate failed or its
    body is malformed."""
    # imported here: the renewer function, which rarely sees a batch, starts faster without it
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def record_handler(record: Any) -> str:  # a Powertools SQSRecord
        item = items[record.message_id]
        if isinstance(item, EventError):
            raise item
        if item.certificate in unknown:
            return "dropped"
        result = outcomes[item.certificate]
        if result.outcome is Outcome.FAILED:
            raise CertificateFailed(result.name, result.reason)
        return result.outcome.value

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=_with_ids(event), record_handler=record_handler,
                                    processor=processor, context=context)


def _unique(names) -> list[str]:
    return list(dict.fromkeys(names))


def _with_ids(event: dict[str, Any]) -> dict[str, Any]:
    """Records without a messageId (hand-written test events) get the one used above."""
    records = [r if r.get("messageId") else {**r, "messageId": f"#{i}"} for i, r in enumerate(event["Records"])]
    return {**event, "Records": records}


def _batches_only(event: Any, context: Any) -> dict[str, Any]:
    if not is_sqs_batch(event):
        raise EventError("the worker takes SQS batch events only (Records from aws:sqs)")
    return handle_batch(event, context)


# The worker function's entry point (template.yaml WorkerFunction).
lambda_handler = entry_point(_batches_only)
