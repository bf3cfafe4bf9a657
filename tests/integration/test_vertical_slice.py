"""The whole path on real components: Pebble issues through DNS-01 on moto's Route53 (served by
the DNS bridge), state goes to S3, certificates to ACM in two regions, CloudFront and an S3 export."""
from __future__ import annotations

import boto3
import pytest

from acme_flow import pki
from devstack import pebble_client, proxy_client, world
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path)


def site(distribution=None, **extra):
    deploy = {"acm": {"regions": ["us-east-1", "eu-west-1"]},
              "s3": {"bucket": EXPORT_BUCKET, "prefix": "example.test/"}}
    if distribution:
        deploy["cloudfront"] = {"distributions": [distribution]}
    return {"name": "example-site", "domains": ["example.test", "*.example.test"], "deploy": deploy, **extra}


def shop():
    return {"name": "shop", "domains": ["shop.test", "www.shop.test"], "key": "rsa-2048",
            "deploy": {"acm": {"regions": ["us-east-1"]}}}


def test_issue_store_and_deploy_everywhere(w, capsys):
    dist = world.create_distribution(boto3.client("cloudfront"), ["example.test", "www.example.test"],
                                     minimum_protocol="TLSv1")
    w.s3.put_bucket_encryption(Bucket=EXPORT_BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})  # the export's default
    config = w.write_config([site(dist), shop()])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    outcomes = {c["name"]: c for c in report["certificates"]}
    assert {c["outcome"] for c in outcomes.values()} == {"issued"}

    root = pebble_client.root_pem(w.stack)
    current = w.current("example-site")
    stored = w.material("example-site")
    pki.verify_against_root(pki.split_pem_chain(stored["cert_pem"] + stored["chain_pem"]), root)

    for region in ("us-east-1", "eu-west-1"):
        arn = next(p["arn"] for p in current["deployment"] if p["target"] == f"acm:{region}")
        got = w.acm(region).get_certificate(CertificateArn=arn)
        acm_chain = pki.split_pem_chain(got["CertificateChain"])
        # moto, like AWS, appends its own Amazon root to the chain it was given: take it off
        assert "Amazon" in pki.common_name(pki.load_certificate(acm_chain[-1]).subject)
        acm_chain = acm_chain[:-1]
        assert acm_chain and pki.strip_roots(acm_chain) == acm_chain, "ACM must get intermediates only"
        pki.verify_against_root([got["Certificate"], *acm_chain], root)
        assert pki.describe(got["Certificate"]).serial == current["serial"]

    viewer = boto3.client("cloudfront").get_distribution_config(Id=dist)["DistributionConfig"]["ViewerCertificate"]
    us_arn = next(p["arn"] for p in current["deployment"] if p["target"] == "acm:us-east-1")
    assert viewer["ACMCertificateArn"] == us_arn
    assert viewer["SSLSupportMethod"] == "sni-only"
    assert viewer["MinimumProtocolVersion"] == "TLSv1.2_2021"

    exported = {o["Key"] for o in w.s3.list_objects_v2(Bucket=EXPORT_BUCKET)["Contents"]}
    assert exported == {f"example.test/{n}" for n in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")}
    head = w.s3.head_object(Bucket=EXPORT_BUCKET, Key="example.test/privkey.pem")
    assert head["ServerSideEncryption"] == "aws:kms"

    shop_cert = w.current("shop")
    assert shop_cert["key_type"] == "rsa-2048"
    assert w.acme_records() == {}
    # one publishing batch per zone, one cleanup batch per zone
    for zone_id in w.zones.values():
        assert len(proxy_client.change_batches(w.stack.aws_endpoint_url, zone_id)) == 2


def test_second_run_reuses_the_account_and_reissues_nothing(w, capsys):
    config = w.write_config([shop()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    keys_before = w.state_keys()
    account_key = next(k for k in keys_before if k.endswith("account-key.pem"))
    key_before = w.s3.get_object(Bucket=STATE_BUCKET, Key=account_key)["Body"].read()
    proxy_client.reset_calls(w.stack.aws_endpoint_url)

    code, report = w.run_json(config, capsys=capsys)
    assert code == 0
    assert [c["outcome"] for c in report["certificates"]] == ["skipped"]
    assert "renews at" in report["certificates"][0]["reason"]
    assert w.writes() == [], "a run with nothing due writes nothing"
    assert w.state_keys() == keys_before
    assert w.s3.get_object(Bucket=STATE_BUCKET, Key=account_key)["Body"].read() == key_before


def test_force_reimports_into_the_same_arns_with_a_new_serial(w, capsys):
    config = w.write_config([site()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    first = w.current("example-site")
    code, report = w.run_json(config, "--force", capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "renewed"
    second = w.current("example-site")
    assert second["serial"] != first["serial"]
    arns = lambda cur: {p["target"]: p["arn"] for p in cur["deployment"] if p["target"].startswith("acm:")}
    assert arns(second) == arns(first)
    for target, arn in arns(second).items():
        region = target.split(":", 1)[1]
        body = w.acm(region).get_certificate(CertificateArn=arn)["Certificate"]
        assert pki.describe(body).serial == second["serial"]
    assert len(w.acm("us-east-1").list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]) == 1


def test_a_failing_certificate_leaves_no_record_and_does_not_stop_the_others(w, capsys):
    stray = {"name": "stray", "domains": ["www.nowhere.test"]}
    config = w.write_config([stray, shop()])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 1
    outcomes = {c["name"]: c for c in report["certificates"]}
    assert outcomes["stray"]["outcome"] == "failed"
    assert "no Route53 hosted zone found for www.nowhere.test" in outcomes["stray"]["reason"]
    assert outcomes["shop"]["outcome"] == "issued"
    assert w.acme_records() == {}


def test_records_are_removed_when_the_run_fails_after_publishing(w, capsys):
    # Route53 accepts the publishing batch, then GetChange fails with an error that is not retried.
    proxy_client.configure(w.stack.aws_endpoint_url, route53_delay=2, faults=[
        {"service": "route53", "operation": "GetChange", "status": 400, "code": "InvalidInput",
         "message": "injected", "count": 1}])
    config = w.write_config([{"name": "broken", "domains": ["broken.example.test"]}, shop()])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 1
    assert {c["outcome"] for c in report["certificates"]} == {"failed"}
    upserts = [b for b in proxy_client.change_batches(w.stack.aws_endpoint_url)
               if b["changes"][0]["action"] == "CREATE"]
    assert upserts, "the records were published before the failure"
    assert w.acme_records() == {}
    assert not [k for k in w.state_keys() if k.startswith("challenges/")], "the ledger is cleared after cleanup"


def test_config_error_exits_2_and_writes_nothing(w, capsys):
    config = w.tmp / "bad.yaml"
    config.write_text("acme:\n  directry: x\ncertificates:\n  - name: Bad Name\n    domains: [EXAMPLE.test]\n")
    code = __import__("acme_flow.cli", fromlist=["main"]).main(["run", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "acme.directry" in err and "certificates[0].name" in err and "certificates[0].domains[0]" in err
    assert w.writes() == []
    assert w.state_keys() == []


def test_unknown_only_name_exits_2(w, capsys):
    config = w.write_config([shop()])
    code = __import__("acme_flow.cli", fromlist=["main"]).main(["run", "--config", str(config), "--only", "nope"])
    assert code == 2
    assert "unknown certificate name" in capsys.readouterr().err
    assert w.writes() == []


def test_missing_state_bucket_is_a_clear_error(w, capsys, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", "no-such-bucket")
    # the stack's own bucket, deleted since (one the role may not touch answers AccessDenied instead)
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"StateBucket": "no-such-bucket"})
    config = w.write_config([shop()])
    code = __import__("acme_flow.cli", fromlist=["main"]).main(["run", "--config", str(config)])
    assert code == 2
    assert "state bucket 'no-such-bucket' does not exist" in capsys.readouterr().err
