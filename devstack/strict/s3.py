"""S3 writes with SSE-KMS as AWS checks them: the KMS key must exist in the bucket's region.

moto encrypts with any key id, in any region. S3 asks KMS in the bucket's region and answers
400 `KMS.NotFoundException` when the key is not there ("Invalid arn <region>" for an ARN of
another region). Applies to PutObject, CopyObject and CreateMultipartUpload, with the key named
in `x-amz-server-side-encryption-aws-kms-key-id` or, without SSE headers, the bucket's default
encryption key.
"""

from __future__ import annotations

import re

from devstack.strict import RULE_FACTORIES, AwsError, Call

WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)/.+$")


def _bucket(call: Call) -> str:
    return call.path.lstrip("/").split("/", 1)[0]


def bucket_region(call: Call, bucket: str) -> str | None:
    """The bucket's region (remembered: a bucket never moves), None when moto has no such bucket."""
    regions = call.memory.setdefault("s3_bucket_regions", {})
    if bucket not in regions:
        try:
            location = call.moto("s3", "us-east-1").get_bucket_location(Bucket=bucket)
        except Exception:  # noqa: BLE001 - no such bucket: moto answers the write itself
            return None
        regions[bucket] = location.get("LocationConstraint") or "us-east-1"
    return regions[bucket]


def requested_key(call: Call, bucket: str) -> str | None:
    """The KMS key S3 would use for this write: the request's, else the bucket default's (None: not SSE-KMS)."""
    algorithm = call.headers.get("x-amz-server-side-encryption")
    if algorithm:
        if algorithm not in KMS_ALGORITHMS:
            return None
        return call.headers.get("x-amz-server-side-encryption-aws-kms-key-id")  # None: the aws/s3 key
    return default_key(call, bucket)


def default_key(call: Call, bucket: str) -> str | None:
    """The KMS key id of the bucket's default SSE-KMS encryption (None: SSE-S3, none, or aws/s3
    unnamed); read once per call, for every rule that asks."""
    cached = call.scratch.setdefault("s3_default_key", {})
    if bucket not in cached:
        cached[bucket] = _read_default_key(call, bucket)
    return cached[bucket]


def _read_default_key(call: Call, bucket: str) -> str | None:
    try:
        rules = call.moto("s3", "us-east-1").get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"]["Rules"]
    except Exception:  # noqa: BLE001 - no such bucket or no default encryption configured
        return None
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") in KMS_ALGORITHMS:
            return default.get("KMSMasterKeyID")
    return None


def check_key_in_region(call: Call, key_id: str, region: str) -> None:
    arn = _KMS_ARN.match(key_id)
    if arn and arn.group(1) != region:
        raise AwsError("KMS.NotFoundException", f"Invalid arn {region} (key {key_id} is in {arn.group(1)}, "
                       f"the bucket in {region})", 400)
    try:
        call.moto("kms", region).describe_key(KeyId=key_id)
    except Exception as exc:  # noqa: BLE001 - NotFoundException (or a malformed id)
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NotFoundException", "NotFound", "ValidationException", "InvalidArnException"):
            raise AwsError("KMS.NotFoundException", f"Key '{key_id}' does not exist in {region}", 400) from None
        raise


class KmsKeyRegionRule:
    """SSE-KMS writes: the key exists in KMS in the bucket's region."""

    def before(self, call: Call) -> None:
        if call.service != "s3" or call.operation not in WRITES:
            return
        bucket = _bucket(call)
        region = bucket_region(call, bucket) if bucket else None
        if region is None:
            return
        key_id = requested_key(call, bucket)
        if key_id:
            check_key_in_region(call, key_id, region)

    def after(self, call: Call, resp):
        if call.service == "s3" and call.operation == "DeleteBucket" and resp.status in (200, 204):
            call.memory.get("s3_bucket_regions", {}).pop(_bucket(call), None)
        return resp


RULE_FACTORIES.append(KmsKeyRegionRule)
