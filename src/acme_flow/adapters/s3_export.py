"""PEM export to an S3 prefix for servers outside AWS (nginx, HAProxy, ...).

`privkey.pem` is encrypted with the export key (CERTRENEW_EXPORT_KMS_KEY) when one is set, else
with the export bucket's own default encryption: never with the key of the state bucket, whose
readers would then need Decrypt on the key that protects the ACME account key, and which S3
cannot use for a bucket in another region.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from botocore.exceptions import ClientError

from ..errors import DeployError
from ..models import CertificateMaterial

log = logging.getLogger("certrenew.export")

# GetBucketLocation's LocationConstraint for the regions that predate region names.
LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}


class S3Exporter:
    """`role_for(role_arn)`: an S3 client of another account (a deploy role); each call with
    `role_arn` works there, with the same export key setting."""

    def __init__(self, s3, kms_key: str | None = None, region: str = "us-east-1",
                 role_for: Callable[[str], Any] | None = None) -> None:
        self._s3 = s3
        self._kms_key = kms_key
        self._region = region  # the function's: where a key given as id or alias lives
        self._bucket_regions: dict[str, str] = {}
        self._role_for = role_for

    def _as(self, role_arn: str) -> S3Exporter:
        if self._role_for is None:
            raise DeployError(f"deploy role {role_arn}", "this build cannot reach other accounts")
        return S3Exporter(self._role_for(role_arn), self._kms_key, self._region)

    def check(self, bucket: str, *, role_arn: str | None = None) -> None:
        """Raise DeployError when the export bucket cannot be found, when the export key is in
        another region than the bucket (S3 uses only a KMS key of the bucket's region), or when
        no export key is set and the bucket's default encryption is a customer managed key
        (the function may use only the key the stack names: the write would be refused)."""
        if role_arn:
            return self._as(role_arn).check(bucket)
        region = self._bucket_region(bucket)
        if not self._kms_key:
            self._check_default_key(bucket)
            return
        key_region = kms_key_region(self._kms_key, self._region)
        if key_region != region:
            raise DeployError(f"s3://{bucket}", (
                f"the export KMS key {self._kms_key} (CERTRENEW_EXPORT_KMS_KEY, template parameter "
                f"ExportKmsKeyArn) is in {key_region} but the bucket is in {region}: S3 can only use a "
                f"KMS key of the bucket's region; give the ARN of a key in {region}, or leave it empty "
                "to use the bucket's default encryption"))

    def _check_default_key(self, bucket: str) -> None:
        key = self._default_customer_key(bucket)
        if key:
            raise DeployError(f"s3://{bucket}", (
                f"the bucket's default encryption is the KMS key {key}, and the function may use only "
                "the export key the stack names: deploy with ExportKmsKeyArn set to that key's ARN "
                "(CERTRENEW_EXPORT_KMS_KEY), or make the bucket's default SSE-S3 or the AWS managed "
                "key aws/s3"))

    def _default_customer_key(self, bucket: str) -> str | None:
        """The customer managed KMS key of the bucket's default encryption, if it has one."""
        try:
            got = self._s3.get_bucket_encryption(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code != "ServerSideEncryptionConfigurationNotFoundError":
                log.warning("could not read the default encryption of s3://%s (%s); going on", bucket, code or exc)
            return None
        for rule in got["ServerSideEncryptionConfiguration"].get("Rules", []):
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            key = default.get("KMSMasterKeyID")
            if default.get("SSEAlgorithm", "").startswith("aws:kms") and key and not key.endswith("alias/aws/s3"):
                return key
        return None

    def _bucket_region(self, bucket: str) -> str:
        if bucket not in self._bucket_regions:
            try:
                got = self._s3.get_bucket_location(Bucket=bucket)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "NoSuchBucket":
                    raise DeployError(f"s3://{bucket}", "no such export bucket") from None
                raise DeployError(f"s3://{bucket}", f"cannot read the export bucket's region "
                                                    f"(s3:GetBucketLocation): {code or exc}") from None
            constraint = got.get("LocationConstraint")
            self._bucket_regions[bucket] = LEGACY_LOCATIONS.get(constraint, constraint)
        return self._bucket_regions[bucket]

    def export(self, bucket: str, prefix: str, material: CertificateMaterial, *,
               role_arn: str | None = None) -> str:
        """Writes cert.pem, chain.pem, fullchain.pem, then privkey.pem (SSE-KMS with the export
        key, or the bucket's default encryption)."""
        if role_arn:
            return self._as(role_arn).export(bucket, prefix, material)
        files = {"cert.pem": material.cert_pem, "chain.pem": material.chain_pem,
                 "fullchain.pem": material.fullchain_pem}
        location = f"s3://{bucket}/{prefix}"
        try:
            for name, text in files.items():
                self._s3.put_object(Bucket=bucket, Key=prefix + name, Body=text.encode(),
                                    ContentType="application/x-pem-file")
            secret = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key} if self._kms_key else {}
            self._s3.put_object(Bucket=bucket, Key=prefix + "privkey.pem", Body=material.key_pem.encode(),
                                ContentType="application/x-pem-file", **secret)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise DeployError(location, f"{err.get('Code')}: {err.get('Message')}") from None
        log.info("exported PEM files to %s", location)
        return location


def kms_key_region(key: str, default_region: str) -> str:
    """The region of a KMS key: from its ARN (key or alias), else (an id or alias name) the
    region of the caller."""
    parts = key.split(":")
    if key.startswith("arn:") and len(parts) > 3 and parts[3]:
        return parts[3]
    return default_region
