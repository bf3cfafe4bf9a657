"""Lambda events into run requests. Pure: raises EventError naming the field."""
from __future__ import annotations

import json
from dataclasses import dataclass

from acme_flow.errors import EventError, Problem

MAX_EVENT_BYTES = 256 * 1024
MANUAL_KEYS = {"action", "certificates", "force", "dry_run"}
ACTIONS = ("renew", "plan")


@dataclass(frozen=True)
class Request:
    action: str = "renew"  # renew | plan
    certificates: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    source: str = "schedule"


def parse_event(event: object) -> Request:
    """Scheduled (EventBridge Scheduler input or classic Scheduled Event) or manual event."""
    if event is None:
        return Request()
    if not isinstance(event, dict):
        raise EventError([Problem("", f"the event must be a JSON object, got {type(event).__name__}")])
    if len(json.dumps(event, default=str)) > MAX_EVENT_BYTES:
        raise EventError([Problem("", f"the event is larger than {MAX_EVENT_BYTES} bytes")])
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events":
        return Request(source="schedule")
    if not event:
        return Request(source="schedule")
    return _manual(event)


def _manual(event: dict) -> Request:
    problems: list[Problem] = []
    for key in sorted(set(event) - MANUAL_KEYS):
        problems.append(Problem(key, f"unknown key; a manual event takes {sorted(MANUAL_KEYS)}"))
    action = event.get("action", "renew")
    if action not in ACTIONS:
        problems.append(Problem("action", f"{action!r} is not one of {list(ACTIONS)}"))
    names = event.get("certificates", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        problems.append(Problem("certificates", "must be a list of certificate names"))
        names = []
    for key in ("force", "dry_run"):
        if not isinstance(event.get(key, False), bool):
            problems.append(Problem(key, f"must be true or false, got {event.get(key)!r}"))
    if problems:
        raise EventError(problems)
    return Request(action=action, certificates=tuple(names), force=event.get("force", False),
                   dry_run=event.get("dry_run", False), source="manual")
