"""ACM import in any region; re-import into the same ARN keeps every attachment.

moto accepts imports AWS rejects, so the rules are enforced here: the key matches the
certificate (checked by pki before any deploy), the chain holds intermediates only, the key
is at most 5 KB, and a re-import never changes the key algorithm.
"""
from __future__ import annotations

import functools
import logging
import random
import time
from typing import Any, Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .. import pki
from ..errors import DeployError
from ..models import CertificateMaterial, KeyType

log = logging.getLogger("certrenew.acm")

MAX_KEY_BYTES = 5 * 1024
ACM_KEY_ALGORITHMS = {
    KeyType.EC_P256: "EC_prime256v1",
    KeyType.EC_P384: "EC_secp384r1",
    KeyType.RSA_2048: "RSA_2048",
    KeyType.RSA_3072: "RSA_3072",
    KeyType.RSA_4096: "RSA_4096",
}
RETRYABLE_CODES = {"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException",
                   "InternalFailure", "ServiceUnavailable"}
FIRST_IMPORT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0)
MANAGED_TAG = "certrenew:managed"
NAME_TAG = "certrenew:name"


class AcmImporter:
    """`client_for(region)` returns an ACM client for that region; `single_try_for(region)` one
    that never retries on its own (a first import is not idempotent: see `_first_import`)."""

    def __init__(self, client_for: Callable[[str], Any], single_try_for: Callable[[str], Any] | None = None) -> None:
        self._client_for = client_for
        self._single_try_for = single_try_for or client_for

    def import_certificate(self, region: str, material: CertificateMaterial, name: str,
                           existing_arn: str | None) -> str:
        target = f"acm:{region}"
        _check_importable(material, target)
        acm = self._client_for(region)
        args = {"Certificate": material.cert_pem.encode(), "PrivateKey": material.key_pem.encode(),
                "CertificateChain": material.chain_pem.encode()}
        existing_arn = existing_arn or self._find_ours(acm, name, material)
        if existing_arn and self._reimportable(acm, existing_arn, material, target):
            _call(target, lambda: acm.import_certificate(CertificateArn=existing_arn, **args))
            log.info("re-imported %s into %s", name, existing_arn)
            return existing_arn
        arn = self._first_import(region, name, material, args)
        log.info("imported %s into %s", name, arn)
        return arn

    def _first_import(self, region: str, name: str, material: CertificateMaterial, args: dict) -> str:
        """Import under a new ARN. ACM has no idempotency token: a retry after a lost response
        would create a second certificate. So each try is a single request, and before trying
        again we look for the one the lost response may have created (by its tags)."""
        tags = [{"Key": MANAGED_TAG, "Value": "true"}, {"Key": NAME_TAG, "Value": name}]
        acm_once = self._single_try_for(region)
        for delay in (*FIRST_IMPORT_RETRY_DELAYS, None):
            try:
                return acm_once.import_certificate(Tags=tags, **args)["CertificateArn"]
            except (ClientError, BotoCoreError) as exc:
                if delay is None or not _retryable(exc):
                    raise _deploy_error(f"acm:{region}", exc) from None
                log.warning("importing %s into ACM %s failed (%s); checking before retrying", name, region, exc)
            time.sleep(delay * random.uniform(0.5, 1.5))
            found = self._find_ours(self._client_for(region), name, material)
            if found and self._holds(region, found, material):
                return found
        raise AssertionError("unreachable")

    def _holds(self, region: str, arn: str, material: CertificateMaterial) -> bool:
        """Whether the certificate at `arn` is this very one (same serial)."""
        try:
            serial = self._client_for(region).describe_certificate(CertificateArn=arn)["Certificate"].get("Serial")
        except ClientError:
            return False
        return _serial_number(serial) == int(pki.describe(material.cert_pem).serial, 16)

    def _find_ours(self, acm, name: str, material: CertificateMaterial) -> str | None:
        """A certificate we imported for `name` whose ARN was never recorded (the run died right
        after the import): found by its tags, so the import goes into it instead of a new ARN."""
        wanted = pki.describe(material.cert_pem)
        key_types = list(ACM_KEY_ALGORITHMS.values())
        try:
            for page in acm.get_paginator("list_certificates").paginate(Includes={"keyTypes": key_types}):
                for summary in page.get("CertificateSummaryList", []):
                    if summary.get("DomainName") not in wanted.names:
                        continue
                    arn = summary["CertificateArn"]
                    tags = {t["Key"]: t["Value"]
                            for t in acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])}
                    if tags.get(MANAGED_TAG) == "true" and tags.get(NAME_TAG) == name:
                        log.info("found %s's earlier import %s: re-importing into it", name, arn)
                        return arn
        except ClientError as exc:
            log.warning("could not look for an earlier import of %s: %s", name, exc)
        return None

    def check_region(self, region: str) -> None:
        if region not in _acm_regions():
            raise DeployError(f"acm:{region}", f"{region!r} is not an AWS region where ACM exists")

    def delete_if_unused(self, region: str, arn: str, other_users: list[str]) -> str:
        """Delete a certificate certrenew imported once nothing uses it (ACM's InUseBy, which moto
        never fills, plus the CloudFront distributions the caller found)."""
        acm = self._client_for(region)
        try:
            described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return f"{arn} already gone"
            raise DeployError(f"acm:{region}", f"cannot describe {arn}: {exc}") from None
        users = list(described.get("InUseBy") or []) + list(other_users)
        if users:
            return f"kept {arn}: still used by {', '.join(users)}"
        tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])}
        if tags.get(MANAGED_TAG) != "true":
            return f"kept {arn}: not imported by certrenew"
        _call(f"acm:{region}", lambda: acm.delete_certificate(CertificateArn=arn))
        log.info("deleted superseded certificate %s", arn)
        return f"deleted {arn}"

    def _reimportable(self, acm, arn: str, material: CertificateMaterial, target: str) -> bool:
        """True when `arn` exists and holds the same key algorithm (ACM cannot change it on
        re-import, though moto lets it: a key type change gets a new ARN instead)."""
        try:
            described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                log.warning("%s no longer exists: importing a new certificate", arn)
                return False
            raise DeployError(target, f"cannot describe {arn}: {exc}") from None
        new_algorithm = ACM_KEY_ALGORITHMS.get(pki.describe(material.cert_pem).key_type)
        if described.get("KeyAlgorithm") != new_algorithm:
            log.info("%s holds %s, the new key is %s: importing under a new ARN",
                     arn, described.get("KeyAlgorithm"), new_algorithm)
            return False
        return True


