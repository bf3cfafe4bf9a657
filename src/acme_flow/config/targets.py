"""The AWS side of a certificate: its Route53 zone, where it is deployed, where runs are notified.

Ids are checked for their shape only (moto makes ids AWS would not); bucket names follow the
S3 naming rules, ARNs the shape of their service's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..models import ApiDomain, DeploySpec, DnsSpec, NotifySpec, ParameterTarget, S3Export, SecretTarget
from . import attached
from .kit import BAD, Invalid, Validator, all_valid, describe, show
from .names import is_ip

DNS_KEYS = ("hosted_zone_id", "role_arn")
DEPLOY_KEYS = ("acm", "cloudfront", "elb", "apigateway", "secretsmanager", "ssm", "s3")
NOTIFY_KEYS = ("sns_topic_arn",)

# AWS zone ids start with Z (Z0123456789); moto makes other uppercase ids: only the shape is checked.
ZONE_RE = re.compile(r"^[A-Z0-9]{1,32}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION_RE = re.compile(
    r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov|-iso[a-z]*)?-"
    r"(north|south|east|west|central|northeast|southeast|northwest|southwest)-\d$")
# AWS ids start with E (E2ABCDEF123456); moto makes other uppercase ids, so only the shape is checked.
DISTRIBUTION_RE = re.compile(r"^[A-Z0-9]{10,20}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
MAX_PREFIX_CHARS = 900  # S3 keys are at most 1024 bytes; leave room for the file names


# ---- dns -------------------------------------------------------------------------------------


def dns_spec(v: Validator, dns: dict[str, Any] | None, path: str) -> DnsSpec | Invalid:
    if dns is None:
        return BAD
    raw_zone, raw_role = dns.get("hosted_zone_id"), dns.get("role_arn")
    zone = None if raw_zone is None else _zone_id(v, raw_zone, f"{path}.hosted_zone_id")
    role = None if raw_role is None else v.matching(
        raw_role, f"{path}.role_arn", ROLE_ARN_RE,
        "an IAM role ARN (like arn:aws:iam::111111111111:role/dns)")
    if zone is BAD or role is BAD:
        return BAD
    return DnsSpec(hosted_zone_id=zone, role_arn=role)


def _zone_id(v: Validator, value: Any, path: str) -> str | Invalid:
    what = "a Route53 hosted zone id (like Z0123456789ABC)"
    text = v.string(value, path, what)
    if text is BAD:
        return BAD
    zone = text.removeprefix("/hostedzone/")
    if not ZONE_RE.match(zone):
        hint = f" (did you mean {show(zone.upper())}?)" if ZONE_RE.match(zone.upper()) else ""
        return v.add(path, f"{show(text)} is not {what}{hint}")
    return zone


# ---- deploy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """The deploy section as checked; any part may be BAD."""

    acm_regions: tuple[str | Invalid, ...]
    cloudfront: tuple[str | Invalid, ...]
    s3: S3Export | None | Invalid
    tenants: tuple[str | Invalid, ...] = ()
    listeners: tuple[str | Invalid, ...] = ()
    api_domains: tuple[ApiDomain | Invalid, ...] = ()
    secrets: tuple[SecretTarget | Invalid, ...] = ()
    parameters: tuple[ParameterTarget | Invalid, ...] = ()
    role_arn: str | None | Invalid = None
    section_roles: tuple[tuple[str, str] | Invalid, ...] = ()

    @property
    def uses_cloudfront(self) -> bool:
        """Served through CloudFront (distributions, tenants, EDGE API domains): its key rules apply."""
        return bool(self.cloudfront or self.tenants or any(isinstance(d, ApiDomain) and d.edge
                                                           for d in self.api_domains))

    def spec(self) -> DeploySpec | Invalid:
        parts = [all_valid(p) for p in (self.acm_regions, self.cloudfront, self.tenants, self.listeners,
                                        self.api_domains, self.secrets, self.parameters)]
        roles = all_valid(self.section_roles)
        if any(p is BAD for p in parts) or self.s3 is BAD or self.role_arn is BAD or roles is BAD:
            return BAD
        regions, distributions, tenants, listeners, domains, secrets, parameters = parts
        return DeploySpec(acm_regions=regions, cloudfront=distributions, s3=self.s3, tenants=tenants,
                          listeners=listeners, api_domains=domains, secrets=secrets, parameters=parameters,
                          role_arn=self.role_arn, section_roles=roles)


def deploy_targets(v: Validator, deploy: dict[str, Any] | None, path: str,
                   name: str | Invalid, role: Any = None, role_path: str = "deploy_role_arn") -> Targets | Invalid:
    if deploy is None:
        return BAD
    regions = _target_list(v, deploy, path, "acm", "regions", "AWS regions", REGION_RE,
                           "an AWS region (like us-east-1)")
    cloudfront = _cloudfront_section(v, deploy, path)
    distributions = () if not cloudfront or cloudfront.get("distributions") is None else v.unique_list(
        cloudfront["distributions"], f"{path}.cloudfront.distributions", "distribution ids",
        lambda raw, p: v.matching(raw, p, DISTRIBUTION_RE, "a CloudFront distribution id (like E2ABCDEF123456)"))
    s3 = _s3_export(v, deploy.get("s3"), f"{path}.s3", name)
    role_arn = None if role is None else _role(v, role, role_path)
    return Targets(section_roles=_section_roles(v, deploy, path, role_arn),acm_regions=regions, cloudfront=distributions, s3=s3,
                   tenants=attached.tenants(v, cloudfront, f"{path}.cloudfront"),
                   listeners=attached.listeners(v, deploy, path),
                   api_domains=attached.api_domains(v, deploy, path, REGION_RE),
                   secrets=attached.secrets(v, deploy, path, REGION_RE),
                   parameters=attached.parameters(v, deploy, path, REGION_RE), role_arn=role_arn)


def _role(v: Validator, value: Any, path: str) -> str | Invalid:
    return v.matching(value, path, ROLE_ARN_RE, "an IAM role ARN in the targets' account (like "
                                                "arn:aws:iam::222222222222:role/certrenew-deploy)")


def _section_roles(v: Validator, deploy: dict[str, Any], path: str, certificate_role: str | None | Invalid
                   ) -> tuple[tuple[str, str] | Invalid, ...]:
    """(section, role) for each deploy section whose `role_arn` differs from the certificate's
    `deploy_role_arn`: that section's targets (and the ACM copies they use) live in its account."""
    found: list[tuple[str, str] | Invalid] = []
    for section in DEPLOY_KEYS:
        raw = deploy.get(section)
        if isinstance(raw, dict) and raw.get("role_arn") is not None:
            role = _role(v, raw["role_arn"], f"{path}.{section}.role_arn")
            if role is BAD or role != certificate_role:
                found.append(BAD if role is BAD else (section, role))
    return tuple(found)


