"""Re-import into the same ARN only when ACM would accept it; otherwise a new ARN (and no failure for ever)."""
import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from acme_flow.adapters import acm as acm_adapter
from acme_flow.errors import DeployError
from acme_flow.models import KeyType
from certfactory import CLASSIC_RSA_KU, CLIENT_AUTH, SERVER_AUTH, TLSSERVER_KU, MiniCA

CA = MiniCA()
ACCOUNT = "123456789012"


def error(code, message, operation="ImportCertificate"):
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                       operation)


def _usages(pem):
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        bits = {b for b in ("digital_signature", "key_encipherment", "key_agreement") if getattr(ku, b)}
    except x509.ExtensionNotFound:
        bits = set()
    try:
        ekus = {o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value}
    except x509.ExtensionNotFound:
        ekus = set()
    key = cert.public_key()
    return bits, ekus, "EC" if isinstance(key, ec.EllipticCurvePublicKey) else f"RSA_{key.key_size}"


class AwsLikeAcm:
    """An ACM that refuses re-imports as AWS does (moto accepts them): no KU/EKU value may be
    dropped (except keyEncipherment on ECDSA, and clientAuth), the key algorithm stays.
    `refuse_all_reimports` stands for a refusal our own comparison did not foresee."""

    def __init__(self, refuse_all_reimports=False):
        self.certs, self.imports, self.refuse_all = {}, [], refuse_all_reimports

    def import_certificate(self, Certificate, PrivateKey, CertificateChain, CertificateArn=None, Tags=None):
        pem = Certificate.decode()
        self.imports.append(CertificateArn)
        if CertificateArn:
            old_ku, old_eku, old_alg = _usages(self.certs[CertificateArn]["pem"])
            new_ku, new_eku, new_alg = _usages(pem)
            if Tags:
                raise error("ValidationException", "Tags cannot be specified on re-import")
            if old_alg != new_alg:
                raise error("ValidationException", "The certificate key algorithm does not match the imported certificate")
            if self.refuse_all or (old_ku - new_ku - ({"key_encipherment"} if new_alg == "EC" else set())):
                raise error("ValidationException",
                            "New certificate is missing one or more Key Usages supported by the currently imported certificate")
            if old_eku - new_eku - {CLIENT_AUTH.dotted_string}:
                raise error("ValidationException", "New certificate is missing one or more Extended Key Usages "
                                                   "supported by the currently imported certificate")
            self.certs[CertificateArn]["pem"] = pem
            return {"CertificateArn": CertificateArn}
        arn = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/{len(self.certs):036d}"
        self.certs[arn] = {"pem": pem, "tags": Tags or []}
        return {"CertificateArn": arn}

    def get_paginator(self, name):  # _find_ours: no earlier import to find in these tests
        return type("Pages", (), {"paginate": lambda self, **kw: iter([{"CertificateSummaryList": []}])})()

    def describe_certificate(self, CertificateArn):
        if CertificateArn not in self.certs:
            raise error("ResourceNotFoundException", f"Could not find certificate {CertificateArn}.", "DescribeCertificate")
        alg = _usages(self.certs[CertificateArn]["pem"])[2]
        return {"Certificate": {"CertificateArn": CertificateArn,
                                "KeyAlgorithm": "EC_prime256v1" if alg == "EC" else alg}}

    def get_certificate(self, CertificateArn):
        if CertificateArn not in self.certs:
            raise error("ResourceNotFoundException", f"Could not find certificate {CertificateArn}.", "GetCertificate")
        return {"Certificate": self.certs[CertificateArn]["pem"]}


def material(key_type=KeyType.RSA_2048, ku=CLASSIC_RSA_KU, eku=(SERVER_AUTH, CLIENT_AUTH)):
    return CA.leaf(("example.com",), key_type, key_usage=ku, eku=eku)


def deploy(acm, mat, arn):
    importer = acm_adapter.AcmImporter(lambda region: acm)
    return importer.import_certificate("us-east-1", mat, "site", arn, maybe_orphaned=False)


def test_rsa_classic_to_tlsserver_goes_to_a_new_arn():
    acm = AwsLikeAcm()
    old = deploy(acm, material(ku=CLASSIC_RSA_KU), None)
    new = deploy(acm, material(ku=TLSSERVER_KU), old)
    assert new != old
    assert acm.imports == [None, None], "no re-import is even tried: ACM would refuse it"
    assert {t["Key"] for t in acm.certs[new]["tags"]} == {"certrenew:managed", "certrenew:name"}


def test_same_usages_reimport_into_the_same_arn():
    acm = AwsLikeAcm()
    old = deploy(acm, material(ku=TLSSERVER_KU), None)
    assert deploy(acm, material(ku=TLSSERVER_KU, eku=(SERVER_AUTH,)), old) == old, "clientAuth may be dropped"
    assert acm.imports == [None, old]


def test_ecdsa_dropping_key_encipherment_stays_in_the_same_arn():
    acm = AwsLikeAcm()
    old = deploy(acm, material(KeyType.EC_P256, ku=CLASSIC_RSA_KU), None)
    assert deploy(acm, material(KeyType.EC_P256, ku=TLSSERVER_KU), old) == old


def test_a_refused_reimport_falls_back_to_a_new_arn_instead_of_failing_every_run():
    acm = AwsLikeAcm(refuse_all_reimports=True)
    old = deploy(acm, material(), None)
    new = deploy(acm, material(), old)
    assert new != old and acm.imports == [None, old, None]


def test_other_reimport_errors_still_fail():
    acm = AwsLikeAcm()
    old = deploy(acm, material(), None)

    def denied(**kw):
        raise error("AccessDeniedException", "not authorized to perform acm:ImportCertificate")
    acm.import_certificate = denied
    with pytest.raises(DeployError, match="AccessDeniedException"):
        deploy(acm, material(), old)


def test_a_vanished_arn_gets_a_new_import():
    acm = AwsLikeAcm()
    gone = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/{'9' * 36}"
    assert deploy(acm, material(), gone) != gone
