"""AWS throttling and 5xx on a share of Route53, ACM, S3 and CloudFront calls: every run
eventually succeeds, nothing is left behind, what is deployed is valid.

The devstack proxy answers every Nth call of each service (and a seeded share of all four)
with the error AWS sends under load, without forwarding it. certrenew's clients use botocore's
standard retry mode (bootstrap.BOTO_RETRIES), so most runs ride the faults out; a run that
still fails is run again (the issue's bar: every run *eventually* succeeds), and the figures
say how many needed it.
"""
from __future__ import annotations

import json

import boto3
import pytest

from acme_flow import cli
from devstack import pebble_client, proxy_client, world
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world
from fault_checks import account_key, acm_arns, check_deployed_certificates, check_pointer

SERVICES = ["route53", "acm", "s3", "cloudfront"]
FAULTS = [
    {"service": "route53", "every": 4, "status": 400, "code": "Throttling", "message": "Rate exceeded"},
    {"service": "route53", "every": 9, "status": 400, "code": "PriorRequestNotComplete",
     "message": "The request was rejected because Route 53 was still processing a prior request."},
    {"service": "acm", "every": 4, "status": 400, "code": "ThrottlingException", "message": "Rate exceeded"},
    {"service": "acm", "every": 7, "status": 500, "code": "InternalFailure", "message": "internal failure"},
    {"service": "s3", "every": 10, "status": 500, "code": "InternalError",
     "message": "We encountered an internal error. Please try again."},
    {"service": "s3", "every": 23, "status": 503, "code": "SlowDown", "message": "Please reduce your request rate."},
    {"service": "cloudfront", "every": 3, "status": 503, "code": "ServiceUnavailable",
     "message": "CloudFront is unavailable"},
    {"service": SERVICES, "probability": 0.04, "seed": 5, "status": 503, "code": "ServiceUnavailable",
     "message": "Service unavailable"},
]
MAX_TRIES = 3


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path)


def certificates(distribution: str, shop_key: str) -> list[dict]:
    return [
        {"name": "site", "domains": ["example.test", "*.example.test"],
         "deploy": {"acm": {"regions": ["us-east-1", "eu-west-1"]},
                    "cloudfront": {"distributions": [distribution]},
                    "s3": {"bucket": EXPORT_BUCKET, "prefix": "site/"}}},
        {"name": "shop", "domains": ["shop.test", "www.shop.test"], "key": shop_key,
         "deploy": {"acm": {"regions": ["us-east-1"]}}},
    ]


def faults_on(w, faults: list[dict]) -> None:
    proxy_client.configure(w.stack.aws_endpoint_url, faults=[{"count": None, **f} for f in faults])


def faults_off(w) -> None:
    proxy_client.configure(w.stack.aws_endpoint_url, faults=[])


FAILURES: list[str] = []  # why runs that had to be rerun failed (for the figures)


def run_until_ok(w, config, capsys, *extra: str, faults: list[dict] = FAULTS) -> tuple[int, dict, dict]:
    """Run under faults; rerun a failed run (up to MAX_TRIES). Returns (tries, last report,
    each certificate's outcome for the step: see `step_outcomes`)."""
    reports = []
    for tries in range(1, MAX_TRIES + 1):
        faults_on(w, faults)
        try:
            code = cli.main(["run", "--config", str(config), "--json", *extra])
        finally:
            faults_off(w)
        report = json.loads(capsys.readouterr().out)
        reports.append(report)
        if code == 0:
            return tries, report, step_outcomes(reports)
        FAILURES.extend(f"{c['name']}: {c['reason']}" for c in report["certificates"] if c["outcome"] == "failed")
    pytest.fail(f"still failing after {MAX_TRIES} runs: {report}")


def step_outcomes(reports: list[dict]) -> dict[str, str]:
    """What the step did to each certificate over its tries: the first outcome that is not
    `failed`. A try that issued a certificate and failed to deploy it leaves it stored; the
    rerun then only deploys it, which counts as the step's issue or renewal; a certificate
    a failed try finished is `skipped` by the rerun, so the earlier outcome counts."""
    out: dict[str, str] = {}
    failed_before: set[str] = set()
    for report in reports:
        for c in report["certificates"]:
            name, outcome = c["name"], c["outcome"]
            if name in out:
                continue
            if outcome == "failed":
                failed_before.add(name)
            elif outcome == "deployed" and name in failed_before:
                out[name] = "issued or renewed by an earlier try"
            else:
                out[name] = outcome
    return out


