"""Attach an ACM certificate (us-east-1) to a CloudFront distribution, keeping everything else.

moto accepts any ARN and any aliases; AWS does not. So the rules are enforced here: the
ARN is an ACM certificate in us-east-1, and every alias of the distribution is covered
by the certificate's names.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

from botocore.exceptions import ClientError

from ..errors import DeployError
from ..models import CLOUDFRONT, Target

log = logging.getLogger("certrenew.cloudfront")

ACM_US_EAST_1_ARN = re.compile(r"^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$")
STRONG_ENOUGH = {"TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025"}
DEFAULT_MINIMUM = "TLSv1.2_2021"
DEDICATED_IP_METHODS = {"vip", "static-ip"}


class CloudFrontAttacher:
    """`role_for(role_arn)`: a CloudFront client of another account (a deploy role); each call
    with `role_arn` works there."""

    def __init__(self, cloudfront, role_for: Callable[[str], Any] | None = None) -> None:
        self._cf = cloudfront
        self._role_for = role_for

    def _as(self, role_arn: str) -> CloudFrontAttacher:
        if self._role_for is None:
            raise DeployError(f"deploy role {role_arn}", "this build cannot reach other accounts")
        return CloudFrontAttacher(self._role_for(role_arn))

    def attach(self, distribution_id: str, certificate_arn: str, names: tuple[str, ...], *,
               role_arn: str | None = None) -> bool:
        """Point the distribution at the certificate; returns False when it already was."""
        if role_arn:
            return self._as(role_arn).attach(distribution_id, certificate_arn, names)
        target = str(Target(CLOUDFRONT, distribution_id))
        if not ACM_US_EAST_1_ARN.match(certificate_arn):
            raise DeployError(target, f"{certificate_arn} is not an ACM certificate in us-east-1; "
                                      "CloudFront only uses certificates from us-east-1")
        got = self._read(distribution_id)
        config, etag = got["DistributionConfig"], got["ETag"]
        uncovered = [a for a in _aliases(config) if not covers(names, a)]
        if uncovered:
            raise DeployError(target, f"aliases {uncovered} are not covered by the certificate names {list(names)}")
        current = config.get("ViewerCertificate") or {}
        viewer = viewer_certificate(current, certificate_arn)
        if _effective(viewer) == _effective(current):
            return False  # a same-ARN re-import reaches the distribution by itself
        if viewer["SSLSupportMethod"] != "sni-only":
            log.info("distribution %s serves HTTPS on dedicated IP addresses (%s): kept", distribution_id,
                     viewer["SSLSupportMethod"])
        config["ViewerCertificate"] = viewer
        try:
            self._cf.update_distribution(Id=distribution_id, IfMatch=etag, DistributionConfig=config)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise DeployError(target, f"{err.get('Code')}: {err.get('Message')}") from None
        log.info("distribution %s now uses %s", distribution_id, certificate_arn)
        return True


    def check(self, distribution_id: str, *, role_arn: str | None = None) -> None:
        (self._as(role_arn) if role_arn else self)._read(distribution_id)

    def _read(self, distribution_id: str) -> dict[str, Any]:
        target = str(Target(CLOUDFRONT, distribution_id))
        try:
            return self._cf.get_distribution_config(Id=distribution_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchDistribution":
                raise DeployError(target, "no such distribution") from None
            raise DeployError(target, f"cannot read the distribution: {code or exc}") from None

    def distributions_using(self, certificate_arn: str, *, role_arn: str | None = None) -> list[str]:
        """Every distribution of the account whose viewer certificate is this ARN."""
        if role_arn:
            return self._as(role_arn).distributions_using(certificate_arn)
        found = []
        try:
            for page in self._cf.get_paginator("list_distributions").paginate():
                for item in (page.get("DistributionList") or {}).get("Items") or []:
                    if (item.get("ViewerCertificate") or {}).get("ACMCertificateArn") == certificate_arn:
                        found.append(str(Target(CLOUDFRONT, item["Id"])))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise DeployError("cloudfront", f"cannot list distributions to see what uses {certificate_arn} "
                                            f"({code or exc}); keeping it") from None
        return found


def viewer_certificate(current: dict[str, Any], arn: str) -> dict[str, Any]:
    """The ViewerCertificate block for our ARN: TLS 1.2_2021 or the stricter one kept; sni-only,
    unless the distribution serves on dedicated IP addresses (`vip`, or `static-ip` that the
    CloudFront team enables): that is kept, as switching would silently drop non-SNI clients.
    The deprecated Certificate/CertificateSource fields are not sent (AWS may or may not return them)."""
    minimum = current.get("MinimumProtocolVersion")
    method = current.get("SSLSupportMethod")
    return {
        "CloudFrontDefaultCertificate": False,
        "ACMCertificateArn": arn,
        "SSLSupportMethod": method if method in DEDICATED_IP_METHODS else "sni-only",
        "MinimumProtocolVersion": minimum if minimum in STRONG_ENOUGH else DEFAULT_MINIMUM,
    }


def _effective(viewer: dict[str, Any]) -> tuple:
    """The fields that decide what the distribution serves (not the deprecated ones, which AWS
    answers or not, nor moto's empty IAMCertificateId)."""
    return (bool(viewer.get("CloudFrontDefaultCertificate")), viewer.get("ACMCertificateArn") or None,
            viewer.get("SSLSupportMethod"), viewer.get("MinimumProtocolVersion"))


def covers(names: tuple[str, ...], host: str) -> bool:
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower()
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _aliases(config: dict[str, Any]) -> list[str]:
    return list((config.get("Aliases") or {}).get("Items") or [])
