import json
from pathlib import Path

import pytest
import yaml

from acme_flow.errors import EventError
from handler.events import Request, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _load_template() -> dict:
    """template.yaml with CloudFormation's short-form tags (!Ref, !Sub, ...) read as plain values."""
    class Loader(yaml.SafeLoader):
        pass

    def untagged(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", untagged)
    return yaml.load(TEMPLATE.read_text(), Loader=Loader)  # noqa: S506 - a SafeLoader subclass


def test_sample_events_parse():
    assert parse_event(json.loads((EVENTS / "scheduled.json").read_text())) == Request(source="scheduled")
    assert parse_event(json.loads((EVENTS / "renew-now.json").read_text())).source == "manual"
    assert parse_event(json.loads((EVENTS / "plan.json").read_text())).action == "plan"


def test_scheduler_input_and_empty_event_are_full_runs():
    assert parse_event({}) == Request(source="scheduled")
    assert parse_event(None) == Request(source="scheduled")
    assert parse_event({"action": "renew"}) == Request(source="manual")


def test_the_templates_scheduler_input_reads_scheduled():
    """template.yaml's ScheduleV2 Input, as EventBridge Scheduler delivers it (context attributes filled in)."""
    template = _load_template()
    (schedule,) = template["Resources"]["RenewerFunction"]["Properties"]["Events"].values()
    delivered = (schedule["Properties"]["Input"]
                 .replace("<aws.scheduler.schedule-arn>", "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x")
                 .replace("<aws.scheduler.scheduled-time>", "2026-11-22T06:00:00Z"))
    request = parse_event(json.loads(delivered))
    assert request == Request(action="renew", source="scheduled")


def test_classic_scheduled_event_reads_scheduled():
    assert parse_event({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}).source == "scheduled"


@pytest.mark.parametrize("event, path", [
    ({"action": "renew", "schedule": "arn:aws:scheduler:us-east-1:1:schedule/default/x", "force": True}, "force"),
    ({"action": "delete", "schedule": "arn:aws:scheduler:us-east-1:1:schedule/default/x"}, "action"),
    ({"schedule": 3}, "schedule"),
])
def test_bad_scheduler_inputs_name_the_field(event, path):
    with pytest.raises(EventError) as err:
        parse_event(event)
    assert [p.path for p in err.value.problems] == [path], err.value.problems


def test_manual_event_fields():
    req = parse_event({"action": "renew", "certificates": ["a", "b"], "force": True, "dry_run": True})
    assert req == Request("renew", ("a", "b"), True, True, "manual")
    assert parse_event({"action": "renew", "deep": True}).deep is True


def test_deep_must_be_true_or_false():
    with pytest.raises(EventError) as err:
        parse_event({"action": "renew", "deep": "yes"})
    assert [p.path for p in err.value.problems] == ["deep"]


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
