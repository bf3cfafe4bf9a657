"""ACM import in any region; re-import into the same ARN keeps every attachment.

moto accepts imports AWS rejects, so the rules are enforced here: the key matches the
certificate (checked by pki before any deploy), the chain holds intermediates only, the key
is at most 5 KB, and a re-import never changes the key algorithm nor drops a Key Usage or
Extended Key Usage value the stored certificate has (pki.reimport_refusal): such a change
goes to a new ARN, and the caller retires the old one once nothing uses it.
"""
from __future__ import annotations

import functools
import logging
import re
import threading
from typing import Any, Callable, Iterator

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .. import pki
from ..deadline import Deadline, Jitter, SystemClock, spread
from ..errors import DeadlineExceeded, DeployError, VerificationError
from ..models import CLOUDFRONT, CertificateMaterial, KeyType, Target

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
FIRST_IMPORT_ATTEMPTS = 5  # the import and four more tries, after 1, 2, 4 and 8 s (jittered)
FIRST_IMPORT_BASE = 1.0
FIRST_IMPORT_BUDGET = 180.0  # seconds for all tries: five of up to 30 s read time, and waits of 22.5 s at most
# What AWS answers for a region the account has not enabled (an opt-in region): the credentials
# are unknown there. JSON services (ACM) say UnrecognizedClientException, query ones InvalidClientTokenId.
REGION_NOT_ENABLED_CODES = {"UnrecognizedClientException", "InvalidClientTokenId"}
# ACM's ValidationException when a re-import would change what the stored certificate is, e.g.
# "New certificate is missing one or more Extended Key Usages supported by the currently imported certificate"
REIMPORT_REFUSED = re.compile(r"key usage|algorithm|key type|key size", re.IGNORECASE)
CLOUDFRONT_ARN = re.compile(r"^arn:aws[a-z-]*:cloudfront::\d{12}:distribution/([A-Z0-9]+)$")
MANAGED_TAG = "certrenew:managed"
NAME_TAG = "certrenew:name"


