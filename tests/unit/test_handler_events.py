"""SQS batch events and fan-out messages (handler/events.py), and the handler's own settings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from acme_flow.errors import EventError, SettingsError
from handler.events import WorkItem, is_sqs_batch, parse_event, parse_work_item
from handler.settings import HandlerSettings

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_sample_sqs_batch_event():
    event = json.loads((EVENTS / "sqs-batch.json").read_text())
    assert is_sqs_batch(event)
    (record,) = event["Records"]
    assert parse_work_item(record["body"]) == WorkItem("example-site")
    assert record["messageId"] and record["eventSourceARN"].startswith("arn:aws:sqs:")


@pytest.mark.parametrize("event", [{}, None, {"action": "plan"}, json.loads((EVENTS / "scheduled.json").read_text())])
def test_other_events_are_not_batches(event):
    assert not is_sqs_batch(event)


@pytest.mark.parametrize("records, fragment", [
    ([], "non-empty list"),
    ("x", "non-empty list"),
    ([{"eventSource": "aws:s3"}], "only SQS records"),
    ([{"eventSource": "aws:sqs"}, {"EventSource": "aws:sns"}], "only SQS records"),
])
def test_records_of_other_sources_are_refused(records, fragment):
    with pytest.raises(EventError) as err:
        is_sqs_batch({"Records": records})
    assert fragment in str(err.value) and err.value.exit_code == 2


def test_a_batch_is_not_a_manual_event():
    with pytest.raises(EventError, match="Records: unknown key"):
        parse_event({"Records": [{"eventSource": "aws:sqs"}]})


@pytest.mark.parametrize("body, expected", [
    ('{"certificate": "site"}', WorkItem("site")),
    ({"certificate": "site", "force": True}, WorkItem("site", True)),
])
def test_work_items(body, expected):
    assert parse_work_item(body) == expected


@pytest.mark.parametrize("body, path, fragment", [
    ("not json", "body", "not JSON"),
    ("[1]", "body", "must be"),
    ("{}", "body.certificate", "certificate name"),
    ('{"certificate": ""}', "body.certificate", "certificate name"),
    ('{"certificate": 3}', "body.certificate", "certificate name"),
    ('{"certificate": "a", "force": "yes"}', "body.force", "true or false"),
    ('{"certificate": "a", "certificates": ["b"]}', "body.certificates", "unknown key"),
    (None, "body", "must be"),
])
def test_bad_work_items_name_the_field(body, path, fragment):
    with pytest.raises(EventError) as err:
        parse_work_item(body)
    assert any(p.path == path and fragment in p.message for p in err.value.problems), err.value.problems


# ---- settings ---------------------------------------------------------------------------------------


def test_settings_defaults():
    s = HandlerSettings.from_env({})
    assert (s.queue_url, s.fanout_threshold) == (None, 10)


@pytest.mark.parametrize("queue, threshold, due, fans_out", [
    (None, 10, 500, False),  # no queue: always inline
    ("q", 10, 10, False),  # up to the threshold: inline
    ("q", 10, 11, True),
    ("q", 0, 1, True),  # 0: whenever anything is due
    ("q", 0, 0, False),  # ... and never when nothing is
])
def test_fan_out_rule(queue, threshold, due, fans_out):
    assert HandlerSettings(queue_url=queue, fanout_threshold=threshold).fans_out(due) is fans_out


@pytest.mark.parametrize("name, value, fragment", [
    ("CERTRENEW_FANOUT_THRESHOLD", "ten", "is not a number"),
    ("CERTRENEW_FANOUT_THRESHOLD", "-1", "must not be negative"),
    ("CERTRENEW_FANOUT_THRESHOLD", "2.5", "is not a number"),
])
def test_bad_settings_name_the_variable(name, value, fragment):
    with pytest.raises(SettingsError) as err:
        HandlerSettings.from_env({name: value})
    assert name in str(err.value) and fragment in str(err.value) and err.value.exit_code == 2
