"""The entry points over the real Renewer and in-memory fakes (tests/fakes.py): fan-out or inline,
the worker's partial batch response, and the metrics they print (EMF, on stderr). No AWS, no
network: `build()` is replaced."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from acme_flow.deadline import Deadline
from acme_flow.errors import EventError
from acme_flow.models import CertificateSpec, DeploySpec, Outcome
from acme_flow.renewal import RunOptions
from fakes import make_adapters, make_config, make_renewer
from handler import app, worker
from handler.local import LocalContext
from handler.metrics import days_left
from handler.settings import HandlerSettings

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/certrenew-work"


def spec(name):
    """`failing` certificates have a name in no hosted zone: they fail in preflight."""
    zone = "nowhere.test" if name.startswith("bad") else "example.com"
    return CertificateSpec(name, (f"{name}.{zone}",), deploy=DeploySpec(acm_regions=("us-east-1",)))


class Spy:
    """The real Renewer over fakes, recording each plan it made and each plan it applied."""

    def __init__(self, names, stored=()):
        self.adapters = make_adapters()
        self.adapters.propagation.delay, self.adapters.ca.validation_delay = 0.5, 0.5
        self.renewer = make_renewer(make_config(*map(spec, names)), self.adapters, workers=1)
        self.config, self.notifier = self.renewer.config, self.adapters.notifier
        if stored:  # issued and deployed by an earlier run
            earlier = make_renewer(make_config(*map(spec, stored)), self.adapters)
            earlier.apply(earlier.plan(RunOptions()), Deadline(self.adapters.clock, 600))
            self.notifier.reports.clear()
        self.plans, self.applied = [], []

    def plan(self, options):
        self.plans.append(self.renewer.plan(options))
        return self.plans[-1]

    def apply(self, plan, deadline):
        self.applied.append(plan)
        return self.renewer.apply(plan, deadline)

    @property
    def runs(self):
        return [(p.options.only, p.options.force, p.options.dry_run) for p in self.applied]

    def stored(self, name):
        return self.adapters.state.current(name)


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
        wired = SimpleNamespace(config=renewer.config, clock=renewer.adapters.clock, renewer=renewer,
                                handler_settings=settings,
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
    renewer = Spy(["a", "bad", "c"])
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a"}, {"certificate": "bad"}, {"certificate": "c"}),
                                     LocalContext(900))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert renewer.runs == [(("a", "bad", "c"), False, False)], "one run for the batch: one DNS round"
    out, err = capsys.readouterr()
    assert '"_aws"' not in out, "EMF goes to stderr"
    docs = emf(err)
    (failed,) = [d for d in docs if "CertificatesFailed" in d]
    assert failed["certificate"] == "bad" and "no Route53 hosted zone" in failed["reason"]
    issued = [d for d in docs if "CertificatesIssued" in d]
    assert sorted(d["certificate"] for d in issued) == ["a", "c"]
    now = renewer.adapters.clock.now()
    assert all(d["DaysToExpiry"] == [days_left(renewer.stored(d["certificate"]).info.not_after, now)]
               and "IssuanceDuration" not in d for d in issued)
    (run,) = [d for d in docs if "RunDuration" in d]
    assert "certificate" not in run
    assert run["IssuanceDuration"] == [1.5] and run["DnsWait"] == [0.5], \
        "the batch's one issuance round: one DNS wait, then each order validated"


def test_malformed_unknown_and_duplicate_records(wire):
    renewer = Spy(["a", "bad"])
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a"}, "not json", {"certificate": "gone"},
                                           {"certificate": "bad"}, {"certificate": "bad"}, {"certificate": "a"}),
                                     LocalContext(900))
    failed = sorted(f["itemIdentifier"] for f in response["batchItemFailures"])
    assert failed == ["m1", "m3", "m4"], "the malformed one and both records of the failed certificate"
    assert renewer.runs == [(("a", "bad"), False, False)], \
        "each certificate once; a name no longer configured is dropped"
    assert len(renewer.adapters.ca.ordered) == 1


def test_forced_messages_run_forced(wire):
    renewer = Spy(["a", "b"], stored=["a", "b"])
    serials = {n: renewer.stored(n).info.serial for n in ("a", "b")}
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a", "force": True}, {"certificate": "b"}), LocalContext(900))
    assert response == {"batchItemFailures": []}
    assert renewer.runs == [(("b",), False, False), (("a",), True, False)]
    assert renewer.stored("a").info.serial != serials["a"] and renewer.stored("b").info.serial == serials["b"]


def test_a_run_that_cannot_start_fails_every_record_without_raising(wire, capsys):
    renewer = Spy(["a", "b"])
    renewer.adapters.state.bucket_missing = True
    wire(renewer)
    response = worker.lambda_handler(batch({"certificate": "a"}, {"certificate": "b"}), LocalContext(900))
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m0", "m1"]
    failed = [d["certificate"] for d in emf(capsys.readouterr().err) if "CertificatesFailed" in d]
    assert sorted(failed) == ["a", "b"]
    assert renewer.adapters.ca.ordered == [] and renewer.adapters.state.writes == []


def test_the_worker_takes_batches_only(wire):
    wire(Spy(["a"]))
    with pytest.raises(EventError, match="SQS batch events only"):
        worker.lambda_handler({"action": "renew"}, LocalContext(900))


def test_the_renewer_entry_point_hands_batches_to_the_worker(wire):
    renewer = Spy(["a"])
    wire(renewer)
    assert app.lambda_handler(batch({"certificate": "a"}), LocalContext(900)) == {"batchItemFailures": []}
    assert renewer.runs == [(("a",), False, False)]


# ---- the scheduled run ---------------------------------------------------------------------------------


def test_without_a_queue_every_run_is_inline(wire):
    names = [f"c{i}" for i in range(30)]
    renewer = Spy(names)
    wire(renewer, queue=None)
    report = app.lambda_handler({}, LocalContext(900))
    assert report["counts"] == {"issued": 30} and "fanout" not in report
    assert renewer.runs == [((), False, False)] and len(renewer.plans) == 1
    assert len(renewer.adapters.dns.presented) == 1, "one DNS round for the 30 orders"


def test_more_due_than_the_threshold_fans_out(wire, capsys):
    names = [f"c{i:02d}" for i in range(15)]
    renewer = Spy(names, stored=names[12:])
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=10)
    orders = len(renewer.adapters.ca.ordered)
    answer = app.lambda_handler({"action": "renew"}, LocalContext(900))
    assert queue.sent == [(names[:12], False)]
    assert renewer.runs == [] and len(renewer.adapters.ca.ordered) == orders, "nothing is issued by the planner"
    assert answer["ok"] is True
    assert answer["counts"] == {"queued": 12, "skipped": 3}
    assert answer["fanout"] == {"queue": QUEUE, "queued": 12, "threshold": 10}
    assert [c["name"] for c in answer["certificates"]] == names
    queued = answer["certificates"][0]
    assert queued["outcome"] == "queued" and queued["reason"] == "queued for the worker: no certificate yet"
    skipped = answer["certificates"][-1]
    kept = renewer.stored(names[-1])
    assert skipped["outcome"] == "skipped" and skipped["serial"] == kept.info.serial
    assert skipped["targets"] == [f"acm:{kept.deployment.acm_arn('us-east-1')}"]
    # the skipped ones are notified (SNS sends only if one is close to expiry) and measured
    (partial,) = renewer.notifier.reports
    assert [r.name for r in partial.results] == names[12:]
    docs = emf(capsys.readouterr().err)
    assert sorted(d["certificate"] for d in docs if "CertificatesQueued" in d) == names[:12]
    assert not any("DaysToExpiry" in d for d in docs if "CertificatesQueued" in d), "the worker measures those"
    assert sorted(d["certificate"] for d in docs if "DaysToExpiry" in d) == names[12:]


def test_threshold_zero_fans_out_whatever_is_due_and_force_travels(wire):
    renewer = Spy(["a", "b"], stored=["a", "b"])
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=0)
    answer = app.lambda_handler({"action": "renew", "force": True}, LocalContext(900))
    assert queue.sent == [(["a", "b"], True)]
    assert answer["counts"] == {"queued": 2}


def test_certificates_that_could_not_be_queued_fail_the_run(wire):
    renewer = Spy(["a", "b", "c"])
    wire(renewer, queue=FakeQueue(refuse={"b"}), threshold=0)
    answer = app.lambda_handler({}, LocalContext(900))
    assert answer["ok"] is False
    assert [(c["name"], c["outcome"]) for c in answer["certificates"]] == [("a", "queued"), ("b", "failed"),
                                                                           ("c", "queued")]
    assert "could not queue: AccessDenied" in answer["certificates"][1]["reason"]
    (partial,) = renewer.notifier.reports
    assert [(r.name, r.outcome) for r in partial.results] == [("b", Outcome.FAILED)]


def test_up_to_the_threshold_the_run_is_inline_and_applies_the_plan_it_made(wire):
    renewer = Spy(["a", "b", "c"], stored=["b", "c"])
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=10)
    report = app.lambda_handler({}, LocalContext(900))
    assert queue.sent == []
    assert report["counts"] == {"issued": 1, "skipped": 2}
    assert len(renewer.plans) == 1 and renewer.applied[0] is renewer.plans[0], \
        "planned once: the plan that decided against fanning out is the one applied"
    assert [o["domains"] for o in renewer.adapters.ca.ordered[-1:]] == [("a.example.com",)]


def test_plans_and_dry_runs_never_fan_out(wire):
    renewer = Spy([f"c{i}" for i in range(20)])
    queue = FakeQueue()
    wire(renewer, queue=queue, threshold=0)
    report = app.lambda_handler({"action": "plan"}, LocalContext(900))
    assert report["dry_run"] is True and report["counts"] == {"planned": 20}
    report = app.lambda_handler({"action": "renew", "dry_run": True}, LocalContext(900))
    assert report["dry_run"] is True
    assert queue.sent == [] and renewer.adapters.ca.ordered == [] and renewer.adapters.state.writes == []


def test_a_deep_renew_event_reads_every_stored_material(wire):
    renewer = Spy(["a", "b"])
    wire(renewer)
    app.lambda_handler({"action": "renew"}, LocalContext(900))
    renewer.adapters.state.material_reads.clear()
    app.lambda_handler({"action": "renew"}, LocalContext(900))
    assert renewer.adapters.state.material_reads == [], "a plain run reads no material"
    app.lambda_handler({"action": "renew", "deep": True}, LocalContext(900))
    assert renewer.plans[-1].options.deep and sorted(renewer.adapters.state.material_reads) == ["a", "b"]
