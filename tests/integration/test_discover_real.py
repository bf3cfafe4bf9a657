"""`certrenew discover` on the devstack: distributions (covered, in no zone, delegated by CNAME), a
distribution tenant, an HTTPS listener and a REGIONAL API domain, read as a person would; `--write`
proposes a config `certrenew plan` accepts, merged into an existing file without losing anything."""
from __future__ import annotations

import json

import boto3
import pytest
import yaml

from acme_flow import cli
from acme_flow.config import parse_config
from certfactory import MiniCA
from devstack import world
from devstack.targets.apigateway import make_domain
from devstack.targets.cloudfront_tenants import make_multitenant_distribution, make_tenant
from devstack.targets.elb import make_https_listener
from devstack_world import STATE_BUCKET, make_world

REGION = "eu-west-1"


def imported(region: str, names, tags=None) -> str:
    material = MiniCA().leaf(tuple(names))
    extra = {"Tags": tags} if tags else {}
    return boto3.client("acm", region_name=region).import_certificate(
        Certificate=material.cert_pem.encode(), PrivateKey=material.key_pem.encode(),
        CertificateChain=material.chain_pem.encode(), **extra)["CertificateArn"]


@pytest.fixture
def account(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    w = make_world(aws, tmp_path, zones=("example.test", "shop.test", "delegate.test"))
    cf = boto3.client("cloudfront")
    # corp.test is private: app.corp.test is in no public zone, but its _acme-challenge is
    # delegated by a CNAME (served in DNS by the devstack's bridge) into the public delegate.test.
    world.create_zone(w.route53, "corp.test", private=True)
    corp = next(z["Id"] for z in w.route53.list_hosted_zones()["HostedZones"] if z["Name"] == "corp.test.")
    w.route53.change_resource_record_sets(HostedZoneId=corp, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": "_acme-challenge.app.corp.test", "Type": "CNAME", "TTL": 60,
            "ResourceRecords": [{"Value": "_acme-challenge.app-corp.delegate.test"}]}}]})
    ids = {
        "covered": world.create_distribution(cf, ["www.example.test", "example.test"]),
        "nozone": world.create_distribution(cf, ["www.nowhere.invalid"]),
        "delegated": world.create_distribution(cf, ["app.corp.test"]),
    }
    ours = imported("us-east-1", ["t1.shop.test"], [{"Key": "certrenew:managed", "Value": "true"}])
    ids["tenant"] = make_tenant(make_multitenant_distribution(), "t1", ["t1.shop.test"], ours)
    ids["listener"] = make_https_listener(REGION, imported(REGION, ["shop.test", "www.shop.test"]))
    make_domain("api.example.test", REGION, imported(REGION, ["api.example.test"]))
    ids["tenant_cert"] = ours
    return w, ids


def discover(capsys, *extra: str) -> tuple[int, list[dict], str]:
    code = cli.main(["discover", "--json", "--regions", "us-east-1", REGION, *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_discover_lists_and_judges_every_kind(account, capsys):
    _, ids = account
    code, found, _ = discover(capsys)
    assert code == 0
    by_id = {r["id"]: r for r in found}
    covered, nozone, delegated = (by_id[ids[k]] for k in ("covered", "nozone", "delegated"))
    assert covered["coverable"] and covered["names"] == ["www.example.test", "example.test"]
    assert covered["certificate"]["source"] == "cloudfront-default"
    assert not nozone["coverable"] and "www.nowhere.invalid" in nozone["reason"]
    assert delegated["coverable"] and "app-corp.delegate.test" in delegated["reason"]

    tenant = by_id[ids["tenant"]]
    assert tenant["kind"] == "cloudfront-tenant" and tenant["coverable"] and tenant["names"] == ["t1.shop.test"]
    assert tenant["certificate"]["arn"] == ids["tenant_cert"] and tenant["certificate"]["source"] == "certrenew"
    assert tenant["certificate"]["key_type"] and tenant["certificate"]["days_left"] > 0

    (listener,) = [r for r in found if r["kind"] == "elb-listener"]
    assert listener["arn"] == ids["listener"] and listener["region"] == REGION
    assert listener["names"] == ["shop.test", "www.shop.test"] and listener["names_from"] == "certificates"
    assert listener["coverable"] and listener["certificate"]["source"] == "imported"

    (api,) = [r for r in found if r["kind"] == "apigateway-domain"]
    assert (api["id"], api["region"], api["endpoint"], api["coverable"]) == ("api.example.test", REGION,
                                                                              "regional", True)


def test_the_table_says_where_a_listener_names_come_from(account, capsys):
    code = cli.main(["discover", "--regions", REGION])
    out = capsys.readouterr().out
    assert code == 0 and "elb-listener" in out and "its certificates' names" in out
    assert "www.nowhere.invalid" in out and "public hosted zones: delegate.test, example.test, shop.test" in out


def test_write_proposes_a_config_plan_accepts(account, capsys, tmp_path):
    _, ids = account
    path = tmp_path / "proposed.yaml"
    code, _, err = discover(capsys, "--write", str(path))
    assert code == 0
    config = parse_config(path.read_text(), str(path))
    targets = {t for spec in config.certificates for t in spec.deploy.targets()}
    assert {t.id for t in targets} >= {ids["covered"], ids["delegated"], ids["tenant"], ids["listener"]}
    assert ids["nozone"] not in {t.id for t in targets}
    assert f"left out: cloudfront-distribution {ids['nozone']}" in err and "www.nowhere.invalid" in err
    assert cli.main(["plan", "--config", str(path), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["certificates"]) == len(config.certificates)


def test_write_merges_into_an_existing_file_without_losing_anything(account, capsys, tmp_path):
    _, ids = account
    path = tmp_path / "certificates.yaml"
    original = ("# mine\nacme:\n  directory: letsencrypt-staging\n  email: ops@example.test\n"
                "certificates:\n  - name: www-example-test   # by hand\n"
                "    domains: [www.example.test, example.test]\n"
                f"    deploy: {{cloudfront: {{distributions: [{ids['covered']}]}}, s3: {{bucket: my-certs}}}}\n"
                "  - name: app-corp-test\n    domains: [other.example.test]\n")
    path.write_text(original)
    code, _, err = discover(capsys, "--write", str(path))
    assert code == 0 and "appended" in err and "already deployed to by certificate 'www-example-test'" in err
    text = path.read_text()
    assert text.startswith(original)
    config = parse_config(text, str(path))
    names = config.names()
    assert names[:2] == ["www-example-test", "app-corp-test"] and len(names) == len(set(names))
    assert config.certificates[0].deploy.s3 is not None
    data = yaml.safe_load(text)
    distributions = [d for c in data["certificates"] for d in c.get("deploy", {}).get("cloudfront", {})
                     .get("distributions", [])]
    assert distributions.count(ids["covered"]) == 1 and ids["delegated"] in distributions

    code, _, err = discover(capsys, "--write", str(path))  # again: nothing new, nothing changed
    assert code == 0 and "nothing to add" in err and path.read_text() == text
