"""API Gateway (v1) UpdateDomainName, which moto 5.2 lacks, answered as AWS does.

PATCH /domainnames/{domain_name} with {"patchOperations": [{op, path, value}]} answers 200 with
the updated DomainName. moto cannot change a stored domain, so the change lives in an overlay
(`ctx.memory`, keyed by (account, region, domain)) merged into every GetDomainName and
GetDomainNames answer this proxy gives for the domain (and into `domains` below, which ACM's
InUseBy reads through devstack/strict/apigateway.py). Checked as AWS checks:
- an unknown domain: 404 NotFoundException;
- a patch op or path this devstack does not apply: 400 BadRequestException;
- a certificate ARN that is not an existing ACM certificate of the caller's account in the
  region the field needs (us-east-1 for `certificateArn` of an EDGE domain, the domain's region
  for `regionalCertificateArn` of a REGIONAL one): 400 BadRequestException.
A domain is one resource for REST and HTTP APIs; apigatewayv2 calls are left to moto (the product
uses v1 only).
"""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import weakref
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from devstack import aws_ops
from devstack.served import Response

# The v1 domain-name operations by method and path (the proxy names calls by the same table).
OPERATIONS = aws_ops.APIGATEWAY_OPERATIONS
CERTIFICATE_FIELDS = {"certificateArn": "EDGE", "regionalCertificateArn": "REGIONAL"}
PLAIN_FIELDS = ("certificateName", "regionalCertificateName", "securityPolicy")
SECURITY_POLICIES = ("TLS_1_0", "TLS_1_2")
NOT_FOUND = "Invalid domain name identifier specified"
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):(\d{12}):certificate/[\w-]+$")
_MEMORY_KEY = "apigateway_domains"  # (account, region, name) -> {field: value}
_SEEN_KEY = "apigateway_regions"  # {(account, region)} where apigateway calls were made
_CONTEXTS: list[weakref.ref] = []  # every proxy's served context (by identity), for `domains`


