"""Helpers for tests: Pebble's directory and management API (roots, intermediates, ARI windows)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import urllib.request

from cryptography import x509

from devstack.stack import Stack


def _opener(stack: Stack) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context(cafile=stack.ca_bundle)
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))


def _fetch(stack: Stack, url: str, payload: dict | None = None) -> bytes:
    data = None if payload is None else json.dumps(payload).encode()
    with _opener(stack).open(urllib.request.Request(url, data=data), timeout=10) as response:
        return response.read()


def directory(stack: Stack) -> dict:
    return json.loads(_fetch(stack, stack.acme_directory))


def root_pem(stack: Stack, index: int = 0) -> str:
    """Root `index` (0 = the default chain's root, 1.. = alternate roots with PEBBLE_ALTERNATE_ROOTS)."""
    return _fetch(stack, f"{stack.pebble_management}/roots/{index}").decode()


def intermediate_pem(stack: Stack, index: int = 0) -> str:
    return _fetch(stack, f"{stack.pebble_management}/intermediates/{index}").decode()


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_renewal_info(stack: Stack, cert_pem: str, start: dt.datetime, end: dt.datetime,
                     explanation_url: str | None = None) -> None:
    """Make Pebble's ARI answer `suggestedWindow {start, end}` for this certificate."""
    ari: dict = {"suggestedWindow": {"start": _rfc3339(start), "end": _rfc3339(end)}}
    if explanation_url:
        ari["explanationURL"] = explanation_url
    _fetch(stack, f"{stack.pebble_management}/set-renewal-info/",
           {"certificate": cert_pem, "ariResponse": json.dumps(ari)})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ari_cert_id(cert_pem: str) -> str:
    """RFC 9773 CertID: base64url(AKI keyIdentifier) "." base64url(serial number DER content)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = cert.serial_number
    serial_der = serial.to_bytes(serial.bit_length() // 8 + 1, "big")  # leading 0x00 keeps it positive
    return f"{_b64url(aki)}.{_b64url(serial_der)}"


def renewal_info(stack: Stack, cert_pem: str) -> dict:
    """Pebble's ARI answer for the (first) certificate in `cert_pem`."""
    return json.loads(_fetch(stack, f"{directory(stack)['renewalInfo'].rstrip('/')}/{ari_cert_id(cert_pem)}"))
