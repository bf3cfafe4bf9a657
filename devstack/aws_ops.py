"""Name the AWS call behind an HTTP request: service, region, operation (best effort for REST APIs)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_QUERY_CREDENTIAL = re.compile(r"^[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request$")

# (method, path regex) -> operation, matched in order against the path after the API version.
_ROUTE53 = [
    ("POST", r"/hostedzone/[^/]+/rrset/?", "ChangeResourceRecordSets"),
    ("GET", r"/hostedzone/[^/]+/rrset/?", "ListResourceRecordSets"),
    ("GET", r"/change/[^/]+", "GetChange"),
    ("POST", r"/hostedzone", "CreateHostedZone"),
    ("GET", r"/hostedzone", "ListHostedZones"),
    ("GET", r"/hostedzone/[^/]+", "GetHostedZone"),
    ("POST", r"/hostedzone/[^/]+", "UpdateHostedZoneComment"),
    ("DELETE", r"/hostedzone/[^/]+", "DeleteHostedZone"),
    ("GET", r"/hostedzonesbyname", "ListHostedZonesByName"),
    ("GET", r"/hostedzonecount", "GetHostedZoneCount"),
    ("GET", r"/tags/hostedzone/[^/]+", "ListTagsForResource"),
    ("POST", r"/tags/hostedzone/[^/]+", "ChangeTagsForResource"),
]
_CLOUDFRONT = [
    ("POST", r"/distribution", "CreateDistribution"),
    ("GET", r"/distribution", "ListDistributions"),
    ("GET", r"/distribution/[^/]+", "GetDistribution"),
    ("DELETE", r"/distribution/[^/]+", "DeleteDistribution"),
    ("GET", r"/distribution/[^/]+/config", "GetDistributionConfig"),
    ("PUT", r"/distribution/[^/]+/config", "UpdateDistribution"),
    ("POST", r"/distribution/[^/]+/invalidation", "CreateInvalidation"),
    ("GET", r"/distribution/[^/]+/invalidation", "ListInvalidations"),
    ("GET", r"/distribution/[^/]+/invalidation/[^/]+", "GetInvalidation"),
    ("GET", r"/distributionsByCertificateArn/.+", "ListDistributionsByCertificateArn"),
    ("POST", r"/distribution-tenant", "CreateDistributionTenant"),
    ("GET", r"/distribution-tenant", "GetDistributionTenantByDomain"),
    ("GET", r"/distribution-tenant/[^/]+", "GetDistributionTenant"),
    ("PUT", r"/distribution-tenant/[^/]+", "UpdateDistributionTenant"),
    ("DELETE", r"/distribution-tenant/[^/]+", "DeleteDistributionTenant"),
    ("POST", r"/distribution-tenants", "ListDistributionTenants"),
    ("POST", r"/distribution-tenants-by-customization", "ListDistributionTenantsByCustomization"),
    ("GET", r"/managed-certificate/[^/]+", "GetManagedCertificateDetails"),
    ("POST", r"/tagging", "TagResource"),
    ("GET", r"/tagging", "ListTagsForResource"),
]
_SCHEDULER = [
    ("GET", r"/schedules", "ListSchedules"),
    ("GET", r"/schedules/[^/]+", "GetSchedule"),
    ("POST", r"/schedules/[^/]+", "CreateSchedule"),
    ("PUT", r"/schedules/[^/]+", "UpdateSchedule"),
    ("DELETE", r"/schedules/[^/]+", "DeleteSchedule"),
    ("GET", r"/schedule-groups", "ListScheduleGroups"),
    ("GET", r"/schedule-groups/[^/]+", "GetScheduleGroup"),
    ("POST", r"/schedule-groups/[^/]+", "CreateScheduleGroup"),
    ("DELETE", r"/schedule-groups/[^/]+", "DeleteScheduleGroup"),
]
# API Gateway v1 (REST); v2 paths (/v2/...) match none of these and keep "METHOD /path"
_APIGATEWAY = [
    ("PATCH", r"/domainnames/[^/]+", "UpdateDomainName"),
    ("GET", r"/domainnames/[^/]+", "GetDomainName"),
    ("DELETE", r"/domainnames/[^/]+", "DeleteDomainName"),
    ("GET", r"/domainnames", "GetDomainNames"),
    ("POST", r"/domainnames", "CreateDomainName"),
]
APIGATEWAY_OPERATIONS = _APIGATEWAY  # the served API matches its requests by the same table
_REST_TABLES = {"route53": _ROUTE53, "cloudfront": _CLOUDFRONT, "scheduler": _SCHEDULER, "apigateway": _APIGATEWAY}
_S3_BUCKET_SUBRESOURCES = {
    "versioning": "BucketVersioning",
    "encryption": "BucketEncryption",
    "policy": "BucketPolicy",
    "tagging": "BucketTagging",
    "lifecycle": "BucketLifecycleConfiguration",
    "acl": "BucketAcl",
    "cors": "BucketCors",
    "notification": "BucketNotificationConfiguration",
    "publicAccessBlock": "PublicAccessBlock",
    "ownershipControls": "BucketOwnershipControls",
    "object-lock": "ObjectLockConfiguration",
    "location": "BucketLocation",
    "logging": "BucketLogging",
    "website": "BucketWebsite",
}
_S3_OBJECT_SUBRESOURCES = {"tagging": "ObjectTagging", "acl": "ObjectAcl", "retention": "ObjectRetention",
                           "legal-hold": "ObjectLegalHold", "attributes": "ObjectAttributes"}
_VERB = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}


def access_key_id(headers) -> str | None:
    """The access key id a SigV4 request is signed with (Credential=<key>/<scope>)."""
    match = _ACCESS_KEY.search(headers.get("Authorization", "") or "")
    return match.group(1) if match else None


def service_and_region(headers, query: dict[str, list[str]]) -> tuple[str, str]:
    """From the SigV4 credential scope (Authorization header or presigned query)."""
    match = _CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
    if match:
        return match.group(2), match.group(1)
    scoped = _QUERY_CREDENTIAL.match(query.get("X-Amz-Credential", [""])[0])
    if scoped:
        return scoped.group(2), scoped.group(1)
    if "AWSAccessKeyId" in query or headers.get("Authorization", "").startswith("AWS "):
        return "s3", ""  # SigV2 (S3 presigned URLs): no scope, only S3 still accepts it
    return "unknown", ""


def protocol(service: str, query: dict[str, list[str]], headers, body: bytes) -> str:
    """json | query | rest-xml | rest-json (how the service frames requests and errors)."""
    if headers.get("X-Amz-Target"):
        return "json"
    if query.get("Action") or _form_action(headers, body):
        return "query"
    return "rest-xml" if service in ("route53", "cloudfront", "s3") else "rest-json"


def operation_name(service: str, method: str, path: str, query: dict[str, list[str]], headers, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    action = query.get("Action") or _form_action(headers, body)
    if action:
        return action[0]
    if service in _REST_TABLES:
        return _from_table(_REST_TABLES[service], method, _strip_version(path), method, path)
    if service == "s3":
        return s3_operation(method, path, query, headers)
    return f"{method} {path}"


def _form_action(headers, body: bytes) -> list[str] | None:
    if "x-www-form-urlencoded" not in headers.get("Content-Type", "") or not body:
        return None
    return parse_qs(body.decode("utf-8", "replace")).get("Action")


def _strip_version(path: str) -> str:
    return re.sub(r"^/\d{4}-\d{2}-\d{2}", "", path)


def _from_table(table, method: str, path: str, orig_method: str, orig_path: str) -> str:
    """The operation for method+path from a (method, path regex, name) table, else "METHOD /path"."""
    for want_method, pattern, name in table:
        if method == want_method and re.fullmatch(pattern, path):
            return name
    return f"{orig_method} {orig_path}"


def s3_operation(method: str, path: str, query: dict[str, list[str]], headers) -> str:
    """Best-effort S3 operation for a path-style request."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method} /"
    return _s3_object_operation(method, query, headers) if key else _s3_bucket_operation(method, query)


