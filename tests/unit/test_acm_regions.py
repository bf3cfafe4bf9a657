"""Preflight names an opt-in region the account has not enabled, with what to do."""
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from acme_flow.adapters.acm import AcmImporter
from acme_flow.errors import DeployError


class Acm:
    def __init__(self, code=None, exc=None):
        self.code, self.exc, self.calls = code, exc, []

    def list_certificates(self, **kw):
        self.calls.append(kw)
        if self.exc:
            raise self.exc
        if self.code:
            raise ClientError({"Error": {"Code": self.code, "Message": "The security token included in the request "
                                                                      "is invalid."}}, "ListCertificates")
        return {"CertificateSummaryList": []}


@pytest.mark.parametrize("code", ["UnrecognizedClientException", "InvalidClientTokenId"])
def test_a_region_not_enabled_fails_preflight_naming_it_and_the_fix(code):
    acm = Acm(code)
    with pytest.raises(DeployError) as raised:
        AcmImporter(lambda region: acm).check_region("af-south-1")
    message = str(raised.value)
    assert message.startswith("acm:af-south-1: ") and "has not enabled the region af-south-1" in message
    assert "Regions settings" in message and "deploy.acm.regions" in message
    assert acm.calls == [{"MaxItems": 1}]


def test_one_call_per_region_however_many_certificates_ask():
    acm = Acm()
    importer = AcmImporter(lambda region: acm)
    for _ in range(3):
        importer.check_region("eu-west-1")
    assert acm.calls == [{"MaxItems": 1}]
    broken = Acm("UnrecognizedClientException")
    importer = AcmImporter(lambda region: broken)
    for _ in range(2):
        with pytest.raises(DeployError):
            importer.check_region("me-south-1")
    assert len(broken.calls) == 1


@pytest.mark.parametrize("acm", [Acm("ThrottlingException"), Acm(exc=EndpointConnectionError(endpoint_url="x"))],
                         ids=["throttled", "unreachable"])
def test_other_trouble_does_not_block_the_run(acm):
    AcmImporter(lambda region: acm).check_region("eu-west-1")


def test_an_unknown_region_makes_no_call():
    acm = Acm()
    with pytest.raises(DeployError, match="not an AWS region where ACM exists"):
        AcmImporter(lambda region: acm).check_region("xx-nowhere-1")
    assert acm.calls == []
