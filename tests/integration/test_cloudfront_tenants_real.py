"""CloudFront distribution tenants on the devstack (the proxy serves the API moto lacks): the
adapter changes only the certificate, writes nothing when it already is ours, survives a
concurrent change, refuses what CloudFront refuses, and ACM sees the tenant as a user."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from acme_flow.adapters.cloudfront_tenants import CloudFrontTenants
from acme_flow.errors import DeployError
from certfactory import MiniCA
from devstack import proxy_client
from devstack.targets.cloudfront_tenants import make_multitenant_distribution, make_tenant, tenant_certificate

NAMES = ("example.test", "*.example.test")
WAF = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
SETTINGS = {
    "Customizations": {"WebAcl": {"Action": "override", "Arn": WAF},
                       "GeoRestrictions": {"RestrictionType": "whitelist", "Locations": ["DE", "FR"]}},
    "Parameters": [{"Name": "origin", "Value": "shop.origin.test"}],
    "Enabled": True,
}


def _import(names=NAMES, region="us-east-1", arn=None) -> str:
    leaf = MiniCA().leaf(list(names))
    extra = {"CertificateArn": arn} if arn else {}
    return boto3.client("acm", region_name=region).import_certificate(
        Certificate=leaf.cert_pem.encode(), PrivateKey=leaf.key_pem.encode(),
        CertificateChain=leaf.chain_pem.encode(), **extra)["CertificateArn"]


@pytest.fixture
def tenants(aws):
    """The adapter with plain (admin) clients: strict IAM does not know the new calls yet."""
    return CloudFrontTenants(lambda region, role: boto3.client("cloudfront", region_name=region))


@pytest.fixture
def dist(aws):
    return make_multitenant_distribution()


def _updates(aws) -> list[dict]:
    return [c for c in proxy_client.calls(aws.aws_endpoint_url, service="cloudfront")
            if c["method"] == "PUT" and "/distribution-tenant/" in c["path"]]


def test_attach_changes_only_the_certificate(aws, tenants, dist):
    theirs = _import(["shop.example.test"])
    tenant_id = make_tenant(dist, "shop", ["shop.example.test"], theirs, **SETTINGS)
    before = boto3.client("cloudfront").get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    ours = _import()

    assert tenants.attach(tenant_id, ours, NAMES, None) is True

    after = boto3.client("cloudfront").get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    assert after["Customizations"]["Certificate"] == {"Arn": ours}
    for kept in ("DistributionId", "Domains", "Parameters", "Enabled", "ConnectionGroupId", "Name", "Arn"):
        assert after[kept] == before[kept], kept
    assert after["Customizations"]["WebAcl"] == SETTINGS["Customizations"]["WebAcl"]
    assert after["Customizations"]["GeoRestrictions"] == SETTINGS["Customizations"]["GeoRestrictions"]
    assert tenant_certificate(tenant_id) == ours


def test_a_same_arn_attach_writes_nothing(aws, tenants, dist):
    ours = _import()
    tenant_id = make_tenant(dist, "shop", ["shop.example.test"], ours)
    proxy_client.reset_calls(aws.aws_endpoint_url)
    assert tenants.attach(tenant_id, ours, NAMES, None) is False
    assert _updates(aws) == []


def test_a_stale_etag_is_read_again_and_retried(aws, tenants, dist):
    tenant_id = make_tenant(dist, "shop", ["shop.example.test"], **SETTINGS)
    cf = boto3.client("cloudfront")
    real_read = cf.get_distribution_tenant
    changed = []

    def read_then_someone_changes_it(**kw):
        got = real_read(**kw)
        if not changed:  # another writer updates the tenant between our read and our write
            tenant = got["DistributionTenant"]
            changed.append(cf.update_distribution_tenant(
                Id=tenant["Id"], IfMatch=got["ETag"], DistributionId=tenant["DistributionId"],
                Domains=[{"Domain": "shop.example.test"}], Customizations=tenant["Customizations"],
                Parameters=[{"Name": "origin", "Value": "new.origin.test"}], Enabled=True))
        return got

    cf.get_distribution_tenant = read_then_someone_changes_it
    adapter = CloudFrontTenants(lambda region, role: cf)
    ours = _import()
    proxy_client.reset_calls(aws.aws_endpoint_url)

    assert adapter.attach(tenant_id, ours, NAMES, None) is True

    statuses = [c["status"] for c in _updates(aws)]
    assert statuses == [200, 412, 200], "theirs, our stale one, our retry"
    tenant = real_read(Identifier=tenant_id)["DistributionTenant"]
    assert tenant["Customizations"]["Certificate"]["Arn"] == ours
    assert tenant["Parameters"] == [{"Name": "origin", "Value": "new.origin.test"}], "their change is kept"


def test_an_uncovered_domain_is_refused_before_any_write(aws, tenants, dist):
    tenant_id = make_tenant(dist, "shop", ["shop.example.test", "shop.other.test"])
    proxy_client.reset_calls(aws.aws_endpoint_url)
    with pytest.raises(DeployError, match=r"shop\.other\.test.*not covered"):
        tenants.attach(tenant_id, _import(), NAMES, None)
    assert _updates(aws) == []
    assert tenant_certificate(tenant_id) is None


def test_a_certificate_outside_us_east_1_is_refused(aws, tenants, dist):
    tenant_id = make_tenant(dist, "shop", ["shop.example.test"])
    elsewhere = _import(region="eu-west-1")
    with pytest.raises(DeployError, match="not an ACM certificate in us-east-1"):
        tenants.attach(tenant_id, elsewhere, NAMES, None)
    with pytest.raises(ClientError, match="InvalidViewerCertificate"):  # and CloudFront (served) agrees
        make_tenant(dist, "other", ["other.example.test"], elsewhere)


def test_the_served_api_refuses_as_cloudfront_does(aws, dist):
    cf = boto3.client("cloudfront")
    narrow = _import(["a.example.test"])
    with pytest.raises(ClientError, match="InvalidViewerCertificate"):
        make_tenant(dist, "b", ["b.example.test"], narrow)
    with pytest.raises(ClientError) as unknown:
        make_tenant("E0UNKNOWN00000", "c", ["c.example.test"])
    assert unknown.value.response["Error"]["Code"] == "EntityNotFound"
    with pytest.raises(ClientError) as missing:
        cf.get_distribution_tenant(Identifier="dt_nope")
    assert missing.value.response["Error"]["Code"] == "EntityNotFound"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    tenant_id = make_tenant(dist, "a", ["a.example.test"])
    with pytest.raises(ClientError) as stale:
        cf.update_distribution_tenant(Id=tenant_id, IfMatch="ESTALE", DistributionId=dist,
                                      Domains=[{"Domain": "a.example.test"}])
    assert stale.value.response["Error"]["Code"] == "PreconditionFailed"
    assert stale.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_if_match_is_required_and_only_a_disabled_tenant_is_deleted(aws, dist):
    cf = boto3.client("cloudfront")
    unchecked = boto3.client("cloudfront", config=Config(parameter_validation=False))
    tenant_id = make_tenant(dist, "a", ["a.example.test"])
    with pytest.raises(ClientError) as no_version:
        unchecked.update_distribution_tenant(Id=tenant_id, DistributionId=dist, Domains=[{"Domain": "a.example.test"}])
    assert no_version.value.response["Error"]["Code"] == "InvalidIfMatchVersion"
    with pytest.raises(ClientError) as enabled:
        cf.delete_distribution_tenant(Id=tenant_id, IfMatch=cf.get_distribution_tenant(Identifier=tenant_id)["ETag"])
    assert enabled.value.response["Error"]["Code"] == "ResourceNotDisabled"
    etag = cf.update_distribution_tenant(Id=tenant_id, IfMatch=cf.get_distribution_tenant(Identifier=tenant_id)["ETag"],
                                         DistributionId=dist, Domains=[{"Domain": "a.example.test"}],
                                         Enabled=False)["ETag"]
    cf.delete_distribution_tenant(Id=tenant_id, IfMatch=etag)
    with pytest.raises(ClientError, match="EntityNotFound"):
        cf.get_distribution_tenant(Identifier=tenant_id)


def test_the_listings_and_lookup_by_domain(aws, dist):
    cf = boto3.client("cloudfront")
    ours = _import()
    with_ours = make_tenant(dist, "a", ["a.example.test"], ours)
    make_tenant(dist, "b", ["b.example.test"])
    assert cf.get_distribution_tenant_by_domain(Domain="a.example.test")["DistributionTenant"]["Id"] == with_ours
    listed = cf.list_distribution_tenants(AssociationFilter={"DistributionId": dist})["DistributionTenantList"]
    assert sorted(t["Name"] for t in listed) == ["a", "b"] and all(t["ETag"] for t in listed)
    by_cert = cf.list_distribution_tenants_by_customization(CertificateArn=ours)["DistributionTenantList"]
    assert [t["Id"] for t in by_cert] == [with_ours]


def test_acm_shows_the_tenant_in_use_and_refuses_to_delete_its_certificate(aws, tenants, dist):
    acm, cf = boto3.client("acm", region_name="us-east-1"), boto3.client("cloudfront")
    ours = _import()
    tenant_id = make_tenant(dist, "shop", ["shop.example.test"])
    tenants.attach(tenant_id, ours, NAMES, None)
    tenant_arn = cf.get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]["Arn"]
    assert tenant_arn.endswith(f":distribution-tenant/{tenant_id}")
    assert tenant_arn in acm.describe_certificate(CertificateArn=ours)["Certificate"]["InUseBy"]
    with pytest.raises(ClientError) as refused:
        acm.delete_certificate(CertificateArn=ours)
    assert refused.value.response["Error"]["Code"] == "ResourceInUseException"

    newer = _import()
    tenants.attach(tenant_id, newer, NAMES, None)
    assert tenant_arn not in (acm.describe_certificate(CertificateArn=ours)["Certificate"].get("InUseBy") or [])
    acm.delete_certificate(CertificateArn=ours)


def test_check_names_a_missing_tenant(aws, tenants, dist):
    tenants.check(make_tenant(dist, "shop", ["shop.example.test"]), None)
    with pytest.raises(DeployError, match="no such distribution tenant"):
        tenants.check("dt_missing", None)