def test_runs_under_throttling_and_5xx_eventually_succeed(w, capsys, figures):
    distribution = world.create_distribution(boto3.client("cloudfront"), ["example.test", "www.example.test"])
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    root = pebble_client.root_pem(w.stack)
    steps = [
        ("first issuance", certificates(distribution, "rsa-2048"), (), {"site": "issued", "shop": "issued"}),
        ("key type change", certificates(distribution, "ec-p256"), (), {"site": "skipped", "shop": "renewed"}),
        ("forced renewal", certificates(distribution, "ec-p256"), ("--force",), {"site": "renewed", "shop": "renewed"}),
        ("nothing due", certificates(distribution, "ec-p256"), (), {"site": "skipped", "shop": "skipped"}),
    ]
    tries_per_step, key = {}, None
    FAILURES.clear()
    for label, certs, extra, wanted in steps:
        config = w.write_config(certs)
        tries, report, outcomes = run_until_ok(w, config, capsys, *extra)
        tries_per_step[label] = tries
        finished_late = {n for n, o in outcomes.items() if o == "issued or renewed by an earlier try"}
        assert all(wanted[n] in ("issued", "renewed") for n in finished_late), (label, outcomes)
        assert {n: wanted[n] if n in finished_late else o for n, o in outcomes.items()} == wanted, (label, report)
        if label == "key type change":
            assert "deleted arn:aws:acm:us-east-1:" in report["certificates"][1]["reason"], report
        key = key or account_key(w)
        assert account_key(w) == key, "the account key changed"
        assert w.acme_records() == {}, f"orphan TXT records after {label}"
        for name in ("site", "shop"):
            check_pointer(w, name)

    faulted = proxy_client.faulted(w.stack.aws_endpoint_url)
    by_service = {s: sum(1 for c in faulted if c["service"] == s) for s in SERVICES}
    calls = [c for c in proxy_client.calls(w.stack.aws_endpoint_url) if c["service"] in SERVICES]
    figures["AWS faults"].update(
        runs=len(steps), succeeded_eventually=len(tries_per_step),
        succeeded_first_try=sum(t == 1 for t in tries_per_step.values()),
        tries=tries_per_step, failures=list(FAILURES), calls=len(calls), faults_injected=len(faulted),
        by_service=by_service)
    assert all(by_service.values()), f"every service saw faults: {by_service}"

    # what is deployed at the end: every target holds the current certificate, and it is valid
    site, shop = w.current("site"), w.current("shop")
    assert {p["target"] for p in site["deployment"]} == {
        "acm:us-east-1", "acm:eu-west-1", f"cloudfront:{distribution}", f"s3://{EXPORT_BUCKET}/site/"}
    assert {p["serial"] for p in site["deployment"]} == {site["serial"]}
    assert {p["serial"] for p in shop["deployment"]} == {shop["serial"]}
    assert shop["key_type"] == "ec-p256"
    served = check_deployed_certificates(w, ("site", "shop"), root, regions=("us-east-1", "eu-west-1"))
    everywhere = set(acm_arns("us-east-1")) | set(acm_arns("eu-west-1"))
    assert set(served) == everywhere
    wanted_arns = {p["arn"] for cur in (site, shop) for p in cur["deployment"] if p["target"].startswith("acm:")}
    assert everywhere == wanted_arns, "no ACM certificate left over (the old RSA one was deleted)"
    viewer = boto3.client("cloudfront").get_distribution_config(Id=distribution)["DistributionConfig"]["ViewerCertificate"]
    us_arn = next(p["arn"] for p in site["deployment"] if p["target"] == "acm:us-east-1")
    assert viewer["ACMCertificateArn"] == us_arn
    assert not [k for k in w.state_keys() if k.startswith("challenges/")]


# Responses lost after AWS acted (a 5xx or a timeout after the write committed): botocore's
# retry then meets the call's own effect. Writes only: a lost read changes nothing.
LOST_RESPONSES = [
    {"service": "s3", "operation": "PutObject", "every": 7, "status": 500, "code": "InternalError"},
    {"service": "s3", "operation": "DeleteObject", "every": 2, "status": 500, "code": "InternalError"},
    {"service": "acm", "operation": "ImportCertificate", "every": 3, "status": 500, "code": "InternalFailure"},
    {"service": "acm", "operation": "DeleteCertificate", "every": 1, "count": 1, "status": 500,
     "code": "InternalFailure"},
    {"service": "route53", "operation": "ChangeResourceRecordSets", "every": 2, "status": 503,
     "code": "ServiceUnavailable"},
    {"service": "cloudfront", "operation": "UpdateDistribution", "every": 2, "status": 503,
     "code": "ServiceUnavailable"},
]


