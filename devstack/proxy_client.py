"""Helpers for tests: read and steer the devstack AWS proxy through its /_devstack/ endpoints."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never a proxy


def _request(endpoint: str, path: str, payload: dict | None = None, method: str | None = None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(endpoint.rstrip("/") + "/_devstack/" + path, data=data,
                                     method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=10) as response:
        return json.loads(response.read())


def calls(endpoint: str, service: str | None = None, operation: str | None = None) -> list[dict]:
    """Recorded calls, oldest first: service, region, operation, method, path, status, time, duration_ms
    (+ zone_id, changes, change_id for ChangeResourceRecordSets; fault when a fault rule answered;
    moto_ms, the part of duration_ms spent waiting for moto, when the call was forwarded; sse, the
    x-amz-server-side-encryption of an S3 answer that has one, e.g. "aws:kms")."""
    query = urllib.parse.urlencode({k: v for k, v in (("service", service), ("operation", operation)) if v})
    return _request(endpoint, "calls" + (f"?{query}" if query else ""))


def reset_calls(endpoint: str) -> None:
    _request(endpoint, "calls/reset", method="POST")


def reset(endpoint: str) -> dict:
    """Forget recorded calls, faults and pending changes; route53_delay back to the start-up value."""
    return _request(endpoint, "reset", method="POST")


def get_config(endpoint: str) -> dict:
    return _request(endpoint, "config")


def configure(endpoint: str, *, route53_delay: float | None = None, faults: list[dict] | None = None,
              strict: bool | None = None, inuse_lag: float | None = None,
              deployment: dict | None = None) -> dict:
    """Change the delay and/or replace the fault rules; returns the new config.

    A fault rule: {"service": "s3" | ["s3", "acm"] | "*", "operation": ..., "status": 503,
    "code": "ServiceUnavailable", "message": ..., "count": None (no cap) | N,
    "every": N (every Nth matching call) | "probability": 0.3 with "seed": 7,
    "delay": seconds, "error": False (delay, then forward), "after": True (forward, then answer
    the error: a response lost after AWS acted)}. The config read back shows, per rule,
    `matched` (matching calls seen) and `hits` (calls it answered or delayed).

    Partial failure of a batch (EventBridge PutEvents): "entries": True answers a hit call 200
    and fails some of its entries inside the answer, as PutEvents does: each failed entry has
    `ErrorCode` = the rule's "code" ("ThrottlingException" or "InternalFailure"), `ErrorMessage`
    = its "message", no `EventId`, and `FailedEntryCount` counts them; only the other entries
    reach moto. "every": N fails every Nth entry the rule sees (across calls), "probability": p
    with "seed" fails each entry with that seeded chance, neither fails every entry; "count"
    caps the CALLS hit. E.g. {"service": "events", "operation": "PutEvents", "entries": True,
    "every": 2, "code": "ThrottlingException", "message": "Rate exceeded"}. The config read back
    also shows `entries_seen` and `entries_failed`.

    S3's conflict on a conditional write is a plain rule: {"service": "s3", "operation":
    "PutObject", "status": 409, "code": "ConditionalRequestConflict", "message": ...}.

    `strict=False` answers as moto does until the next reset (devstack/strict).
    `inuse_lag`: seconds ACM keeps reporting a certificate `InUseBy` a CloudFront distribution
    after an UpdateDistribution moved it off (default 5; back to it on reset).

    `deployment` replaces the template parameters (and the values of the stack's own resources)
    strict mode judges the product's calls by (devstack/strict/iam.py), until the next reset:
    {"StateBucket": "b", "ExportBucket": "e", "HostedZoneIds": ["Z1", "Z2"] | "auto",
    "DistributionIds": [...] | "auto", "ConfigLocation": "s3://b/k", "NotificationTopicArn": ...,
    "NotificationTopic": arn | "auto", "WorkQueue.Arn": arn | "auto", "StateKey.Arn": arn | "auto",
    "EventBusName": "default", "SecretsPathPrefix": "certrenew", ...}; what is not given takes
    the template's default ("auto" where the list above says so)."""
    payload: dict = {}
    if deployment is not None:
        payload["deployment"] = deployment
    if strict is not None:
        payload["strict"] = strict
    if inuse_lag is not None:
        payload["inuse_lag"] = inuse_lag
    if route53_delay is not None:
        payload["route53_delay"] = route53_delay
    if faults is not None:
        payload["faults"] = faults
    return _request(endpoint, "config", payload)


def change_batches(endpoint: str, zone_id: str | None = None) -> list[dict]:
    """Successful ChangeResourceRecordSets calls (optionally of one zone; "/hostedzone/" prefix allowed)."""
    wanted = zone_id.rsplit("/", 1)[-1] if zone_id else None
    return [c for c in calls(endpoint, "route53", "ChangeResourceRecordSets")
            if c["status"] == 200 and "fault" not in c and (wanted is None or c.get("zone_id") == wanted)]


def faulted(endpoint: str) -> list[dict]:
    """Recorded calls a fault rule answered with an error."""
    return [c for c in calls(endpoint) if "fault" in c]


def update_deployment(endpoint: str, values: dict) -> dict:
    """Add to (or change in) the deployment strict IAM judges by; returns the whole deployment."""
    current = get_config(endpoint).get("deployment", {})
    return configure(endpoint, deployment={**current, **values})["deployment"]
