"""CloudFront distribution tenants: only the certificate changes, every other setting is sent back,
a concurrent change is retried once, and what CloudFront would refuse is refused first."""
from __future__ import annotations

import copy
import datetime as dt
import logging

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters.cloudfront_tenants import CloudFrontTenants, covers
from acme_flow.errors import DeployError

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/" + "1" * 36
OTHER = "arn:aws:acm:us-east-1:123456789012:certificate/" + "2" * 36
NAMES = ("example.com", "*.example.com")
WAF = {"Action": "override", "Arn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop/abc"}
GEO = {"RestrictionType": "whitelist", "Locations": ["DE", "FR"]}
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def tenant(cert=OTHER, **changes):
    """GetDistributionTenant's DistributionTenant, as AWS answers it."""
    found = {
        "Id": "dt_abc", "DistributionId": "EDIST", "Name": "shop",
        "Arn": "arn:aws:cloudfront::123456789012:distribution-tenant/dt_abc",
        "Domains": [{"Domain": "shop.example.com", "Status": "active"}, {"Domain": "example.com", "Status": "active"}],
        "Tags": {"Items": [{"Key": "team", "Value": "web"}]},
        "Customizations": {"WebAcl": WAF, "GeoRestrictions": GEO, **({"Certificate": {"Arn": cert}} if cert else {})},
        "Parameters": [{"Name": "origin", "Value": "shop.origin.example"}],
        "ConnectionGroupId": "cg_123", "CreatedTime": NOW, "LastModifiedTime": NOW,
        "Enabled": False, "Status": "Deployed",
    }
    found.update(changes)
    return found