def test_runs_whose_write_responses_are_lost_eventually_succeed(w, capsys, figures):
    """Every run eventually succeeds and what is deployed is valid; a pointer write whose
    response was lost is recognised as done (no "changed by another run" failure). Known gap,
    reported and bounded here: a lost ImportCertificate response leaves a duplicate ACM
    certificate, since botocore re-sends the import (which has no idempotency token) within the
    same call and the code only ever sees the second ARN."""
    distribution = world.create_distribution(boto3.client("cloudfront"), ["example.test", "www.example.test"])
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    root = pebble_client.root_pem(w.stack)
    steps = [("first issuance", "rsa-2048", ()), ("key type change", "ec-p256", ()),
             ("forced renewal", "ec-p256", ("--force",)), ("nothing due", "ec-p256", ())]
    tries_per_step, key = {}, None
    FAILURES.clear()
    for label, shop_key, extra in steps:
        tries, _, _ = run_until_ok(w, w.write_config(certificates(distribution, shop_key)), capsys, *extra,
                                     faults=[{**f, "after": True} for f in LOST_RESPONSES])
        tries_per_step[label] = tries
        key = key or account_key(w)
        assert account_key(w) == key, "the account key changed"
        assert w.acme_records() == {}, f"orphan TXT records after {label}"
    lost = [c for c in proxy_client.faulted(w.stack.aws_endpoint_url) if "applied_status" in c]
    lost_imports = sum(1 for c in lost if c["operation"] == "ImportCertificate" and c["applied_status"] == 200)

    site, shop = w.current("site"), w.current("shop")
    for current in (site, shop):
        check_pointer(w, current["name"])
        assert {p["serial"] for p in current["deployment"]} == {current["serial"]}
    assert len(site["deployment"]) == 4 and len(shop["deployment"]) == 1
    served = check_deployed_certificates(w, ("site", "shop"), root, regions=("us-east-1", "eu-west-1"))
    deployed = {p["arn"] for cur in (site, shop) for p in cur["deployment"] if p["target"].startswith("acm:")}
    assert deployed <= set(served)
    for arn in deployed:
        owner = site if arn in {p["arn"] for p in site["deployment"]} else shop
        assert served[arn] == owner["serial"], f"{arn} does not hold the current certificate"
    orphans = set(served) - deployed
    assert not [f for f in FAILURES if "changed by another run" in f], FAILURES
    assert lost_imports, "the rule lost at least one ImportCertificate response"
    assert not orphans, f"{len(orphans)} ACM certificates nobody uses after {lost_imports} lost imports"
    assert not [k for k in w.state_keys() if k.startswith("challenges/")]
    figures["AWS lost responses"].update(
        runs=len(steps), succeeded_eventually=len(tries_per_step), tries=tries_per_step, failures=list(FAILURES),
        lost_write_responses=len(lost), lost_imports=lost_imports, orphan_acm_certificates=len(orphans))


def test_a_lost_response_to_taking_the_lease_does_not_skip_the_certificate(w, capsys):
    """The lease is the run's first write: AWS takes it, the response is lost, botocore's retry
    of the create-only write gets 412. The lease read back is the run's own: it goes on."""
    config = w.write_config([{"name": "site", "domains": ["example.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}}])
    proxy_client.configure(w.stack.aws_endpoint_url, faults=[
        {"service": "s3", "operation": "PutObject", "count": 1, "after": True, "status": 500, "code": "InternalError"}])
    try:
        code = cli.main(["run", "--config", str(config), "--json"])
    finally:
        faults_off(w)
    report = json.loads(capsys.readouterr().out)
    lost = proxy_client.faulted(w.stack.aws_endpoint_url)
    assert [(c["path"], c["applied_status"]) for c in lost] == [(f"/{STATE_BUCKET}/locks/site.json", 200)]
    assert code == 0 and report["certificates"][0]["outcome"] == "issued", report
    assert "locks/site.json" not in w.state_keys(), "released at the end"
