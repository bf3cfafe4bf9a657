"""The deploy targets of issue 13: CloudFront distribution tenants, ELB listeners and API Gateway
domains (each uses an ACM copy of the certificate), Secrets Manager secrets and SSM parameters
(each holds the PEMs), and the role that reaches another account.

Ids are checked for their shape only; whether each exists is the deploy preflight's job.
"""
from __future__ import annotations

import re
from typing import Any

from ..models import ApiDomain, ParameterTarget, SecretTarget
from .kit import BAD, Invalid, Validator, describe, show
from .names import domain_problems

LISTENER_ARN_RE = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:"
                             r"listener/(app|net)/[A-Za-z0-9-]{1,32}/[0-9a-f]{1,16}/[0-9a-f]{1,16}$")
TENANT_RE = re.compile(r"^dt_[A-Za-z0-9]{1,64}$")
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
KMS_KEY_RE = re.compile(r"^(alias/[A-Za-z0-9/_-]{1,250}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                        r"|mrk-[0-9a-f]{32}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]{1,250})$")
SSM_PREFIX_RE = re.compile(r"^/(?:[A-Za-z0-9_.-]+/){0,14}$")
SSM_TIERS = ("Intelligent-Tiering", "Standard", "Advanced")
ENDPOINTS = ("regional", "edge")
MAX_SSM_PREFIX = 1011 - len("fullchain.pem")  # a parameter's full name is at most 1,011 characters

CLOUDFRONT_KEYS = ("distributions", "tenants", "role_arn")
API_DOMAIN_KEYS = ("name", "region", "endpoint")
SECRET_KEYS = ("name", "region", "kms_key")
PARAMETER_KEYS = ("prefix", "region", "kms_key", "tier")


def tenants(v: Validator, cloudfront: dict[str, Any] | None, path: str) -> tuple[str | Invalid, ...]:
    if not cloudfront or cloudfront.get("tenants") is None:
        return ()
    return v.unique_list(cloudfront["tenants"], f"{path}.tenants", "distribution tenant ids",
                         lambda raw, p: v.matching(raw, p, TENANT_RE,
                                                   "a CloudFront distribution tenant id (like dt_2abcDEF123)"))


def listeners(v: Validator, deploy: dict[str, Any], path: str) -> tuple[str | Invalid, ...]:
    section = _section(v, deploy, path, "elb", ("listeners",))
    if not section:
        return ()
    return v.unique_list(section["listeners"], f"{path}.elb.listeners", "listener ARNs",
                         lambda raw, p: v.matching(raw, p, LISTENER_ARN_RE, "an ELBv2 HTTPS or TLS listener ARN (like "
                                                   "arn:aws:elasticloadbalancing:eu-west-1:111111111111:"
                                                   "listener/app/web/0123456789abcdef/0123456789abcdef)"))


def api_domains(v: Validator, deploy: dict[str, Any], path: str, region_re: re.Pattern[str]
                ) -> tuple[ApiDomain | Invalid, ...]:
    section = _section(v, deploy, path, "apigateway", ("domains",))
    if not section:
        return ()

    def domain(raw: Any, p: str) -> ApiDomain | Invalid:
        entry = _entry(v, raw, p, API_DOMAIN_KEYS, {"name": "the custom domain name, like api.example.com"})
        if entry is None:
            return BAD
        name = _dns_name(v, entry.get("name"), f"{p}.name")
        region = _region(v, entry.get("region"), f"{p}.region", region_re)
        endpoint = entry.get("endpoint", "regional")
        if endpoint not in ENDPOINTS:
            return v.add(f"{p}.endpoint", f"expected regional or edge; got {describe(endpoint)}")
        if name is BAD or region is BAD:
            return BAD
        return ApiDomain(name, region, edge=endpoint == "edge")
    return v.unique_list(section["domains"], f"{path}.apigateway.domains", "API domains", domain)