def client_error(code, op="UpdateDistributionTenant", status=400):
    return ClientError({"Error": {"Code": code, "Message": f"{code} says no"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


class FakeCloudFront:
    """Reads answer the tenant (or raise `read_error`); updates raise the queued errors first."""

    def __init__(self, found=None, read_error=None, update_errors=(), managed=None):
        self.found, self.read_error, self.update_errors = found or tenant(), read_error, list(update_errors)
        self.managed, self.reads, self.updates, self.etag = managed, 0, [], "E1"

    def get_distribution_tenant(self, Identifier):
        self.reads += 1
        if self.read_error:
            raise self.read_error
        assert Identifier == self.found["Id"]
        return {"DistributionTenant": copy.deepcopy(self.found), "ETag": self.etag}

    def update_distribution_tenant(self, **request):
        self.updates.append(request)
        if self.update_errors:
            error = self.update_errors.pop(0)
            self.etag = "E2"  # someone else wrote in between
            raise error
        self.found["Customizations"] = request["Customizations"]

    def get_managed_certificate_details(self, Identifier):
        if self.managed is None:
            raise client_error("EntityNotFound", "GetManagedCertificateDetails", 404)
        return {"ManagedCertificateDetails": self.managed}


def adapter(cf, seen=None):
    def client_for(region, role_arn):
        if seen is not None:
            seen.append((region, role_arn))
        return cf
    return CloudFrontTenants(client_for)


# ---- check

def test_check_reads_the_tenant_in_us_east_1_through_the_role():
    seen, cf = [], FakeCloudFront()
    adapter(cf, seen).check("dt_abc", "arn:aws:iam::222222222222:role/deploy")
    assert seen == [("us-east-1", "arn:aws:iam::222222222222:role/deploy")] and cf.reads == 1


@pytest.mark.parametrize("code, status, expected", [
    ("EntityNotFound", 404, "no such distribution tenant"),
    ("AccessDenied", 403, "AccessDenied: not allowed to read the tenant; grant cloudfront:GetDistributionTenant"),
    ("Throttling", 400, "cannot read the tenant: Throttling"),
])
def test_check_names_why_the_tenant_cannot_be_read(code, status, expected):
    cf = FakeCloudFront(read_error=client_error(code, "GetDistributionTenant", status))
    with pytest.raises(DeployError, match=expected) as raised:
        adapter(cf).check("dt_abc", None)
    assert raised.value.target == "cloudfront-tenant:dt_abc"


# ---- attach: refusals before any write

@pytest.mark.parametrize("arn", [
    "arn:aws:acm:eu-west-1:123456789012:certificate/" + "1" * 36,
    "arn:aws:iam::123456789012:server-certificate/site",
    "not-an-arn",
])
def test_a_certificate_that_is_not_acm_in_us_east_1_is_refused_without_a_call(arn):
    cf = FakeCloudFront()
    with pytest.raises(DeployError, match="not an ACM certificate in us-east-1"):
        adapter(cf).attach("dt_abc", arn, NAMES, None)
    assert cf.reads == 0 and cf.updates == []


def test_a_domain_the_names_do_not_cover_is_refused_without_a_write():
    cf = FakeCloudFront(tenant(Domains=[{"Domain": "shop.example.com"}, {"Domain": "a.b.example.com"}]))
    with pytest.raises(DeployError, match=r"\['a\.b\.example\.com'\] of the tenant are not covered"):
        adapter(cf).attach("dt_abc", ARN, NAMES, None)
    assert cf.updates == []


def test_a_missing_tenant_fails_attach_clearly():
    cf = FakeCloudFront(read_error=client_error("EntityNotFound", "GetDistributionTenant", 404))
    with pytest.raises(DeployError, match="no such distribution tenant"):
        adapter(cf).attach("dt_abc", ARN, NAMES, None)


# ---- attach: the write

def test_the_same_arn_writes_nothing():
    cf = FakeCloudFront(tenant(cert=ARN))
    assert adapter(cf).attach("dt_abc", ARN, NAMES, None) is False
    assert cf.updates == []


def test_the_update_sends_back_every_setting_and_changes_only_the_certificate():
    cf = FakeCloudFront()
    assert adapter(cf).attach("dt_abc", ARN, NAMES, None) is True
    (sent,) = cf.updates
    assert sent == {
        "Id": "dt_abc", "IfMatch": "E1", "DistributionId": "EDIST", "ConnectionGroupId": "cg_123",
        "Enabled": False, "Parameters": [{"Name": "origin", "Value": "shop.origin.example"}],
        "Domains": [{"Domain": "shop.example.com"}, {"Domain": "example.com"}],
        "Customizations": {"WebAcl": WAF, "GeoRestrictions": GEO, "Certificate": {"Arn": ARN}},
    }


def test_a_tenant_on_its_distributions_certificate_gets_its_own(caplog):
    cf = FakeCloudFront(tenant(cert=None, Customizations={}, Parameters=[]))
    with caplog.at_level(logging.INFO, logger="certrenew.cloudfront_tenants"):
        assert adapter(cf).attach("dt_abc", ARN, NAMES, None) is True
    assert cf.updates[0]["Customizations"] == {"Certificate": {"Arn": ARN}}
    assert "used its distribution's certificate" in caplog.text


def test_a_managed_certificate_is_replaced_and_the_log_says_so(caplog):
    managed = {"CertificateArn": OTHER, "CertificateStatus": "issued", "ValidationTokenHost": "cloudfront"}
    cf = FakeCloudFront(managed=managed)
    with caplog.at_level(logging.INFO, logger="certrenew.cloudfront_tenants"):
        assert adapter(cf).attach("dt_abc", ARN, NAMES, None) is True
    assert f"CloudFront-managed certificate {OTHER} (issued): replaced by ours" in caplog.text
    assert "ManagedCertificateRequest" not in cf.updates[0]


def test_another_certificate_is_replaced_and_the_log_names_it(caplog):
    cf = FakeCloudFront()
    with caplog.at_level(logging.INFO, logger="certrenew.cloudfront_tenants"):
        adapter(cf).attach("dt_abc", ARN, NAMES, None)
    assert f"used certificate {OTHER}: replaced by ours" in caplog.text


def test_a_concurrent_change_is_read_again_and_retried_once():
    cf = FakeCloudFront(update_errors=[client_error("PreconditionFailed", status=412)])
    assert adapter(cf).attach("dt_abc", ARN, NAMES, None) is True
    assert cf.reads == 2 and [u["IfMatch"] for u in cf.updates] == ["E1", "E2"]
    assert cf.found["Customizations"]["Certificate"] == {"Arn": ARN}


def test_a_second_concurrent_change_fails_the_target():
    cf = FakeCloudFront(update_errors=[client_error("PreconditionFailed", status=412)] * 2)
    with pytest.raises(DeployError, match="PreconditionFailed.*next run tries again"):
        adapter(cf).attach("dt_abc", ARN, NAMES, None)
    assert len(cf.updates) == 2


def test_a_retry_that_finds_our_certificate_already_there_writes_no_more():
    cf = FakeCloudFront(update_errors=[client_error("PreconditionFailed", status=412)])
    original = cf.update_distribution_tenant

    def someone_else_attached_ours(**request):
        cf.found["Customizations"]["Certificate"] = {"Arn": ARN}
        return original(**request)

    cf.update_distribution_tenant = someone_else_attached_ours
    assert adapter(cf).attach("dt_abc", ARN, NAMES, None) is False
    assert len(cf.updates) == 1


@pytest.mark.parametrize("code, hint", [
    ("InvalidViewerCertificate", "must be an issued ACM certificate in us-east-1"),
    ("AccessDenied", "grant cloudfront:UpdateDistributionTenant"),
    ("InvalidArgument", None),
])
def test_a_refused_update_names_the_code_and_what_to_do(code, hint):
    cf = FakeCloudFront(update_errors=[client_error(code)])
    with pytest.raises(DeployError) as raised:
        adapter(cf).attach("dt_abc", ARN, NAMES, None)
    assert raised.value.reason.startswith(f"{code}: {code} says no")
    assert (hint in raised.value.reason) if hint else "(" not in raised.value.reason
    assert len(cf.updates) == 1, "only PreconditionFailed is retried"


@pytest.mark.parametrize("host, covered", [
    ("example.com", True), ("EXAMPLE.com.", True), ("www.example.com", True),
    ("a.b.example.com", False), ("example.org", False), ("*.example.com", True),
])
def test_covers(host, covered):
    assert covers(NAMES, host) is covered
