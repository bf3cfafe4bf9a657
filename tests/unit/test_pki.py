import datetime as dt

import pytest

from acme_flow import pki
from acme_flow.errors import VerificationError
from acme_flow.models import CertificateMaterial, KeyType
from certfactory import NOW, MiniCA

NAMES = ("example.com", "*.example.com")


@pytest.mark.parametrize("key_type", list(KeyType))
def test_generated_keys_have_the_configured_type(key_type):
    key = pki.generate_key(key_type)
    assert pki.key_type_of(key.public_key()) is key_type


def test_csr_carries_every_name_and_no_must_staple():
    from cryptography import x509

    csr = x509.load_pem_x509_csr(pki.make_csr(pki.generate_key(KeyType.EC_P256), NAMES))
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(NAMES)
    assert not any(isinstance(e.value, x509.TLSFeature) for e in csr.extensions)


def test_verify_material_accepts_a_good_certificate():
    ca = MiniCA()
    material = ca.leaf(NAMES)
    info = pki.verify_material(material, NAMES, NOW, KeyType.EC_P256)
    assert set(info.names) == set(NAMES)
    assert info.issuer == "Test Intermediate"
    assert info.key_type is KeyType.EC_P256


def test_wrong_key_is_rejected():
    ca = MiniCA()
    good, other = ca.leaf(NAMES), ca.leaf(NAMES)
    bad = CertificateMaterial(good.cert_pem, good.chain_pem, other.key_pem)
    with pytest.raises(VerificationError, match="private key does not match"):
        pki.verify_material(bad, NAMES, NOW)


def test_chain_from_another_ca_is_rejected():
    good, stranger = MiniCA(), MiniCA(intermediate_name="Stranger")
    material = good.leaf(NAMES)
    broken = CertificateMaterial(material.cert_pem, stranger.int_pem, material.key_pem)
    with pytest.raises(VerificationError, match="chain broken at position 0"):
        pki.verify_material(broken, NAMES, NOW)


def test_names_must_equal_the_request():
    material = MiniCA().leaf(("example.com",))
    with pytest.raises(VerificationError, match=r"missing \['\*.example.com'\]"):
        pki.verify_material(material, NAMES, NOW)


def test_expired_and_not_yet_valid_are_rejected():
    ca = MiniCA()
    material = ca.leaf(NAMES, not_before=NOW - dt.timedelta(days=100), days=90)
    with pytest.raises(VerificationError, match="leaf expired"):
        pki.verify_material(material, NAMES, NOW)
    future = ca.leaf(NAMES, not_before=NOW + dt.timedelta(days=1))
    with pytest.raises(VerificationError, match="not valid before"):
        pki.verify_material(future, NAMES, NOW)


def test_root_in_chain_is_rejected():
    ca = MiniCA()
    material = ca.leaf(NAMES)
    with_root = CertificateMaterial(material.cert_pem, material.chain_pem + ca.root_pem, material.key_pem)
    with pytest.raises(VerificationError, match="self-signed root"):
        pki.verify_material(with_root, NAMES, NOW)


def test_key_type_mismatch_is_rejected():
    material = MiniCA().leaf(NAMES, key_type=KeyType.RSA_2048)
    with pytest.raises(VerificationError, match="not ec-p256"):
        pki.verify_material(material, NAMES, NOW, KeyType.EC_P256)


def test_split_strip_and_root_issuer():
    ca = MiniCA(root_name="ISRG Root X1")
    material = ca.leaf(NAMES)
    fullchain = material.cert_pem + ca.int_pem + ca.root_pem
    certs = pki.split_pem_chain(fullchain)
    assert len(certs) == 3
    assert pki.strip_roots(certs[1:]) == [certs[1]]
    assert pki.chain_root_issuer(fullchain) == "ISRG Root X1"
    assert pki.chain_root_issuer(material.cert_pem + ca.int_pem) == "ISRG Root X1"
    pki.verify_against_root(certs[:2], ca.root_pem)
    with pytest.raises(VerificationError):
        pki.verify_against_root(certs[:2], MiniCA().root_pem)


def test_truncated_pem_is_a_verification_error():
    material = MiniCA().leaf(NAMES)
    truncated = CertificateMaterial(material.cert_pem[:200], material.chain_pem, material.key_pem)
    with pytest.raises(VerificationError):
        pki.verify_material(truncated, NAMES, NOW)
