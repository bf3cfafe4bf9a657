"""Lambda entry point: parse the event, build the renewer, run it, return the report."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from acme_flow import bootstrap
from acme_flow.models import Deadline
from acme_flow.renewal import RunOptions
from handler.events import parse_event

CLEANUP_MARGIN_SECONDS = 60  # kept back from the Lambda's remaining time to clean up DNS records

# The core logs to `certrenew.*` loggers: children of this one, so they share its JSON format.
logger = Logger(service="certrenew")


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = parse_event(event)
    settings = bootstrap.Settings.from_env()
    config = bootstrap.load_config(settings)
    clock = bootstrap.SystemClock()
    renewer = bootstrap.build_renewer(config, settings, clock=clock)
    options = RunOptions(only=request.certificates, force=request.force, dry_run=request.dry_run)
    logger.info("run requested", extra={"action": request.action, "source": request.source,
                                        "certificates": list(request.certificates), "force": request.force})
    if request.action == "plan":
        options = replace(options, dry_run=True)
    seconds = context.get_remaining_time_in_millis() / 1000 - CLEANUP_MARGIN_SECONDS
    report = renewer.run(Deadline(clock, seconds), options)
    logger.info("run finished", extra={"ok": report.ok, "counts": report.counts()})
    return report.to_dict()
