"""Lambda events into run requests. Pure: raises EventError naming the field.

Three shapes: the scheduled event (the EventBridge Scheduler input of template.yaml, which
carries the schedule's ARN, or the classic Scheduled Event; an empty event too), the manual
event `{"action": "renew" | "plan" | "rehearse", "certificates": [...], "force": ..., "dry_run": ...,
"deep": ...}`, and the SQS batch of the fan-out worker (`is_sqs_batch`), one record per certificate whose body is
`{"certificate": "name"}` (`parse_work_item`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from acme_flow.errors import EventError, Problem

MAX_EVENT_BYTES = 256 * 1024
WORK_ITEM_KEYS = {"certificate", "force"}
MANUAL_KEYS = {"action", "certificates", "force", "dry_run", "deep"}
# template.yaml's Scheduler input: {"action": "renew", "schedule": "<aws.scheduler.schedule-arn>",
# "scheduled_time": "<aws.scheduler.scheduled-time>"} (Scheduler fills in the context attributes).
SCHEDULER_KEYS = {"action", "schedule", "scheduled_time"}
ACTIONS = ("renew", "plan")
MANUAL_ACTIONS = (*ACTIONS, "rehearse")  # rehearse: issue from the staging directory, keep nothing
SCHEDULED = "scheduled"
MANUAL = "manual"


@dataclass(frozen=True)
class Request:
    action: str = "renew"  # renew | plan | rehearse
    certificates: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    source: str = SCHEDULED  # scheduled | manual
    deep: bool = False  # read and check every stored certificate's material too


def parse_event(event: object) -> Request:
    """Scheduled (EventBridge Scheduler input or classic Scheduled Event) or manual event."""
    if event is None:
        return Request(source=SCHEDULED)
    if not isinstance(event, dict):
        raise EventError([Problem("", f"the event must be a JSON object, got {type(event).__name__}")])
    if len(json.dumps(event, default=str)) > MAX_EVENT_BYTES:
        raise EventError([Problem("", f"the event is larger than {MAX_EVENT_BYTES} bytes")])
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events":
        return Request(source=SCHEDULED)
    if not event:
        return Request(source=SCHEDULED)
    if "schedule" in event:
        return _scheduler_input(event)
    return _manual(event)


def _scheduler_input(event: dict) -> Request:
    """The input an EventBridge Scheduler schedule sends (it names the schedule)."""
    problems = [Problem(key, f"unknown key; a scheduler input takes {sorted(SCHEDULER_KEYS)}")
                for key in sorted(set(event) - SCHEDULER_KEYS)]
    if not isinstance(event["schedule"], str) or not event["schedule"]:
        problems.append(Problem("schedule", "must be the schedule's ARN (<aws.scheduler.schedule-arn>)"))
    action = event.get("action", "renew")
    if action not in ACTIONS:
        problems.append(Problem("action", f"{action!r} is not one of {list(ACTIONS)}"))
    if problems:
        raise EventError(problems)
    return Request(action=action, source=SCHEDULED)


def _manual(event: dict) -> Request:
    problems: list[Problem] = []
    for key in sorted(set(event) - MANUAL_KEYS):
        problems.append(Problem(key, f"unknown key; a manual event takes {sorted(MANUAL_KEYS)}"))
    action = event.get("action", "renew")
    if action not in MANUAL_ACTIONS:
        problems.append(Problem("action", f"{action!r} is not one of {list(MANUAL_ACTIONS)}"))
    names = event.get("certificates", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        problems.append(Problem("certificates", "must be a list of certificate names"))
        names = []
    for key in ("force", "dry_run", "deep"):
        if not isinstance(event.get(key, False), bool):
            problems.append(Problem(key, f"must be true or false, got {event.get(key)!r}"))
    if action == "rehearse":
        problems += [Problem(key, "does not go with action rehearse (it issues every selected certificate "
                                  "from the staging directory and keeps nothing)")
                     for key in ("force", "dry_run", "deep") if event.get(key)]
    if problems:
        raise EventError(problems)
    return Request(action=action, certificates=tuple(names), force=event.get("force", False),
                   dry_run=event.get("dry_run", False), deep=event.get("deep", False), source=MANUAL)


@dataclass(frozen=True)
class WorkItem:
    """One fan-out message: renew this certificate (`force`: even if not due)."""

    certificate: str
    force: bool = False


def is_sqs_batch(event: object) -> bool:
    """An SQS event (`Records` from `aws:sqs`). Raises EventError for other `Records` events
    (S3, SNS, DynamoDB, ...): the handler takes none of them."""
    if not isinstance(event, dict) or "Records" not in event:
        return False
    records = event["Records"]
    if not isinstance(records, list) or not records:
        raise EventError([Problem("Records", "must be a non-empty list of SQS records")])
    sources = sorted({str(r.get("eventSource")) if isinstance(r, dict) else "?" for r in records})
    if sources != ["aws:sqs"]:
        raise EventError([Problem("Records", f"only SQS records (eventSource aws:sqs) are handled, got {sources}")])
    return True


def parse_work_item(body: object) -> WorkItem:
    """The body of one fan-out message. Raises EventError naming the field."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as exc:
            raise EventError([Problem("body", f"not JSON: {exc.msg}")]) from None
    if not isinstance(body, dict):
        raise EventError([Problem("body", f'must be {{"certificate": "name"}}, got {type(body).__name__}')])
    problems = [Problem(f"body.{k}", f"unknown key; a message takes {sorted(WORK_ITEM_KEYS)}")
                for k in sorted(set(body) - WORK_ITEM_KEYS)]
    name = body.get("certificate")
    if not isinstance(name, str) or not name:
        problems.append(Problem("body.certificate", "must be a certificate name"))
    if not isinstance(body.get("force", False), bool):
        problems.append(Problem("body.force", f"must be true or false, got {body.get('force')!r}"))
    if problems:
        raise EventError(problems)
    return WorkItem(certificate=name, force=body.get("force", False))
