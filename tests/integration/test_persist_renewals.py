"""dns-persist-01 through the product on the devstack: Pebble 2.10 validates the persistent
`_validation-persist` record (written once, by the zone's administrator) and a certificate for
an apex and a wildcard name is issued and renewed with no Route53 write at all (counted at the
proxy); `auto` falls back to DNS-01 while the record is missing, and says so."""
from __future__ import annotations

import json

import pytest

from acme_flow import persist
from devstack import proxy_client, world
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

PEBBLE_ISSUER = "pebble.letsencrypt.org"  # Pebble's default caaIdentities


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path)


def site(challenge: str) -> dict:
    return {"name": "site", "domains": ["example.test", "*.example.test"], "challenge": challenge,
            "deploy": {"acm": {"regions": ["us-east-1"]}, "s3": {"bucket": EXPORT_BUCKET, "prefix": "site/"}}}


def account_url(w) -> str:
    key = next(k for k in w.state_keys() if k.startswith("accounts/") and k.endswith("/account.json"))
    return json.loads(w.s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())["url"]


def route53_writes(w) -> list[dict]:
    return [c for c in proxy_client.calls(w.stack.aws_endpoint_url, "route53", "ChangeResourceRecordSets")
            if c.get("principal") == "renewer"]


def write_persistent_record(w, url: str) -> None:
    who = persist.PersistIdentity(PEBBLE_ISSUER, url, persist.Draft.D01)
    (name, wanted), = persist.wanted_records(("example.test", "*.example.test"), who).items()
    world.upsert_txt(w.route53, w.zones["example.test"], name, [wanted.value(persist.Draft.D01)])


def test_auto_falls_back_then_uses_the_persistent_record_and_writes_no_dns(w, capsys):
    config = w.write_config([site("auto")])
    code, report = w.run_json(config, capsys=capsys)
    (first,) = report["certificates"]
    assert code == 0 and first["outcome"] == "issued", report
    assert first["challenge"] == "dns-01" and "auto: dns-01" in first["reason"]
    assert first["directory"] == w.stack.acme_directory
    assert route53_writes(w), "the fallback published DNS-01 values"

    write_persistent_record(w, account_url(w))
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = w.run_json(config, "--force", capsys=capsys)
    (renewed,) = report["certificates"]
    assert code == 0 and renewed["outcome"] == "renewed", report
    assert renewed["challenge"] == "dns-persist-01"
    assert route53_writes(w) == [], "a dns-persist-01 renewal writes no DNS"
    assert w.acme_records() == {}


def test_dns_persist_01_issues_and_renews_apex_and_wildcard_with_no_route53_write(w, capsys):
    # the account exists first (the record names it): a run of another certificate registers it
    other = {"name": "shop", "domains": ["shop.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}}
    assert w.run_json(w.write_config([other]), capsys=capsys)[0] == 0
    write_persistent_record(w, account_url(w))
    config = w.write_config([site("dns-persist-01")])
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    for extra, outcome in (((), "issued"), (("--force",), "renewed")):
        code, report = w.run_json(config, *extra, capsys=capsys)
        (result,) = report["certificates"]
        assert code == 0 and result["outcome"] == outcome and result["challenge"] == "dns-persist-01", report
    assert route53_writes(w) == []
    assert {p["target"] for p in w.current("site")["deployment"]} == {"acm:us-east-1", f"s3://{EXPORT_BUCKET}/site/"}


def test_dns_persist_01_without_its_record_fails_that_certificate_only(w, capsys):
    other = {"name": "shop", "domains": ["shop.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}}
    config = w.write_config([site("dns-persist-01"), other])
    code, report = w.run_json(config, capsys=capsys)
    results = {r["name"]: r for r in report["certificates"]}
    assert code == 1
    assert results["shop"]["outcome"] == "issued"
    assert results["site"]["outcome"] == "failed"
    assert "_validation-persist.example.test" in results["site"]["reason"], results["site"]["reason"]


def test_a_stack_without_dns_write_permission_renews_with_dns_persist_01_only(w, capsys):
    """template.yaml with DnsChallengeWrites "false": the strict proxy refuses every Route53
    write of the renewer, and a dns-persist-01 certificate is issued and renewed all the same."""
    other = {"name": "shop", "domains": ["shop.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}}
    assert w.run_json(w.write_config([other]), capsys=capsys)[0] == 0  # registers the account
    write_persistent_record(w, account_url(w))
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"DnsChallengeWrites": "false"})
    code, report = w.run_json(w.write_config([site("dns-persist-01"), other]), "--force", capsys=capsys)
    results = {r["name"]: r for r in report["certificates"]}
    assert results["site"]["outcome"] == "issued" and results["site"]["challenge"] == "dns-persist-01", report
    assert results["shop"]["outcome"] == "failed" and "route53:ChangeResourceRecordSets" in results["shop"]["reason"]
    assert code == 1
