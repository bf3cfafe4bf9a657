"""The use case: plan, issue what is due, verify, store, deploy, notify, report.

One linear flow per run. Every certificate gets exactly one result; one certificate's
failure never stops the others. Only ports are used here: adapters are wired in bootstrap.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Callable

from . import planning
from .errors import CertrenewError, InputError, StateError
from .issuance import Issued, Issuer
from .models import (AccountState, Action, CertificateResult, CertificateSpec, Config, Deadline,
                     Deployment, Outcome, Placement, RenewalDecision, RunReport, StoredCertificate)
from .ports import (AcmeCa, CertificateImporter, Clock, CloudFrontAttacher, DnsProvider, Exporter,
                    Notifier, PropagationCheck, StateStore)

log = logging.getLogger("certrenew.renewal")


@dataclass(frozen=True)
class RunOptions:
    only: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    lookahead: dt.timedelta = dt.timedelta(0)


@dataclass
class Renewer:
    config: Config
    state: StateStore
    ca: Callable[[], AcmeCa]  # built on first use: a run with nothing due never talks to the CA
    dns: DnsProvider
    propagation: PropagationCheck
    importer: CertificateImporter
    cloudfront: CloudFrontAttacher
    exporter: Exporter
    notifier: Notifier
    clock: Clock
    check_name_servers: bool = True
    workers: int = 8

    # -- entry points ---------------------------------------------------------------------------

    def plan(self, options: RunOptions = RunOptions()) -> list[tuple[CertificateSpec, RenewalDecision, StoredCertificate | None]]:
        """What each selected certificate needs, and why. Reads state only."""
        specs = self.select(options.only)
        self.state.check_ready()
        now = self.clock.now()
        rows = []
        for spec in specs:
            stored, unreadable = self._load(spec.name)
            decision = planning.decide(spec, stored, now, self.config.acme.directory,
                                       force=options.force, lookahead=options.lookahead)
            if unreadable:
                decision = replace(decision, reason=f"{unreadable}; reissuing")
            rows.append((spec, decision, stored))
        return rows

    def run(self, deadline: Deadline, options: RunOptions = RunOptions()) -> RunReport:
        started = self.clock.now()
        rows = self.plan(options)
        if options.dry_run:
            results = [_planned(spec, decision, stored) for spec, decision, stored in rows]
            return RunReport(tuple(results), started, self.clock.now(), dry_run=True)
        due = [spec for spec, decision, _ in rows if decision.action is Action.ISSUE]
        issued = self._issue(due, deadline) if due else {}
        results = []
        for spec, decision, stored in rows:
            results.append(self._settle(spec, decision, stored, issued.get(spec.name)))
        report = RunReport(tuple(results), started, self.clock.now())
        self.notifier.notify(report)
        return report

    def select(self, only: tuple[str, ...]) -> list[CertificateSpec]:
        known = self.config.names()
        unknown = [n for n in only if n not in known]
        if unknown:
            raise InputError(f"unknown certificate name(s) {unknown}: the config has {known}")
        return [c for c in self.config.certificates if not only or c.name in only]

    # -- steps ----------------------------------------------------------------------------------

    def _load(self, name: str) -> tuple[StoredCertificate | None, str]:
        try:
            return self.state.load_certificate(name), ""
        except StateError as exc:
            log.error("stored state of %s is unreadable: %s", name, exc)
            return None, f"stored state unreadable ({exc})"

    def _issue(self, specs: list[CertificateSpec], deadline: Deadline) -> dict[str, Issued | Exception]:
        log.info("issuing %d certificate(s): %s", len(specs), ", ".join(s.name for s in specs))
        try:
            ca = self._ready_ca()
        except CertrenewError as exc:
            return {s.name: exc for s in specs}
        issuer = Issuer(ca=ca, dns=self.dns, propagation=self.propagation, clock=self.clock,
                        check_name_servers=self.check_name_servers, workers=self.workers)
        return issuer.issue_all(specs, deadline)

    def _ready_ca(self) -> AcmeCa:
        """The CA client bound to our account: created once per directory, kept in S3."""
        ca = self.ca()
        account = self.state.load_account(ca.directory)
        if account is None:
            fresh = ca.new_account_key(ca.directory, self.config.acme.email)
            account = self.state.save_account(fresh)
        bound: AccountState = ca.use_account(account)
        if bound.url != account.url:
            self.state.save_account(bound)
        return ca

    def _settle(self, spec: CertificateSpec, decision: RenewalDecision, stored: StoredCertificate | None,
                issued: Issued | Exception | None) -> CertificateResult:
        try:
            if decision.action is Action.NONE:
                return _result(spec, Outcome.SKIPPED, decision.reason, stored, decision.renew_at)
            if decision.action is Action.DEPLOY:
                assert stored is not None
                return self._deploy(spec, stored, Outcome.DEPLOYED, decision.reason)
            if isinstance(issued, Exception) or issued is None:
                raise issued or CertrenewError("not issued")
            new = self._store(spec, issued, stored)
            outcome = Outcome.RENEWED if stored is not None else Outcome.ISSUED
            return self._deploy(spec, new, outcome, decision.reason)
        except CertrenewError as exc:
            log.error("%s failed: %s", spec.name, exc)
            return _result(spec, Outcome.FAILED, str(exc), stored, None)

    def _store(self, spec: CertificateSpec, issued: Issued, previous: StoredCertificate | None) -> StoredCertificate:
        now = self.clock.now()
        new = StoredCertificate(
            name=spec.name, version=_version(now, issued.info.serial), domains=spec.domains,
            key_type=spec.key, profile=spec.profile, directory=self.config.acme.directory,
            info=issued.info, material=issued.material, issued_at=now,
            deployment=previous.deployment if previous else Deployment())
        return self.state.save_certificate(new)

    def _deploy(self, spec: CertificateSpec, stored: StoredCertificate, outcome: Outcome,
                reason: str) -> CertificateResult:
        """Bring every configured target to the stored serial; record what succeeded."""
        deployment = stored.deployment
        serial = stored.info.serial
        errors: list[str] = []
        for target in planning.missing_targets(spec, stored):
            try:
                deployment = deployment.with_placement(self._deploy_one(spec, stored, target, deployment))
            except CertrenewError as exc:
                errors.append(str(exc))
        stored = self.state.record_deployment(stored, deployment)
        if errors:
            return _result(spec, Outcome.FAILED, f"{reason}; deploy failed: " + "; ".join(errors), stored, None)
        return _result(spec, outcome, reason, stored, None, deployment.targets(serial))

    def _deploy_one(self, spec: CertificateSpec, stored: StoredCertificate, target: str,
                    deployment: Deployment) -> Placement:
        serial, material = stored.info.serial, stored.material
        if target.startswith("acm:"):
            region = target.removeprefix("acm:")
            arn = self.importer.import_certificate(region, material, spec.name, deployment.acm_arn(region))
            return Placement(target, serial, arn)
        if target.startswith("cloudfront:"):
            arn = deployment.acm_arn("us-east-1")
            placement = deployment.get("acm:us-east-1")
            if arn is None or placement is None or placement.serial != serial:
                raise CertrenewError(f"{target}: the us-east-1 ACM copy was not imported")
            self.cloudfront.attach(target.removeprefix("cloudfront:"), arn, stored.info.names)
            return Placement(target, serial, arn)
        assert spec.deploy.s3 is not None
        location = self.exporter.export(spec.deploy.s3.bucket, spec.deploy.s3.prefix, material)
        return Placement(location, serial)


def _version(now: dt.datetime, serial: str) -> str:
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{serial[:16]}"


def _planned(spec: CertificateSpec, decision: RenewalDecision, stored: StoredCertificate | None) -> CertificateResult:
    outcome = Outcome.SKIPPED if decision.action is Action.NONE else Outcome.PLANNED
    reason = decision.reason if decision.action is Action.NONE else f"would {decision.action.value}: {decision.reason}"
    return _result(spec, outcome, reason, stored, decision.renew_at)


def _result(spec: CertificateSpec, outcome: Outcome, reason: str, stored: StoredCertificate | None,
            next_check: dt.datetime | None, targets: tuple[str, ...] | None = None) -> CertificateResult:
    if stored is None:
        return CertificateResult(spec.name, outcome, reason, next_check=next_check, targets=targets or ())
    if targets is None:
        targets = stored.deployment.targets(stored.info.serial)
    if next_check is None and outcome is not Outcome.FAILED:
        next_check = planning.fallback_renewal_time(stored.info.not_before, stored.info.not_after,
                                                    spec.renew_before_days)
    return CertificateResult(spec.name, outcome, reason, serial=stored.info.serial,
                             not_after=stored.info.not_after, next_check=next_check, targets=targets)