@functools.lru_cache(maxsize=1)
def _acm_regions() -> frozenset[str]:
    """Every region of every partition botocore knows for ACM (read from its bundled data)."""
    session = boto3.session.Session()
    return frozenset(r for partition in session.get_available_partitions()
                     for r in session.get_available_regions("acm", partition_name=partition))


def _check_importable(material: CertificateMaterial, target: str) -> None:
    if len(material.key_pem.encode()) > MAX_KEY_BYTES:
        raise DeployError(target, "private key is larger than ACM's 5 KB limit")
    chain = pki.split_pem_chain(material.chain_pem)
    if not chain:
        raise DeployError(target, "no intermediate certificate to import with the leaf")
    if len(pki.strip_roots(chain)) != len(chain):
        raise DeployError(target, "the chain holds a root certificate; ACM takes intermediates only")


def _call(target: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ClientError as exc:
        raise _deploy_error(target, exc) from None


def _deploy_error(target: str, exc: Exception) -> DeployError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return DeployError(target, f"{err.get('Code', 'error')}: {err.get('Message', exc)}")
    return DeployError(target, str(exc))


def _serial_number(text: str | None) -> int | None:
    """ACM's Serial: colon-separated hex ("0a:1b:..."); moto gives it in decimal."""
    if not text:
        return None
    try:
        return int(text.replace(":", ""), 16) if ":" in text else int(text)
    except ValueError:
        return None


def _retryable(exc: Exception) -> bool:
    if not isinstance(exc, ClientError):
        return True  # connection trouble: the request may or may not have arrived
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status >= 500 or err.get("Code") in RETRYABLE_CODES
