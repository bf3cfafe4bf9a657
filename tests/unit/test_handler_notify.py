"""Run notifications: the SNS report, EventBridge outcome events, and their composition."""
from __future__ import annotations

import datetime as dt
import json

from botocore.exceptions import ClientError

from acme_flow.adapters.notify import (EXPIRING, CompositeNotifier, EventBridgeNotifier, SnsNotifier,
                                       expiring, subject_line)
from acme_flow.models import (AcmeSettings, CertificateResult, CertificateSpec, Config, DeploySpec, Outcome,
                              RunReport, S3Export)
from fakes import FakeClock

NOW = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc)
ARN = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
PEM_MARKERS = ("BEGIN", "PRIVATE KEY")


def result(name, outcome, days=None, **extra):
    not_after = NOW + dt.timedelta(days=days) if days is not None else None
    return CertificateResult(name, outcome, extra.pop("reason", f"{outcome.value} because"), serial=extra.pop("serial", None),
                             not_after=not_after, **extra)


def report(*results, finished=NOW):
    return RunReport(tuple(results), NOW - dt.timedelta(minutes=2), finished)


CONFIG = Config(
    acme=AcmeSettings(directory="https://acme.example/dir"),
    certificates=(
        CertificateSpec("site", ("example.com", "*.example.com"),
                        deploy=DeploySpec(acm_regions=("us-east-1",), s3=S3Export("my-certs", "example.com/"))),
        CertificateSpec("shop", ("shop.example",)),
        CertificateSpec("old", ("old.example",)),
    ),
)


class FakeSns:
    def __init__(self, fail=False):
        self.published = []
        self.fail = fail

    def publish(self, **kwargs):
        if self.fail:
            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "no"}}, "Publish")
        self.published.append(kwargs)
        return {"MessageId": "1"}


class FakeEvents:
    """PutEvents that fails the entries of `reject` (always) and of `flaky` (name -> how many
    times) inside a 200 answer, as EventBridge does."""

    def __init__(self, reject=(), flaky=None, code="InternalFailure"):
        self.calls = []
        self.reject = set(reject)
        self.flaky = dict(flaky or {})
        self.code = code

    def put_events(self, Entries):
        assert 1 <= len(Entries) <= 10, "PutEvents takes at most ten entries"
        self.calls.append(Entries)
        answers = [self._answer(json.loads(e["Detail"])["name"]) for e in Entries]
        return {"FailedEntryCount": sum("ErrorCode" in a for a in answers), "Entries": answers}

    def _answer(self, name):
        if self.flaky.get(name):
            self.flaky[name] -= 1
            return {"ErrorCode": self.code, "ErrorMessage": "try again"}
        if name in self.reject:
            return {"ErrorCode": self.code, "ErrorMessage": "try again"}
        return {"EventId": "e"}


# ---- SNS -----------------------------------------------------------------------------------------


def test_quiet_run_sends_nothing():
    sns = FakeSns()
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t").notify(report(result("site", Outcome.SKIPPED, 60)))
    assert sns.published == []


def test_one_message_per_run_with_every_outcome():
    sns = FakeSns()
    run = report(result("site", Outcome.RENEWED, 90, serial="0a1b", targets=(f"acm:{ARN}",)),
                 result("shop", Outcome.FAILED, 20, reason="CA error rateLimited: too many"),
                 result("old", Outcome.SKIPPED, 50))
    SnsNotifier(sns, "arn:aws:sns:eu-west-1:123456789012:t").notify(run)
    (message,) = sns.published
    assert message["TopicArn"] == "arn:aws:sns:eu-west-1:123456789012:t"
    assert message["Subject"].startswith("certrenew FAILED: ") and len(message["Subject"]) <= 100
    assert message["MessageStructure"] == "json"
    body = json.loads(message["Message"])
    data = json.loads(body["default"])  # SQS, Lambda, HTTP subscribers: the run report as JSON
    assert data == json.loads(json.dumps(run.to_dict()))
    text = body["email"]  # e-mail subscribers: a readable summary, failures first
    assert text.index("shop: FAILED") < text.index("site: RENEWED")
    assert "CA error rateLimited: too many" in text and "serial 0a1b" in text and f"-> acm:{ARN}" in text
    assert "1 other certificate(s) were not due." in text
    assert not any(marker in message["Message"] for marker in PEM_MARKERS)


def test_run_warnings_are_sent_first_even_when_nothing_else_happened():
    sns = FakeSns()
    run = RunReport((result("site", Outcome.SKIPPED, 60),), NOW - dt.timedelta(minutes=2), NOW,
                    warnings=("fallback CA https://fallback.test/dir cannot be used: ssm:/gts not found",))
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t").notify(run)
    (message,) = sns.published
    body = json.loads(message["Message"])
    assert json.loads(body["default"])["warnings"] == list(run.warnings)
    assert "! fallback CA https://fallback.test/dir cannot be used" in body["email"].splitlines()[3]


