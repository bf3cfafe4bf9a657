"""`certrenew persist plan|apply|check` on the devstack: Pebble's caaIdentities, our account
registered in S3, the records written into moto's Route53 by a person (one batch per zone),
another issuer's value kept, CloudFormation output; then a run issues through dns-persist-01
without writing to Route53 at all.

A person runs `persist apply` with rights the renewer does not have (template.yaml lets the
renewer write only `_acme-challenge` TXT records). The devstack's proxy tells the renewer by the
`app/certrenew` User-Agent of the product's clients; the record commands name themselves
`app/certrenew-operator` (bootstrap.OPERATOR_APP_ID), so the proxy judges them as the
administrator's, the way IAM would judge a person's own credentials; `as_renewer` makes them
the renewer's."""
from __future__ import annotations

import json

import pytest
import yaml

from acme_flow import bootstrap, persist
from devstack import proxy_client, world
from devstack_world import STATE_BUCKET, make_world

ISSUER = "pebble.letsencrypt.org"
OTHER = '"other-ca.example; accounturi=https://other-ca.example/acct/9"'


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    made = make_world(aws, tmp_path, zones=("example.test", "shop.test"))
    made.config = made.write_config([
        {"name": "site", "domains": ["example.test", "*.example.test"], "challenge": "dns-persist-01"},
        {"name": "shop", "domains": ["shop.test"], "challenge": "auto"},
        {"name": "legacy", "domains": ["old.example.test"]},
    ])
    return made


@pytest.fixture
def as_renewer(monkeypatch):
    """The record commands' AWS calls under the renewer's app id: judged by the renewer's policy."""
    monkeypatch.setattr(bootstrap, "OPERATOR_APP_ID", bootstrap.APP_ID)


def persist_cli(w, capsys, action: str, *extra: str) -> tuple[int, str]:
    code, out = w.cli("persist", action, "--config", str(w.config), *extra, capsys=capsys)
    return code, out


def txt(w, zone: str, name: str) -> list[str]:
    return world.txt_records(w.route53, w.zones[zone]).get(name, [])


def test_check_fails_before_apply_and_passes_after_and_other_values_stay(w, capsys):
    w.route53.change_resource_record_sets(HostedZoneId=w.zones["example.test"], ChangeBatch={"Changes": [{
        "Action": "CREATE", "ResourceRecordSet": {"Name": "_validation-persist.example.test", "Type": "TXT",
                                                  "TTL": 120, "ResourceRecords": [{"Value": OTHER}]}}]})
    proxy_client.reset_calls(w.stack.aws_endpoint_url)

    code, out = persist_cli(w, capsys, "check", "--json")
    before = json.loads(out)
    assert code == 1 and sorted(r["status"] for r in before["records"]) == ["missing", "missing"]
    assert before["issuer"] == ISSUER and before["draft"] == persist.Draft.D01.value
    account = before["account_url"]
    assert account.startswith(w.stack.acme_directory.rsplit("/", 1)[0])
    assert "accounts/" in " ".join(w.state_keys()), "the account was registered and kept in S3"
    assert not proxy_client.change_batches(w.stack.aws_endpoint_url), "check writes nothing"

    code, out = persist_cli(w, capsys, "apply")
    assert code == 0 and out.count("missing -> written") == 2

    ours = f"{ISSUER}; accounturi={account}"
    assert txt(w, "example.test", "_validation-persist.example.test") == [
        OTHER, persist.txt_rdata(ours + "; policy=wildcard")]
    assert txt(w, "shop.test", "_validation-persist.shop.test") == [persist.txt_rdata(ours)]
    batches = proxy_client.change_batches(w.stack.aws_endpoint_url)
    assert sorted(b["zone_id"] for b in batches) == sorted(w.zones.values()), "one change batch per zone"
    assert not any("old.example.test" in json.dumps(b["changes"]) for b in batches), "dns-01 certificates need none"

    code, out = persist_cli(w, capsys, "check")
    assert code == 0 and "all in place" in out


def test_plan_cloudformation_parses_with_the_values_to_publish(w, capsys):
    code, out = persist_cli(w, capsys, "plan", "--format", "cloudformation")

    assert code == 0
    resources = yaml.safe_load(out)["Resources"]
    example = resources["ValidationPersistExampleTest"]
    assert example["Type"] == "AWS::Route53::RecordSet"
    props = example["Properties"]
    assert (props["HostedZoneId"], props["Name"], props["Type"]) == (
        w.zones["example.test"], "_validation-persist.example.test.", "TXT")
    account = json.loads(persist_cli(w, capsys, "plan", "--json")[1])["account_url"]
    assert props["ResourceRecords"] == [persist.txt_rdata(f"{ISSUER}; accounturi={account}; policy=wildcard")]
    assert resources["ValidationPersistShopTest"]["Properties"]["HostedZoneId"] == w.zones["shop.test"]
    code, out = persist_cli(w, capsys, "plan", "--format", "cloudformation", "--json")
    assert json.loads(out)["Resources"]["ValidationPersistExampleTest"] == example


def test_the_renewer_may_not_write_persistent_records(w, capsys, as_renewer):
    """Under the renewer's identity the template's policy refuses every record write."""
    code, out = persist_cli(w, capsys, "apply", "--json")

    assert code == 1
    records = json.loads(out)["records"]
    assert all(r["status"] == "error" and "AccessDenied" in r["reason"] for r in records), records
    assert not proxy_client.change_batches(w.stack.aws_endpoint_url)


def test_after_apply_a_run_issues_through_dns_persist_01_with_no_route53_write(w, capsys, monkeypatch):
    assert persist_cli(w, capsys, "apply")[0] == 0
    proxy_client.reset_calls(w.stack.aws_endpoint_url)

    code, report = w.run_json(w.config, "--only", "site", "shop", capsys=capsys)

    assert code == 0, report
    assert {c["name"]: c["outcome"] for c in report["certificates"]} == {"site": "issued", "shop": "issued"}
    assert {c["name"]: c.get("challenge") for c in report["certificates"]} == {
        "site": "dns-persist-01", "shop": "dns-persist-01"}
    assert not proxy_client.calls(w.stack.aws_endpoint_url, "route53", "ChangeResourceRecordSets")
