"""State in S3: the ACME account per CA directory, and every certificate version.

Key layout (documented in the README):

    accounts/<host>-<hash>/account-key.pem     account key, SSE-KMS, written once (If-None-Match)
    accounts/<host>-<hash>/account.json        directory, account URL, email
    certificates/<name>/current.json           the pointer: version, everything planning needs
                                               (serial, validity, names, key type, profile, CA,
                                               ARI CertID and window, targets and their serials)
    certificates/<name>/<version>/material.json  leaf, chain and key of the version, SSE-KMS
    locks/<name>.json                          lease of the run renewing <name> (holder, expiry)
    challenges/<run-id>.json                   TXT values a run published and has not removed yet

A plan reads one pointer per certificate and nothing KMS-protected; the material is read only
for a certificate about to be deployed or verified. New material is written first under its
version; only then is `current.json` flipped, with a conditional write (If-Match on the ETag
read, or If-None-Match for the first one), so a crash never leaves a pointer to half-written
material and a concurrent writer is detected.

State written before this layout (schema 1: `cert.pem`, `chain.pem`, `fullchain.pem`,
`privkey.pem` and `meta.json` per version) is read as it is; its pointer is rewritten in the new
form by the next run that applies (the version files stay where they are).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import asdict, replace
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from .. import pki
from ..errors import CertrenewError, StateBucketMissing, StateError
from ..models import (AccountState, CertificateInfo, CertificateMaterial, Deployment, KeyType,
                      RenewalWindow, StoredCertificate)
from ..ports import TxtRecord

log = logging.getLogger("certrenew.state")
SCHEMA = 2
MATERIAL = "material.json"
CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
ACCOUNT_WRITE_ATTEMPTS = 3  # create-only writes of the account key that may meet a 409


def _lease(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
        return {"holder": data.get("holder"), "until": dt.datetime.fromisoformat(data["until"])}
    except (ValueError, KeyError, TypeError):
        return {"holder": None, "until": dt.datetime.min.replace(tzinfo=dt.timezone.utc)}  # unreadable: free


class S3StateStore:
    def __init__(self, s3, bucket: str, kms_key: str | None = None) -> None:
        self._s3 = s3
        self.bucket = bucket
        self._kms_key = kms_key
        self._etags: dict[str, str] = {}
        self._pem_files: set[tuple[str, str]] = set()  # (name, version) kept as schema 1 PEM files

    # -- bucket ---------------------------------------------------------------------------------

    def check_ready(self) -> None:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise StateBucketMissing(self.bucket) from None
            raise StateError(f"s3://{self.bucket}", f"cannot read the state bucket: {code or exc}") from None

    # -- account --------------------------------------------------------------------------------

    @staticmethod
    def account_prefix(directory: str) -> str:
        host = urlparse(directory).hostname or "ca"
        return f"accounts/{host}-{hashlib.sha256(directory.encode()).hexdigest()[:12]}/"

    def load_account(self, directory: str) -> AccountState | None:
        prefix = self.account_prefix(directory)
        key_pem = self._get_text(prefix + "account-key.pem")
        if key_pem is None:
            return None
        meta = self._get_json(prefix + "account.json") or {}
        return AccountState(directory=directory, url=meta.get("url"), key_pem=key_pem, email=meta.get("email"))

    def save_account(self, account: AccountState) -> AccountState:
        """Write the key once (create-only) and the account URL; returns the stored account.

        If another run created the key first, its key wins and is returned. A conflict with no
        key to read yet (409 ConditionalRequestConflict: the other write had not finished, or
        failed) is tried again, a few times.
        """
        prefix = self.account_prefix(account.directory)
        key = prefix + "account-key.pem"
        for _ in range(ACCOUNT_WRITE_ATTEMPTS):
            if self._conditional_put(key, account.key_pem, {"IfNoneMatch": "*"}, secret=True):
                break
            existing = self.load_account(account.directory)
            if existing is not None and existing.key_pem != account.key_pem:
                log.info("another run created the ACME account key first: using it")
                return existing
            if existing is not None:
                break  # our own key: written before (an update of the URL, or a lost answer)
        else:
            raise StateError(key, f"not created: S3 answered a write conflict {ACCOUNT_WRITE_ATTEMPTS} times "
                                  "and no other run's key appeared")
        self._put(prefix + "account.json", json.dumps(
            {"directory": account.directory, "url": account.url, "email": account.email}, indent=2))
        return account

    # -- certificates ---------------------------------------------------------------------------

    def load_certificate(self, name: str) -> StoredCertificate | None:
        """The pointer only: no PEM, no KMS-protected read (schema 1 pointers: one plain GET of
        the leaf, for its ARI CertID)."""
        pointer_key = f"certificates/{name}/current.json"
        pointer = self._get_json(pointer_key, remember_etag=True)
        if pointer is None:
            return None
        try:
            stored = _stored_from_meta(pointer)
            if pointer.get("material") != MATERIAL:
                self._pem_files.add((name, stored.version))
            if pointer.get("schema", 1) < SCHEMA:
                stored = replace(stored, ari_cert_id=self._legacy_cert_id(name, stored.version), outdated=True)
            return stored
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise StateError(pointer_key, f"unreadable metadata ({type(exc).__name__}: {exc})") from None

    def _legacy_cert_id(self, name: str, version: str) -> str | None:
        cert_pem = self._get_text(f"certificates/{name}/{version}/cert.pem")
        try:
            return pki.ari_cert_id(cert_pem) if cert_pem else None
        except CertrenewError:
            return None

    def load_material(self, stored: StoredCertificate) -> StoredCertificate:
        """The stored certificate with its material, checked: what is wrong with it, if anything,
        is in `damaged` (it is then reissued, never deployed)."""
        prefix = f"certificates/{stored.name}/{stored.version}/"
        pem_files = (stored.name, stored.version) in self._pem_files
        try:
            material, problem = self._legacy_material(prefix) if pem_files else self._material(prefix)
        except ClientError as exc:  # not damage (a reissue would not help): this certificate fails
            code = exc.response.get("Error", {}).get("Code") or str(exc)
            raise StateError(prefix, f"cannot read the stored material ({code})") from None
        problem = problem or pki.material_problem(material, stored.info.serial)
        return replace(stored, material=material, damaged=problem or stored.damaged)

    def _material(self, prefix: str) -> tuple[CertificateMaterial, str | None]:
        empty = CertificateMaterial("", "", "")
        try:
            data = self._get_json(prefix + MATERIAL)
        except StateError as exc:
            return empty, str(exc)
        if data is None:
            return empty, f"{prefix}{MATERIAL} is missing"
        try:
            return CertificateMaterial(data["cert_pem"], data["chain_pem"], data["key_pem"]), None
        except (KeyError, TypeError):
            return empty, f"{prefix}{MATERIAL} lacks the certificate, chain or key"

    def _legacy_material(self, prefix: str) -> tuple[CertificateMaterial, str | None]:
        """Schema 1: the PEM files of a version."""
        fullchain = self._get_text(prefix + "fullchain.pem")
        key_pem = self._get_text(prefix + "privkey.pem")
        certs = pki.split_pem_chain(fullchain or "")
        material = CertificateMaterial(cert_pem=certs[0] if certs else "", chain_pem="".join(certs[1:]),
                                       key_pem=key_pem or "")
        if fullchain is None or key_pem is None:
            return material, f"{prefix}{'fullchain.pem' if fullchain is None else 'privkey.pem'} is missing"
        if not certs:
            return material, f"{prefix}fullchain.pem holds no readable PEM certificate"
        return material, None

    def save_certificate(self, stored: StoredCertificate) -> StoredCertificate:
        """One object with the version's material (SSE-KMS), then the pointer flipped to it."""
        assert stored.material is not None, "a new version carries its material"
        m = stored.material
        self._put(f"certificates/{stored.name}/{stored.version}/{MATERIAL}",
                  json.dumps({"cert_pem": m.cert_pem, "chain_pem": m.chain_pem, "key_pem": m.key_pem}), secret=True)
        self._flip_pointer(stored)
        log.info("stored %s version %s", stored.name, stored.version)
        return replace(stored, outdated=False)

    def update(self, stored: StoredCertificate) -> StoredCertificate:
        """Rewrite the pointer's metadata (deployment, ARI window, revocation) of the current
        version; a schema 1 pointer is rewritten in the current form (its PEM files stay)."""
        self._flip_pointer(stored)
        return replace(stored, outdated=False)

    def _flip_pointer(self, stored: StoredCertificate) -> None:
        key = f"certificates/{stored.name}/current.json"
        material = "pem-files" if (stored.name, stored.version) in self._pem_files else MATERIAL
        body = json.dumps(_meta(stored, material), indent=2)
        etag = self._etags.get(key)
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        got = self._conditional_put(key, body, condition) or self._already_written(key, body)
        if got is None:
            raise StateError(key, "changed by another run since it was read; not overwritten")
        self._etags[key] = got["ETag"]

    def _already_written(self, key: str, body: str) -> dict | None:
        """After a conditional write failed: is the object exactly what we wrote? (A retry of a
        write whose response was lost fails its own precondition.)"""
        try:
            got = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return None
        return got if got["Body"].read() == body.encode() else None

    # -- leases ---------------------------------------------------------------------------------

    def acquire(self, name: str, holder: str, until: dt.datetime, now: dt.datetime) -> bool:
        """Take the lease of `name` for `holder` until `until`; False when another run holds it.

        One create-only write (If-None-Match) when no run holds it: released leases are deleted.
        A lease left by a run that died is taken over once expired, with If-Match on the ETag
        read, so two runs racing for it cannot both win.
        """
        key = f"locks/{name}.json"
        body = json.dumps({"holder": holder, "until": until.isoformat(), "taken": now.isoformat()})
        got = self._conditional_put(key, body, {"IfNoneMatch": "*"})
        if got is None:
            got = self._take_over(key, body, holder, now)
        if got is None:
            return False
        self._etags[key] = got["ETag"]
        return True

    def _take_over(self, key: str, body: str, holder: str, now: dt.datetime) -> dict | None:
        try:
            current = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):  # released meanwhile
                return self._conditional_put(key, body, {"IfNoneMatch": "*"})
            raise
        raw = current["Body"].read()
        if raw == body.encode():
            return current  # our own write, whose answer was lost
        lease = _lease(raw)
        if lease.get("holder") not in (None, holder) and lease["until"] > now:
            return None
        # Lost the race, or our write went through and only its answer was lost (the retry then
        # fails its own If-Match): the lease is ours if it now names us.
        return self._conditional_put(key, body, {"IfMatch": current["ETag"]}) or self._already_written(key, body)

    def release(self, name: str, holder: str, now: dt.datetime) -> None:
        """Give the lease back: delete it, only if it is still the one we wrote (If-Match on
        its ETag); never raises."""
        key = f"locks/{name}.json"
        etag = self._etags.pop(key, None)
        if etag is None:
            return
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in CONFLICT_CODES and code not in ("NoSuchKey", "404"):
                log.warning("could not release the lease of %s: %s", name, exc)

    # -- challenge ledger -----------------------------------------------------------------------

    def record_challenges(self, run_id: str, records: list[TxtRecord], until: dt.datetime) -> None:
        self._put(f"challenges/{run_id}.json", json.dumps({"run": run_id, "until": until.isoformat(),
                                                           "records": [asdict(r) for r in records]}))

    def forget_challenges(self, run_id: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=f"challenges/{run_id}.json")

    def stale_challenges(self, now: dt.datetime) -> list[tuple[str, list[TxtRecord]]]:
        """Ledgers of runs that ended without cleaning up (past their deadline)."""
        stale = []
        try:
            listed = [obj for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix="challenges/") for obj in page.get("Contents", [])]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise StateError(f"s3://{self.bucket}/challenges/", f"cannot list the challenge ledgers ({code or exc})") from None
        for obj in listed:
            try:
                data = self._get_json(obj["Key"]) or {}
                if dt.datetime.fromisoformat(data["until"]) < now:
                    stale.append((data["run"], [TxtRecord(**r) for r in data["records"]]))
            except (StateError, KeyError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable challenge ledger %s: %s", obj["Key"], exc)
        return stale

    # -- objects --------------------------------------------------------------------------------

    def _conditional_put(self, key: str, body: str, condition: dict[str, str], *,
                         secret: bool = False) -> dict | None:
        """PutObject under a condition: the response, or None when the condition failed (412
        PreconditionFailed, or 409 ConditionalRequestConflict for a concurrent conflicting write)."""
        try:
            return self._s3.put_object(**self._put_args(key, body, secret), **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in CONFLICT_CODES:
                return None
            raise

    def _put(self, key: str, text: str, *, secret: bool = False) -> None:
        self._s3.put_object(**self._put_args(key, text, secret))

    def _put_args(self, key: str, text: str, secret: bool) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": text.encode()}
        if key.endswith(".json"):
            args["ContentType"] = "application/json"
        if secret:
            args["ServerSideEncryption"] = "aws:kms"
            if self._kms_key:
                args["SSEKMSKeyId"] = self._kms_key
        return args

    def _get_text(self, key: str, remember_etag: bool = False) -> str | None:
        try:
            got = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        if remember_etag:
            self._etags[key] = got["ETag"]
        return got["Body"].read().decode("utf-8")

    def _get_json(self, key: str, remember_etag: bool = False) -> dict | None:
        text = self._get_text(key, remember_etag)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(key, f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise StateError(key, "not a JSON object")
        return data


def _meta(stored: StoredCertificate, material: str) -> dict[str, Any]:
    info = stored.info
    return {
        "schema": SCHEMA,
        "material": material,  # how the version's material is kept: MATERIAL, or schema 1 "pem-files"
        "ari_cert_id": stored.ari_cert_id,
        "name": stored.name,
        "version": stored.version,
        "domains": list(stored.domains),
        "key_type": stored.key_type.value,
        "profile": stored.profile,
        "directory": stored.directory,
        "issued_at": stored.issued_at.isoformat(),
        "serial": info.serial,
        "not_before": info.not_before.isoformat(),
        "not_after": info.not_after.isoformat(),
        "names": list(info.names),
        "issuer": info.issuer,
        "deployment": stored.deployment.to_dict(),
        "retiring": stored.deployment.retiring_to_dict(),
        "importing": stored.deployment.importing_to_list(),
        "ari": stored.window.to_dict() if stored.window else None,
        "replaced": stored.replaced,
        "revoked": stored.revoked,
        "persist_until": stored.persist_until.isoformat() if stored.persist_until else None,
    }


def _stored_from_meta(meta: dict[str, Any]) -> StoredCertificate:
    info = CertificateInfo(
        serial=meta["serial"],
        not_before=dt.datetime.fromisoformat(meta["not_before"]),
        not_after=dt.datetime.fromisoformat(meta["not_after"]),
        names=tuple(meta["names"]),
        issuer=meta["issuer"],
        key_type=KeyType(meta["key_type"]),
    )
    return StoredCertificate(
        name=meta["name"], version=meta["version"], domains=tuple(meta["domains"]),
        key_type=KeyType(meta["key_type"]), profile=meta.get("profile"), directory=meta["directory"],
        info=info, material=None, issued_at=dt.datetime.fromisoformat(meta["issued_at"]),
        deployment=Deployment.from_dict(meta.get("deployment"), meta.get("retiring"), meta.get("importing")),
        window=RenewalWindow.from_dict(meta.get("ari")), replaced=meta.get("replaced"),
        revoked=meta.get("revoked"), ari_cert_id=meta.get("ari_cert_id"),
        persist_until=dt.datetime.fromisoformat(meta["persist_until"]) if meta.get("persist_until") else None)