class AcmImporter:
    """`client_for(region)` returns an ACM client for that region; `single_try_for(region)` one
    that never retries on its own (a first import is not idempotent: see `_first_import`).
    `clock` and `jitter` time the retries of a first import. `role_for(region, role_arn,
    single_try)` returns the client of another account, reached through a deploy role: each
    call with `role_arn` works in that account (its own importer, made once per role)."""

    def __init__(self, client_for: Callable[[str], Any], single_try_for: Callable[[str], Any] | None = None,
                 *, clock: Any = None, jitter: Jitter | None = None,
                 role_for: Callable[[str, str, bool], Any] | None = None) -> None:
        self._client_for = client_for
        self._clock = clock or SystemClock()
        self._jitter = jitter or spread(0.5, 1.5)
        self._single_try_for = single_try_for or client_for
        self._regions_checked: dict[str, str | None] = {}  # region -> why it cannot be used (None: fine)
        self._role_for = role_for
        self._in_roles: dict[str, AcmImporter] = {}
        self._lock = threading.Lock()

    def _as(self, role_arn: str | None) -> AcmImporter:
        """This importer, or the one working in the account of `role_arn`."""
        if not role_arn:
            return self
        if self._role_for is None:
            raise DeployError(f"deploy role {role_arn}", "this build cannot reach other accounts")
        role_for = self._role_for
        with self._lock:
            if role_arn not in self._in_roles:
                self._in_roles[role_arn] = AcmImporter(lambda region: role_for(region, role_arn, False),
                                                       lambda region: role_for(region, role_arn, True),
                                                       clock=self._clock, jitter=self._jitter)
            return self._in_roles[role_arn]

    def import_certificate(self, region: str, material: CertificateMaterial, name: str,
                           existing_arn: str | None, *, maybe_orphaned: bool, role_arn: str | None = None) -> str:
        """Re-import into `existing_arn`, or import under a new ARN. Only when `maybe_orphaned`
        (the state recorded an import here that no recorded ARN holds: a run died mid-import) is
        the account searched, before a new ARN, for the certificate that run left; otherwise a
        first import lists nothing."""
        if role_arn:
            return self._as(role_arn).import_certificate(region, material, name, existing_arn,
                                                         maybe_orphaned=maybe_orphaned)
        target = str(Target.acm(region))
        _check_importable(material, target)
        acm = self._client_for(region)
        args = {"Certificate": material.cert_pem.encode(), "PrivateKey": material.key_pem.encode(),
                "CertificateChain": material.chain_pem.encode()}
        if existing_arn and self._reimportable(acm, existing_arn, material, target) \
                and self._reimport(acm, existing_arn, args, target):
            log.info("re-imported %s into %s", name, existing_arn)
            return existing_arn
        left = self._left_by_a_dead_run(acm, name, material, args, target, existing_arn) if maybe_orphaned else None
        if left:
            return left
        arn = self._first_import(region, name, material, args)
        log.info("imported %s into %s", name, arn)
        return arn

    def _left_by_a_dead_run(self, acm, name: str, material: CertificateMaterial, args: dict, target: str,
                            recorded: str | None) -> str | None:
        """The certificate a run imported under a new ARN and died before recording: one of ours
        (by its tags), not the recorded one, that can take this certificate; re-imported into."""
        log.info("%s: an earlier run began an import into %s and did not record it: looking for it", name, target)
        for arn in self._ours(acm, name, material):
            if arn != recorded and self._reimportable(acm, arn, material, target) \
                    and self._reimport(acm, arn, args, target):
                log.info("re-imported %s into %s, the import a run left unrecorded", name, arn)
                return arn
        return None

    @staticmethod
    def _reimport(acm, arn: str, args: dict, target: str) -> bool:
        """Re-import into `arn`; False when ACM refuses it for what the new certificate changes
        (key usages, key algorithm): the caller then imports under a new ARN instead of failing
        on every run."""
        try:
            acm.import_certificate(CertificateArn=arn, **args)
            return True
        except ClientError as exc:
            err = exc.response.get("Error", {})
            if err.get("Code") == "ValidationException" and REIMPORT_REFUSED.search(err.get("Message", "")):
                log.warning("ACM refused the re-import into %s (%s): importing under a new ARN", arn, err.get("Message"))
                return False
            raise _deploy_error(target, exc) from None

    def _first_import(self, region: str, name: str, material: CertificateMaterial, args: dict) -> str:
        """Import under a new ARN. ACM has no idempotency token: a retry after a lost response
        would create a second certificate. So each try is a single request, and before trying
        again we look for the one the lost response may have created (by its tags: a search of
        the account, made only after a failed try)."""
        tags = [{"Key": MANAGED_TAG, "Value": "true"}, {"Key": NAME_TAG, "Value": name}]
        acm_once = self._single_try_for(region)
        tried = []

        def attempt() -> str:
            if tried:
                found = next((arn for arn in self._ours(self._client_for(region), name, material)
                              if self._holds(region, arn, material)), None)
                if found:
                    log.info("found %s's import %s after a failed try: not imported again", name, found)
                    return found
            tried.append(True)
            return acm_once.import_certificate(Tags=tags, **args)["CertificateArn"]
        try:
            return Deadline(self._clock, FIRST_IMPORT_BUDGET).retry(
                attempt, f"importing {name} into ACM {region}", retryable=_retryable,
                attempts=FIRST_IMPORT_ATTEMPTS, base=FIRST_IMPORT_BASE, jitter=self._jitter)
        except (ClientError, BotoCoreError, DeadlineExceeded) as exc:
            raise _deploy_error(str(Target.acm(region)), exc) from None

    def _holds(self, region: str, arn: str, material: CertificateMaterial) -> bool:
        """Whether the certificate at `arn` is this very one (same serial)."""
        try:
            serial = self._client_for(region).describe_certificate(CertificateArn=arn)["Certificate"].get("Serial")
        except ClientError:
            return False
        return _serial_number(serial) == int(pki.describe(material.cert_pem).serial, 16)

    def _ours(self, acm, name: str, material: CertificateMaterial) -> Iterator[str]:
        """The certificates we imported for `name` (by their tags), to find one whose ARN was never
        recorded (a lost response, or a run that died right after the import). ACM cannot filter by
        tag: this lists every certificate of the account (and reads the tags of those for these
        names), so it runs only when the state recorded an unfinished import, or after a failed try
        of one."""
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
                        yield arn
        except ClientError as exc:
            log.warning("could not look for an earlier import of %s: %s", name, exc)

    def check_region(self, region: str, *, role_arn: str | None = None) -> None:
        """The region exists for ACM and the account has enabled it (an opt-in region such as
        af-south-1 must be enabled first): one cheap read-only call per region and importer."""
        if role_arn:
            return self._as(role_arn).check_region(region)
        if region not in _acm_regions():
            raise DeployError(str(Target.acm(region)), f"{region!r} is not an AWS region where ACM exists")
        if region not in self._regions_checked:
            self._regions_checked[region] = self._region_problem(region)
        problem = self._regions_checked[region]
        if problem:
            raise DeployError(str(Target.acm(region)), problem)

    def _region_problem(self, region: str) -> str | None:
        try:
            self._client_for(region).list_certificates(MaxItems=1)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in REGION_NOT_ENABLED_CODES:
                return (f"the AWS account has not enabled the region {region} (ACM answered {code}: the security "
                        f"token is not valid there); enable {region} in the account's Regions settings "
                        f"(AWS console > Account > AWS Regions), or remove it from deploy.acm.regions")
            log.warning("could not check ACM in %s before deploying (%s); going on", region, code or exc)
        except BotoCoreError as exc:
            log.warning("could not check ACM in %s before deploying (%s); going on", region, exc)
        return None

    def delete_if_unused(self, region: str, arn: str, other_users: list[str], *,
                         role_arn: str | None = None) -> tuple[bool, str]:
        """Delete a superseded certificate certrenew imported, once nothing uses it (ACM's
        InUseBy, which lags behind CloudFront by a while, plus the distributions the caller
        found). Returns (settled, what happened): settled is False while it is still in use,
        so the caller keeps it for a later run; deleted, already gone or not ours settles it."""
        if role_arn:
            return self._as(role_arn).delete_if_unused(region, arn, other_users)
        target = str(Target.acm(region))
        acm = self._client_for(region)
        try:
            described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            tags = {t["Key"]: t["Value"] for t in acm.list_tags_for_certificate(CertificateArn=arn).get("Tags", [])}
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return True, f"{arn} already gone"
            raise _deploy_error(target, exc) from None
        if tags.get(MANAGED_TAG) != "true":
            return True, f"left {arn} alone: not imported by certrenew"
        users = _users(described.get("InUseBy") or [], other_users)
        if users:
            return False, f"kept {arn} for a later run: still used by {', '.join(users)}"
        try:
            acm.delete_certificate(CertificateArn=arn)
        except ClientError as exc:
            if _code(exc) == "ResourceInUseException":
                return False, f"kept {arn} for a later run: ACM says it is still in use"
            if _code(exc) == "ResourceNotFoundException":
                return True, f"{arn} already gone"
            raise _deploy_error(target, exc) from None
        log.info("deleted superseded certificate %s", arn)
        return True, f"deleted {arn}"

    def _reimportable(self, acm, arn: str, material: CertificateMaterial, target: str) -> bool:
        """True when `arn` exists and ACM would accept the new certificate over the one it
        holds: same key algorithm, no Key Usage or EKU value dropped (moto accepts both; AWS
        does not). Otherwise the certificate goes to a new ARN."""
        try:
            stored_pem = acm.get_certificate(CertificateArn=arn)["Certificate"]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                log.warning("%s no longer exists: importing a new certificate", arn)
                return False
            raise DeployError(target, f"cannot read {arn}: {_code(exc) or exc}") from None
        try:
            refusal = pki.reimport_refusal(stored_pem, material.cert_pem)
        except VerificationError as exc:
            log.warning("cannot compare with the certificate in %s (%s): re-importing", arn, exc)
            return True
        if refusal:
            log.info("ACM would refuse a re-import into %s: %s; importing under a new ARN", arn, refusal)
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


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _deploy_error(target: str, exc: Exception) -> DeployError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return DeployError(target, f"{err.get('Code', 'error')}: {err.get('Message', exc)}")
    return DeployError(target, str(exc))


def _users(in_use_by: list[str], other_users: list[str]) -> list[str]:
    """Who uses a certificate, each once: ACM names a distribution by its ARN, the caller's
    scan as `cloudfront:<id>`; both are shown the short way."""
    out: list[str] = []
    for user in [*in_use_by, *other_users]:
        match = CLOUDFRONT_ARN.match(user)
        short = str(Target(CLOUDFRONT, match.group(1))) if match else user
        if short not in out:
            out.append(short)
    return out


def _serial_number(text: str | None) -> int | None:
    """ACM's Serial: colon-separated hex ("0a:1b:..."); moto gives it in decimal."""
    if not text:
        return None
    try:
        return int(text.replace(":", ""), 16) if ":" in text else int(text)
    except ValueError:
        return None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, BotoCoreError):
        return True  # connection trouble: the request may or may not have arrived
    if not isinstance(exc, ClientError):
        return False
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status >= 500 or err.get("Code") in RETRYABLE_CODES
