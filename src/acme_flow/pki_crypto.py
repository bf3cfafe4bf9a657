"""Keys, CSRs and certificate checks, with `cryptography` only (imported through `pki`, which
loads this module on first use). Pure: no I/O, no clock."""
from __future__ import annotations

import base64
import datetime as dt
import re

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from .errors import VerificationError
from .models import CertificateInfo, CertificateMaterial, KeyType

_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)
_CURVES = {KeyType.EC_P256: ec.SECP256R1, KeyType.EC_P384: ec.SECP384R1}


def generate_key(key_type: KeyType):
    """A fresh private key of the configured type."""
    if key_type.is_ec:
        return ec.generate_private_key(_CURVES[key_type]())
    return rsa.generate_private_key(public_exponent=65537, key_size=key_type.rsa_bits)


def key_to_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def load_key(pem: str):
    try:
        return serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError) as exc:
        raise VerificationError(f"private key is not a readable unencrypted PEM key: {exc}") from None


def make_csr(key, domains: tuple[str, ...]) -> bytes:
    """A CSR carrying every name as a SAN; no Must-Staple (such orders fail since OCSP ended)."""
    builder = x509.CertificateSigningRequestBuilder().add_extension(
        x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False)
    common = next((d for d in domains if len(d) <= 64), None)
    if common:
        builder = builder.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def split_pem_chain(text: str) -> list[str]:
    """Every PEM certificate in `text`, normalised to end with a newline."""
    return [m.group(0).replace("\r\n", "\n") + "\n" for m in _PEM_CERT.finditer(text)]


def load_certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as exc:
        raise VerificationError(f"certificate is not readable PEM: {exc}") from None


def key_type_of(public_key) -> KeyType | None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": KeyType.EC_P256, "secp384r1": KeyType.EC_P384}.get(public_key.curve.name)
    if isinstance(public_key, rsa.RSAPublicKey):
        try:
            return KeyType(f"rsa-{public_key.key_size}")
        except ValueError:
            return None
    return None


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def describe(cert_pem: str) -> CertificateInfo:
    cert = load_certificate(cert_pem)
    return CertificateInfo(
        serial=format(cert.serial_number, "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        names=dns_names(cert),
        issuer=common_name(cert.issuer),
        key_type=key_type_of(cert.public_key()),
    )


def ari_cert_id(cert_pem: str) -> str:
    """RFC 9773 CertID: base64url(authority key identifier) "." base64url(serial as DER INTEGER)."""
    cert = load_certificate(cert_pem)
    try:
        aki = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value.key_identifier
    except x509.ExtensionNotFound:
        raise VerificationError("certificate has no authority key identifier: no ARI CertID") from None
    serial = cert.serial_number
    serial_der = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
    return f"{_b64url(aki)}.{_b64url(serial_der)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def public_key_matches(cert: x509.Certificate, key) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def chain_root_issuer(fullchain_pem: str) -> str:
    """The issuer CN of the last certificate in a chain: the root this chain leads to."""
    certs = split_pem_chain(fullchain_pem)
    if not certs:
        return ""
    return common_name(load_certificate(certs[-1]).issuer)


def strip_roots(chain: list[str]) -> list[str]:
    """Drop self-signed certificates: ACM takes intermediates only, never the root."""
    out = []
    for pem in chain:
        cert = load_certificate(pem)
        if cert.issuer != cert.subject:
            out.append(pem)
    return out


def verify_material(material: CertificateMaterial, domains: tuple[str, ...],
                    now: dt.datetime, key_type: KeyType | None = None) -> CertificateInfo:
    """Everything we check before a certificate is stored as current or deployed.

    The chain signs in order (leaf by the first intermediate, and so on), every
    certificate is currently valid, the leaf's key is ours, its names are exactly the
    requested set, and the chain holds no root. Raises VerificationError naming the first
    failed check.
    """
    leaf = load_certificate(material.cert_pem)
    chain_pems = split_pem_chain(material.chain_pem)
    if not chain_pems:
        raise VerificationError("the chain holds no intermediate certificate")
    chain = [load_certificate(p) for p in chain_pems]
    _verify_signatures([leaf, *chain])
    for index, cert in enumerate([leaf, *chain]):
        _verify_validity(cert, now, "leaf" if index == 0 else f"chain[{index - 1}]")
    if any(c.issuer == c.subject for c in chain):
        raise VerificationError("the chain contains a self-signed root; ACM takes intermediates only")
    key = load_key(material.key_pem)
    if not public_key_matches(leaf, key):
        raise VerificationError("the private key does not match the certificate")
    if key_type is not None and key_type_of(leaf.public_key()) is not key_type:
        raise VerificationError(f"certificate key is not {key_type.value}")
    _verify_names(dns_names(leaf), domains)
    return describe(material.cert_pem)


def material_problem(material: CertificateMaterial, serial: str) -> str | None:
    """Why stored material cannot be used (unreadable, another certificate, key not matching)."""
    try:
        leaf = load_certificate(material.cert_pem)
        key = load_key(material.key_pem)
    except VerificationError as exc:
        return str(exc)
    if format(leaf.serial_number, "x") != serial:
        return f"the stored certificate is serial {leaf.serial_number:x}, the metadata says {serial}"
    if not public_key_matches(leaf, key):
        return "the stored private key does not match the certificate"
    return None


def verify_against_root(fullchain: list[str], root_pem: str) -> None:
    """Check that the last certificate of a chain is signed by the given root."""
    _verify_signatures([load_certificate(p) for p in [*fullchain, root_pem]])


def _verify_signatures(certs: list[x509.Certificate]) -> None:
    for index in range(len(certs) - 1):
        child, parent = certs[index], certs[index + 1]
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise VerificationError(
                f"chain broken at position {index}: {common_name(child.subject)!r} is not signed by "
                f"{common_name(parent.subject)!r} ({exc or type(exc).__name__})") from None


def _verify_validity(cert: x509.Certificate, now: dt.datetime, label: str) -> None:
    if now < cert.not_valid_before_utc:
        raise VerificationError(f"{label} is not valid before {cert.not_valid_before_utc.isoformat()}")
    if now >= cert.not_valid_after_utc:
        raise VerificationError(f"{label} expired at {cert.not_valid_after_utc.isoformat()}")


def _verify_names(got: tuple[str, ...], wanted: tuple[str, ...]) -> None:
    got_set, wanted_set = {n.lower() for n in got}, {n.lower() for n in wanted}
    if got_set != wanted_set:
        missing = sorted(wanted_set - got_set)
        extra = sorted(got_set - wanted_set)
        raise VerificationError(f"certificate names differ from the request: missing {missing}, extra {extra}")


# ---- what ACM compares on a re-import ----------------------------------------------------------

_KEY_USAGE_BITS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                   "key_agreement", "key_cert_sign", "crl_sign")
_KEY_AGREEMENT_ONLY = ("encipher_only", "decipher_only")
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string


