"""Small test PKI: a root, an intermediate and leaves, made with cryptography."""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acme_flow import pki
from acme_flow.models import CertificateMaterial, KeyType

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
KEY_USAGE_BITS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                  "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
# Let's Encrypt's leaves: `classic` RSA asserts keyEncipherment, `tlsserver`/`shortlived` do not
CLASSIC_RSA_KU = {"digital_signature", "key_encipherment"}
TLSSERVER_KU = {"digital_signature"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(subject: str, issuer_name: str, public_key, signing_key, *, ca: bool, names=(),
              not_before=NOW - dt.timedelta(days=1), days=90, key_usage=None, eku=None) -> str:
    """`key_usage`: the KeyUsage bits to assert (e.g. {"digital_signature", "key_encipherment"});
    `eku`: ExtendedKeyUsage OIDs (e.g. [ExtendedKeyUsageOID.SERVER_AUTH]); None leaves the extension out."""
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer_name))
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_before + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
    if key_usage is not None:
        builder = builder.add_extension(x509.KeyUsage(**{bit: bit in key_usage for bit in KEY_USAGE_BITS}),
                                        critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(signing_key, hashes.SHA256()).public_bytes(Encoding.PEM).decode()


class MiniCA:
    def __init__(self, root_name: str = "Test Root X1", intermediate_name: str = "Test Intermediate") -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root_name = root_name
        self.root_pem = make_cert(root_name, root_name, self.root_key.public_key(), self.root_key, ca=True, days=3650,
                                  not_before=NOW - dt.timedelta(days=365))
        self.int_key = ec.generate_private_key(ec.SECP256R1())
        self.int_name = intermediate_name
        self.int_pem = make_cert(intermediate_name, root_name, self.int_key.public_key(), self.root_key, ca=True,
                                 days=1000, not_before=NOW - dt.timedelta(days=100))

    def leaf(self, names, key_type: KeyType = KeyType.EC_P256, **kw) -> CertificateMaterial:
        key = pki.generate_key(key_type)
        cert = make_cert(names[0], self.int_name, key.public_key(), self.int_key, ca=False, names=names, **kw)
        return CertificateMaterial(cert_pem=cert, chain_pem=self.int_pem, key_pem=pki.key_to_pem(key))
