"""ACM and CloudFront as AWS behaves, on the devstack: a re-import ACM would refuse goes to a new
ARN, a superseded certificate is retired by a later run once unused, CloudFront keeps a dedicated-IP
method and is not updated for a same-ARN renewal, an opt-in region not enabled fails preflight."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from acme_flow import pki
from acme_flow.adapters.acm import AcmImporter
from acme_flow.models import KeyType
from certfactory import CLASSIC_RSA_KU, CLIENT_AUTH, SERVER_AUTH, TLSSERVER_KU, MiniCA
from devstack import proxy_client, world
from devstack_world import STATE_BUCKET, make_world

RENEWER = Config(user_agent_appid="certrenew", retries={"mode": "standard", "max_attempts": 3})


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def _arn(w, name="site", region="us-east-1") -> str:
    return next(p["arn"] for p in w.current(name)["deployment"] if p["target"] == f"acm:{region}")


def _viewer(cf, dist) -> dict:
    return cf.get_distribution_config(Id=dist)["DistributionConfig"]["ViewerCertificate"]


def _set_viewer(cf, dist, **viewer) -> None:
    got = cf.get_distribution_config(Id=dist)
    config = got["DistributionConfig"]
    config["ViewerCertificate"] = {"CloudFrontDefaultCertificate": False, "SSLSupportMethod": "sni-only",
                                   "MinimumProtocolVersion": "TLSv1.2_2021", **viewer}
    cf.update_distribution(Id=dist, IfMatch=got["ETag"], DistributionConfig=config)


def _calls(w, operation):
    return [c for c in proxy_client.calls(w.stack.aws_endpoint_url, operation=operation)
            if c.get("principal", "renewer") == "renewer"]


# ---- item 1: RSA classic -> tlsserver drops keyEncipherment: ACM refuses the re-import

def test_rsa_classic_to_tlsserver_through_the_adapter_gets_a_new_arn(aws):
    """Moto would accept this re-import; AWS (and the devstack's strict ACM rule) refuses it."""
    ca = MiniCA()
    importer = AcmImporter(lambda region: boto3.client("acm", region_name=region, config=RENEWER))
    classic = ca.leaf(("www.example.test",), KeyType.RSA_2048, key_usage=CLASSIC_RSA_KU, eku=(SERVER_AUTH, CLIENT_AUTH))
    first = importer.import_certificate("us-east-1", classic, "site", None, maybe_orphaned=False)
    same_profile = ca.leaf(("www.example.test",), KeyType.RSA_2048, key_usage=CLASSIC_RSA_KU, eku=(SERVER_AUTH,))
    again = importer.import_certificate("us-east-1", same_profile, "site", first, maybe_orphaned=False)
    assert again == first, "clientAuth may go"

    tlsserver = ca.leaf(("www.example.test",), KeyType.RSA_2048, key_usage=TLSSERVER_KU, eku=(SERVER_AUTH,))
    second = importer.import_certificate("us-east-1", tlsserver, "site", first, maybe_orphaned=False)
    assert second != first
    acm = boto3.client("acm")
    assert pki.key_usages(acm.get_certificate(CertificateArn=second)["Certificate"]) == {"digital_signature"}
    assert "key_encipherment" in pki.key_usages(acm.get_certificate(CertificateArn=first)["Certificate"])
    tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=second)["Tags"]}
    assert tags == {"certrenew:managed": "true", "certrenew:name": "site"}


def test_a_stored_certificate_with_more_usages_moves_cloudfront_to_a_new_arn(w, capsys):
    """The whole run: the certificate in ACM asserts a usage the CA's new one lacks (as a classic
    RSA leaf does against a tlsserver one), so the renewal imports under a new ARN, moves the
    distribution to it and retires the old certificate."""
    cf = boto3.client("cloudfront")
    dist = world.create_distribution(cf, ["www.example.test"])
    spec = {"name": "site", "domains": ["example.test", "*.example.test"], "key": "rsa-2048",
            "deploy": {"cloudfront": {"distributions": [dist]}}}
    config = w.write_config([spec])
    assert w.run_json(config, capsys=capsys)[0] == 0
    old_arn = _arn(w)
    served = w.acm().get_certificate(CertificateArn=old_arn)["Certificate"]
    # Put in that ARN a certificate with one usage more than the CA gives (same key type, names)
    wider = MiniCA().leaf(("example.test", "*.example.test"), KeyType.RSA_2048,
                          key_usage=pki.key_usages(served) | {"data_encipherment"}, eku=(SERVER_AUTH, CLIENT_AUTH))
    boto3.client("acm").import_certificate(CertificateArn=old_arn, Certificate=wider.cert_pem.encode(),
                                           PrivateKey=wider.key_pem.encode(), CertificateChain=wider.chain_pem.encode())
    # (the re-import keeps the certificate's tags, as on AWS: devstack/moto_server.py)

    code, report = w.run_json(config, "--force", capsys=capsys)
    assert code == 0, report
    new_arn = _arn(w)
    assert new_arn != old_arn
    assert _viewer(cf, dist)["ACMCertificateArn"] == new_arn
    assert not [c for c in _calls(w, "ImportCertificate") if c["status"] != 200], "no refused re-import"
    reason = report["certificates"][0]["reason"]
    assert f"deleted {old_arn}" in reason or f"kept {old_arn} for a later run" in reason


# ---- item 11: a superseded certificate still in use is kept on the list and retired later

