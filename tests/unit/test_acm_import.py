"""ACM first imports are not idempotent: a lost response must not leave a second certificate."""
import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters import acm as acm_adapter
from acme_flow.errors import DeployError
from certfactory import MiniCA


def error(code, status=400):
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "ImportCertificate")


class FakeAcm:
    """Imports that may go through while their response is lost (`lost`), or fail (`fail`)."""

    def __init__(self, script):
        self.script, self.certs, self.calls = list(script), {}, 0

    def import_certificate(self, **kw):
        self.calls += 1
        step = self.script.pop(0) if self.script else "ok"
        if step == "fail":
            raise error("ThrottlingException")
        if step == "denied":
            raise error("AccessDeniedException")
        arn = kw.get("CertificateArn") or f"arn:aws:acm:us-east-1:123456789012:certificate/{len(self.certs):036d}"
        self.certs[arn] = kw
        if step == "lost":
            raise error("ServiceUnavailable", 503)
        return {"CertificateArn": arn}

    def get_paginator(self, name):
        fake = self

        class Pages:
            def paginate(self, **kw):
                from acme_flow import pki
                yield {"CertificateSummaryList": [
                    {"CertificateArn": arn, "DomainName": pki.describe(kw_["Certificate"].decode()).names[0]}
                    for arn, kw_ in fake.certs.items()]}
        return Pages()

    def list_tags_for_certificate(self, CertificateArn):
        return {"Tags": self.certs[CertificateArn].get("Tags", [])}

    def describe_certificate(self, CertificateArn):
        from acme_flow import pki
        serial = int(pki.describe(self.certs[CertificateArn]["Certificate"].decode()).serial, 16)
        return {"Certificate": {"Serial": str(serial), "KeyAlgorithm": "EC_prime256v1"}}


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(acm_adapter.time, "sleep", lambda s: None)


MATERIAL = MiniCA().leaf(("example.com",))


def test_a_lost_first_import_response_is_found_not_repeated():
    fake = FakeAcm(["lost"])
    importer = acm_adapter.AcmImporter(lambda r: fake)
    arn = importer.import_certificate("us-east-1", MATERIAL, "site", None)
    assert fake.calls == 1 and list(fake.certs) == [arn]


def test_a_throttled_first_import_is_tried_again():
    fake = FakeAcm(["fail", "fail"])
    arn = acm_adapter.AcmImporter(lambda r: fake).import_certificate("us-east-1", MATERIAL, "site", None)
    assert fake.calls == 3 and list(fake.certs) == [arn]


def test_a_permanent_error_is_not_retried():
    fake = FakeAcm(["denied"])
    with pytest.raises(DeployError, match="AccessDeniedException"):
        acm_adapter.AcmImporter(lambda r: fake).import_certificate("us-east-1", MATERIAL, "site", None)
    assert fake.calls == 1


@pytest.mark.parametrize("text, value", [("0a:1b", 0x0A1B), ("2587", 2587), ("", None), ("zz", None)])
def test_acm_serials_in_both_shapes(text, value):
    assert acm_adapter._serial_number(text) == value
