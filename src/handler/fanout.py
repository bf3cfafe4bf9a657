"""Fan-out: a run with more certificates due than one invocation should take goes through SQS.

The scheduled (or manual) run plans; when a queue is configured and more certificates are due
than `CERTRENEW_FANOUT_THRESHOLD` (0: whenever any is due), it sends one message per due
certificate and returns at once; the worker function renews them in batches (see worker.py).
Otherwise the run renews inline, in the same invocation. Plans and dry runs are always inline,
and so is `certrenew run` (it never reads the queue settings).

The answer of a fan-out run has the shape of a run report, with the outcome `queued` for each
certificate sent to the queue (`failed` for one that could not be queued) and a `fanout` key.
"""
from __future__ import annotations

from typing import Any, Iterable

from acme_flow.models import Action, CertificateResult, Outcome, RunReport

from . import metrics as run_metrics
from .observability import logger, metrics, phase
from .wiring import Wired

QUEUED = "queued"


def unpack(row: Any) -> tuple[Any, Any, Any]:
    """(spec, decision, stored) of a plan row (a `PlanRow` or a plain tuple)."""
    if hasattr(row, "decision"):
        return row.spec, row.decision, row.stored
    spec, decision, stored = row[:3]
    return spec, decision, stored


def due_names(rows: Iterable[Any]) -> list[str]:
    """Certificates the run would act on (a new order, or a deploy of the stored one)."""
    return [spec.name for spec, decision, _ in map(unpack, rows) if decision.action is not Action.NONE]


def skipped_result(spec: Any, decision: Any, stored: Any) -> CertificateResult:
    if stored is None:
        return CertificateResult(spec.name, Outcome.SKIPPED, decision.reason, next_check=decision.renew_at)
    serial = stored.info.serial
    return CertificateResult(spec.name, Outcome.SKIPPED, decision.reason, serial=serial,
                             not_after=stored.info.not_after, next_check=decision.renew_at,
                             targets=stored.deployment.targets(serial))


def dispatch(wired: Wired, rows: list[Any], force: bool = False) -> dict[str, Any]:
    """Queue every due certificate; report, notify and measure the rest as a run would."""
    clock, queue = wired.clock, wired.queue()
    assert queue is not None, "dispatch needs CERTRENEW_QUEUE_URL"
    started = clock.now()
    due = due_names(rows)
    with phase("fanout.send"):
        not_queued = queue.send(due, force=force)
    finished = clock.now()

    entries: list[dict[str, Any]] = []
    settled: list[CertificateResult] = []  # what this invocation decided itself
    queued: list[tuple[str, Any]] = []
    for spec, decision, stored in map(unpack, rows):
        if decision.action is Action.NONE:
            result = skipped_result(spec, decision, stored)
        elif spec.name in not_queued:
            result = CertificateResult(spec.name, Outcome.FAILED, f"{decision.reason}; {not_queued[spec.name]}",
                                       serial=stored.info.serial if stored else None,
                                       not_after=stored.info.not_after if stored else None)
        else:
            result = None
            queued.append((spec.name, decision))
            entry = skipped_result(spec, decision, stored).to_dict()
            entry.update(outcome=QUEUED, reason=f"queued for the worker: {decision.reason}", next_check=None)
            entries.append(entry)
        if result is not None:
            settled.append(result)
            entries.append(result.to_dict())

    partial = RunReport(tuple(settled), started, finished)
    wired.renewer.notifier.notify(partial)  # failures to queue, and anything close to expiry
    run_metrics.emit_results(metrics, settled, finished)
    for name, decision in queued:
        # no DaysToExpiry here: the worker reports the certificate it leaves in place
        run_metrics.emit_certificate(metrics, name, run_metrics.QUEUED_METRIC, None, finished,
                                     outcome=QUEUED, reason=decision.reason)
    counts = dict(partial.counts())
    if queued:
        counts[QUEUED] = len(queued)
    logger.info("fanned out", extra={"queued": len(queued), "not_queued": sorted(not_queued),
                                     "threshold": wired.handler_settings.fanout_threshold, "counts": counts})
    data = partial.to_dict()
    data.update(counts=counts, certificates=entries,
                fanout={"queue": queue.queue_url, "queued": len(queued),
                        "threshold": wired.handler_settings.fanout_threshold})
    return data