def _s3_bucket_operation(method: str, query) -> str:
    for sub, name in _S3_BUCKET_SUBRESOURCES.items():
        if sub in query and method in _VERB:
            return _VERB[method] + name
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    if method == "GET":
        if "versions" in query:
            return "ListObjectVersions"
        if "uploads" in query:
            return "ListMultipartUploads"
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, f"{method} bucket")


def _s3_object_operation(method: str, query, headers) -> str:
    for sub, name in _S3_OBJECT_SUBRESOURCES.items():
        if sub in query and method in _VERB:
            return _VERB[method] + name
    if "uploadId" in query:
        if method == "PUT":
            return "UploadPartCopy" if headers.get("x-amz-copy-source") else "UploadPart"
        return {"POST": "CompleteMultipartUpload", "GET": "ListParts", "DELETE": "AbortMultipartUpload"}.get(
            method, f"{method} object"
        )
    if method == "POST" and "uploads" in query:
        return "CreateMultipartUpload"
    if method == "PUT":
        return "CopyObject" if headers.get("x-amz-copy-source") else "PutObject"
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, f"{method} object")


def route53_zone_id(path: str) -> str | None:
    match = re.search(r"/hostedzone/([^/]+)", path)
    return match.group(1) if match else None


def route53_change_id(path: str) -> str | None:
    match = re.search(r"/change/([^/]+)$", path)
    return match.group(1) if match else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return child.text
    return None


def parse_change_batch(body: bytes) -> list[dict]:
    """The changes of a ChangeResourceRecordSets XML body: action, name, type, ttl, values."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return []
    changes = []
    for change in root.iter():
        if _local(change.tag) != "Change":
            continue
        rrset = next((c for c in change if _local(c.tag) == "ResourceRecordSet"), None)
        if rrset is None:
            continue
        ttl = _child_text(rrset, "TTL")
        values = [v.text or "" for v in rrset.iter() if _local(v.tag) == "Value"]
        changes.append({
            "action": _child_text(change, "Action"),
            "name": _child_text(rrset, "Name"),
            "type": _child_text(rrset, "Type"),
            "ttl": int(ttl) if ttl and ttl.isdigit() else None,
            "values": values,
        })
    return changes