class BadRequest(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def operation(method: str, path: str) -> str | None:
    for want, pattern, name in OPERATIONS:
        if method == want and re.fullmatch(pattern, path):
            return name
    return None


def _json(status: int, data: Any) -> Response:
    return Response(status, [("Content-Type", "application/json"), ("x-amzn-RequestId", secrets.token_hex(16))],
                  json.dumps(data).encode())


def _error(exc: BadRequest) -> Response:
    return Response(exc.status, [("Content-Type", "application/json"), ("x-amzn-ErrorType", exc.code),
                               ("x-amzn-RequestId", secrets.token_hex(16))],
                  json.dumps({"message": exc.message}).encode())


class ApiGatewayDomains:
    """UpdateDomainName, and the overlay merged into GetDomainName / GetDomainNames."""

    def answer(self, req, ctx) -> Response | None:
        if req.service != "apigateway" or req.path.startswith("/v2/"):
            return None
        op = operation(req.method, req.path)
        if op is None:
            return None
        account = ctx.account_of(req)
        _remember(ctx)
        with ctx.lock:
            ctx.memory.setdefault(_SEEN_KEY, set()).add((account, req.region))
        moto = ctx.moto("apigateway", req.region, account=account)
        name = unquote(req.path.rsplit("/", 1)[-1])
        try:
            if op == "UpdateDomainName":
                return _json(200, self._update(ctx, moto, account, req.region, name, req.body))
            if op == "GetDomainName" and _overlay(ctx, account, req.region, name):
                return _json(200, _merged(ctx, account, req.region, _read(moto, name)))
            if op == "GetDomainNames" and _overlays_in(ctx, account, req.region):
                items = [{k: _wire(v) for k, v in d.items()} for d in moto.get_domain_names().get("items", [])]
                return _json(200, {"item": [_merged(ctx, account, req.region, d) for d in items]})
            if op == "DeleteDomainName":
                with ctx.lock:
                    ctx.memory.get(_MEMORY_KEY, {}).pop((account, req.region, name), None)
        except BadRequest as exc:
            return _error(exc)
        return None  # moto answers

    def _update(self, ctx, moto, account: str, region: str, name: str, body: bytes) -> dict:
        current = _merged(ctx, account, region, _read(moto, name))
        try:
            patch = json.loads(body or b"{}").get("patchOperations") or []
        except (ValueError, AttributeError):
            raise BadRequest("BadRequestException", "Invalid request body", 400) from None
        changes = {}
        for operation_ in patch:
            field, value = _check_patch(operation_)
            if field in CERTIFICATE_FIELDS:
                _check_certificate(ctx, account, region, current, field, value)
            elif field == "securityPolicy" and value not in SECURITY_POLICIES:
                raise BadRequest("BadRequestException", f"Invalid security policy: {value}", 400)
            changes[field] = value
        with ctx.lock:
            ctx.memory.setdefault(_MEMORY_KEY, {}).setdefault((account, region, name), {}).update(changes)
        return {**current, **changes}


def _remember(ctx) -> None:
    if not any(ref() is ctx for ref in _CONTEXTS):
        _CONTEXTS[:] = [ref for ref in _CONTEXTS if ref() is not None] + [weakref.ref(ctx)]


def _live_contexts() -> list:
    return [ctx for ctx in (ref() for ref in list(_CONTEXTS)) if ctx is not None]


def _read(moto, name: str) -> dict:
    try:
        found = moto.get_domain_name(domainName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotFoundException":
            raise BadRequest("NotFoundException", NOT_FOUND, 404) from None
        raise
    return {k: _wire(v) for k, v in found.items() if k != "ResponseMetadata"}


def _wire(value: Any) -> Any:
    """A value as the JSON wire carries it (boto3 parsed timestamps: epoch seconds again)."""
    return value.timestamp() if isinstance(value, dt.datetime) else value


def _check_patch(operation_: Any) -> tuple[str, str]:
    if not isinstance(operation_, dict):
        raise BadRequest("BadRequestException", "Invalid patch operation", 400)
    op, path, value = operation_.get("op"), operation_.get("path") or "", operation_.get("value")
    field = path[1:] if path.startswith("/") else path
    allowed = [f"/{f}" for f in (*CERTIFICATE_FIELDS, *PLAIN_FIELDS)]
    if op != "replace" or path not in allowed:
        raise BadRequest("BadRequestException", f"Invalid patch path '{path}' specified for op '{op}'. "
                                                f"Must be one of: {allowed} (devstack: replace only)", 400)
    if not isinstance(value, str) or not value:
        raise BadRequest("BadRequestException", f"Invalid value for {path}: a non-empty string is required", 400)
    return field, value


def _endpoint_type(domain: dict) -> str:
    return ((domain.get("endpointConfiguration") or {}).get("types") or ["EDGE"])[0]


def _check_certificate(ctx, account: str, region: str, domain: dict, field: str, arn: str) -> None:
    """The ARN names an existing ACM certificate of the account in the region the field needs."""
    kind = _endpoint_type(domain)
    if CERTIFICATE_FIELDS[field] != kind:
        raise BadRequest("BadRequestException", f"Cannot set {field} on a {kind} domain name", 400)
    needed = "us-east-1" if kind == "EDGE" else region
    match = _ACM_ARN.match(arn)
    if not match or match.group(1) != needed:
        raise BadRequest("BadRequestException", f"Invalid certificate ARN: {arn}. Certificate must be in "
                                                f"'{needed}'.", 400)
    if match.group(2) != account:
        raise BadRequest("BadRequestException", f"Invalid certificate ARN: {arn}. Certificate must belong to "
                                                f"account {account}.", 400)
    acm = ctx.moto("acm", needed, account=account)
    try:
        acm.describe_certificate(CertificateArn=arn)
    except ClientError:  # ResourceNotFoundException
        raise BadRequest("BadRequestException", f"Certificate {arn} not found", 400) from None


def _overlay(ctx, account: str, region: str, name: str) -> dict:
    with ctx.lock:
        return dict(ctx.memory.get(_MEMORY_KEY, {}).get((account, region, name), {}))


def _overlays_in(ctx, account: str, region: str) -> bool:
    with ctx.lock:
        return any(key[:2] == (account, region) for key in ctx.memory.get(_MEMORY_KEY, {}))


def _merged(ctx, account: str, region: str, domain: dict) -> dict:
    return {**domain, **_overlay(ctx, account, region, domain.get("domainName", ""))}


def domains(moto, account: str) -> list[tuple[str, dict]]:
    """(region, domain as GetDomainName shows it) of every domain of `account` in a region where
    an apigateway call went through a proxy of this process; `moto(service, region, account=)`."""
    found = []
    for ctx in _live_contexts():
        with ctx.lock:
            regions = sorted({r for a, r in ctx.memory.get(_SEEN_KEY, set()) if a == account})
        for region in regions:
            for item in moto("apigateway", region, account=account).get_domain_names().get("items", []):
                found.append((region, _merged(ctx, account, region, item)))
    return found