def key_usages(cert_pem: str) -> frozenset[str]:
    """The Key Usage bits the certificate asserts (cryptography's names, e.g. "key_encipherment")."""
    try:
        usage = load_certificate(cert_pem).extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset()
    bits = {bit for bit in _KEY_USAGE_BITS if getattr(usage, bit)}
    if usage.key_agreement:
        bits |= {bit for bit in _KEY_AGREEMENT_ONLY if getattr(usage, bit)}
    return frozenset(bits)


def extended_key_usages(cert_pem: str) -> frozenset[str]:
    """The Extended Key Usage OIDs the certificate asserts (dotted strings)."""
    try:
        usage = load_certificate(cert_pem).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(oid.dotted_string for oid in usage)


def reimport_refusal(stored_pem: str, new_pem: str) -> str | None:
    """Why ACM would refuse to re-import `new_pem` over `stored_pem` (None: it would accept).

    ACM keeps the key algorithm, and a re-import may not remove a Key Usage or Extended Key
    Usage value the stored certificate has; the exceptions AWS documents: keyEncipherment may be
    dropped from an ECDSA certificate, and the clientAuth EKU may be dropped.
    """
    stored_key = key_type_of(load_certificate(stored_pem).public_key())
    new_key = key_type_of(load_certificate(new_pem).public_key())
    if stored_key is not new_key:
        return (f"the key type changes ({stored_key.value if stored_key else 'unknown'} -> "
                f"{new_key.value if new_key else 'unknown'})")
    dropped_ku = key_usages(stored_pem) - key_usages(new_pem)
    if new_key is not None and new_key.is_ec:
        dropped_ku -= {"key_encipherment"}
    dropped_eku = extended_key_usages(stored_pem) - extended_key_usages(new_pem) - {CLIENT_AUTH}
    reasons = []
    if dropped_ku:
        reasons.append("Key Usage " + ", ".join(sorted(dropped_ku)))
    if dropped_eku:
        reasons.append("Extended Key Usage " + ", ".join(sorted(_eku_name(o) for o in dropped_eku)))
    return f"the new certificate drops {' and '.join(reasons)}" if reasons else None


def _camel(constant: str) -> str:
    first, *rest = constant.lower().split("_")
    return first + "".join(word.title() for word in rest)


# serverAuth, clientAuth, codeSigning, ... (RFC 5280's names, from cryptography's public OIDs)
_EKU_NAMES = {oid.dotted_string: _camel(name) for name, oid in vars(ExtendedKeyUsageOID).items()
              if isinstance(oid, x509.ObjectIdentifier)}


def _eku_name(dotted: str) -> str:
    return _EKU_NAMES.get(dotted, dotted)
