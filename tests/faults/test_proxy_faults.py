"""The proxy's fault rules the fault suite relies on: every Nth call, a seeded share, any service,
5xx errors botocore retries, delays, and
PutEvents entries failed inside a 200 answer."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack import proxy_client

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


def _statuses(aws, operation: str) -> list[int]:
    return [c["status"] for c in proxy_client.calls(aws.aws_endpoint_url, operation=operation)]


def test_every_nth_matching_call_is_answered_with_the_error(aws):
    proxy_client.configure(aws.aws_endpoint_url, faults=[
        {"service": "acm", "operation": "ListCertificates", "every": 3, "count": None,
         "status": 400, "code": "ThrottlingException"}])
    acm = boto3.client("acm", config=NO_RETRIES)
    codes = []
    for _ in range(7):
        try:
            acm.list_certificates()
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    assert codes == ["ok", "ok", "ThrottlingException", "ok", "ok", "ThrottlingException", "ok"]
    rule = proxy_client.get_config(aws.aws_endpoint_url)["faults"][0]
    assert (rule["matched"], rule["hits"]) == (7, 2)
    assert len(proxy_client.faulted(aws.aws_endpoint_url)) == 2


def test_a_seeded_share_hits_the_same_calls_each_time(aws):
    def pattern() -> list[int]:
        proxy_client.reset(aws.aws_endpoint_url)
        proxy_client.configure(aws.aws_endpoint_url, faults=[
            {"service": "*", "probability": 0.4, "seed": 11, "count": None,
             "status": 500, "code": "InternalError", "message": "We encountered an internal error"}])
        s3 = boto3.client("s3", config=NO_RETRIES)
        for _ in range(30):
            try:
                s3.list_buckets()
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "InternalError"
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        return _statuses(aws, "ListBuckets")

    first = pattern()
    assert first == pattern()
    assert 4 <= first.count(500) <= 20, first  # a share, not none or all


@pytest.mark.parametrize("service,status,code", [
    ("route53", 400, "Throttling"), ("cloudfront", 503, "ServiceUnavailable"),
    ("s3", 503, "SlowDown"), ("acm", 500, "InternalFailure"),
])
def test_botocore_standard_retries_ride_out_the_injected_errors(aws, service, status, code):
    """The errors are shaped so botocore's standard mode (what bootstrap configures) retries them."""
    proxy_client.configure(aws.aws_endpoint_url, faults=[
        {"service": [service], "count": 2, "status": status, "code": code}])
    client = boto3.client(service, config=Config(retries={"mode": "standard", "max_attempts": 4}))
    call = {"route53": client.list_hosted_zones if service == "route53" else None,
            "cloudfront": getattr(client, "list_distributions", None),
            "s3": getattr(client, "list_buckets", None),
            "acm": getattr(client, "list_certificates", None)}[service]
    call()
    statuses = [c["status"] for c in proxy_client.calls(aws.aws_endpoint_url, service=service)]
    assert statuses == [status, status, 200]


def test_a_delay_rule_slows_a_call_and_still_forwards_it(aws):
    proxy_client.configure(aws.aws_endpoint_url, faults=[
        {"service": "s3", "operation": "ListBuckets", "delay": 0.3, "error": False, "count": 1}])
    s3 = boto3.client("s3", config=NO_RETRIES)
    s3.list_buckets()
    s3.list_buckets()
    calls = proxy_client.calls(aws.aws_endpoint_url, operation="ListBuckets")
    assert [c["status"] for c in calls] == [200, 200]
    assert [c.get("delayed") for c in calls] == [0.3, None]


def test_bad_rules_are_refused(aws):
    import urllib.error
    for bad in ({"every": 0}, {"probability": 1.5}, {"every": 2, "probability": 0.5}, {"delay": -1},
                {"matched": 3}, {"entries": True, "after": True}, {"entries_failed": 1}):
        with pytest.raises(urllib.error.HTTPError) as caught:
            proxy_client.configure(aws.aws_endpoint_url, faults=[bad])
        assert caught.value.code == 400, bad


# PutEvents partial failure: entries failed inside a 200 answer (`entries: true`)

def put_four(events) -> dict:
    return events.put_events(Entries=[{"Source": "certrenew", "DetailType": "t", "Detail": json.dumps({"n": n})}
                                      for n in range(4)])


def test_a_putevents_entries_fault_fails_every_nth_entry_inside_a_200(aws):
    proxy_client.configure(aws.aws_endpoint_url, faults=[
        {"service": "events", "operation": "PutEvents", "entries": True, "every": 2,
         "code": "ThrottlingException", "message": "Rate exceeded"}])
    events = boto3.client("events", config=NO_RETRIES)
    answer = put_four(events)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer["FailedEntryCount"] == 2
    failed = [e for e in answer["Entries"] if "ErrorCode" in e]
    assert [i for i, e in enumerate(answer["Entries"]) if "ErrorCode" in e] == [1, 3]
    assert all(e == {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"} for e in failed)
    assert all(e.get("EventId") for i, e in enumerate(answer["Entries"]) if i in (0, 2))

    again = put_four(events)  # count 1: the next call goes through whole
    assert again["FailedEntryCount"] == 0 and all(e.get("EventId") for e in again["Entries"])
    rule = proxy_client.get_config(aws.aws_endpoint_url)["faults"][0]
    assert (rule["hits"], rule["entries_failed"]) == (1, 2)
    assert proxy_client.calls(aws.aws_endpoint_url, "events", "PutEvents")[0]["failed_entries"] == [1, 3]


def test_a_putevents_entries_fault_with_a_seeded_probability_repeats(aws):
    def pattern() -> list[str | None]:
        proxy_client.reset(aws.aws_endpoint_url)
        proxy_client.configure(aws.aws_endpoint_url, faults=[
            {"service": "events", "operation": "PutEvents", "entries": True, "probability": 0.5, "seed": 3,
             "count": None, "code": "InternalFailure", "message": "Internal service error"}])
        events = boto3.client("events", config=NO_RETRIES)
        codes = []
        for _ in range(5):
            answer = put_four(events)
            assert answer["FailedEntryCount"] == sum("ErrorCode" in e for e in answer["Entries"])
            codes += [e.get("ErrorCode") for e in answer["Entries"]]
        return codes

    first = pattern()
    assert first == pattern()
    assert set(first) == {None, "InternalFailure"}, first


def test_a_putevents_entries_fault_can_fail_every_entry(aws):
    proxy_client.configure(aws.aws_endpoint_url, faults=[
        {"service": "events", "operation": "PutEvents", "entries": True, "code": "InternalFailure",
         "message": "Internal service error"}])
    answer = put_four(boto3.client("events", config=NO_RETRIES))
    assert answer["FailedEntryCount"] == 4 and not any("EventId" in e for e in answer["Entries"])
