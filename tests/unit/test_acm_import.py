"""ACM first imports are not idempotent: a lost response must not leave a second certificate."""
import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters import acm as acm_adapter
from acme_flow.errors import DeployError
from acme_flow.models import KeyType
from certfactory import MiniCA
from fakes import FakeClock


def error(code, status=400):
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "ImportCertificate")


class FakeAcm:
    """Imports that may go through while their response is lost (`lost`), or fail (`fail`)."""

    def __init__(self, script):
        self.script, self.certs, self.calls, self.listings = list(script), {}, 0, 0

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
        assert name == "list_certificates"
        self.listings += 1
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

    def get_certificate(self, CertificateArn):
        return {"Certificate": self.certs[CertificateArn]["Certificate"].decode()}

    def describe_certificate(self, CertificateArn):
        from acme_flow import pki
        serial = int(pki.describe(self.certs[CertificateArn]["Certificate"].decode()).serial, 16)
        return {"Certificate": {"Serial": str(serial), "KeyAlgorithm": "EC_prime256v1"}}


MATERIAL = MiniCA().leaf(("example.com",))


def importer(fake, clock):
    return acm_adapter.AcmImporter(lambda r: fake, clock=clock, jitter=lambda delay: delay)


def test_a_lost_first_import_response_is_found_not_repeated():
    fake, clock = FakeAcm(["lost"]), FakeClock()
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=False)
    assert fake.calls == 1 and list(fake.certs) == [arn]
    assert clock.sleeps == [1.0], "one wait through the injected clock before looking"
    assert fake.listings == 1, "the account is searched after the failed try, not before the first"


def test_a_throttled_first_import_is_tried_again():
    fake, clock = FakeAcm(["fail", "fail"]), FakeClock()
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=False)
    assert fake.calls == 3 and list(fake.certs) == [arn]
    assert clock.sleeps == [1.0, 2.0]


def test_a_first_import_that_keeps_failing_gives_up_after_a_bounded_number_of_tries():
    fake, clock = FakeAcm(["fail"] * 10), FakeClock()
    with pytest.raises(DeployError, match="acm:us-east-1.*ThrottlingException"):
        importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=False)
    assert fake.calls == acm_adapter.FIRST_IMPORT_ATTEMPTS and not fake.certs
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


def test_the_retries_of_a_first_import_stay_within_their_budget():
    fake, clock = FakeAcm(["fail"] * 10), FakeClock()
    slow = fake.import_certificate

    def import_certificate(**kw):
        clock.sleep(50)  # each try takes 50 s before it is throttled
        return slow(**kw)
    fake.import_certificate = import_certificate
    with pytest.raises(DeployError, match="acm:us-east-1: deadline reached"):
        importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=False)
    assert fake.calls == 4 and clock.t <= acm_adapter.FIRST_IMPORT_BUDGET + 50
    assert clock.sleeps == [50, 1.0, 50, 2.0, 50, 4.0, 50], "no wait past the budget"


def test_a_permanent_error_is_not_retried():
    fake, clock = FakeAcm(["denied"]), FakeClock()
    with pytest.raises(DeployError, match="AccessDeniedException"):
        importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=False)
    assert fake.calls == 1 and clock.sleeps == []


def earlier_import(fake, name="site", material=MATERIAL):
    """What a run that died right after its import left in ACM: tagged, its ARN never recorded."""
    return fake.import_certificate(Certificate=material.cert_pem.encode(), PrivateKey=material.key_pem.encode(),
                                   CertificateChain=material.chain_pem.encode(),
                                   Tags=[{"Key": "certrenew:managed", "Value": "true"},
                                         {"Key": "certrenew:name", "Value": name}])["CertificateArn"]


def test_a_first_import_with_no_recorded_intent_lists_nothing():
    fake, clock = FakeAcm([]), FakeClock()
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=False)
    assert fake.listings == 0, "no ListCertificates: the state recorded no unfinished import"
    assert fake.calls == 1 and list(fake.certs) == [arn]


def test_a_recorded_unfinished_import_is_found_and_imported_into_not_duplicated():
    fake, clock = FakeAcm([]), FakeClock()
    left = earlier_import(fake)
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=True)
    assert arn == left and list(fake.certs) == [left], "re-imported into the earlier import"
    assert fake.listings == 1 and fake.calls == 2 and fake.certs[left].get("CertificateArn") == left


def test_a_recorded_unfinished_import_that_never_happened_imports_once():
    fake, clock = FakeAcm([]), FakeClock()
    earlier_import(fake, name="other")  # another certificate's, with the same domain: not ours
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", None, maybe_orphaned=True)
    assert fake.listings == 1 and len(fake.certs) == 2 and "CertificateArn" not in fake.certs[arn]


@pytest.mark.parametrize("text, value", [("0a:1b", 0x0A1B), ("2587", 2587), ("", None), ("zz", None)])
def test_acm_serials_in_both_shapes(text, value):
    assert acm_adapter._serial_number(text) == value


P384 = MiniCA().leaf(("example.com",), KeyType.EC_P384)


def test_a_lost_response_while_moving_to_a_new_arn_finds_the_new_import_not_the_old_one():
    """A key type change: the old certificate (tagged ours, same name) cannot take the new one.
    The search after the lost response must pick the import that holds this certificate."""
    fake, clock = FakeAcm(["ok", "lost"]), FakeClock()
    old = earlier_import(fake, material=P384)
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", old, maybe_orphaned=False)
    assert arn != old and list(fake.certs) == [old, arn], "no third certificate"


def test_a_run_that_died_moving_to_a_new_arn_is_recovered_into_that_arn():
    fake, clock = FakeAcm([]), FakeClock()
    old = earlier_import(fake, material=P384)
    moved = earlier_import(fake)  # the killed run's import under a new ARN, never recorded
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", old, maybe_orphaned=True)
    assert arn == moved and list(fake.certs) == [old, moved] and fake.listings == 1
    arn = importer(fake, clock).import_certificate("us-east-1", MATERIAL, "site", old, maybe_orphaned=False)
    assert list(fake.certs) == [old, moved, arn], "without the intent: a new ARN, as the state asked"