def test_a_superseded_certificate_in_use_is_retired_by_a_later_run(w, capsys):
    cf = boto3.client("cloudfront")
    ours = world.create_distribution(cf, ["www.example.test"])
    spec = {"name": "site", "domains": ["example.test", "*.example.test"], "key": "rsa-2048",
            "deploy": {"cloudfront": {"distributions": [ours]}}}
    assert w.run_json(w.write_config([spec]), capsys=capsys)[0] == 0
    old_arn = _arn(w)
    theirs = world.create_distribution(cf, ["api.example.test"])
    _set_viewer(cf, theirs, ACMCertificateArn=old_arn)  # still on the old certificate

    config = w.write_config([{**spec, "key": "ec-p256"}])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    reason = report["certificates"][0]["reason"]
    assert f"kept {old_arn} for a later run: still used by " in reason and f"cloudfront:{theirs}" in reason
    assert [(r["region"], r["arn"]) for r in w.current("site")["retiring"]] == [("us-east-1", old_arn)]
    w.acm().describe_certificate(CertificateArn=old_arn)

    # a run where nothing is due, while still in use: kept, nothing written
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "skipped"
    assert f"kept {old_arn} for a later run" in report["certificates"][0]["reason"]
    assert not _calls(w, "DeleteCertificate") or all(c["status"] != 200 for c in _calls(w, "DeleteCertificate"))
    assert w.current("site")["retiring"]

    _set_viewer(cf, theirs, ACMCertificateArn=_arn(w))  # the other distribution lets go of it
    proxy_client.configure(w.stack.aws_endpoint_url, inuse_lag=0)  # ... and CloudFront's lag is over
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "skipped"
    assert f"deleted {old_arn}" in report["certificates"][0]["reason"]
    assert w.current("site")["retiring"] == []
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        w.acm().describe_certificate(CertificateArn=old_arn)

    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0 and "deleted" not in report["certificates"][0]["reason"]
    assert _calls(w, "ListDistributions") == [] and _calls(w, "DeleteCertificate") == [], \
        "an empty list costs no call"


# ---- item 12: CloudFront keeps vip; no UpdateDistribution for a same-ARN renewal

def test_a_same_arn_renewal_leaves_the_distribution_alone(w, capsys):
    cf = boto3.client("cloudfront")
    dist = world.create_distribution(cf, ["www.example.test"])
    config = w.write_config([{"name": "site", "domains": ["example.test", "*.example.test"],
                              "deploy": {"cloudfront": {"distributions": [dist]}}}])
    assert w.run_json(config, capsys=capsys)[0] == 0
    arn = _arn(w)
    assert len(_calls(w, "UpdateDistribution")) == 1
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = w.run_json(config, "--force", capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "renewed"
    assert _arn(w) == arn
    assert _calls(w, "UpdateDistribution") == []


def test_a_vip_distribution_stays_vip(w, capsys, caplog):
    cf = boto3.client("cloudfront")
    dist = world.create_distribution(cf, ["www.example.test"])
    # the owner's own certificate on dedicated IPs (CloudFront needs a real us-east-1 ACM certificate)
    ca = MiniCA()
    theirs = ca.leaf(["www.example.test"])
    owner_arn = w.acm().import_certificate(Certificate=theirs.cert_pem.encode(), PrivateKey=theirs.key_pem.encode(),
                                           CertificateChain=theirs.chain_pem.encode())["CertificateArn"]
    _set_viewer(cf, dist, ACMCertificateArn=owner_arn, SSLSupportMethod="vip")
    config = w.write_config([{"name": "site", "domains": ["example.test", "*.example.test"],
                              "deploy": {"cloudfront": {"distributions": [dist]}}}])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    viewer = _viewer(cf, dist)
    assert viewer["ACMCertificateArn"] == _arn(w) and viewer["SSLSupportMethod"] == "vip"
    assert "dedicated IP addresses (vip): kept" in caplog.text


# ---- opt-in regions

def test_the_proxy_answers_as_aws_in_an_opt_in_region_not_enabled(aws):
    acm = boto3.client("acm", region_name="af-south-1")
    with pytest.raises(ClientError) as refused:
        acm.list_certificates()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert refused.value.response["Error"]["Message"] == "The security token included in the request is invalid."
    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        boto3.client("sns", region_name="me-south-1").list_topics()
    boto3.client("acm", region_name="eu-west-1").list_certificates()  # a default region works

    config = proxy_client._request(aws.aws_endpoint_url, "config", {"enabled_regions": ["af-south-1"]})
    assert config["enabled_regions"] == ["af-south-1"]
    acm.list_certificates()
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        boto3.client("acm", region_name="ap-east-1").list_certificates()
    proxy_client.reset(aws.aws_endpoint_url)
    assert proxy_client.get_config(aws.aws_endpoint_url)["enabled_regions"] == []
    with pytest.raises(Exception, match="400"):
        proxy_client._request(aws.aws_endpoint_url, "config", {"enabled_regions": "af-south-1"})


def test_an_opt_in_region_not_enabled_fails_preflight_with_what_to_do(w, capsys):
    config = w.write_config([{"name": "site", "domains": ["example.test"],
                              "deploy": {"acm": {"regions": ["us-east-1", "af-south-1"]}}}])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 1
    reason = report["certificates"][0]["reason"]
    assert reason.startswith("acm:af-south-1: ") and "has not enabled the region af-south-1" in reason
    assert "Regions settings" in reason and "deploy.acm.regions" in reason
    assert w.writes() == [], "nothing ordered, imported or written"

    proxy_client._request(w.stack.aws_endpoint_url, "config", {"enabled_regions": ["af-south-1"]})
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    assert _arn(w, region="af-south-1").startswith("arn:aws:acm:af-south-1:")
