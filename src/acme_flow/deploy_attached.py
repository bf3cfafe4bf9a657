"""The target kinds of issue 13, one per place a certificate is used on AWS (see deploy.py for
the `TargetKind` they implement):

- attached kinds use the certificate's ACM copy in the region they need (CloudFront tenants and
  EDGE API domains us-east-1, a listener or a REGIONAL domain its own) and point at its ARN,
  keeping every other setting; they run after the ACM kind, so a move to a new ARN (a key type
  or Key Usage change) reaches them in the same run, and the old ARN is retired once ACM says
  nothing uses it any more;
- secret stores (Secrets Manager, SSM Parameter Store) hold the PEMs themselves.

Each call carries the role of its deploy section (`role_arn` there, else the certificate's
`deploy_role_arn`; None: the renewer's own account), and uses the ACM copy in that account.
"""
from __future__ import annotations

from .errors import CertrenewError
from .models import (US_EAST_1, ApiDomain, CertificateSpec, Deployment, ParameterTarget, Placement, SecretTarget,
                     StoredCertificate, Target, listener_region)
from .ports import DomainAttacher, ListenerAttacher, ParameterWriter, SecretWriter, TenantAttacher


def acm_copy(deployment: Deployment, target: Target, copy_id: str, serial: str) -> str:
    """The ARN of the ACM copy (`copy_id`: its region, @account when in another account) that
    holds `serial`: imported earlier in this deploy."""
    copy = deployment.get(Target.acm(copy_id))
    if copy is None or copy.serial != serial or copy.arn is None:
        raise CertrenewError(f"{target}: the {copy_id} ACM copy was not imported")
    return copy.arn


class TenantKind:
    """`cloudfront-tenant:<tenant id>`: the tenant's own certificate, the us-east-1 copy."""

    def __init__(self, tenants: TenantAttacher) -> None:
        self._tenants = tenants

    def check(self, target: Target, spec: CertificateSpec) -> None:
        self._tenants.check(target.id, spec.deploy.role_for("cloudfront"))

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        arn = acm_copy(deployment, target, spec.deploy.copy_id(US_EAST_1, "cloudfront"), stored.info.serial)
        self._tenants.attach(target.id, arn, stored.info.names, spec.deploy.role_for("cloudfront"))
        return Placement(target, stored.info.serial, arn)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return []  # ACM's InUseBy names the tenants


class ListenerKind:
    """`elb:<listener ARN>`: the copy of the listener's region, where our earlier one served
    (the default certificate, or an entry of the SNI list)."""

    def __init__(self, listeners: ListenerAttacher) -> None:
        self._listeners = listeners

    def check(self, target: Target, spec: CertificateSpec) -> None:
        self._listeners.check(target.id, spec.deploy.role_for("elb"))

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        arn = acm_copy(deployment, target, spec.deploy.copy_id(listener_region(target.id), "elb"), stored.info.serial)
        earlier = before.get(target)
        replaces = earlier.arn if earlier and earlier.arn and earlier.arn != arn else None
        self._listeners.attach(target.id, arn, replaces, spec.deploy.role_for("elb"))
        return Placement(target, stored.info.serial, arn)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return []


class ApiDomainKind:
    """`apigateway:<region>/<domain name>`: the domain's certificate (edge or regional)."""

    def __init__(self, domains: DomainAttacher) -> None:
        self._domains = domains

    def check(self, target: Target, spec: CertificateSpec) -> None:
        self._domains.check(_api_domain(spec, target), spec.deploy.role_for("apigateway"))

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        domain = _api_domain(spec, target)
        arn = acm_copy(deployment, target, spec.deploy.copy_id(domain.acm_region, "apigateway"), stored.info.serial)
        self._domains.attach(domain, arn, spec.deploy.role_for("apigateway"))
        return Placement(target, stored.info.serial, arn)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return []


class SecretKind:
    """`secretsmanager:<region>/<name>`: a new version of the secret with the PEMs."""

    def __init__(self, secrets: SecretWriter) -> None:
        self._secrets = secrets

    def check(self, target: Target, spec: CertificateSpec) -> None:
        self._secrets.check(_secret(spec, target), spec.deploy.role_for("secretsmanager"))

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        assert stored.material is not None
        self._secrets.put(_secret(spec, target), stored.material, stored.info, spec.deploy.role_for("secretsmanager"))
        return Placement(target, stored.info.serial)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return []


class ParameterKind:
    """`ssm:<region>:<prefix>`: the four SecureString parameters."""

    def __init__(self, parameters: ParameterWriter) -> None:
        self._parameters = parameters

    def check(self, target: Target, spec: CertificateSpec) -> None:
        self._parameters.check(_parameters(spec, target), spec.deploy.role_for("ssm"))

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        assert stored.material is not None
        self._parameters.put(_parameters(spec, target), stored.material, spec.deploy.role_for("ssm"))
        return Placement(target, stored.info.serial)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return []


def _api_domain(spec: CertificateSpec, target: Target) -> ApiDomain:
    return next(d for d in spec.deploy.api_domains if target.id == f"{d.region}/{d.name}")


def _secret(spec: CertificateSpec, target: Target) -> SecretTarget:
    return next(s for s in spec.deploy.secrets if target.id == f"{s.region}/{s.name}")


def _parameters(spec: CertificateSpec, target: Target) -> ParameterTarget:
    return next(p for p in spec.deploy.parameters if target.id == f"{p.region}:{p.prefix}")
