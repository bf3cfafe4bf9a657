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

from typing import Any

from acme_flow.models import Action, CertificateResult, Outcome, RunReport
from acme_flow.renewal import Plan
from acme_flow.results import certificate_result, skipped
from acme_flow.survey import PlanRow

from . import metrics as run_metrics
from .observability import logger, metrics, phase
from .wiring import Wired

QUEUED = "queued"


def dispatch(wired: Wired, plan: Plan) -> dict[str, Any]:
    """Queue every due certificate; report, notify and measure the rest as a run would."""
    clock, queue = wired.clock, wired.queue()
    assert queue is not None, "dispatch needs CERTRENEW_QUEUE_URL"
    with phase("fanout.send"):
        not_queued = queue.send(plan.due(), force=plan.options.force)
    finished = clock.now()
    outcomes = [(row, _settled(row, not_queued)) for row in plan.rows]  # None: queued
    settled = [result for _, result in outcomes if result is not None]
    queued = [row for row, result in outcomes if result is None]
    entries = [result.to_dict() if result is not None else _queued_entry(row) for row, result in outcomes]

    partial = RunReport(tuple(settled), plan.started, finished)
    wired.renewer.notifier.notify(partial)  # failures to queue, and anything close to expiry
    run_metrics.emit_results(metrics, settled, finished)
    for row in queued:
        # no DaysToExpiry here: the worker reports the certificate it leaves in place
        run_metrics.emit_certificate(metrics, row.spec.name, run_metrics.QUEUED_METRIC, None, finished,
                                     outcome=QUEUED, reason=row.decision.reason)
    counts = dict(partial.counts())
    if queued:
        counts[QUEUED] = len(queued)
    threshold = wired.handler_settings.fanout_threshold
    logger.info("fanned out", extra={"queued": len(queued), "not_queued": sorted(not_queued),
                                     "threshold": threshold, "counts": counts})
    data = partial.to_dict()
    data.update(counts=counts, certificates=entries,
                fanout={"queue": queue.queue_url, "queued": len(queued), "threshold": threshold})
    return data


def _settled(row: PlanRow, not_queued: dict[str, str]) -> CertificateResult | None:
    """The result of a certificate this invocation settles itself: not due, or not queued."""
    if row.decision.action is Action.NONE:
        return skipped(row)
    if row.spec.name in not_queued:
        reason = f"{row.decision.reason}; {not_queued[row.spec.name]}"
        return certificate_result(row.spec, Outcome.FAILED, reason, row.stored)
    return None


def _queued_entry(row: PlanRow) -> dict[str, Any]:
    entry = skipped(row).to_dict()
    entry.update(outcome=QUEUED, reason=f"queued for the worker: {row.decision.reason}", next_check=None)
    return entry
