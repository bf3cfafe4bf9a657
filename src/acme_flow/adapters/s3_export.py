"""PEM export to an S3 prefix for servers outside AWS (nginx, HAProxy, ...)."""
from __future__ import annotations

import logging

from botocore.exceptions import ClientError

from ..errors import DeployError
from ..models import CertificateMaterial

log = logging.getLogger("certrenew.export")


class S3Exporter:
    def __init__(self, s3, kms_key: str | None = None) -> None:
        self._s3 = s3
        self._kms_key = kms_key

    def export(self, bucket: str, prefix: str, material: CertificateMaterial) -> str:
        """Writes cert.pem, chain.pem, fullchain.pem, then privkey.pem (SSE-KMS)."""
        files = {"cert.pem": material.cert_pem, "chain.pem": material.chain_pem,
                 "fullchain.pem": material.fullchain_pem}
        location = f"s3://{bucket}/{prefix}"
        try:
            for name, text in files.items():
                self._s3.put_object(Bucket=bucket, Key=prefix + name, Body=text.encode(),
                                    ContentType="application/x-pem-file")
            secret = {"ServerSideEncryption": "aws:kms"}
            if self._kms_key:
                secret["SSEKMSKeyId"] = self._kms_key
            self._s3.put_object(Bucket=bucket, Key=prefix + "privkey.pem", Body=material.key_pem.encode(),
                                ContentType="application/x-pem-file", **secret)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise DeployError(location, f"{err.get('Code')}: {err.get('Message')}") from None
        log.info("exported PEM files to %s", location)
        return location
