"""ACM ImportCertificate as AWS checks it (moto stores whatever it is given).

- the private key is unencrypted, at most 5 KB of PEM, and matches the certificate;
- a re-import (CertificateArn given) carries no Tags, keeps the stored certificate's key
  algorithm and size, and removes no Key Usage or Extended Key Usage value the stored certificate
  has; AWS's exceptions: keyEncipherment may be dropped from an ECDSA certificate, and the
  clientAuth EKU may be dropped.

A re-import keeps the certificate's tags (moto drops them; a certificate certrenew imported would
then look foreign to its own retirement check): devstack/moto_server.py mends that in moto itself.
"""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from devstack.strict import RULE_FACTORIES, AwsError, Call

MAX_KEY_BYTES = 5 * 1024  # "The private key ... must be no larger than 5 KB (5,120 bytes)"
KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
              "key_agreement", "key_cert_sign", "crl_sign")
DROPPABLE_EKUS = {ExtendedKeyUsageOID.CLIENT_AUTH}


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message, 400)


def _blob(params: dict, name: str) -> bytes | None:
    """A blob member of the JSON body (base64 text), None when absent or not base64."""
    value = params.get(name)
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def key_algorithm(public_key) -> str:
    """ACM's name of a key algorithm: RSA_2048, EC_prime256v1, ..."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA_{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC_{public_key.curve.name}"
    return type(public_key).__name__


def key_usages(cert: x509.Certificate) -> set[str]:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return set()
    return {name for name in KEY_USAGES if getattr(usage, name)}


def extended_key_usages(cert: x509.Certificate) -> set:
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def _load_key(key_pem: bytes):
    if len(key_pem) > MAX_KEY_BYTES:
        raise _validation(f"The private key is {len(key_pem)} bytes: ACM imports private keys of at most "
                          f"5 KB ({MAX_KEY_BYTES} bytes).")
    try:
        return serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        raise _validation("The private key is not supported: it is encrypted (ACM imports only "
                          "unencrypted private keys).") from None
    except ValueError:
        raise _validation("The private key is not supported.") from None


def _public_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_key_matches(cert: x509.Certificate, key) -> None:
    if _public_der(cert.public_key()) != _public_der(key.public_key()):
        raise _validation("The private key does not match the public key in the certificate.")


def check_reimport(stored: x509.Certificate, new: x509.Certificate, arn: str) -> None:
    """What a re-import into `arn` may not change (compared with the stored certificate)."""
    old_alg, new_alg = key_algorithm(stored.public_key()), key_algorithm(new.public_key())
    if old_alg != new_alg:
        raise _validation(f"The certificate you are importing has key algorithm {new_alg}, but the certificate "
                          f"{arn} has {old_alg}: a re-import must keep the key algorithm and size.")
    missing_ku = key_usages(stored) - key_usages(new)
    if isinstance(new.public_key(), ec.EllipticCurvePublicKey):
        missing_ku.discard("key_encipherment")
    if missing_ku:
        raise _validation("New certificate is missing one or more Key Usages supported by the currently "
                          f"imported certificate ({', '.join(sorted(missing_ku))}; {arn})")
    missing_eku = extended_key_usages(stored) - extended_key_usages(new) - DROPPABLE_EKUS
    if missing_eku:
        names = ", ".join(sorted(getattr(oid, "_name", oid.dotted_string) for oid in missing_eku))
        raise _validation("New certificate is missing one or more Extended Key Usages supported by the "
                          f"currently imported certificate ({names}; {arn})")


class ImportCertificateRule:
    """ImportCertificate: key unencrypted, <= 5 KB and matching; re-import limits."""

    def before(self, call: Call) -> None:
        if call.service != "acm" or call.operation != "ImportCertificate":
            return
        params = call.json()
        cert_pem, key_pem = _blob(params, "Certificate"), _blob(params, "PrivateKey")
        if cert_pem is None or key_pem is None:
            return  # moto answers malformed input itself
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            return
        check_key_matches(cert, _load_key(key_pem))
        arn = params.get("CertificateArn")
        if not arn:
            return
        if "Tags" in params:
            raise _validation("Tagging is not permitted on re-import.")
        stored = self._stored(call, arn)
        if stored is not None:  # (the re-import keeps the tags, as on AWS: devstack/moto_server.py)
            check_reimport(stored, cert, arn)

    @staticmethod
    def _stored(call: Call, arn: str) -> x509.Certificate | None:
        try:
            pem = call.moto("acm", call.region).get_certificate(CertificateArn=arn)["Certificate"]
        except Exception:  # noqa: BLE001 - unknown ARN etc.: moto gives its own answer when forwarded
            return None
        return x509.load_pem_x509_certificate(pem.encode())


RULE_FACTORIES.append(ImportCertificateRule)
