"""CloudFront's ACM certificates as AWS checks them, and ACM's `InUseBy` as CloudFront fills it.

- Create/UpdateDistribution with ViewerCertificate.ACMCertificateArn: the ARN names an existing
  ACM certificate in us-east-1 whose names cover every alias (else InvalidViewerCertificate).
- ACM DescribeCertificate reports `InUseBy` every distribution that uses the certificate now, and
  for `inuse_lag` seconds (proxy config, default DEFAULT_INUSE_LAG) every distribution an
  UpdateDistribution moved off it: CloudFront lets go of a certificate only once the change has
  spread. DeleteCertificate of such a certificate answers ResourceInUseException.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import xml.etree.ElementTree as ET
from typing import Callable

from devstack.strict import RULE_FACTORIES, AwsError, Call

DEFAULT_INUSE_LAG = 5.0  # seconds an old certificate stays InUseBy a distribution after an update
CLOUDFRONT_REGION = "us-east-1"
NOT_USABLE = ("The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, "
              "or doesn't include a valid certificate chain.")
NOT_COVERED = ("The certificate that is attached to your distribution doesn't cover the alternate domain "
               "name (CNAME) that you're trying to add.")
_DISTRIBUTION_ID = re.compile(r"/distribution/([^/]+)")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):(\d{12}):certificate/[\w-]+$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: ET.Element | None, *path: str) -> ET.Element | None:
    for name in path:
        if element is None:
            return None
        element = next((child for child in element if _local(child.tag) == name), None)
    return element


def viewer_settings(body: bytes) -> tuple[list[str], str | None]:
    """(aliases, ACMCertificateArn or None) of a DistributionConfig document."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return [], None
    if _local(root.tag) == "DistributionConfigWithTags":
        root = _find(root, "DistributionConfig")
    items = _find(root, "Aliases", "Items")
    aliases = [(c.text or "").strip() for c in items] if items is not None else []
    arn = _find(root, "ViewerCertificate", "ACMCertificateArn")
    return [a for a in aliases if a], (arn.text or "").strip() if arn is not None and arn.text else None


def covers(name: str, alias: str) -> bool:
    """Does a certificate name (maybe `*.zone`) cover a distribution alias (maybe `*.zone`)?"""
    name, alias = name.lower().rstrip("."), alias.lower().rstrip(".")
    if name == alias:
        return True
    return name.startswith("*.") and "." in alias and alias.split(".", 1)[1] == name[2:] and not alias.startswith("*.")


def _certificate_names(call: Call, arn: str) -> list[str] | None:
    try:
        cert = call.moto("acm", CLOUDFRONT_REGION).describe_certificate(CertificateArn=arn)["Certificate"]
    except Exception:  # noqa: BLE001 - unknown or malformed ARN
        return None
    return [cert.get("DomainName", ""), *cert.get("SubjectAlternativeNames", [])]


def check_viewer_certificate(call: Call, aliases: list[str], arn: str) -> None:
    match = _ACM_ARN.match(arn)
    if not match or match.group(1) != CLOUDFRONT_REGION:
        raise AwsError("InvalidViewerCertificate", f"{NOT_USABLE} ({arn})")
    names = _certificate_names(call, arn)
    if names is None:
        raise AwsError("InvalidViewerCertificate", f"{NOT_USABLE} ({arn})")
    for alias in aliases:
        if not any(covers(n, alias) for n in names):
            raise AwsError("InvalidViewerCertificate", f"{NOT_COVERED} (alias {alias}, certificate {arn})")


def _lag(call: Call) -> float:
    return float(call.memory.get("config", {}).get("inuse_lag", DEFAULT_INUSE_LAG))


def _released(call: Call) -> dict[tuple[str, str], float]:
    """(certificate ARN, distribution ARN) -> monotonic time an update moved the distribution off it
    (the lag is read when asked, so a test can shorten it after the move)."""
    return call.memory.setdefault("cloudfront_released", {})


# Who else uses an ACM certificate, as ACM's InUseBy shows it: (call, certificate ARN) -> resource
# ARNs. Each attached target kind's strict module appends its own (ELB listeners, API Gateway
# domains, distribution tenants); CloudFront distributions are `users_of` below.
INUSE_SOURCES: list[Callable[[Call, str], list[str]]] = []


