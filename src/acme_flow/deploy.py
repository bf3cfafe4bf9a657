"""Deploying a stored certificate: the `Deployer`, with one kind per target kind.

A target is a `Target` (kind + id). Each kind checks its targets before anything is written
(read-only), places the certificate on one target, and says which of its targets still use a
superseded ACM certificate. The `Deployer` walks a certificate's targets in deploy order (ACM
first: CloudFront attaches the us-east-1 copy), records what each holds, puts ACM certificates
replaced by a new ARN on the retire list, and deletes retired ones once nothing uses them.

Adding a target kind is one adapter (its AWS calls, behind a port) and one kind here.
"""
from __future__ import annotations

import datetime as dt
from typing import Mapping, Protocol

from . import planning
from .deploy_attached import ApiDomainKind, ListenerKind, ParameterKind, SecretKind, TenantKind, acm_copy
from .errors import CertrenewError, DeployError
from .models import (ACM, APIGATEWAY, CLOUDFRONT, CLOUDFRONT_TENANT, ELB, S3, SECRETSMANAGER, SSM, US_EAST_1,
                     CertificateSpec, Deployment, DeploySpec, Placement, StoredCertificate, Target)
from .ports import Adapters, CertificateImporter, Clock, CloudFrontAttacher, Exporter


class TargetKind(Protocol):
    def check(self, target: Target, spec: CertificateSpec) -> None:
        """Raise DeployError when the target does not exist or cannot be used; read-only."""

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        """Put the stored certificate on the target (`deployment`: what is placed so far;
        `before`: what the state held when this run began)."""

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        """Targets of this kind that use the ACM certificate `arn` (kept from being deleted)."""


class AcmKind:
    """`acm:<region>` (or `acm:<region>@<account>`, a copy in another account than the
    certificate's: see DeploySpec): import into ACM, re-importing into the same ARN when there
    is one. In a region the state held an import intent for when the run began (a run died
    mid-import), the certificate that run may have left under a new ARN is looked for before
    importing under one; any other first import is a single ImportCertificate (plus its retries)."""

    def __init__(self, importer: CertificateImporter) -> None:
        self._importer = importer

    def check(self, target: Target, spec: CertificateSpec) -> None:
        region, role = _copy_location(spec, target.id)
        self._importer.check_region(region, role_arn=role)

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        """An import an earlier run began (its intent in `before`, not this run's own, recorded
        just now) and never recorded may have left a certificate to import into."""
        region, role = _copy_location(spec, target.id)
        arn = self._importer.import_certificate(region, stored.material, spec.name, deployment.acm_arn(target.id),
                                                maybe_orphaned=before.may_hold_orphan(target.id), role_arn=role)
        return Placement(target, stored.info.serial, arn)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return []

    def delete_if_unused(self, region: str, arn: str, users: list[str], role_arn: str | None) -> tuple[bool, str]:
        return self._importer.delete_if_unused(region, arn, users, role_arn=role_arn)


class CloudFrontKind:
    """`cloudfront:<distribution id>`: attach the certificate's us-east-1 ACM copy."""

    def __init__(self, cloudfront: CloudFrontAttacher) -> None:
        self._cloudfront = cloudfront

    def check(self, target: Target, spec: CertificateSpec) -> None:
        self._cloudfront.check(target.id, role_arn=spec.deploy.role_for("cloudfront"))

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        arn = acm_copy(deployment, target, spec.deploy.copy_id(US_EAST_1, "cloudfront"), stored.info.serial)
        self._cloudfront.attach(target.id, arn, stored.info.names, role_arn=spec.deploy.role_for("cloudfront"))
        return Placement(target, stored.info.serial, arn)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return self._cloudfront.distributions_using(arn, role_arn=role_arn) if region == US_EAST_1 else []


