"""Serve an ACM certificate on an ELBv2 (ALB/NLB) HTTPS or TLS listener, keeping everything else.

A listener holds one default certificate (ModifyListener sets it) and an SNI list
(Add/RemoveListenerCertificates). Our certificate takes the place our earlier ARN had: the
default when that was the default, else an SNI entry. The new ARN is added before the old one
leaves, so the listener never lacks a certificate for our names. A same-ARN re-import reaches the
listener by itself: nothing to write then.

AWS only takes an ACM certificate of the listener's own region and account; moto does not check
that for AddListenerCertificates, so it is checked here, with a clear message.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

from botocore.exceptions import ClientError

from ..deploy_targets import ELB, Target, listener_region
from ..errors import DeployError

log = logging.getLogger("certrenew.elb")

SECURE_PROTOCOLS = ("HTTPS", "TLS")
_ARN = re.compile(r"^arn:(aws[a-z-]*):([a-z0-9-]+):([a-z0-9-]*):(\d{12}):(.+)$")
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class ElbListeners:
    """`client_for(region, role_arn)` returns an elbv2 client of that region, in the role's account."""

    def __init__(self, client_for: Callable[[str, str | None], Any]) -> None:
        self._client_for = client_for

    def check(self, listener_arn: str, role_arn: str | None) -> None:
        """The listener exists, is HTTPS/TLS, and both its default and its SNI list can be read."""
        target = _target(listener_arn)
        _listener_parts(listener_arn, target)
        elb = self._client_for(listener_region(listener_arn), role_arn)
        self._listener(elb, listener_arn, target)
        self._sni(elb, listener_arn, target)

    def attach(self, listener_arn: str, certificate_arn: str, replaces: str | None, role_arn: str | None) -> bool:
        target = _target(listener_arn)
        check_certificate(listener_arn, certificate_arn, target)
        elb = self._client_for(listener_region(listener_arn), role_arn)
        default = _default(self._listener(elb, listener_arn, target))
        sni = self._sni(elb, listener_arn, target)
        if replaces is not None and replaces == default and certificate_arn != default:
            _call(elb, "modify_listener", target, ListenerArn=listener_arn,
                  Certificates=[{"CertificateArn": certificate_arn}])
            log.info("listener %s: default certificate %s -> %s", listener_arn, replaces, certificate_arn)
            if replaces in sni:  # our old ARN was in the SNI list as well: it leaves it too
                _remove(elb, listener_arn, replaces, target)
            return True
        changed = False
        if certificate_arn != default and certificate_arn not in sni:
            _call(elb, "add_listener_certificates", target, ListenerArn=listener_arn,
                  Certificates=[{"CertificateArn": certificate_arn}])
            log.info("listener %s: %s added to the SNI list", listener_arn, certificate_arn)
            changed = True
        if replaces is not None and replaces != certificate_arn and replaces in sni:
            _remove(elb, listener_arn, replaces, target)  # only now that the new one serves
            changed = True
        return changed

    def _listener(self, elb, listener_arn: str, target: str) -> dict[str, Any]:
        """The listener, refused unless it is HTTPS or TLS."""
        found = _call(elb, "describe_listeners", target, ListenerArns=[listener_arn]).get("Listeners") or []
        if not found:
            raise DeployError(target, "no such listener (ListenerNotFound): check the ARN, and that the "
                                      "deploy role reaches the listener's account")
        listener = found[0]
        protocol = listener.get("Protocol") or "?"
        if protocol not in SECURE_PROTOCOLS:
            raise DeployError(target, f"an {protocol} listener cannot use a certificate: name the load "
                                      "balancer's HTTPS (ALB) or TLS (NLB) listener")
        return listener

    def _sni(self, elb, listener_arn: str, target: str) -> list[str]:
        """The ARNs of the listener's SNI list (the entries that are not the default)."""
        found: list[str] = []
        try:
            for page in elb.get_paginator("describe_listener_certificates").paginate(ListenerArn=listener_arn):
                found += [c["CertificateArn"] for c in page.get("Certificates") or [] if not c.get("IsDefault")]
        except ClientError as exc:
            raise _translated(exc, target) from None
        return found


def check_certificate(listener_arn: str, certificate_arn: str, target: str) -> None:
    """AWS serves on a listener only an ACM certificate of the listener's own region and account."""
    partition, region, account = _listener_parts(listener_arn, target)
    cert = _ARN.match(certificate_arn)
    if not cert or cert.group(2) != "acm" or not cert.group(5).startswith("certificate/") \
            or (cert.group(1), cert.group(3), cert.group(4)) != (partition, region, account):
        raise DeployError(target, f"{certificate_arn} is not an ACM certificate of region {region} in account "
                                  f"{account}: a listener only uses ACM certificates of its own region and "
                                  "account (import a copy there)")


def _listener_parts(listener_arn: str, target: str) -> tuple[str, str, str]:
    """(partition, region, account) of a listener ARN."""
    match = _ARN.match(listener_arn)
    if not match or match.group(2) != "elasticloadbalancing" or not match.group(5).startswith("listener/"):
        raise DeployError(target, "not a listener ARN (arn:aws:elasticloadbalancing:<region>:<account>:listener/...)")
    return match.group(1), match.group(3), match.group(4)


def _default(listener: dict[str, Any]) -> str | None:
    """DescribeListeners shows the default certificate only (first, or the one marked IsDefault)."""
    certificates = listener.get("Certificates") or []
    marked = [c for c in certificates if c.get("IsDefault")]
    chosen = marked[0] if marked else (certificates[0] if certificates else {})
    return chosen.get("CertificateArn")


def _remove(elb, listener_arn: str, arn: str, target: str) -> None:
    _call(elb, "remove_listener_certificates", target, ListenerArn=listener_arn,
          Certificates=[{"CertificateArn": arn}])
    log.info("listener %s: %s removed from the SNI list", listener_arn, arn)


def _call(elb, method: str, target: str, **kwargs) -> dict[str, Any]:
    try:
        return getattr(elb, method)(**kwargs)
    except ClientError as exc:
        raise _translated(exc, target) from None


def _translated(exc: ClientError, target: str) -> DeployError:
    err = exc.response.get("Error", {})
    code, message = err.get("Code") or "Unknown", err.get("Message") or str(exc)
    action = f"elasticloadbalancing:{exc.operation_name}"
    if code == "ListenerNotFound":
        return DeployError(target, "no such listener (ListenerNotFound): check the ARN, and that the "
                                   "deploy role reaches the listener's account")
    if code in ACCESS_DENIED:
        return DeployError(target, f"access denied to {action} ({code}): grant it on the listener "
                                   "to the renewer's role (or the deploy role)")
    if code in ("CertificateNotFound", "CertificateNotFoundException"):
        return DeployError(target, f"{action} refused ({code}: {message}): the certificate must be an "
                                   "issued ACM certificate of the listener's region and account")
    return DeployError(target, f"{action} failed ({code}: {message})")


def _target(listener_arn: str) -> str:
    return str(Target(ELB, listener_arn))
