"""The entry points with a fake renewer: fan-out or inline, the worker's partial batch response,
and the metrics they print (EMF, on stderr). No AWS, no network: `build()` is replaced."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from acme_flow.errors import EventError, StateBucketMissing
from acme_flow.models import (AcmeSettings, Action, CertificateResult, CertificateSpec, Config, Deployment,
                              IssuanceTimings, Outcome, Placement, RenewalDecision, RunReport)
from acme_flow.renewal import Plan
from handler import app, worker
from handler.local import LocalContext
from handler.settings import HandlerSettings

NOW = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc)
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/certrenew-work"


class Clock:
    def now(self):
        return NOW

    def monotonic(self):
        return 0.0

    def sleep(self, seconds):
        return None


@dataclass
class Row:  # the shape of survey.PlanRow
    spec: CertificateSpec
    decision: RenewalDecision
    stored: object
    window: object = None


def stored(serial="0a1b", days=50):
    return SimpleNamespace(info=SimpleNamespace(serial=serial, not_after=NOW + dt.timedelta(days=days)),
                           deployment=Deployment((Placement("acm:us-east-1", serial, "arn:aws:acm:x"),)))


class Recorder:
    def __init__(self):
        self.reports = []

    def notify(self, report):
        self.reports.append(report)


class FakeRenewer:
    """Plans `due` as ISSUE (the rest as NONE); a run fails the names in `failing`."""

    def __init__(self, names, due=(), failing=(), error=None):
        self.config = Config(AcmeSettings("https://acme.example/dir"),
                             tuple(CertificateSpec(n, (f"{n}.example",)) for n in names))
        self.due, self.failing, self.error = set(due), set(failing), error
        self.plans = 0
        self.runs = []
        self.notifier = Recorder()

    def plan(self, options):
        self.plans += 1
        rows = []
        for spec in self.config.certificates:
            if options.only and spec.name not in options.only:
                continue
            if spec.name in self.due or options.force:
                rows.append(Row(spec, RenewalDecision(spec.name, Action.ISSUE, "no certificate yet"), None))
            else:
                rows.append(Row(spec, RenewalDecision(spec.name, Action.NONE, "renews at 2027-01-01", NOW), stored()))
        return Plan(options, tuple(rows), NOW)

    def apply(self, plan, deadline):
        rows, options = plan.rows, plan.options
        self.runs.append((options.only, options.force, options.dry_run))
        if self.error:
            raise self.error
        results = []
        for row in rows:
            name = row.spec.name
            if options.dry_run:
                outcome = Outcome.PLANNED if row.decision.action is Action.ISSUE else Outcome.SKIPPED
                results.append(CertificateResult(name, outcome, row.decision.reason))
            elif name in self.failing:
                results.append(CertificateResult(name, Outcome.FAILED, f"no Route53 hosted zone found for {name}"))
            elif row.decision.action is Action.ISSUE:
                results.append(CertificateResult(name, Outcome.ISSUED, "no certificate yet", serial="ff",
                                                 not_after=NOW + dt.timedelta(days=90)))
            else:
                results.append(CertificateResult(name, Outcome.SKIPPED, row.decision.reason, serial="0a1b",
                                                 not_after=NOW + dt.timedelta(days=50)))
        issued = any(r.outcome is Outcome.ISSUED for r in results)
        report = RunReport(tuple(results), NOW, NOW, dry_run=options.dry_run,
                           issuance=IssuanceTimings(1.5, 0.5) if issued else None)
        if not options.dry_run:
            self.notifier.notify(report)
        return report


class FakeQueue:
    queue_url = QUEUE

    def __init__(self, refuse=()):
        self.sent = []
        self.refuse = set(refuse)

    def send(self, names, force=False):
        names = list(names)
        self.sent.append((names, force))
        return {n: "could not queue: AccessDenied" for n in names if n in self.refuse}


@pytest.fixture
def wire(monkeypatch):
    """wire(renewer, queue=None, threshold=10) -> the fake that app and worker will build."""

    def _wire(renewer, queue=None, threshold=10):
        settings = HandlerSettings(queue_url=QUEUE if queue else None, fanout_threshold=threshold)
        wired = SimpleNamespace(config=renewer.config, clock=Clock(), renewer=renewer, handler_settings=settings,
                                queue=lambda: queue)
        monkeypatch.setattr(app, "build", lambda: wired)
        monkeypatch.setattr(worker, "build", lambda: wired)
        return wired

    return _wire


def emf(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{") and '"_aws"' in line]


def batch(*bodies):
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"r{i}", "eventSource": "aws:sqs",
                         "body": body if isinstance(body, str) else json.dumps(body)} for i, body in enumerate(bodies)]}


# ---- the worker --------------------------------------------------------------------------------------


def test_a_failed_certificate_is_a_batch_item_failure(wire, capsys):
    renewer = FakeRenewer(["a", "b", "c"], due={"a", "b", "c"}, failing={"b"})
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a"}, {"certificate": "b"}, {"certificate": "c"}),
                                     LocalContext(900))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert renewer.runs == [(("a", "b", "c"), False, False)], "one run for the batch: one DNS round"
    out, err = capsys.readouterr()
    assert '"_aws"' not in out, "EMF goes to stderr"
    docs = emf(err)
    (failed,) = [d for d in docs if "CertificatesFailed" in d]
    assert failed["certificate"] == "b" and "no Route53 hosted zone" in failed["reason"]
    issued = [d for d in docs if "CertificatesIssued" in d]
    assert sorted(d["certificate"] for d in issued) == ["a", "c"]
    assert all(d["DaysToExpiry"] == [90.0] and "IssuanceDuration" not in d for d in issued)
    (run,) = [d for d in docs if "RunDuration" in d]
    assert "certificate" not in run
    assert run["IssuanceDuration"] == [1.5] and run["DnsWait"] == [0.5], "the batch's one issuance round"


def test_malformed_unknown_and_duplicate_records(wire):
    renewer = FakeRenewer(["a", "b"], due={"a", "b"}, failing={"b"})
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a"}, "not json", {"certificate": "gone"},
                                           {"certificate": "b"}, {"certificate": "b"}, {"certificate": "a"}),
                                     LocalContext(900))
    failed = sorted(f["itemIdentifier"] for f in response["batchItemFailures"])
    assert failed == ["m1", "m3", "m4"], "the malformed one and both records of the failed certificate"
    assert renewer.runs == [(("a", "b"), False, False)], "each certificate once; a name no longer configured is dropped"


def test_forced_messages_run_forced(wire):
    renewer = FakeRenewer(["a", "b"])
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a", "force": True}, {"certificate": "b"}), LocalContext(900))
    assert response == {"batchItemFailures": []}
    assert renewer.runs == [(("b",), False, False), (("a",), True, False)]


def test_a_run_that_cannot_start_fails_every_record_without_raising(wire, capsys):
    renewer = FakeRenewer(["a", "b"], due={"a", "b"}, error=StateBucketMissing("state"))
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a"}, {"certificate": "b"}), LocalContext(900))
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m0", "m1"]
    failed = [d["certificate"] for d in emf(capsys.readouterr().err) if "CertificatesFailed" in d]
    assert sorted(failed) == ["a", "b"]


def test_the_worker_takes_batches_only(wire):
    wire(FakeRenewer(["a"]))
    with pytest.raises(EventError, match="SQS batch events only"):
        worker.lambda_handler({"action": "renew"}, LocalContext(900))


def test_the_renewer_entry_point_hands_batches_to_the_worker(wire):
    renewer = FakeRenewer(["a"], due={"a"})
    wire(renewer)
    assert app.lambda_handler(batch({"certificate": "a"}), LocalContext(900)) == {"batchItemFailures": []}
    assert renewer.runs == [(("a",), False, False)]


# ---- the scheduled run ---------------------------------------------------------------------------------


def test_without_a_queue_every_run_is_inline(wire):
    renewer = FakeRenewer([f"c{i}" for i in range(30)], due={f"c{i}" for i in range(30)})
    wire(renewer, queue=None)
    report = app.lambda_handler({}, LocalContext(900))
    assert report["counts"] == {"issued": 30} and "fanout" not in report
    assert renewer.runs == [((), False, False)] and renewer.plans == 1


def test_more_due_than_the_threshold_fans_out(wire, capsys):
    names = [f"c{i:02d}" for i in range(15)]
    renewer = FakeRenewer(names, due=set(names[:12]))
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=10)
    answer = app.lambda_handler({"action": "renew"}, LocalContext(900))
    assert queue.sent == [(names[:12], False)]
    assert renewer.runs == [], "nothing is issued by the planner"
    assert answer["ok"] is True
    assert answer["counts"] == {"queued": 12, "skipped": 3}
    assert answer["fanout"] == {"queue": QUEUE, "queued": 12, "threshold": 10}
    assert [c["name"] for c in answer["certificates"]] == names
    queued = answer["certificates"][0]
    assert queued["outcome"] == "queued" and queued["reason"] == "queued for the worker: no certificate yet"
    skipped = answer["certificates"][-1]
    assert skipped["outcome"] == "skipped" and skipped["serial"] == "0a1b" and skipped["targets"] == ["acm:arn:aws:acm:x"]
    # the skipped ones are notified (SNS sends only if one is close to expiry) and measured
    (partial,) = renewer.notifier.reports
    assert [r.name for r in partial.results] == names[12:]
    docs = emf(capsys.readouterr().err)
    assert sorted(d["certificate"] for d in docs if "CertificatesQueued" in d) == names[:12]
    assert not any("DaysToExpiry" in d for d in docs if "CertificatesQueued" in d), "the worker measures those"
    assert sorted(d["certificate"] for d in docs if "DaysToExpiry" in d) == names[12:]


def test_threshold_zero_fans_out_whatever_is_due_and_force_travels(wire):
    renewer = FakeRenewer(["a", "b"])
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=0)
    answer = app.lambda_handler({"action": "renew", "force": True}, LocalContext(900))
    assert queue.sent == [(["a", "b"], True)]
    assert answer["counts"] == {"queued": 2}


def test_certificates_that_could_not_be_queued_fail_the_run(wire):
    renewer = FakeRenewer(["a", "b", "c"], due={"a", "b", "c"})
    wire(renewer, queue=FakeQueue(refuse={"b"}), threshold=0)
    answer = app.lambda_handler({}, LocalContext(900))
    assert answer["ok"] is False
    assert [(c["name"], c["outcome"]) for c in answer["certificates"]] == [("a", "queued"), ("b", "failed"),
                                                                           ("c", "queued")]
    assert "could not queue: AccessDenied" in answer["certificates"][1]["reason"]
    (partial,) = renewer.notifier.reports
    assert [(r.name, r.outcome) for r in partial.results] == [("b", Outcome.FAILED)]


def test_up_to_the_threshold_the_run_is_inline_and_plans_once(wire):
    renewer = FakeRenewer(["a", "b", "c"], due={"a"})
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=10)
    report = app.lambda_handler({}, LocalContext(900))
    assert queue.sent == []
    assert report["counts"] == {"issued": 1, "skipped": 2}
    assert renewer.plans == 1, "the run reuses the plan that decided against fanning out"
    # the plan is reused once only: a later run plans afresh
    renewer.run(None, app.RunOptions())
    assert renewer.plans == 2


def test_plans_and_dry_runs_never_fan_out(wire):
    renewer = FakeRenewer([f"c{i}" for i in range(20)], due={f"c{i}" for i in range(20)})
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=0)
    report = app.lambda_handler({"action": "plan"}, LocalContext(900))
    assert report["dry_run"] is True and report["counts"] == {"planned": 20}
    report = app.lambda_handler({"action": "renew", "dry_run": True}, LocalContext(900))
    assert report["dry_run"] is True
    assert queue.sent == []
