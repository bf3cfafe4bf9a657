import json
from pathlib import Path

import pytest

from acme_flow.errors import EventError
from handler.events import Request, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_sample_events_parse():
    assert parse_event(json.loads((EVENTS / "scheduled.json").read_text())) == Request(source="schedule")
    assert parse_event(json.loads((EVENTS / "renew-now.json").read_text())).source == "manual"
    assert parse_event(json.loads((EVENTS / "plan.json").read_text())).action == "plan"


def test_scheduler_input_and_empty_event_are_full_runs():
    assert parse_event({}) == Request()
    assert parse_event(None) == Request()
    assert parse_event({"action": "renew"}) == Request(source="manual")


def test_manual_event_fields():
    req = parse_event({"action": "renew", "certificates": ["a", "b"], "force": True, "dry_run": True})
    assert req == Request("renew", ("a", "b"), True, True, "manual")


@pytest.mark.parametrize("event, path, fragment", [
    ({"action": "delete"}, "action", "not one of"),
    ({"action": "renew", "force": "yes"}, "force", "true or false"),
    ({"dry_run": 1}, "dry_run", "true or false"),
    ({"certificates": "site"}, "certificates", "list of certificate names"),
    ({"certificates": [""]}, "certificates", "list of certificate names"),
    ({"certificates": [3]}, "certificates", "list of certificate names"),
    ({"actoin": "renew"}, "actoin", "unknown key"),
    ([1, 2], "", "must be a JSON object"),
    ("renew", "", "must be a JSON object"),
    ({"action": "renew", "certificates": ["x" * 1000] * 300}, "", "larger than"),
])
def test_bad_events_name_the_field(event, path, fragment):
    with pytest.raises(EventError) as err:
        parse_event(event)
    assert any(p.path == path and fragment in p.message for p in err.value.problems), err.value.problems
    assert err.value.exit_code == 2
