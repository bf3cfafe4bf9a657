"""CloudFront distribution tenants (multi-tenant distributions), which moto 5.2 lacks.

Answers Create/Get/Update/Delete DistributionTenant, ListDistributionTenants(ByCustomization),
GetDistributionTenantByDomain and GetManagedCertificateDetails in CloudFront's REST-XML, the
documents built from botocore's service model (element names, namespace, ETag header). State is
per account in `ctx.memory`; `TENANT_CONTEXTS` lets the strict rules of the same process (ACM's
InUseBy) see which tenants use a certificate.

As AWS: the multi-tenant distribution must exist (asked of moto), Update and Delete need the
current ETag (missing: InvalidIfMatchVersion, stale: PreconditionFailed), a certificate must be an
ACM certificate of us-east-1 that covers every domain (InvalidViewerCertificate), a domain serves
one tenant only (CNAMEAlreadyExists), an unknown tenant is EntityNotFound (404), a tenant is
deleted only once disabled (ResourceNotDisabled). An update replaces the tenant's settings: what it
omits is gone (Domains and DistributionId must be sent), so a client must send back what it read.
Not modelled: connection groups, WAF web ACL checks, domain ownership checks, tags on update.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
import string
import uuid
import weakref
from urllib.parse import unquote

import xml.etree.ElementTree as ET
from functools import lru_cache
from xml.sax.saxutils import escape

from devstack.served import Response

CLOUDFRONT_REGION = "us-east-1"
API = "/2020-05-31"
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):(\d{12}):certificate/[\w-]+$")
_ID_CHARS = string.ascii_letters + string.digits
NOT_USABLE = ("The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, "
              "or doesn't include a valid certificate chain.")
NOT_COVERED = "The certificate doesn't cover the domain name that you're trying to add."

# id(ctx) -> the ServedContext of every proxy state that served a tenant call (one per process).
TENANT_CONTEXTS: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()


class Refused(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code)
        self.code, self.message, self.status = code, message, status


def tenants_using(certificate_arn: str) -> list[str]:
    """ARNs of the tenants whose Customizations.Certificate.Arn is this certificate (any memory)."""
    found = set()
    for ctx in list(TENANT_CONTEXTS.values()):
        with ctx.lock:
            for tenants in ctx.memory.get("cloudfront_tenants", {}).values():
                found |= {t["Arn"] for t in tenants.values() if _certificate(t) == certificate_arn}
    return sorted(found)


class DistributionTenants:
    """The served API: routes by method and path (the operation name is not needed)."""

    ROUTES = (
        ("POST", r"/distribution-tenant", "create"),
        ("GET", r"/distribution-tenant", "by_domain"),
        ("GET", r"/distribution-tenant/([^/]+)", "get"),
        ("PUT", r"/distribution-tenant/([^/]+)", "update"),
        ("DELETE", r"/distribution-tenant/([^/]+)", "delete"),
        ("POST", r"/distribution-tenants", "list"),
        ("POST", r"/distribution-tenants-by-customization", "by_customization"),
        ("GET", r"/managed-certificate/([^/]+)", "managed"),
    )

    def answer(self, req, ctx):
        if req.service != "cloudfront" or not req.path.startswith(API):
            return None
        for method, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, req.path[len(API):])
            if req.method == method and match:
                break
        else:
            return None
        TENANT_CONTEXTS[id(ctx)] = ctx
        account = ctx.account_of(req)
        try:
            with ctx.lock:
                store = ctx.memory.setdefault("cloudfront_tenants", {}).setdefault(account, {})
                managed = ctx.memory.setdefault("cloudfront_managed", {}).setdefault(account, {})
                ops = _Ops(req, ctx, account, store, managed)
                return getattr(ops, name)(*[unquote(g) for g in match.groups()])
        except Refused as refused:
            return error(refused.code, refused.message, refused.status)


class _Ops:
    """One request's work on one account's tenants."""

    def __init__(self, req, ctx, account: str, store: dict, managed: dict) -> None:
        self.req, self.ctx, self.account, self.store, self.managed_certs = req, ctx, account, store, managed

    def create(self):
        params = parse_request(self.req.body, "CreateDistributionTenantRequest")
        if not params.get("Name"):
            raise Refused("InvalidArgument", "Name is required.")
        if any(t["Name"] == params["Name"] for t in self.store.values()):
            raise Refused("EntityAlreadyExists", f"A distribution tenant named {params['Name']} already exists.", 409)
        tenant_id = "dt_" + "".join(secrets.choice(_ID_CHARS) for _ in range(27))
        now = _now()
        tenant = {"Id": tenant_id, "Name": params["Name"], "Arn": self._arn(tenant_id),
                  "Tags": params.get("Tags") or {"Items": []}, "CreatedTime": now}
        self._apply(tenant, params, tenant_id)
        self.store[tenant_id] = tenant
        return tenant_response(tenant, 201)

    def get(self, tenant_id: str):
        return tenant_response(self._tenant(tenant_id))

    def by_domain(self):
        domain = (self.req.query.get("domain") or [""])[0].lower()
        for tenant in self.store.values():
            if domain in {d["Domain"] for d in tenant["Domains"]}:
                return tenant_response(tenant)
        raise Refused("EntityNotFound", f"No distribution tenant serves the domain {domain}.", 404)

    def update(self, tenant_id: str):
        tenant = self._tenant(tenant_id)
        self._if_match(tenant)
        params = parse_request(self.req.body, "UpdateDistributionTenantRequest")
        for required in ("DistributionId", "Domains"):
            if not params.get(required):
                raise Refused("InvalidArgument", f"{required} is required: an update replaces the tenant's settings.")
        updated = dict(tenant)
        self._apply(updated, params, tenant_id)
        self.store[tenant_id] = updated
        return tenant_response(updated)

    def delete(self, tenant_id: str):
        tenant = self._tenant(tenant_id)
        self._if_match(tenant)
        if tenant.get("Enabled"):
            raise Refused("ResourceNotDisabled", "The distribution tenant must be disabled before it is deleted.", 409)
        del self.store[tenant_id]
        self.managed_certs.pop(tenant_id, None)
        return empty(204)

    def list(self):
        params = parse_request(self.req.body, "ListDistributionTenantsRequest")
        wanted = params.get("AssociationFilter") or {}
        return listing("ListDistributionTenantsResult", [
            t for t in self.store.values()
            if all(t.get(key) == value for key, value in wanted.items() if value)], params)

    def by_customization(self):
        params = parse_request(self.req.body, "ListDistributionTenantsByCustomizationRequest")
        cert, acl = params.get("CertificateArn"), params.get("WebACLArn")
        return listing("ListDistributionTenantsByCustomizationResult", [
            t for t in self.store.values()
            if (not cert or _certificate(t) == cert)
            and (not acl or ((t.get("Customizations") or {}).get("WebAcl") or {}).get("Arn") == acl)], params)

    def managed(self, tenant_id: str):
        self._tenant(tenant_id)
        if tenant_id not in self.managed_certs:
            raise Refused("EntityNotFound", f"The distribution tenant {tenant_id} has no managed certificate.", 404)
        return managed_response(self.managed_certs[tenant_id])

    # ---- rules

    def _apply(self, tenant: dict, params: dict, tenant_id: str) -> None:
        """The settings of a Create or Update (an update replaces them all), checked as AWS would."""
        self._distribution_exists(params.get("DistributionId", ""))
        domains = [d.get("Domain", "").lower().rstrip(".") for d in params.get("Domains") or []]
        if not 1 <= len(domains) <= 5 or not all(domains):
            raise Refused("InvalidArgument", "A distribution tenant has 1 to 5 domains.")
        for other in self.store.values():
            taken = set(domains) & {d["Domain"] for d in other["Domains"]}
            if other["Id"] != tenant_id and taken:
                raise Refused("CNAMEAlreadyExists", f"{sorted(taken)[0]} is already used by another tenant.", 409)
        customizations = params.get("Customizations") or {}
        arn = (customizations.get("Certificate") or {}).get("Arn")
        if arn:
            self._certificate_usable(arn, domains)
            self.managed_certs.pop(tenant_id, None)  # our certificate replaces a managed one
        elif params.get("ManagedCertificateRequest"):
            self.managed_certs[tenant_id] = _managed(self.account, params["ManagedCertificateRequest"])
        tenant.update({
            "DistributionId": params["DistributionId"],
            "Domains": [{"Domain": d, "Status": "active"} for d in domains],
            "Customizations": customizations, "Parameters": params.get("Parameters") or [],
            "ConnectionGroupId": params.get("ConnectionGroupId") or "cg_default",
            "Enabled": params.get("Enabled", True), "Status": "Deployed", "LastModifiedTime": _now(),
            "ETag": "E" + secrets.token_hex(7).upper(),
        })

    def _distribution_exists(self, distribution_id: str) -> None:
        cloudfront = self.ctx.moto("cloudfront", CLOUDFRONT_REGION, account=self.account)
        try:
            cloudfront.get_distribution(Id=distribution_id)
        except Exception:  # noqa: BLE001 - moto's NoSuchDistribution (or an empty id)
            raise Refused("EntityNotFound", f"The multi-tenant distribution {distribution_id!r} does not exist.",
                          404) from None

    def _certificate_usable(self, arn: str, domains: list[str]) -> None:
        match = _ACM_ARN.match(arn)
        if not match or match.group(1) != CLOUDFRONT_REGION or match.group(2) != self.account:
            raise Refused("InvalidViewerCertificate", f"{NOT_USABLE} ({arn})")
        try:
            cert = self.ctx.moto("acm", CLOUDFRONT_REGION, account=self.account).describe_certificate(
                CertificateArn=arn)["Certificate"]
        except Exception:  # noqa: BLE001 - unknown certificate
            raise Refused("InvalidViewerCertificate", f"{NOT_USABLE} ({arn})") from None
        names = [cert.get("DomainName", ""), *cert.get("SubjectAlternativeNames", [])]
        for domain in domains:
            if not any(_covers(name, domain) for name in names):
                raise Refused("InvalidViewerCertificate", f"{NOT_COVERED} (domain {domain}, certificate {arn})")

    def _tenant(self, tenant_id: str) -> dict:
        tenant = self.store.get(tenant_id)
        if tenant is None:
            raise Refused("EntityNotFound", f"The distribution tenant {tenant_id} does not exist.", 404)
        return tenant

    def _if_match(self, tenant: dict) -> None:
        given = self.req.headers.get("If-Match")
        if not given:
            raise Refused("InvalidIfMatchVersion", "The If-Match version is missing or not valid for the resource.")
        if given != tenant["ETag"]:
            raise Refused("PreconditionFailed", "The precondition given in one or more of the request-header fields "
                                                "evaluated to false.", 412)

    def _arn(self, tenant_id: str) -> str:
        return f"arn:aws:cloudfront::{self.account}:distribution-tenant/{tenant_id}"


def _certificate(tenant: dict) -> str | None:
    return ((tenant.get("Customizations") or {}).get("Certificate") or {}).get("Arn")


def _covers(name: str, domain: str) -> bool:
    name = name.lower().rstrip(".")
    if name == domain:
        return True
    return name.startswith("*.") and "." in domain and domain.split(".", 1)[1] == name[2:]


def _managed(account: str, request: dict) -> dict:
    """A managed certificate request as CloudFront keeps it: pending until the token is served."""
    return {"CertificateArn": f"arn:aws:acm:us-east-1:{account}:certificate/{_uuid()}",
            "CertificateStatus": "pending-validation",
            "ValidationTokenHost": request.get("ValidationTokenHost", "cloudfront"), "ValidationTokenDetails": []}


def _uuid() -> str:
    return str(uuid.uuid4())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


# ---- REST-XML, as botocore's cloudfront model describes it

NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/"


@lru_cache(maxsize=1)
def _model():
    import botocore.session
    return botocore.session.get_session().get_service_model("cloudfront")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_request(body: bytes, shape_name: str) -> dict:
    """A request document as the dict botocore would have been given (list members by any name)."""
    if not body or not body.strip():
        return {}
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise Refused("MalformedInput", f"The XML document is malformed: {exc}") from None
    return _parse(_model().shape_for(shape_name), root)


def _parse(shape, node):
    kind = shape.type_name
    if kind == "structure":
        members = {m.serialization.get("name", name): name for name, m in shape.members.items()}
        out = {}
        for child in node:
            name = members.get(_local(child.tag))
            if name is not None:
                out[name] = _parse(shape.members[name], child)
        return out
    if kind == "list":
        return [_parse(shape.member, child) for child in node]
    text = (node.text or "").strip()
    if kind == "boolean":
        return text == "true"
    if kind in ("integer", "long"):
        return int(text) if text.lstrip("-").isdigit() else None
    return text


def _build(parent, name: str, shape, value) -> None:
    """Append <name> for `value` of `shape`; list members named as the model names them
    (the member's locationName, else its shape's name, as AWS's documents show)."""
    node = ET.SubElement(parent, name)
    kind = shape.type_name
    if kind == "structure":
        for member, member_shape in shape.members.items():
            if isinstance(value, dict) and value.get(member) is not None:
                _build(node, member_shape.serialization.get("name", member), member_shape, value[member])
    elif kind == "list":
        member_name = shape.member.serialization.get("name", shape.member.name)
        for item in value:
            _build(node, member_name, shape.member, item)
    elif kind == "boolean":
        node.text = "true" if value else "false"
    elif kind == "timestamp":
        node.text = value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    else:
        node.text = str(value)


def _document(root_name: str, shape, value) -> bytes:
    holder = ET.Element("holder")
    _build(holder, root_name, shape, value)
    root = holder[0]
    root.set("xmlns", NAMESPACE)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


def _response(status: int, body: bytes, etag: str | None = None) -> Response:
    headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", secrets.token_hex(16))]
    if etag:
        headers.append(("ETag", etag))
    return Response(status, headers, body)


def tenant_response(tenant: dict, status: int = 200):
    shape = _model().shape_for("DistributionTenant")
    return _response(status, _document("DistributionTenant", shape, tenant), tenant["ETag"])


def managed_response(details: dict):
    shape = _model().shape_for("ManagedCertificateDetails")
    return _response(200, _document("ManagedCertificateDetails", shape, details))


def listing(result_name: str, tenants: list[dict], params: dict):
    """One page of summaries, in creation order; Marker is the index to start from."""
    ordered = sorted(tenants, key=lambda t: (t["CreatedTime"], t["Id"]))
    start = int(params.get("Marker") or 0) if str(params.get("Marker") or "0").isdigit() else 0
    size = params.get("MaxItems") or 100
    page = ordered[start:start + size]
    value = {"DistributionTenantList": page}
    if start + size < len(ordered):
        value["NextMarker"] = str(start + size)
    shape = _model().shape_for(result_name)
    return _response(200, _document(result_name, shape, value))


def empty(status: int):
    return _response(status, b"")


def error(code: str, message: str, status: int) -> Response:
    """CloudFront's error document (as the proxy's error_response shapes it)."""
    kind = "Sender" if status < 500 else "Receiver"
    body = (f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type>'
            f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{secrets.token_hex(16)}</RequestId></ErrorResponse>").encode()
    return _response(status, body)
