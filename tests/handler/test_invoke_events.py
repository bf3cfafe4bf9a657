"""The Lambda handler on each sample event, through `certrenew invoke` (what `sam local invoke` does)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devstack_world import STATE_BUCKET, make_world

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    w = make_world(aws, tmp_path, zones=("example.test",))
    config = w.write_config([{"name": "site", "domains": ["example.test", "www.example.test"],
                              "deploy": {"acm": {"regions": ["us-east-1"]}}}])
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    monkeypatch.setenv("CERTRENEW_CONFIG", str(config))
    return w


def invoke(event_path: Path) -> tuple[int, dict, str]:
    done = subprocess.run([sys.executable, "-m", "acme_flow.cli", "invoke", str(event_path)],
                          capture_output=True, text=True, timeout=300)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def test_plan_event_changes_nothing(w):
    code, report, logs = invoke(EVENTS / "plan.json")
    assert code == 0, logs
    assert report["dry_run"] is True
    assert [(c["name"], c["outcome"]) for c in report["certificates"]] == [("site", "planned")]
    assert "no certificate yet" in report["certificates"][0]["reason"]
    assert w.writes() == []


def test_scheduled_event_issues_and_renew_now_skips(w):
    code, report, logs = invoke(EVENTS / "scheduled.json")
    assert code == 0, logs
    assert report["certificates"][0]["outcome"] == "issued"
    assert '"level":"INFO"' in logs, "Powertools JSON logs go to stderr, the report alone to stdout"
    code, report, _ = invoke(EVENTS / "renew-now.json")
    assert code == 0
    assert report["certificates"][0]["outcome"] == "skipped"


def test_a_malformed_event_is_refused(w, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"action": "renew", "force": "yes"}))
    code, report, logs = invoke(bad)
    assert code == 2
    assert "force: must be true or false" in logs
    assert w.writes() == []


@pytest.fixture
def site(aws, tmp_path, monkeypatch):
    """The certificate events/sqs-batch.json names, in a zone of the devstack."""
    w = make_world(aws, tmp_path, zones=("example.test",))
    config = w.write_config([{"name": "example-site", "domains": ["example.test", "*.example.test"],
                              "deploy": {"acm": {"regions": ["us-east-1"]}}}])
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    monkeypatch.setenv("CERTRENEW_CONFIG", str(config))
    return w


def test_sqs_batch_event_runs_the_worker(site):
    code, response, logs = invoke(EVENTS / "sqs-batch.json")
    assert code == 0, logs
    assert response == {"batchItemFailures": []}, "stdout holds the partial batch response alone"
    assert site.current("example-site")["serial"]
    assert '"message":"worker batch finished"' in logs
    metrics = [json.loads(line) for line in logs.splitlines() if line.startswith("{") and '"_aws"' in line]
    (issued,) = [m for m in metrics if "CertificatesIssued" in m]
    assert issued["certificate"] == "example-site"
    assert any("ColdStart" in m for m in metrics), "a fresh process is a cold start"


def test_sqs_batch_with_a_certificate_that_fails_reports_its_record(site, tmp_path):
    event = json.loads((EVENTS / "sqs-batch.json").read_text())
    record = event["Records"][0]
    event["Records"].append({**record, "messageId": "second", "body": json.dumps({"certificate": "nope"})})
    event["Records"].append({**record, "messageId": "third", "body": "{not json"})
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(event))
    code, response, logs = invoke(path)
    assert code == 1, "a batch with failed records exits 1, like a run with a failed certificate"
    # the unknown name is dropped (nothing to renew), the malformed body goes back to the queue
    assert response == {"batchItemFailures": [{"itemIdentifier": "third"}]}
    assert "certificates no longer in the config" in logs