def test_a_skipped_certificate_close_to_expiry_is_reported():
    sns = FakeSns()
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t", expiring_days=14).notify(
        report(result("site", Outcome.SKIPPED, 9.5), result("shop", Outcome.SKIPPED, 60)))
    (message,) = sns.published
    assert message["Subject"].startswith("certrenew EXPIRING")
    text = json.loads(message["Message"])["email"]
    assert "site: SKIPPED" in text and "fewer than 14 days: site" in text and "shop" not in text.split("\n\n")[1]


def test_a_huge_report_is_trimmed_to_what_needs_attention():
    sns = FakeSns()
    rows = [result(f"c{i:04d}", Outcome.SKIPPED, 60, reason="x" * 200) for i in range(2000)]
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t").notify(report(result("bad", Outcome.FAILED), *rows))
    (message,) = sns.published
    assert len(message["Message"].encode()) <= 256 * 1024
    data = json.loads(json.loads(message["Message"])["default"])
    assert [c["name"] for c in data["certificates"]] == ["bad"] and data["truncated"] == 2000


SNS_LIMIT = 262_144  # bytes, the whole Message (every MessageStructure=json part together)


def _accepted_by_sns(message: dict) -> dict:
    """What SNS Publish checks: the size of the whole Message and the subject; returns the parts."""
    assert len(message["Message"].encode("utf-8")) <= SNS_LIMIT, len(message["Message"].encode("utf-8"))
    subject = message["Subject"]
    assert len(subject) < 100 and subject.isascii() and "\n" not in subject and "\r" not in subject, subject
    return json.loads(message["Message"])


def test_a_thousand_failures_with_long_reasons_still_make_one_report_that_fits():
    sns = FakeSns()
    rows = [result(f"cert-{i:04d}", Outcome.FAILED, 3, reason=f"deploy to acm:eu-west-{i % 3} failed: " + "é" * 2000,
                   targets=tuple(f"acm:arn:aws:acm:us-east-1:123456789012:certificate/{i}-{t}" for t in range(5)))
            for i in range(1000)]
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t").notify(report(*rows))
    (message,) = sns.published
    body = _accepted_by_sns(message)
    assert message["Subject"].startswith("certrenew FAILED: 1000 failed")
    data = json.loads(body["default"])
    assert data["counts"] == {"failed": 1000} and data["ok"] is False
    listed = [c["name"] for c in data["certificates"]]
    assert listed and listed[0] == "cert-0000", "failures are named"
    assert data["truncated"] == 1000 - len(listed)
    text = body["email"]
    assert "cert-0000: FAILED" in text and "1000 failed" in text
    assert f"{1000 - text.count(': FAILED')} more certificate(s) not listed" in text
    assert all(len(c["reason"]) <= 1000 for c in data["certificates"]), "reasons are truncated"


def test_two_hundred_failures_keep_every_row():
    sns = FakeSns()
    rows = [result(f"cert-{i:03d}", Outcome.FAILED, 3, reason="CA error rateLimited: " + "x" * 600,
                   targets=(f"acm:{ARN}", "s3://my-certs/example.com/")) for i in range(200)]
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t").notify(report(*rows))
    body = _accepted_by_sns(sns.published[0])
    assert len(json.loads(body["default"])["certificates"]) == 200
    assert body["email"].count(": FAILED") == 200


def test_the_json_report_is_carried_once():
    sns = FakeSns()
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t").notify(report(result("s", Outcome.ISSUED, 90)))
    assert set(json.loads(sns.published[0]["Message"])) == {"default", "email"}


def test_the_subject_is_shorter_than_100_ascii_characters():
    counts = {o.value: 1_234_567_890 for o in Outcome}
    subject = subject_line("EXPIRING", counts)
    assert len(subject) < 100 and subject.isascii() and subject.startswith("certrenew EXPIRING: "), subject
    odd = subject_line("FAILED\nx\u00e9\x07", {"failed": 1})
    assert odd == "certrenew FAILED x : 1 failed" and odd.isascii() and odd.isprintable(), odd
    sns = FakeSns()
    SnsNotifier(sns, "arn:aws:sns:us-east-1:123456789012:t").notify(report(*[
        result(f"c{i}", o, 5) for i, o in enumerate([Outcome.FAILED, Outcome.ISSUED, Outcome.RENEWED, Outcome.DEPLOYED])]))
    _accepted_by_sns(sns.published[0])


def test_publish_errors_are_logged_not_raised(caplog):
    SnsNotifier(FakeSns(fail=True), "arn:aws:sns:us-east-1:123456789012:t").notify(report(result("s", Outcome.ISSUED, 90)))
    assert "could not publish the run report" in caplog.text


# ---- EventBridge -----------------------------------------------------------------------------------


