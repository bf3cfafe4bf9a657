"""Attach an ACM certificate to an API Gateway custom domain name (REST and HTTP APIs).

A custom domain name is one resource behind both API Gateway APIs: the v1 (`apigateway`) calls
GetDomainName and UpdateDomainName reach a domain whether REST or HTTP APIs are mapped to it, and
a JSON-Patch `replace` of the one certificate field changes nothing else (endpoint type,
security policy, mappings, mutual TLS, tags), where v2's UpdateDomainName would rewrite the whole
DomainNameConfigurations. An EDGE domain holds `certificateArn` (ACM in us-east-1), a REGIONAL
one `regionalCertificateArn` (ACM in its own region). moto checks none of this, so the ARN's
service, region and account are checked here; AWS's own refusal is translated too.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

from botocore.exceptions import ClientError

from ..deploy_targets import APIGATEWAY, ApiDomain, Target
from ..errors import DeployError

log = logging.getLogger("certrenew.apigateway")

ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):certificate/[\w-]+$")
ROLE_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):")
EDGE, REGIONAL, PRIVATE = "EDGE", "REGIONAL", "PRIVATE"
FIELD = {EDGE: "certificateArn", REGIONAL: "regionalCertificateArn"}


def target_of(domain: ApiDomain) -> str:
    return str(Target(APIGATEWAY, f"{domain.region}/{domain.name}"))


def resource_arn(domain: ApiDomain) -> str:
    """The domain as IAM names it (apigateway:GET and apigateway:PATCH are granted on it)."""
    return f"arn:aws:apigateway:{domain.region}::/domainnames/{domain.name}"


class ApiGatewayDomains:
    """The DomainAttacher port over the `apigateway` (v1) API; `client_for(region, role_arn)`."""

    def __init__(self, client_for: Callable[[str, str | None], Any]) -> None:
        self._client_for = client_for

    def check(self, domain: ApiDomain, role_arn: str | None) -> None:
        """Exists, readable, and of the configured endpoint type (read-only)."""
        _, found = self._read(domain, role_arn)
        endpoint_type(domain, found)

    def attach(self, domain: ApiDomain, certificate_arn: str, role_arn: str | None) -> bool:
        """Replace the domain's one certificate field; False (nothing written) when it already is."""
        check_certificate(domain, certificate_arn, role_arn)
        client, found = self._read(domain, role_arn)
        field = FIELD[endpoint_type(domain, found)]
        if found.get(field) == certificate_arn:
            return False  # a same-ARN re-import reaches the domain by itself
        patch = [{"op": "replace", "path": f"/{field}", "value": certificate_arn}]
        try:
            client.update_domain_name(domainName=domain.name, patchOperations=patch)
        except ClientError as exc:
            raise DeployError(target_of(domain), _update_refused(domain, exc)) from None
        log.info("API Gateway domain %s (%s) now uses %s", domain.name, domain.region, certificate_arn)
        return True

    def _read(self, domain: ApiDomain, role_arn: str | None) -> tuple[Any, dict]:
        client = self._client_for(domain.region, role_arn)
        try:
            return client, client.get_domain_name(domainName=domain.name)
        except ClientError as exc:
            raise DeployError(target_of(domain), _read_refused(domain, exc)) from None


def endpoint_type(domain: ApiDomain, found: dict) -> str:
    """EDGE or REGIONAL, as configured; a DeployError for a mismatch or a private domain."""
    types = (found.get("endpointConfiguration") or {}).get("types") or [EDGE]  # AWS's default is EDGE
    kind = types[0]
    if kind not in FIELD:
        raise DeployError(target_of(domain), f"{domain.name} is a {kind} custom domain name: certrenew "
                                             "attaches certificates to EDGE and REGIONAL domains only")
    if kind == EDGE and not domain.edge:
        raise DeployError(target_of(domain), f"{domain.name} is an EDGE domain: set `endpoint: edge` in its "
                                             "deploy.apigateway entry (its certificate is imported in us-east-1)")
    if kind == REGIONAL and domain.edge:
        raise DeployError(target_of(domain), f"{domain.name} is a REGIONAL domain: remove `endpoint: edge` from "
                                             f"its deploy.apigateway entry (its certificate is imported in "
                                             f"{domain.region})")
    return kind


def check_certificate(domain: ApiDomain, certificate_arn: str, role_arn: str | None) -> None:
    """An ACM ARN in the region the domain's endpoint type needs, in the target's account."""
    match = ACM_ARN.match(certificate_arn)
    kind = "an EDGE" if domain.edge else "a REGIONAL"
    if not match:
        raise DeployError(target_of(domain), f"{certificate_arn!r} is not an ACM certificate ARN")
    if match["region"] != domain.acm_region:
        raise DeployError(target_of(domain), f"{certificate_arn} is in {match['region']}: {kind} domain uses an "
                                             f"ACM certificate in {domain.acm_region}")
    role = ROLE_ACCOUNT.match(role_arn or "")
    if role and role["account"] != match["account"]:
        raise DeployError(target_of(domain), f"{certificate_arn} belongs to account {match['account']}, the "
                                             f"domain to {role['account']} (the account of {role_arn}): an ACM "
                                             "certificate serves only its own account")


def _code(exc: ClientError) -> tuple[str, str]:
    err = exc.response.get("Error", {})
    return err.get("Code", "") or "Unknown", err.get("Message", "") or str(exc)


def _read_refused(domain: ApiDomain, exc: ClientError) -> str:
    code, message = _code(exc)
    if code == "NotFoundException":
        return (f"no custom domain name {domain.name} in {domain.region} (NotFoundException); create it, or "
                "correct the name or region of its deploy.apigateway entry")
    if code in ("AccessDeniedException", "UnauthorizedException"):
        return (f"cannot read the custom domain name ({code}: {message}); the renewer (or deploy role) needs "
                f"apigateway:GET on {resource_arn(domain)}")
    return f"cannot read the custom domain name ({code}: {message})"


def _update_refused(domain: ApiDomain, exc: ClientError) -> str:
    code, message = _code(exc)
    if code in ("AccessDeniedException", "UnauthorizedException"):
        return (f"cannot update the custom domain name ({code}: {message}); the renewer (or deploy role) needs "
                f"apigateway:PATCH on {resource_arn(domain)}")
    if code == "ConflictException":
        return f"the custom domain name is being changed ({code}: {message}); a later run tries again"
    if code == "NotFoundException":
        return f"the custom domain name went away during the deploy ({code}: {message})"
    return f"API Gateway refused the certificate ({code}: {message})"