class S3ExportKind:
    """`s3://<bucket>/<prefix>`: the PEM files for servers."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def check(self, target: Target, spec: CertificateSpec) -> None:
        self._exporter.check(_bucket_and_prefix(target)[0], role_arn=spec.deploy.role_for("s3"))

    def place(self, target: Target, spec: CertificateSpec, stored: StoredCertificate,
              deployment: Deployment, before: Deployment) -> Placement:
        bucket, prefix = _bucket_and_prefix(target)
        self._exporter.export(bucket, prefix, stored.material, role_arn=spec.deploy.role_for("s3"))
        return Placement(target, stored.info.serial)

    def users_of(self, region: str, arn: str, role_arn: str | None) -> list[str]:
        return []


class Deployer:
    def __init__(self, acm: AcmKind, others: Mapping[str, TargetKind], clock: Clock) -> None:
        self._acm = acm
        self._kinds: dict[str, TargetKind] = {ACM: acm, **others}
        self._clock = clock

    @classmethod
    def from_adapters(cls, adapters: Adapters) -> Deployer:
        """A kind for every wired adapter; a target of a kind not wired fails its check."""
        attached = {CLOUDFRONT_TENANT: (adapters.tenants, TenantKind), ELB: (adapters.listeners, ListenerKind),
                    APIGATEWAY: (adapters.api_domains, ApiDomainKind), SECRETSMANAGER: (adapters.secrets, SecretKind),
                    SSM: (adapters.parameters, ParameterKind)}
        kinds: dict[str, TargetKind] = {CLOUDFRONT: CloudFrontKind(adapters.cloudfront),
                                        S3: S3ExportKind(adapters.exporter)}
        kinds.update({kind: make(adapter) for kind, (adapter, make) in attached.items() if adapter is not None})
        return cls(AcmKind(adapters.importer), kinds, adapters.clock)

    def check(self, spec: CertificateSpec) -> None:
        for target in spec.deploy.targets():
            kind = self._kinds.get(target.kind)
            if kind is None:
                raise DeployError(str(target), f"deploying to {target.kind} is not wired in this build")
            kind.check(target, spec)

    def deploy(self, spec: CertificateSpec, stored: StoredCertificate,
               before: Deployment) -> tuple[Deployment, list[str]]:
        deployment, errors = stored.deployment, []
        for target in planning.missing_targets(spec, stored):
            try:
                placement = self._kinds[target.kind].place(target, spec, stored, deployment, before)
                deployment = deployment.with_placement(placement)
            except CertrenewError as exc:
                errors.append(str(exc))
        return superseded(before, deployment, self._clock.now()), errors

    def retire(self, deployment: Deployment, deploy: DeploySpec = DeploySpec()) -> tuple[Deployment, list[str]]:
        """A retiring certificate still in use (CloudFront lets go of one a while after
        UpdateDistribution) stays on the list for a later run."""
        settled, notes = set(), []
        for old in deployment.retiring:
            if deployment.acm_arn(old.region) == old.arn:
                settled.add(old.arn)  # in use by this very certificate again: never delete it
                continue
            try:
                region, role = _retired_location(deploy, old.region, old.arn)
                users = [u for kind in self._kinds.values() for u in kind.users_of(region, old.arn, role)]
                done, note = self._acm.delete_if_unused(region, old.arn, users, role)
            except CertrenewError as exc:
                done, note = False, f"kept {old.arn} for a later run: could not retire it ({exc})"
            notes.append(note)
            if done:
                settled.add(old.arn)
        return deployment.without_retiring(settled), notes


def superseded(before: Deployment, after: Deployment, now: dt.datetime) -> Deployment:
    """ACM certificates `before` held that `after` replaced by a new ARN go on the retire list."""
    for old in before.placements:
        region = old.target.id
        if old.target.kind == ACM and old.arn and after.acm_arn(region) != old.arn:
            after = after.with_retiring(region, old.arn, now)
    return after


def _copy_location(spec: CertificateSpec, copy_id: str) -> tuple[str, str | None]:
    location = spec.deploy.copy_location(copy_id)
    if location is None:
        raise DeployError(f"acm:{copy_id}", "no deploy role of this certificate reaches that account")
    return location


def _retired_location(deploy: DeploySpec, copy_id: str, arn: str) -> tuple[str, str | None]:
    """Where a superseded copy lives and the role that reaches it (a copy of an account the
    config no longer names waits, with a note, until a role reaches it again)."""
    location = deploy.copy_location(copy_id)
    if location is None:
        raise CertrenewError(f"no deploy role of the config reaches the account of {arn}")
    return location


def _bucket_and_prefix(target: Target) -> tuple[str, str]:
    bucket, _, prefix = target.id.partition("/")
    return bucket, prefix