def _cloudfront_section(v: Validator, deploy: dict[str, Any], path: str) -> dict[str, Any] | None:
    """`deploy.cloudfront: {distributions: [...], tenants: [...]}`: at least one of them."""
    if deploy.get("cloudfront") is None:
        return None
    section = v.mapping(deploy["cloudfront"], f"{path}.cloudfront", attached.CLOUDFRONT_KEYS)
    if section is not None and not any(section.get(k) is not None for k in ("distributions", "tenants")):
        v.add(f"{path}.cloudfront", "expected distributions: [E2ABCDEF123456, ...] and/or tenants: [dt_..., ...]")
    return section


def _target_list(v: Validator, deploy: dict[str, Any], path: str, target: str, key: str, plural: str,
                 pattern: re.Pattern[str], what: str) -> tuple[str | Invalid, ...]:
    """`deploy.<target>: {<key>: [...]}`: a unique list of ids matching `pattern`."""
    if deploy.get(target) is None:
        return ()
    section = v.mapping(deploy[target], f"{path}.{target}", (key, "role_arn"), required=(key,))
    if section is None or section.get(key) is None:
        return ()
    return v.unique_list(section[key], f"{path}.{target}.{key}", plural,
                         lambda raw, p: v.matching(raw, p, pattern, what))


def _s3_export(v: Validator, value: Any, path: str, name: str | Invalid) -> S3Export | None | Invalid:
    if value is None:
        return None
    s3 = v.mapping(value, path, ("bucket", "prefix", "role_arn"), required=("bucket",))
    if s3 is None:
        return BAD
    raw_bucket, raw_prefix = s3.get("bucket"), s3.get("prefix")
    # a missing bucket is reported by the mapping check
    bucket = BAD if raw_bucket is None else _bucket(v, raw_bucket, f"{path}.bucket")
    if raw_prefix is None:
        prefix: str | Invalid = f"{name}/" if isinstance(name, str) else BAD
    else:
        prefix = _prefix(v, raw_prefix, f"{path}.prefix")
    if bucket is BAD or prefix is BAD:
        return BAD
    return S3Export(bucket=bucket, prefix=prefix)


def _bucket(v: Validator, value: Any, path: str) -> str | Invalid:
    rule = ("an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and "
            "ending with a letter or digit")
    text = v.string(value, path, rule)
    if text is BAD:
        return BAD
    if not BUCKET_RE.match(text):
        return v.add(path, f"{show(text)} is not {rule}")
    if ".." in text:
        return v.add(path, f"{show(text)} is not a valid S3 bucket name: no '..' allowed")
    if is_ip(text):
        return v.add(path, f"{show(text)} is not a valid S3 bucket name: it looks like an "
                           f"IP address")
    if text.startswith(BUCKET_RESERVED_PREFIXES) or text.endswith(BUCKET_RESERVED_SUFFIXES):
        return v.add(path, f"{show(text)} is not a valid S3 bucket name: it uses a prefix "
                           f"or suffix that AWS reserves")
    return text


def _prefix(v: Validator, value: Any, path: str) -> str | Invalid:
    rule = "a key prefix like 'example.com/' (no leading '/', no '..' segments)"
    if not isinstance(value, str):
        return v.add(path, f"expected {rule}; got {describe(value)}")
    if value.startswith("/"):
        return v.add(path, f"{show(value)} starts with '/': expected {rule}")
    if ".." in value.split("/"):
        return v.add(path, f"{show(value)} has a '..' segment: expected {rule}")
    if len(value) > MAX_PREFIX_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return v.add(path, f"{show(value)} is too long or has control characters: "
                           f"expected {rule}")
    return value


# ---- notify ----------------------------------------------------------------------------------


def notify_spec(v: Validator, data: dict[str, Any]) -> NotifySpec | Invalid:
    notify = v.optional_mapping(data, "notify", "", NOTIFY_KEYS)
    if notify is None:
        return BAD
    raw = notify.get("sns_topic_arn")
    arn = None if raw is None else v.matching(
        raw, "notify.sns_topic_arn", SNS_ARN_RE,
        "an SNS topic ARN (like arn:aws:sns:us-east-1:111111111111:certrenew)")
    if arn is BAD:
        return BAD
    return NotifySpec(sns_topic_arn=arn)
