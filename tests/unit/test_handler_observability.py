"""Tracing switches, traced ports, EMF routing and the metric documents of a report."""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import threading

import pytest
from aws_lambda_powertools import Metrics

from acme_flow.models import CertificateResult, IssuanceTimings, Outcome, RunReport
from handler import metrics as run_metrics
from handler import observability
from handler.observability import NoTracer, TracedPort, XrayTracer, emf_to_stderr, tracing_disabled

NOW = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("env, disabled", [
    ({}, True),  # the CLI, tests: not in Lambda
    ({"LAMBDA_TASK_ROOT": "/var/task"}, False),
    ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, True),
    ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, True),
    ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, False),
    ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, True),  # sam local invoke
])
def test_tracing_is_off_outside_lambda_and_under_sam_local(env, disabled):
    assert tracing_disabled(env) is disabled


def test_outside_lambda_the_tracer_is_a_no_op():
    observability.tracer.cache_clear()
    try:
        assert isinstance(observability.tracer(), NoTracer)
    finally:
        observability.tracer.cache_clear()


class FakeProvider:
    def __init__(self):
        self.opened = []

    @contextlib.contextmanager
    def in_subsegment(self, name):
        self.opened.append(name)
        yield object()


class FakeTracer:
    def __init__(self):
        self.provider = FakeProvider()
        self.annotations = []

    def put_annotation(self, key, value):
        self.annotations.append((key, value))


class Port:
    marker = "plain attribute"

    def save(self, secret):
        return {"key_pem": secret}

    def other(self):
        return "also traced"

    def _private(self):
        return "not traced"


def test_traced_port_opens_one_subsegment_per_public_method_call_and_records_nothing_else(monkeypatch):
    fake = FakeTracer()
    monkeypatch.setattr(observability, "tracer", lambda: XrayTracer(fake))
    port = TracedPort("state", Port())
    assert port.save("-----BEGIN PRIVATE KEY-----") == {"key_pem": "-----BEGIN PRIVATE KEY-----"}
    assert port.other() == "also traced" and port.marker == "plain attribute"
    assert port._private() == "not traced"
    assert fake.provider.opened == ["## state.save", "## state.other"]
    assert fake.annotations == []


def test_subsegments_only_on_the_handler_thread(monkeypatch):
    fake = FakeTracer()
    xray = XrayTracer(fake)
    monkeypatch.setattr(observability, "tracer", lambda: xray)
    port = TracedPort("dns", Port())
    worker = threading.Thread(target=port.save, args=("x",))
    worker.start()
    worker.join()
    assert fake.provider.opened == []
    port.save("x")
    assert fake.provider.opened == ["## dns.save"]


def test_emf_goes_to_stderr():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with emf_to_stderr():
            print("{\"_aws\": 1}")
        print("result")
    assert out.getvalue() == "result\n"
    assert err.getvalue() == "{\"_aws\": 1}\n"


def _documents(emit) -> list[dict]:
    metrics = Metrics(namespace="certrenew-test", service="certrenew")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        emit(metrics)
        metrics.clear_metrics()
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_one_document_per_certificate_with_its_name_as_a_property():
    results = [
        CertificateResult("a", Outcome.RENEWED, "ARI window", serial="0a", not_after=NOW + dt.timedelta(days=45)),
        CertificateResult("b", Outcome.FAILED, "CA error rateLimited", not_after=NOW + dt.timedelta(days=3, hours=12)),
        CertificateResult("c", Outcome.SKIPPED, "not due", serial="0c", not_after=NOW + dt.timedelta(days=70)),
        CertificateResult("d", Outcome.PLANNED, "would issue"),
    ]
    docs = _documents(lambda m: run_metrics.emit_results(m, results, NOW))
    assert [d["certificate"] for d in docs] == ["a", "b", "c"], "planned rows measure nothing"
    a, b, c = docs
    assert a["CertificatesRenewed"] == [1.0] and a["DaysToExpiry"] == [45.0]
    assert a["serial"] == "0a" and "IssuanceDuration" not in a, "issuance is timed once per run"
    assert b["CertificatesFailed"] == [1.0] and b["DaysToExpiry"] == [3.5] and b["reason"] == "CA error rateLimited"
    assert "IssuanceDuration" not in b and "reason" not in c
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "certrenew-test"
        assert directive["Dimensions"] == [["service"]], "no per-certificate dimension (each would be billed)"
        assert doc["service"] == "certrenew"


def test_the_runs_issuance_round_is_measured_once():
    results = (CertificateResult("a", Outcome.ISSUED, "new", serial="0a", not_after=NOW + dt.timedelta(days=90)),
               CertificateResult("b", Outcome.RENEWED, "due", serial="0b", not_after=NOW + dt.timedelta(days=90)))
    report = RunReport(results, NOW, NOW, issuance=IssuanceTimings(seconds=2.25, dns_wait=1.0))
    docs = _documents(lambda m: (run_metrics.emit_report(m, report, 3.5), m.flush_metrics()))
    run = [d for d in docs if "RunDuration" in d]
    assert len(run) == 1 and run[0]["IssuanceDuration"] == [2.25] and run[0]["DnsWait"] == [1.0]
    assert not any("IssuanceDuration" in d for d in docs if "certificate" in d)


def test_a_dry_run_measures_only_its_duration():
    report = RunReport((CertificateResult("a", Outcome.PLANNED, "would issue"),), NOW, NOW, dry_run=True)
    docs = _documents(lambda m: (run_metrics.emit_report(m, report, 1.25), m.flush_metrics()))
    assert len(docs) == 1 and docs[0]["RunDuration"] == [1.25] and "certificate" not in docs[0]


def test_a_certificate_issued_through_a_persistent_record_reports_the_days_the_record_has_left():
    until = NOW + dt.timedelta(days=9, hours=12)
    results = [CertificateResult("p", Outcome.RENEWED, "ARI window", not_after=NOW + dt.timedelta(days=90),
                                 persist_until=until),
               CertificateResult("q", Outcome.SKIPPED, "not due", not_after=NOW + dt.timedelta(days=60))]
    p, q = _documents(lambda m: run_metrics.emit_results(m, results, NOW))
    assert p["PersistRecordDaysLeft"] == [9.5] and p["DaysToExpiry"] == [90.0]
    assert "PersistRecordDaysLeft" not in q, "only certificates whose record ends are measured"
