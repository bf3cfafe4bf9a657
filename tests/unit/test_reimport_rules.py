"""What ACM refuses on a re-import into the same ARN (pki.reimport_refusal), compared as ACM does."""
import pytest

from acme_flow import pki
from acme_flow.models import KeyType
from certfactory import CLASSIC_RSA_KU, CLIENT_AUTH, SERVER_AUTH, TLSSERVER_KU, MiniCA

CA = MiniCA()
NAMES = ("example.com",)


def leaf(key_type=KeyType.RSA_2048, ku=None, eku=(SERVER_AUTH,)):
    return CA.leaf(NAMES, key_type, key_usage=ku, eku=eku).cert_pem


def test_reads_key_usage_and_eku():
    pem = leaf(ku=CLASSIC_RSA_KU, eku=(SERVER_AUTH, CLIENT_AUTH))
    assert pki.key_usages(pem) == {"digital_signature", "key_encipherment"}
    assert pki.extended_key_usages(pem) == {SERVER_AUTH.dotted_string, CLIENT_AUTH.dotted_string}
    assert pki.key_usages(leaf(ku=None)) == frozenset() and pki.extended_key_usages(leaf(eku=None)) == frozenset()


def test_rsa_classic_to_tlsserver_drops_key_encipherment_and_is_refused():
    why = pki.reimport_refusal(leaf(ku=CLASSIC_RSA_KU), leaf(ku=TLSSERVER_KU))
    assert why is not None and "Key Usage key_encipherment" in why


def test_same_usages_are_accepted():
    assert pki.reimport_refusal(leaf(ku=CLASSIC_RSA_KU), leaf(ku=CLASSIC_RSA_KU)) is None
    assert pki.reimport_refusal(leaf(ku=TLSSERVER_KU), leaf(ku=TLSSERVER_KU)) is None


def test_adding_usages_is_accepted():
    assert pki.reimport_refusal(leaf(ku=TLSSERVER_KU), leaf(ku=CLASSIC_RSA_KU)) is None
    assert pki.reimport_refusal(leaf(eku=(SERVER_AUTH,)), leaf(eku=(SERVER_AUTH, CLIENT_AUTH))) is None


def test_ecdsa_may_drop_key_encipherment():
    ec = KeyType.EC_P256
    assert pki.reimport_refusal(leaf(ec, ku=CLASSIC_RSA_KU), leaf(ec, ku=TLSSERVER_KU)) is None


def test_ecdsa_may_not_drop_another_key_usage():
    ec = KeyType.EC_P256
    why = pki.reimport_refusal(leaf(ec, ku={"digital_signature", "key_agreement"}), leaf(ec, ku=TLSSERVER_KU))
    assert why is not None and "key_agreement" in why


def test_client_auth_may_be_dropped():
    # Let's Encrypt stopped asserting clientAuth in 2026: that re-import is fine
    assert pki.reimport_refusal(leaf(eku=(SERVER_AUTH, CLIENT_AUTH)), leaf(eku=(SERVER_AUTH,))) is None


def test_server_auth_may_not_be_dropped():
    why = pki.reimport_refusal(leaf(eku=(SERVER_AUTH, CLIENT_AUTH)), leaf(eku=(CLIENT_AUTH,)))
    assert why is not None and "Extended Key Usage serverAuth" in why


def test_dropping_the_whole_key_usage_extension_drops_its_values():
    assert pki.reimport_refusal(leaf(ku=CLASSIC_RSA_KU), leaf(ku=None)) is not None


@pytest.mark.parametrize("old, new", [(KeyType.RSA_2048, KeyType.EC_P256), (KeyType.RSA_2048, KeyType.RSA_3072)])
def test_a_key_type_change_is_refused(old, new):
    why = pki.reimport_refusal(leaf(old), leaf(new))
    assert why is not None and f"{old.value} -> {new.value}" in why
