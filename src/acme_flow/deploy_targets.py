"""Where a certificate is deployed, as configured: the target kinds, their ids and the ACM
regions they need. Frozen value types, no I/O (re-exported by models)."""
from __future__ import annotations

from dataclasses import dataclass

US_EAST_1 = "us-east-1"


@dataclass(frozen=True)
class S3Export:
    bucket: str
    prefix: str

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class ApiDomain:
    """An API Gateway custom domain name (REST or HTTP API): REGIONAL uses an ACM certificate
    of its region, EDGE one in us-east-1."""

    name: str
    region: str
    edge: bool = False

    @property
    def acm_region(self) -> str:
        return US_EAST_1 if self.edge else self.region


@dataclass(frozen=True)
class SecretTarget:
    """A Secrets Manager secret holding the certificate, chain, full chain and key as JSON."""

    name: str
    region: str
    kms_key: str | None = None  # None: the account's aws/secretsmanager key


@dataclass(frozen=True)
class ParameterTarget:
    """SSM Parameter Store SecureString parameters `<prefix>cert.pem`, `chain.pem`,
    `fullchain.pem`, `privkey.pem`."""

    prefix: str
    region: str
    kms_key: str | None = None  # None: the account's aws/ssm key
    tier: str = "Intelligent-Tiering"  # Standard (4 KB) | Advanced (8 KB) | Intelligent-Tiering


ACM, CLOUDFRONT, S3 = "acm", "cloudfront", "s3"
CLOUDFRONT_TENANT, ELB, APIGATEWAY, SECRETSMANAGER, SSM = "cloudfront-tenant", "elb", "apigateway", "secretsmanager", "ssm"


@dataclass(frozen=True)
class Target:
    """A place a certificate is deployed to: a kind and the id within that kind.

    Printed (and kept in the state) as `acm:<region>`, `cloudfront:<distribution id>` or
    `s3://<bucket>/<prefix>`; `parse` reads exactly what `str` prints."""

    kind: str
    id: str

    @classmethod
    def acm(cls, region: str) -> Target:
        return cls(ACM, region)

    @classmethod
    def parse(cls, text: str) -> Target:
        if text.startswith("s3://"):
            return cls(S3, text.removeprefix("s3://"))
        kind, sep, ident = text.partition(":")
        if not (sep and kind and ident):
            raise ValueError(f"{text!r} is not a deploy target (kind:id or s3://bucket/prefix)")
        return cls(kind, ident)

    def __str__(self) -> str:
        return f"s3://{self.id}" if self.kind == S3 else f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class DeploySpec:
    """Where one certificate goes. Its targets live in the account of `role_arn` (None: the
    renewer's own), a deploy section in `section_roles` in that role's account instead; each
    ACM copy is named by its region in the certificate's account, `<region>@<account>` in
    another (an ACM certificate serves only its own account)."""

    acm_regions: tuple[str, ...] = ()
    cloudfront: tuple[str, ...] = ()
    s3: S3Export | None = None
    tenants: tuple[str, ...] = ()  # CloudFront distribution tenant ids
    listeners: tuple[str, ...] = ()  # ELBv2 HTTPS/TLS listener ARNs
    api_domains: tuple[ApiDomain, ...] = ()
    secrets: tuple[SecretTarget, ...] = ()
    parameters: tuple[ParameterTarget, ...] = ()
    role_arn: str | None = None  # deploy_role_arn: the certificate's targets and ACM copies in its account
    section_roles: tuple[tuple[str, str], ...] = ()  # (section, role_arn) where a section differs

    def role_for(self, section: str) -> str | None:
        """The role that reaches a deploy section's targets (acm, cloudfront, elb, ...)."""
        return dict(self.section_roles).get(section, self.role_arn)

    def copy_id(self, region: str, section: str) -> str:
        """The ACM copy a section's targets use in `region`."""
        role = self.role_for(section)
        return region if role == self.role_arn or role is None else f"{region}@{role_account(role)}"

    def copy_location(self, copy_id: str) -> tuple[str, str | None] | None:
        """(region, role) of an ACM copy; None for an account no role of this config reaches."""
        region, _, account = copy_id.partition("@")
        if not account:
            return region, self.role_arn
        return next(((region, r) for _, r in self.section_roles if role_account(r) == account), None)

    @property
    def acm_copies(self) -> tuple[str, ...]:
        """The configured regions, plus the copy each attached target needs: us-east-1 for
        CloudFront (distributions, tenants) and EDGE API domains, a listener's region, a
        REGIONAL API domain's region; each in its section's account."""
        needed = [self.copy_id(r, "acm") for r in self.acm_regions]
        needed += [self.copy_id(US_EAST_1, "cloudfront")] * bool(self.cloudfront or self.tenants)
        needed += [self.copy_id(listener_region(arn), "elb") for arn in self.listeners]
        needed += [self.copy_id(d.acm_region, "apigateway") for d in self.api_domains]
        return tuple(dict.fromkeys(needed))

    def targets(self) -> tuple[Target, ...]:
        """Every target, in deploy order: ACM first (the attached kinds use its copies)."""
        found = [Target.acm(r) for r in self.acm_copies]
        found += [Target(CLOUDFRONT, d) for d in self.cloudfront]
        found += [Target(CLOUDFRONT_TENANT, t) for t in self.tenants]
        found += [Target(ELB, arn) for arn in self.listeners]
        found += [Target(APIGATEWAY, f"{d.region}/{d.name}") for d in self.api_domains]
        found += [Target(SECRETSMANAGER, f"{s.region}/{s.name}") for s in self.secrets]
        found += [Target(SSM, f"{p.region}:{p.prefix}") for p in self.parameters]
        if self.s3:
            found.append(Target(S3, f"{self.s3.bucket}/{self.s3.prefix}"))
        return tuple(found)


def role_account(role_arn: str) -> str:
    """The account of an IAM role ARN (arn:aws:iam::<account>:role/...)."""
    return role_arn.split(":")[4]


def listener_region(arn: str) -> str:
    """The region of an ELBv2 listener ARN (arn:aws:elasticloadbalancing:<region>:<account>:listener/...)."""
    return arn.split(":")[3]
