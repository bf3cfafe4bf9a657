"""CloudFront: keep a dedicated-IP distribution's SSL method; no UpdateDistribution when nothing changes."""
import copy
import logging

import pytest

from acme_flow.adapters.cloudfront import CloudFrontAttacher

ARN = "arn:aws:acm:us-east-1:123456789012:certificate/" + "1" * 36
OTHER = "arn:aws:acm:us-east-1:123456789012:certificate/" + "2" * 36
NAMES = ("example.com", "*.example.com")

# GetDistributionConfig's ViewerCertificate as each side answers it for a distribution on ARN.
AWS_WITH_DEPRECATED = {"CloudFrontDefaultCertificate": False, "ACMCertificateArn": ARN, "SSLSupportMethod": "sni-only",
                       "MinimumProtocolVersion": "TLSv1.2_2021", "Certificate": ARN, "CertificateSource": "acm"}
AWS_WITHOUT_DEPRECATED = {"CloudFrontDefaultCertificate": False, "ACMCertificateArn": ARN,
                          "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"}
MOTO = {"CloudFrontDefaultCertificate": False, "IAMCertificateId": "", "ACMCertificateArn": ARN,
        "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021", "Certificate": "",
        "CertificateSource": "cloudfront"}


class FakeCloudFront:
    def __init__(self, viewer):
        self.config = {"Aliases": {"Quantity": 1, "Items": ["www.example.com"]}, "ViewerCertificate": viewer}
        self.updates = []

    def get_distribution_config(self, Id):
        return {"DistributionConfig": copy.deepcopy(self.config), "ETag": "E1"}

    def update_distribution(self, Id, IfMatch, DistributionConfig):
        self.updates.append(DistributionConfig["ViewerCertificate"])
        self.config = DistributionConfig


@pytest.mark.parametrize("answer", [AWS_WITH_DEPRECATED, AWS_WITHOUT_DEPRECATED, MOTO],
                         ids=["aws with deprecated fields", "aws without them", "moto"])
def test_the_same_arn_makes_no_update(answer):
    cf = FakeCloudFront(dict(answer))
    assert CloudFrontAttacher(cf).attach("E1", ARN, NAMES) is False
    assert cf.updates == []


@pytest.mark.parametrize("method", ["vip", "static-ip"])
def test_a_dedicated_ip_distribution_keeps_its_method(method, caplog):
    cf = FakeCloudFront({**AWS_WITH_DEPRECATED, "ACMCertificateArn": OTHER, "Certificate": OTHER,
                         "SSLSupportMethod": method})
    with caplog.at_level(logging.INFO, logger="certrenew.cloudfront"):
        assert CloudFrontAttacher(cf).attach("E1", ARN, NAMES) is True
    (sent,) = cf.updates
    assert sent["ACMCertificateArn"] == ARN and sent["SSLSupportMethod"] == method
    assert f"dedicated IP addresses ({method}): kept" in caplog.text


def test_a_dedicated_ip_distribution_on_the_same_arn_is_left_alone():
    cf = FakeCloudFront({**AWS_WITH_DEPRECATED, "SSLSupportMethod": "vip"})
    assert CloudFrontAttacher(cf).attach("E1", ARN, NAMES) is False and cf.updates == []


def test_moving_from_the_default_certificate_sets_sni_and_a_strong_policy():
    cf = FakeCloudFront({"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1",
                         "CertificateSource": "cloudfront"})
    assert CloudFrontAttacher(cf).attach("E1", ARN, NAMES) is True
    assert cf.updates == [{"CloudFrontDefaultCertificate": False, "ACMCertificateArn": ARN,
                           "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"}]


def test_a_weak_policy_on_the_same_arn_is_raised():
    cf = FakeCloudFront({**AWS_WITHOUT_DEPRECATED, "MinimumProtocolVersion": "TLSv1.1_2016"})
    assert CloudFrontAttacher(cf).attach("E1", ARN, NAMES) is True
    assert cf.updates[0]["MinimumProtocolVersion"] == "TLSv1.2_2021"