def test_one_event_per_outcome_with_where_to_pull_the_files():
    events = FakeEvents()
    run = report(result("site", Outcome.RENEWED, 90, serial="0a1b", targets=(f"acm:{ARN}", "s3://my-certs/example.com/")),
                 result("shop", Outcome.FAILED, 5, reason="no zone"),
                 result("old", Outcome.SKIPPED, 50),
                 result("new", Outcome.ISSUED, 90))
    EventBridgeNotifier(events, CONFIG, bus="certs", expiring_days=14).notify(run)
    (entries,) = events.calls
    kinds = [(e["DetailType"], json.loads(e["Detail"])["name"]) for e in entries]
    assert kinds == [("certrenew.certificate.renewed", "site"), ("certrenew.certificate.failed", "shop"),
                     (EXPIRING, "shop"), ("certrenew.certificate.renewed", "new")]
    assert {e["Source"] for e in entries} == {"certrenew"} and {e["EventBusName"] for e in entries} == {"certs"}
    site = json.loads(entries[0]["Detail"])
    assert entries[0]["Resources"] == [ARN]
    assert site["serial"] == "0a1b" and site["outcome"] == "renewed" and site["days_left"] == 90
    assert site["not_after"] == "2027-02-20T06:00:00Z"
    assert site["domains"] == ["example.com", "*.example.com"]
    assert site["export"] == {"bucket": "my-certs", "prefix": "example.com/", "location": "s3://my-certs/example.com/",
                              "files": {f: f"example.com/{f}" for f in ("cert.pem", "chain.pem", "fullchain.pem",
                                                                         "privkey.pem")}}
    assert json.loads(entries[1]["Detail"])["export"] is None
    assert json.loads(entries[1]["Detail"])["reason"] == "no zone"


def test_events_go_ten_per_call_and_rejections_are_logged(caplog):
    events = FakeEvents(reject={"c07"}, code="MalformedDetail")
    run = report(*[result(f"c{i:02d}", Outcome.ISSUED, 90) for i in range(23)])
    EventBridgeNotifier(events, CONFIG).notify(run)
    assert [len(c) for c in events.calls] == [10, 10, 3], "a non-retryable rejection is not sent again"
    assert "event certrenew.certificate.renewed for c07 not accepted: MalformedDetail" in caplog.text


def test_entries_failed_inside_a_200_answer_are_retried_with_backoff(caplog):
    events = FakeEvents(flaky={"c03": 2, "c12": 1}, code="ThrottlingException")
    clock = FakeClock()
    run = report(*[result(f"c{i:02d}", Outcome.ISSUED, 90) for i in range(13)])
    EventBridgeNotifier(events, CONFIG, clock=clock).notify(run)
    names = [[json.loads(e["Detail"])["name"] for e in call] for call in events.calls]
    assert names == [[f"c{i:02d}" for i in range(10)], ["c03"], ["c03"],
                     [f"c{i:02d}" for i in range(10, 13)], ["c12"]]
    assert clock.sleeps == [0.5, 1.0, 0.5], "waits go through the injected clock, doubling"
    assert "not accepted" not in caplog.text


def test_retryable_failures_stop_after_a_bounded_number_of_attempts(caplog):
    events = FakeEvents(reject={"c01"}, code="InternalFailure")
    clock = FakeClock()
    EventBridgeNotifier(events, CONFIG, clock=clock).notify(report(result("c01", Outcome.FAILED)))
    assert len(events.calls) == 4 and len(clock.sleeps) == 3
    assert "event certrenew.certificate.failed for c01 not accepted (after 4 attempts): InternalFailure" in caplog.text


def test_the_backoff_of_a_run_is_bounded_whatever_the_number_of_events():
    events = FakeEvents(reject={f"c{i:03d}" for i in range(200)}, code="ThrottlingException")
    clock = FakeClock()
    EventBridgeNotifier(events, CONFIG, clock=clock).notify(
        report(*[result(f"c{i:03d}", Outcome.ISSUED, 90) for i in range(200)]))
    assert 0 < sum(clock.sleeps) <= 20.0


def test_planned_rows_make_no_events():
    entries = EventBridgeNotifier(FakeEvents(), CONFIG).entries(
        RunReport((result("site", Outcome.PLANNED, 3),), NOW, NOW, dry_run=True))
    assert entries == []


def test_expiring_counts_from_the_end_of_the_run():
    run = report(result("a", Outcome.SKIPPED, 13.9), result("b", Outcome.SKIPPED, 14.1), result("c", Outcome.FAILED))
    assert [r.name for r in expiring(run, 14)] == ["a"]


# ---- composition -----------------------------------------------------------------------------------


class Boom:
    def notify(self, report):
        raise RuntimeError("boom")


class Recorder:
    def __init__(self):
        self.reports = []

    def notify(self, report):
        self.reports.append(report)


def test_one_failing_notifier_never_stops_the_others_or_the_run(caplog):
    recorder = Recorder()
    run = report(result("s", Outcome.ISSUED, 90))
    CompositeNotifier(Boom(), None, recorder).notify(run)
    assert recorder.reports == [run]
    assert "Boom failed: boom" in caplog.text


def test_nothing_configured_is_a_quiet_notifier():
    assert CompositeNotifier().notify(report(result("s", Outcome.FAILED))) is None
