"""EventBridge PutEvents answers 200 and still fails some entries (FailedEntryCount, an
ErrorCode per entry): the devstack proxy's `entries` fault rule does it as EventBridge does, and
certrenew sends the retryable failures again, so every certificate's event arrives exactly once;
one that keeps failing is given up after a bounded number of attempts and logged, and the run is
not failed for it."""
from __future__ import annotations

import json

import boto3
import pytest

from acme_flow import cli
from devstack import proxy_client
from devstack_world import STATE_BUCKET, make_world

ATTEMPTS = 4  # notify.py: the first PutEvents of an entry and three retries


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    monkeypatch.setenv("CERTRENEW_EVENT_BUS", "default")
    return make_world(aws, tmp_path)


def event_sink() -> tuple[object, str]:
    """An SQS queue that receives every certrenew event of the default bus (set-up as admin)."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="event-sink")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bridge = boto3.client("events")
    bridge.put_rule(Name="certrenew-outcomes", EventPattern=json.dumps({"source": ["certrenew"]}))
    bridge.put_targets(Rule="certrenew-outcomes", Targets=[{"Id": "sink", "Arn": arn}])
    return sqs, url


def received(sqs, url: str) -> list[str]:
    names = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in got:
            names.append(json.loads(message["Body"])["detail"]["name"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(names)


def three_certificates(w):
    return w.write_config([{"name": name, "domains": [f"{name}.example.test"]} for name in ("a", "b", "c")])


def put_events(w) -> list[dict]:
    return proxy_client.calls(w.stack.aws_endpoint_url, "events", "PutEvents")


def test_entries_failed_inside_a_200_answer_are_sent_again_and_arrive_once(w, capsys, caplog):
    sqs, url = event_sink()
    config = three_certificates(w)
    proxy_client.configure(w.stack.aws_endpoint_url, faults=[{
        "service": "events", "operation": "PutEvents", "entries": True, "every": 2, "count": 1,
        "code": "ThrottlingException", "message": "Rate exceeded"}])

    code = cli.main(["run", "--config", str(config), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    rule = proxy_client.get_config(w.stack.aws_endpoint_url)["faults"][0]
    assert rule["entries_failed"] == 1, rule  # the second of the three entries, in a 200 answer
    calls = put_events(w)
    assert [c["status"] for c in calls] == [200, 200], "one call for all, one more for the failed entry"
    assert received(sqs, url) == ["a", "b", "c"], "every certificate's event arrived exactly once"
    assert "not accepted" not in caplog.text


def test_an_entry_that_keeps_failing_is_given_up_and_logged_without_failing_the_run(w, capsys, caplog):
    sqs, url = event_sink()
    config = three_certificates(w)
    proxy_client.configure(w.stack.aws_endpoint_url, faults=[{
        "service": "events", "operation": "PutEvents", "entries": True, "count": None,
        "code": "InternalFailure", "message": "internal failure"}])

    code = cli.main(["run", "--config", str(config), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert {c["outcome"] for c in report["certificates"]} == {"issued"}
    assert len(put_events(w)) == ATTEMPTS, "bounded: the first call and three retries"
    assert f"not accepted (after {ATTEMPTS} attempts): InternalFailure" in caplog.text
    assert received(sqs, url) == []