def all_users(call: Call, cert_arn: str) -> list[str]:
    return sorted({u for source in [users_of, *INUSE_SOURCES] for u in source(call, cert_arn)})


def users_of(call: Call, cert_arn: str) -> list[str]:
    """Distributions that use the certificate now or let go of it less than `inuse_lag` ago."""
    users = set()
    listing = call.moto("cloudfront", CLOUDFRONT_REGION).list_distributions()["DistributionList"]
    for dist in listing.get("Items") or []:
        if (dist.get("ViewerCertificate") or {}).get("ACMCertificateArn") == cert_arn:
            users.add(dist["ARN"])
    now, lag = time.monotonic(), _lag(call)
    for (arn, dist_arn), moved_at in list(_released(call).items()):
        if arn == cert_arn and now < moved_at + lag:
            users.add(dist_arn)
    return sorted(users)


class ViewerCertificateRule:
    """Create/UpdateDistribution: a usable us-east-1 certificate that covers every alias."""

    def before(self, call: Call) -> None:
        if call.service != "cloudfront" or call.operation not in ("CreateDistribution", "UpdateDistribution"):
            return
        aliases, arn = viewer_settings(call.body)
        if arn:
            check_viewer_certificate(call, aliases, arn)
        if call.operation == "UpdateDistribution":
            call.scratch["viewer_arn_before"] = self._current_arn(call)

    def after(self, call: Call, resp):
        if call.service != "cloudfront" or call.operation != "UpdateDistribution":
            return resp
        old = call.scratch.get("viewer_arn_before")
        _, new = viewer_settings(call.body)
        if resp.status == 200 and old and old != new:
            dist_arn = self._distribution_arn(call)
            _released(call)[(old, dist_arn)] = time.monotonic()
        return resp

    @staticmethod
    def _distribution_id(call: Call) -> str | None:
        match = _DISTRIBUTION_ID.search(call.path)
        return match.group(1) if match else None

    def _current_arn(self, call: Call) -> str | None:
        try:
            config = call.moto("cloudfront", CLOUDFRONT_REGION).get_distribution_config(
                Id=self._distribution_id(call))["DistributionConfig"]
        except Exception:  # noqa: BLE001 - unknown distribution: moto answers it
            return None
        return (config.get("ViewerCertificate") or {}).get("ACMCertificateArn") or None

    def _distribution_arn(self, call: Call) -> str:
        dist = call.moto("cloudfront", CLOUDFRONT_REGION).get_distribution(Id=self._distribution_id(call))
        return dist["Distribution"]["ARN"]


class InUseByRule:
    """ACM DescribeCertificate reports who uses a certificate (every source of INUSE_SOURCES, and
    CloudFront's distributions); DeleteCertificate refuses a used certificate."""

    config_defaults = {"inuse_lag": DEFAULT_INUSE_LAG}

    @staticmethod
    def validate(data: dict) -> None:
        if "inuse_lag" in data:
            value = data["inuse_lag"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"inuse_lag must be a number of seconds >= 0, got {value!r}")

    def before(self, call: Call) -> None:
        if call.service != "acm" or call.operation != "DeleteCertificate":
            return
        arn = call.json().get("CertificateArn", "")
        users = all_users(call, arn) if arn else []
        if users:
            raise AwsError("ResourceInUseException",
                           f"Certificate {arn} is in use by {', '.join(users)}.", 400)

    def after(self, call: Call, resp):
        if call.service != "acm" or call.operation != "DescribeCertificate" or resp.status != 200:
            return resp
        try:
            data = json.loads(resp.body)
        except ValueError:
            return resp
        cert = data.get("Certificate") or {}
        if not cert.get("CertificateArn"):
            return resp
        # the sources are the whole answer: moto never sets InUseBy but for the listener an ELB was
        # created with, which it keeps after the listener let go of the certificate
        cert["InUseBy"] = all_users(call, cert["CertificateArn"])
        return dataclasses.replace(resp, body=json.dumps(data).encode())


RULE_FACTORIES.extend([ViewerCertificateRule, InUseByRule])
