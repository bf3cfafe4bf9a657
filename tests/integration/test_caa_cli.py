"""`certrenew caa plan|apply|check` on the devstack: CAA sets in moto's Route53 zones, read back
through the DNS bridge (CERTRENEW_DNS_RESOLVERS) the way a CA reads them, bound to our account
at Pebble. Pebble checks no CAA itself: our checker is judged against the zones' records.

`apply` is a person's command, judged as an administrator's (see test_persist_cli.py)."""
from __future__ import annotations

import json

import pytest

from devstack import proxy_client
from devstack_world import STATE_BUCKET, make_world

ISSUER = "pebble.letsencrypt.org"
SECTIGO = '0 issue "sectigo.com"'
IODEF = '0 iodef "mailto:security@example.test"'
OTHER_ACCOUNT = f'0 issue "{ISSUER}; accounturi=https://127.0.0.1:14000/my-account/999"'


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    made = make_world(aws, tmp_path, zones=("example.test", "shop.test"))
    made.config = made.write_config([
        {"name": "site", "domains": ["example.test", "*.example.test"]},  # dns-01
        {"name": "www", "domains": ["www.example.test"], "challenge": "dns-persist-01"},
        {"name": "shop", "domains": ["shop.test"], "challenge": "auto"},
    ])
    put_caa(made, "example.test", [SECTIGO, IODEF])
    put_caa(made, "shop.test", [OTHER_ACCOUNT])
    proxy_client.reset_calls(aws.aws_endpoint_url)
    return made


def put_caa(w, zone: str, values: list[str]) -> None:
    w.route53.change_resource_record_sets(HostedZoneId=w.zones[zone], ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": zone, "Type": "CAA", "TTL": 60,
                                                  "ResourceRecords": [{"Value": v} for v in values]}}]})


def caa_of(w, zone: str) -> list[str]:
    got = w.route53.list_resource_record_sets(HostedZoneId=w.zones[zone], StartRecordName=zone,
                                              StartRecordType="CAA", MaxItems="1")["ResourceRecordSets"]
    return [r["Value"] for r in got[0]["ResourceRecords"]] if got and got[0]["Type"] == "CAA" else []


def caa_cli(w, capsys, action: str, *extra: str) -> tuple[int, dict]:
    code, out = w.cli("caa", action, "--config", str(w.config), "--json", *extra, capsys=capsys)
    return code, json.loads(out)


def verdicts(report: dict) -> dict[tuple[str, str], tuple[bool, str]]:
    return {(n["name"], n["method"]): (n["allowed"], n["reason"]) for n in report["names"]}


def test_check_reports_a_set_blocking_our_ca_and_one_blocking_our_account_then_passes_after_apply(w, capsys):
    code, before = caa_cli(w, capsys, "check")

    account = before["account_url"]
    rows = verdicts(before)
    assert code == 1 and before["issuer"] == ISSUER
    assert rows[("www.example.test", "dns-persist-01")] == (False, "blocked: CAA at example.test allows only sectigo.com")
    assert rows[("*.example.test", "dns-01")][0] is False
    shop = [rows[("shop.test", m)] for m in ("dns-01", "dns-persist-01")]
    assert all(not allowed and f"ours is {account}" in why for allowed, why in shop)
    assert not proxy_client.change_batches(w.stack.aws_endpoint_url), "check writes nothing"

    code, applied = caa_cli(w, capsys, "apply")
    assert code == 0 and [z["written"] for z in applied["zones"]] == [True, True]
    assert len(proxy_client.change_batches(w.stack.aws_endpoint_url)) == 2, "one change batch per zone"
    both = f"accounturi={account}; validationmethods=dns-01,dns-persist-01"
    assert caa_of(w, "example.test") == [SECTIGO, IODEF, f'0 issue "{ISSUER}; {both}"', f'0 issuewild "{ISSUER}; {both}"']
    assert caa_of(w, "shop.test") == [OTHER_ACCOUNT, f'0 issue "{ISSUER}; {both}"']

    code, after = caa_cli(w, capsys, "check")
    assert code == 0 and all(allowed for allowed, _ in verdicts(after).values())
    assert verdicts(after)[("www.example.test", "dns-persist-01")][1].startswith("allowed: CAA at example.test")


def test_plan_changes_nothing_and_exclusive_drops_other_cas_and_accounts(w, capsys):
    code, plan = caa_cli(w, capsys, "plan", "--exclusive")
    assert code == 0 and [z["changed"] for z in plan["zones"]] == [True, True]
    assert caa_of(w, "example.test") == [SECTIGO, IODEF] and not proxy_client.change_batches(w.stack.aws_endpoint_url)

    code, applied = caa_cli(w, capsys, "apply", "--exclusive")

    account = applied["account_url"]
    bound = f'0 issue "{ISSUER}; accounturi={account}; validationmethods=dns-01,dns-persist-01"'
    assert code == 0 and applied["zones"][0]["removed"] == [SECTIGO]
    assert caa_of(w, "example.test") == [IODEF, bound, bound.replace("0 issue", "0 issuewild")]
    assert caa_of(w, "shop.test") == [bound]
    code, again = caa_cli(w, capsys, "apply", "--exclusive")
    assert code == 0 and not any(z["written"] for z in again["zones"])
    assert len(proxy_client.change_batches(w.stack.aws_endpoint_url)) == 2, "nothing to change: no write"


def test_a_text_table_for_people(w, capsys):
    code, out = w.cli("caa", "plan", "--config", str(w.config), capsys=capsys)

    assert code == 0
    assert f"zone example.test ({w.zones['example.test']}): changes" in out and f"  + 0 issuewild \"{ISSUER};" in out
    assert f"    {SECTIGO}" in out and "caa plan: 2 zone(s) to change (certrenew caa apply)" in out
