"""Lambda entry point of the renewer: parse the event, build the renewer, run it, return the report.

- Scheduled and manual `renew` events: plan; with a fan-out queue and more certificates due
  than the threshold, queue them for the worker (fanout.py); else renew inline.
- `plan` (and `dry_run`): what is due and why, nothing changed.
- `rehearse`: every selected certificate issued from the CA's staging directory; the rehearsal
  report is returned, nothing stored, deployed or notified (acme_flow/rehearsal.py).
- SQS batches go to the worker (worker.py), so `certrenew invoke events/sqs-batch.json` runs it.
"""
from __future__ import annotations

import time
from typing import Any

from acme_flow.deadline import Deadline
from acme_flow.renewal import RunOptions

from . import fanout
from . import metrics as run_metrics
from .events import Request, is_sqs_batch, parse_event
from .observability import entry_point, logger, metrics, phase
from .wiring import build
from .worker import handle_batch

CLEANUP_MARGIN_SECONDS = 60  # kept back from the Lambda's remaining time to clean up DNS records


def _dispatch(event: Any, context: Any) -> dict[str, Any]:
    if is_sqs_batch(event):
        return handle_batch(event, context)
    return run_request(parse_event(event), context)


def run_request(request: Request, context: Any) -> dict[str, Any]:
    if request.action == "rehearse":
        return rehearse(request, context)
    started = time.monotonic()
    wired = build()
    options = RunOptions(only=request.certificates, force=request.force,
                         dry_run=request.dry_run or request.action == "plan", deep=request.deep)
    logger.info("run requested", extra={"action": request.action, "source": request.source,
                                        "certificates": list(request.certificates), "force": request.force})
    with phase("plan"):
        plan = wired.renewer.plan(options)
    if not options.dry_run and wired.handler_settings.queue_url:
        if wired.handler_settings.fans_out(len(plan.due())):
            answer = fanout.dispatch(wired, plan)
            run_metrics.add_run_metrics(metrics, time.monotonic() - started)
            return answer
        logger.info("renewing inline", extra={"due": len(plan.due()),
                                              "threshold": wired.handler_settings.fanout_threshold})
    seconds = context.get_remaining_time_in_millis() / 1000 - CLEANUP_MARGIN_SECONDS
    with phase("run"):
        report = wired.renewer.apply(plan, Deadline(wired.clock, seconds))
    run_metrics.emit_report(metrics, report, time.monotonic() - started)
    logger.info("run finished", extra={"ok": report.ok, "counts": report.counts()})
    return report.to_dict()


def rehearse(request: Request, context: Any) -> dict[str, Any]:
    """The `rehearse` action: its report is the answer; no metrics, no notification of a renewal."""
    from acme_flow import bootstrap

    settings = bootstrap.Settings.from_env()
    clients = bootstrap.Clients(settings.region)
    config = bootstrap.load_config(settings, clients)
    clock = bootstrap.SystemClock()
    logger.info("rehearsal requested", extra={"certificates": list(request.certificates)})
    rehearsal = bootstrap.build_rehearsal(config, settings, clients, clock)
    seconds = context.get_remaining_time_in_millis() / 1000 - CLEANUP_MARGIN_SECONDS
    with phase("rehearse"):
        report = rehearsal.run(request.certificates, Deadline(clock, seconds))
    logger.info("rehearsal finished", extra={"ok": report.ok})
    return report.to_dict()


# The renewer function's entry point (template.yaml RenewerFunction; `certrenew invoke` calls it).
lambda_handler = entry_point(_dispatch)