def secrets(v: Validator, deploy: dict[str, Any], path: str, region_re: re.Pattern[str]
            ) -> tuple[SecretTarget | Invalid, ...]:
    section = _section(v, deploy, path, "secretsmanager", ("secrets",))
    if not section:
        return ()

    def secret(raw: Any, p: str) -> SecretTarget | Invalid:
        entry = _entry(v, raw, p, SECRET_KEYS, {"name": "the secret's name, like certrenew/shop"})
        if entry is None:
            return BAD
        name = v.matching(entry.get("name"), f"{p}.name", SECRET_NAME_RE,
                          "a Secrets Manager secret name (1-512 of A-Z a-z 0-9 / _ + = . @ -)")
        region = _region(v, entry.get("region"), f"{p}.region", region_re)
        kms_key = _kms_key(v, entry.get("kms_key"), f"{p}.kms_key")
        if name is BAD or region is BAD or kms_key is BAD:
            return BAD
        return SecretTarget(name, region, kms_key)
    return v.unique_list(section["secrets"], f"{path}.secretsmanager.secrets", "secrets", secret)


def parameters(v: Validator, deploy: dict[str, Any], path: str, region_re: re.Pattern[str]
               ) -> tuple[ParameterTarget | Invalid, ...]:
    section = _section(v, deploy, path, "ssm", ("parameters",))
    if not section:
        return ()

    def parameter(raw: Any, p: str) -> ParameterTarget | Invalid:
        entry = _entry(v, raw, p, PARAMETER_KEYS, {"prefix": "an SSM path that starts and ends with '/'"})
        if entry is None:
            return BAD
        prefix = _ssm_prefix(v, entry.get("prefix"), f"{p}.prefix")
        region = _region(v, entry.get("region"), f"{p}.region", region_re)
        kms_key = _kms_key(v, entry.get("kms_key"), f"{p}.kms_key")
        tier = entry.get("tier", SSM_TIERS[0])
        if tier not in SSM_TIERS:
            tier = v.add(f"{p}.tier", f"expected one of {', '.join(SSM_TIERS)}; got {describe(tier)}")
        if prefix is BAD or region is BAD or kms_key is BAD or tier is BAD:
            return BAD
        return ParameterTarget(prefix, region, kms_key, tier)
    return v.unique_list(section["parameters"], f"{path}.ssm.parameters", "parameter prefixes", parameter)


def _section(v: Validator, deploy: dict[str, Any], path: str, key: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """`deploy.<key>: {<keys[0]>: [...]}`; empty when absent or invalid (reported)."""
    if deploy.get(key) is None:
        return {}
    section = v.mapping(deploy[key], f"{path}.{key}", (*keys, "role_arn"), required=keys[:1])
    return section if section and section.get(keys[0]) is not None else {}


def _entry(v: Validator, raw: Any, path: str, keys: tuple[str, ...], required: dict[str, str]
           ) -> dict[str, Any] | None:
    """One entry of a target list: a mapping of `keys`, with the `required` ones and a region."""
    entry = v.mapping(raw, path, keys)
    if entry is None:
        return None
    for key, what in {**required, "region": "the AWS region it lives in, like eu-west-1"}.items():
        if entry.get(key) is None:
            v.add(f"{path}.{key}", f"required: {what}")
    return entry


def _region(v: Validator, value: Any, path: str, region_re: re.Pattern[str]) -> str | Invalid:
    if value is None:
        return BAD  # "required" is reported by the mapping check
    return v.matching(value, path, region_re, "an AWS region (like eu-west-1)")


def _dns_name(v: Validator, value: Any, path: str) -> str | Invalid:
    if value is None:
        return BAD
    text = v.string(value, path, "a custom domain name like api.example.com")
    if text is BAD:
        return BAD
    problems = domain_problems(text.lower())
    return v.add(path, problems[0]) if problems else text.lower()


def _kms_key(v: Validator, value: Any, path: str) -> str | None | Invalid:
    if value is None:
        return None
    return v.matching(value, path, KMS_KEY_RE, "a KMS key: alias/NAME, a key id, or a key or alias ARN")


def _ssm_prefix(v: Validator, value: Any, path: str) -> str | Invalid:
    rule = "an SSM path that starts and ends with '/' (like /certrenew/shop/), at most 15 levels"
    text = v.string(value, path, rule) if value is not None else BAD
    if text is BAD:
        return BAD
    if not SSM_PREFIX_RE.match(text) or len(text) > MAX_SSM_PREFIX:
        return v.add(path, f"{show(text)} is not {rule}")
    if text.lower().startswith(("/aws/", "/ssm/")) or text.lower() in ("/aws", "/ssm"):
        return v.add(path, f"{show(text)} starts with a prefix AWS reserves (aws, ssm)")
    return text
