"""In-memory fakes of the attached target ports of issue 13 (see fakes.py for the others).

Each records the role of every call (`roles`), refuses a target it does not know (as the
adapter's check does) and keeps what it holds, so a test can assert what a run did."""
from __future__ import annotations

from acme_flow.errors import DeployError
from acme_flow.models import (APIGATEWAY, CLOUDFRONT_TENANT, ELB, SECRETSMANAGER, SSM, ApiDomain, CertificateInfo,
                              CertificateMaterial, ParameterTarget, SecretTarget, Target)


class _Known:
    def __init__(self, kind: str, known) -> None:
        self.kind, self.known, self.roles, self.writes = kind, set(known), [], []

    def _check(self, ident: str, role_arn: str | None) -> None:
        self.roles.append(role_arn)
        if ident not in self.known:
            raise DeployError(str(Target(self.kind, ident)), "not found")


class FakeTenants(_Known):
    def __init__(self, tenants=("dt_shop",)) -> None:
        super().__init__(CLOUDFRONT_TENANT, tenants)
        self.certificate: dict[str, str] = {}

    def check(self, tenant_id: str, role_arn: str | None) -> None:
        self._check(tenant_id, role_arn)

    def attach(self, tenant_id: str, certificate_arn: str, names: tuple[str, ...], role_arn: str | None) -> bool:
        self._check(tenant_id, role_arn)
        if self.certificate.get(tenant_id) == certificate_arn:
            return False
        self.certificate[tenant_id] = certificate_arn
        self.writes.append((tenant_id, certificate_arn))
        return True


class FakeListeners(_Known):
    """Each listener: its default certificate and SNI list (a new listener's default is foreign)."""

    def __init__(self, listeners=()) -> None:
        super().__init__(ELB, listeners)
        self.default = {arn: "arn:aws:acm:eu-west-1:123456789012:certificate/foreign" for arn in listeners}
        self.sni: dict[str, list[str]] = {arn: [] for arn in listeners}

    def check(self, listener_arn: str, role_arn: str | None) -> None:
        self._check(listener_arn, role_arn)

    def attach(self, listener_arn: str, certificate_arn: str, replaces: str | None, role_arn: str | None) -> bool:
        self._check(listener_arn, role_arn)
        sni = self.sni[listener_arn]
        if replaces and self.default[listener_arn] == replaces:
            self.default[listener_arn] = certificate_arn
        elif certificate_arn in sni or self.default[listener_arn] == certificate_arn:
            if not (replaces and replaces in sni):
                return False
        else:
            sni.append(certificate_arn)
        if replaces in sni:
            sni.remove(replaces)
        self.writes.append((listener_arn, certificate_arn, replaces))
        return True


class FakeDomains(_Known):
    def __init__(self, domains: tuple[ApiDomain, ...] = ()) -> None:
        super().__init__(APIGATEWAY, {f"{d.region}/{d.name}" for d in domains})
        self.certificate: dict[str, str] = {}

    def check(self, domain: ApiDomain, role_arn: str | None) -> None:
        self._check(f"{domain.region}/{domain.name}", role_arn)

    def attach(self, domain: ApiDomain, certificate_arn: str, role_arn: str | None) -> bool:
        key = f"{domain.region}/{domain.name}"
        self._check(key, role_arn)
        if not certificate_arn.startswith(f"arn:aws:acm:{domain.acm_region}:"):
            raise DeployError(str(Target(APIGATEWAY, key)), f"{certificate_arn} is not in {domain.acm_region}")
        if self.certificate.get(key) == certificate_arn:
            return False
        self.certificate[key] = certificate_arn
        self.writes.append((key, certificate_arn))
        return True


class FakeSecrets(_Known):
    """Any secret can be created; `denied` names cannot be read."""

    def __init__(self, denied=()) -> None:
        super().__init__(SECRETSMANAGER, ())
        self.denied, self.values = set(denied), {}

    def check(self, secret: SecretTarget, role_arn: str | None) -> None:
        self.roles.append(role_arn)
        if secret.name in self.denied:
            raise DeployError(str(Target(SECRETSMANAGER, f"{secret.region}/{secret.name}")),
                              "AccessDeniedException: secretsmanager:DescribeSecret")

    def put(self, secret: SecretTarget, material: CertificateMaterial, info: CertificateInfo,
            role_arn: str | None) -> None:
        self.check(secret, role_arn)
        self.values[(secret.region, secret.name)] = {"certificate": material.cert_pem, "serial": info.serial,
                                                     "private_key": material.key_pem}
        self.writes.append((secret.name, info.serial))


class FakeParameters(_Known):
    def __init__(self) -> None:
        super().__init__(SSM, ())
        self.values: dict[tuple[str, str], str] = {}

    def check(self, parameters: ParameterTarget, role_arn: str | None) -> None:
        self.roles.append(role_arn)

    def put(self, parameters: ParameterTarget, material: CertificateMaterial, role_arn: str | None) -> None:
        self.roles.append(role_arn)
        for name, value in (("cert.pem", material.cert_pem), ("privkey.pem", material.key_pem)):
            self.values[(parameters.region, parameters.prefix + name)] = value
        self.writes.append(parameters.prefix)
