"""`certrenew rehearse` on the devstack: a second Pebble (no EAB) stands for the staging
directory (`acme.rehearsal_directory`). Certificates are issued end to end from it through
Route53 DNS-01; production state, ACM, the export bucket and notifications stay untouched; a
certificate in no hosted zone fails with the reason while the others rehearse; the Lambda
`rehearse` action gives the same report."""
from __future__ import annotations

import json

import boto3
import pytest

from devstack import pebble_client, proxy_client
from devstack import stack as devstack
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

ROOTS_ENV = "CERTRENEW_REHEARSAL_ROOTS"


@pytest.fixture
def staging_ca(stack):
    """A plain second Pebble (fresh root, no accounts, no EAB) for the staging directory."""
    started = devstack.start_fallback_pebble(stack, pebble_config={"externalAccountBindingRequired": False})
    try:
        yield started
    finally:
        devstack.stop_fallback_pebble(stack)


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    monkeypatch.delenv(ROOTS_ENV, raising=False)
    return make_world(aws, tmp_path)


CERTIFICATES = [
    {"name": "site", "domains": ["example.test", "www.example.test"],
     "deploy": {"acm": {"regions": ["us-east-1"]}, "s3": {"bucket": EXPORT_BUCKET, "prefix": "site/"}}},
    {"name": "nowhere", "domains": ["www.nowhere.invalid"]},
    {"name": "shop", "domains": ["shop.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}},
]


def write_config(w, staging_ca):
    acme = {"directory": w.stack.acme_directory, "email": "ops@example.test",
            "rehearsal_directory": staging_ca.acme_directory}
    return w.write_config(CERTIFICATES, acme=acme)


def snapshot(w) -> dict[str, bytes]:
    return {key: w.s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read() for key in w.state_keys()}


def acm_arns() -> list[str]:
    return sorted(c["CertificateArn"] for c in boto3.client("acm", region_name="us-east-1").list_certificates(
        Includes={"keyTypes": ["EC_prime256v1", "RSA_2048"]})["CertificateSummaryList"])


def rehearse(w, config, *extra, capsys) -> tuple[int, dict]:
    code, out = w.cli("rehearse", "--config", str(config), "--json", *extra, capsys=capsys)
    return code, json.loads(out)


def test_rehearsal_issues_from_staging_and_changes_nothing_in_production(w, staging_ca, capsys, monkeypatch, tmp_path):
    config = write_config(w, staging_ca)
    code, _ = w.cli("run", "--config", str(config), "--only", "site", capsys=capsys)  # production has a certificate
    assert code == 0
    before, arns, exports = snapshot(w), acm_arns(), w.s3.list_objects_v2(Bucket=EXPORT_BUCKET)["KeyCount"]
    roots = tmp_path / "staging-roots.pem"
    roots.write_text(pebble_client.root_pem(staging_ca))
    monkeypatch.setenv(ROOTS_ENV, str(roots))
    proxy_client.reset_calls(w.stack.aws_endpoint_url)  # the calls so far are the production run's

    code, report = rehearse(w, config, capsys=capsys)

    results = {c["name"]: c for c in report["certificates"]}
    assert code == 1 and report["rehearsal"] is True and report["directory"] == staging_ca.acme_directory
    assert results["site"]["outcome"] == "rehearsed" and results["shop"]["outcome"] == "rehearsed", report
    assert results["site"]["serial"] and results["site"]["serial"] != w.current("site")["serial"]
    assert results["nowhere"]["outcome"] == "failed" and results["nowhere"]["stage"] == "zone not found"
    assert "no Route53 hosted zone found for www.nowhere.invalid" in results["nowhere"]["reason"]
    after = snapshot(w)
    staging_keys = {k for k in after if k not in before}
    assert staging_keys and all(k.startswith("accounts/127.0.0.1-") for k in staging_keys), staging_keys
    assert {k: v for k, v in after.items() if k not in staging_keys} == before  # production state untouched
    assert acm_arns() == arns and w.s3.list_objects_v2(Bucket=EXPORT_BUCKET)["KeyCount"] == exports
    written = {c["operation"] for c in w.writes()}
    assert written <= {"PutObject", "DeleteObject", "ChangeResourceRecordSets"}, written  # account, ledger, TXT
    assert w.acme_records() == {}  # every TXT value removed


def test_a_chain_that_does_not_end_at_the_staging_roots_fails_the_rehearsal(w, staging_ca, capsys, monkeypatch,
                                                                             tmp_path):
    config = write_config(w, staging_ca)
    roots = tmp_path / "not-staging.pem"
    roots.write_text(pebble_client.root_pem(w.stack))  # the production Pebble's root
    monkeypatch.setenv(ROOTS_ENV, str(roots))
    code, report = rehearse(w, config, "--only", "shop", capsys=capsys)
    (result,) = report["certificates"]
    assert code == 1 and result["stage"] == "chain" and "staging root" in result["reason"], report
    assert w.state_keys() and not any(k.startswith(("certificates/", "locks/", "challenges/")) for k in w.state_keys())


def test_the_lambda_rehearse_action(w, staging_ca, monkeypatch):
    from handler.local import invoke

    monkeypatch.setenv("CERTRENEW_CONFIG", str(write_config(w, staging_ca)))
    report = invoke({"action": "rehearse", "certificates": ["shop", "nowhere"]}, timeout=300)
    results = {c["name"]: (c["outcome"], c["stage"]) for c in report["certificates"]}
    assert report["ok"] is False and report["directory"] == staging_ca.acme_directory
    assert results == {"shop": ("rehearsed", "rehearsed"), "nowhere": ("failed", "zone not found")}
    assert not any(k.startswith(("certificates/", "locks/", "challenges/")) for k in w.state_keys())
    assert not {c["operation"] for c in w.writes()} & {"ImportCertificate", "Publish", "UpdateDistribution"}


def test_events_rehearse_json_through_invoke_function_as_the_deployed_function(w, staging_ca, tmp_path, monkeypatch):
    """events/rehearse.json run by `certrenew invoke --function RenewerFunction`, with the
    function's template settings (issue 14: each event of events/ through invoke --function)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    config = write_config(w, staging_ca)
    topic = boto3.client("sns").create_topic(Name="certrenew")["TopicArn"]
    queue = boto3.client("sqs").create_queue(QueueName="certrenew-work")["QueueUrl"]
    for name, value in {"CERTRENEW_STATE_KMS_KEY": "", "CERTRENEW_SNS_TOPIC_ARN": topic,
                        "CERTRENEW_QUEUE_URL": queue}.items():
        monkeypatch.setenv(name, value)
    done = subprocess.run([sys.executable, "-m", "acme_flow.cli", "invoke", "--function", "RenewerFunction",
                           "--parameter-overrides", f"ConfigLocation={config}", str(repo / "events" / "rehearse.json")],
                          capture_output=True, text=True, timeout=300, cwd=repo)
    report = json.loads(done.stdout)
    results = {c["name"]: (c["outcome"], c["stage"]) for c in report["certificates"]}
    assert results == {"site": ("rehearsed", "rehearsed"), "shop": ("rehearsed", "rehearsed"),
                       "nowhere": ("failed", "zone not found")}, done.stderr[-2000:]
    assert "REPORT RequestId:" in done.stderr
    assert not any(k.startswith(("certificates/", "locks/", "challenges/")) for k in w.state_keys())
