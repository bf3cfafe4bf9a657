"""Attach an ACM certificate (us-east-1) to a CloudFront distribution tenant, keeping everything else.

A distribution tenant (multi-tenant distributions, CloudFront's SaaS model) carries its own
certificate in `Customizations.Certificate.Arn`. UpdateDistributionTenant takes the tenant whole
(an omitted setting is not "unchanged"), so we send back every setting we read and change only
the certificate. The rules AWS applies are checked here first, for a clear message: the ARN is an
ACM certificate in us-east-1 and every domain of the tenant is covered by the certificate's names.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

from botocore.exceptions import ClientError

from ..errors import DeployError
from ..models import CLOUDFRONT_TENANT, Target

log = logging.getLogger("certrenew.cloudfront_tenants")

CLOUDFRONT_REGION = "us-east-1"  # CloudFront is global; its API and its certificates live here
ACM_US_EAST_1_ARN = re.compile(r"^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$")
# What UpdateDistributionTenant takes back from a read (GetDistributionTenant answers more:
# Id, Name, Arn, Tags, Status, times, which the update does not take).
_KEPT = ("DistributionId", "ConnectionGroupId", "Enabled", "Parameters")


class CloudFrontTenants:
    """The TenantAttacher port over CloudFront's distribution tenant API."""

    def __init__(self, client_for: Callable[[str, str | None], Any]) -> None:
        self._client_for = client_for

    def check(self, tenant_id: str, role_arn: str | None) -> None:
        """The tenant exists and can be read (preflight, before anything is written)."""
        self._read(self._client_for(CLOUDFRONT_REGION, role_arn), tenant_id)

    def attach(self, tenant_id: str, certificate_arn: str, names: tuple[str, ...], role_arn: str | None) -> bool:
        """The tenant's certificate becomes `certificate_arn`; False when it already was (no write).
        A concurrent change (PreconditionFailed) is read again and tried once more."""
        target = _target(tenant_id)
        if not ACM_US_EAST_1_ARN.match(certificate_arn):
            raise DeployError(target, f"{certificate_arn} is not an ACM certificate in us-east-1; "
                                      "CloudFront distribution tenants only use certificates from us-east-1")
        cf = self._client_for(CLOUDFRONT_REGION, role_arn)
        for attempt in (1, 2):
            tenant, etag = self._read(cf, tenant_id)
            domains = [d["Domain"] for d in tenant.get("Domains") or []]
            uncovered = [d for d in domains if not covers(names, d)]
            if uncovered:
                raise DeployError(target, f"domains {uncovered} of the tenant are not covered by the certificate "
                                          f"names {list(names)}; add them to the certificate's domains")
            current = ((tenant.get("Customizations") or {}).get("Certificate") or {}).get("Arn")
            if current == certificate_arn:
                return False  # a same-ARN re-import reaches the tenant by itself
            self._note_replaced(cf, tenant_id, current)
            try:
                cf.update_distribution_tenant(**update_request(tenant, etag, certificate_arn))
            except ClientError as exc:
                code = _code(exc)
                if code == "PreconditionFailed" and attempt == 1:
                    log.info("tenant %s changed while we updated it: reading it again", tenant_id)
                    continue
                raise DeployError(target, _update_failure(exc)) from None
            log.info("tenant %s now uses %s", tenant_id, certificate_arn)
            return True
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _read(self, cf: Any, tenant_id: str) -> tuple[dict[str, Any], str]:
        target = _target(tenant_id)
        try:
            got = cf.get_distribution_tenant(Identifier=tenant_id)
        except ClientError as exc:
            code = _code(exc)
            if code == "EntityNotFound":
                raise DeployError(target, "no such distribution tenant (EntityNotFound): check the tenant id "
                                          "and that it lives in the account of the deploy role") from None
            if code in ("AccessDenied", "AccessDeniedException"):
                raise DeployError(target, f"{code}: not allowed to read the tenant; grant "
                                          "cloudfront:GetDistributionTenant on it") from None
            raise DeployError(target, f"cannot read the tenant: {code or exc}") from None
        return got["DistributionTenant"], got["ETag"]

    def _note_replaced(self, cf: Any, tenant_id: str, current: str | None) -> None:
        """Say what our certificate replaces: a CloudFront-managed certificate (requested with
        ManagedCertificateRequest), another certificate, or the distribution's shared one."""
        managed = _managed_certificate(cf, tenant_id)
        if managed:
            log.info("tenant %s had a CloudFront-managed certificate %s (%s): replaced by ours", tenant_id,
                     managed.get("CertificateArn"), managed.get("CertificateStatus"))
        elif current:
            log.info("tenant %s used certificate %s: replaced by ours", tenant_id, current)
        else:
            log.info("tenant %s used its distribution's certificate: it gets its own", tenant_id)


def update_request(tenant: dict[str, Any], etag: str, certificate_arn: str) -> dict[str, Any]:
    """UpdateDistributionTenant's parameters: every setting of the tenant as read, with only the
    certificate changed. No ManagedCertificateRequest is sent: ours replaces a managed one."""
    request: dict[str, Any] = {"Id": tenant["Id"], "IfMatch": etag}
    request.update({key: tenant[key] for key in _KEPT if tenant.get(key) is not None})
    request["Domains"] = [{"Domain": d["Domain"]} for d in tenant.get("Domains") or []]
    customizations = {k: v for k, v in (tenant.get("Customizations") or {}).items() if v}
    customizations["Certificate"] = {"Arn": certificate_arn}
    request["Customizations"] = customizations
    return request


def covers(names: tuple[str, ...], host: str) -> bool:
    """Does one of the certificate's names (maybe `*.zone`) cover the tenant's domain?"""
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def _managed_certificate(cf: Any, tenant_id: str) -> dict[str, Any] | None:
    """The tenant's CloudFront-managed certificate request, if any (for the log only: a failure
    to read it changes nothing)."""
    try:
        return cf.get_managed_certificate_details(Identifier=tenant_id).get("ManagedCertificateDetails") or None
    except ClientError:
        return None


def _update_failure(exc: ClientError) -> str:
    err = exc.response.get("Error", {})
    code, message = err.get("Code", ""), err.get("Message", "")
    hints = {
        "PreconditionFailed": "the tenant kept changing while we updated it; the next run tries again",
        "InvalidViewerCertificate": "CloudFront refused the certificate: it must be an issued ACM certificate "
                                    "in us-east-1 of the tenant's account covering every domain",
        "AccessDenied": "grant cloudfront:UpdateDistributionTenant on the tenant",
        "EntityNotFound": "the tenant was deleted while we updated it",
    }
    hint = hints.get(code)
    return f"{code}: {message}" + (f" ({hint})" if hint else "")


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _target(tenant_id: str) -> str:
    return str(Target(CLOUDFRONT_TENANT, tenant_id))
