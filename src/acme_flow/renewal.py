"""The use case: plan, issue what is due, verify, store, deploy, notify, report.

One linear flow per run. Every certificate gets exactly one result; one certificate's
failure never stops the others. Only ports are used here: adapters are wired in bootstrap.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

from . import pki, planning
from .deadline import Deadline
from .errors import CertrenewError, ConfigError, InputError, Problem, StateError
from .issuance import Issued, Issuer, map_settled
from .models import (US_EAST_1, AccountState, Action, CertificateResult, CertificateSpec, Config,
                     Deployment, Outcome, Placement, RenewalDecision, RenewalWindow, RunReport,
                     StoredCertificate)
from .ports import (AcmeCa, CertificateImporter, Clock, CloudFrontAttacher, DnsProvider, Exporter,
                    Notifier, PropagationCheck, StateStore, TxtRecord)

log = logging.getLogger("certrenew.renewal")

LEASE_MARGIN = dt.timedelta(minutes=5)  # a lease outlives its run's deadline by this much
REVOCATION_REASONS = {"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4,
                      "cessationOfOperation": 5}


@dataclass(frozen=True)
class RunOptions:
    only: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class PlanRow:
    spec: CertificateSpec
    decision: RenewalDecision
    stored: StoredCertificate | None
    window: RenewalWindow | None = None  # the ARI window as now known (maybe freshly fetched)

    @property
    def window_changed(self) -> bool:
        return self.stored is not None and self.window is not None and self.window != self.stored.window


@dataclass
class Renewer:
    config: Config
    state: StateStore
    ca: Callable[[], AcmeCa]  # built on first use: a run with nothing stored never talks to the CA
    dns: DnsProvider
    propagation: PropagationCheck
    importer: CertificateImporter
    cloudfront: CloudFrontAttacher
    exporter: Exporter
    notifier: Notifier
    clock: Clock
    workers: int = 8
    check_interval: dt.timedelta = dt.timedelta(days=7)  # time to the next scheduled run
    random_fraction: Callable[[], float] = random.random
    _ca: AcmeCa | None = field(default=None, init=False, repr=False)

    # -- entry points ---------------------------------------------------------------------------

    def plan(self, options: RunOptions = RunOptions()) -> list[PlanRow]:
        """What each selected certificate needs, and why. Reads state and the CA's ARI only."""
        specs = self.select(options.only)
        self.state.check_ready()
        self._check_profiles(specs)
        now = self.clock.now()
        loaded = [(spec, *_raise_unexpected(pair)) for spec, pair in zip(specs, map_settled(
            lambda spec: self._load(spec.name), specs, self.workers))]
        windows = map_settled(lambda item: self._window(item[1], now), loaded, self.workers)
        rows = []
        for (spec, stored, unreadable), window in zip(loaded, windows):
            if isinstance(window, Exception):
                log.warning("%s: renewal information unavailable (%s); using the fallback rule", spec.name, window)
                window = stored.window if stored else None
            decision = planning.decide(spec, stored, now, self.config.acme.directory, force=options.force,
                                       lookahead=self.check_interval, window=window)
            if unreadable:
                decision = replace(decision, reason=f"{unreadable}; reissuing")
            rows.append(PlanRow(spec, decision, stored, window))
        return rows

    def run(self, deadline: Deadline, options: RunOptions = RunOptions(),
            plan: list[PlanRow] | None = None) -> RunReport:
        """Plan (or use the plan just made for these options), check every target, take the
        leases, issue what is due, store, deploy, report."""
        started = self.clock.now()
        rows = plan if plan is not None else self.plan(options)
        if options.dry_run:
            results = [_planned(row) for row in rows]
            return RunReport(tuple(results), started, self.clock.now(), dry_run=True)
        early = self._preflight(rows)  # read-only: bad targets fail before anything is written
        run_id = uuid.uuid4().hex[:16]
        held: list[str] = []
        try:
            rows, locked = self._take_leases([r for r in rows if r.spec.name not in early], run_id, deadline, held)
            early.update(locked)
            due = [row for row in rows if row.decision.action is Action.ISSUE]
            issued = self._issue(due, deadline, run_id) if due else {}
            settled = map_settled(lambda row: self._settle(row, issued.get(row.spec.name)), rows, self.workers)
            done = {row.spec.name: _raise_unexpected(result) for row, result in zip(rows, settled)}
        finally:
            for name in held:
                self.state.release(name, run_id, self.clock.now())
        results = [early.get(spec.name) or done[spec.name] for spec in self.select(options.only)]
        report = RunReport(tuple(results), started, self.clock.now())
        self.notifier.notify(report)
        return report

    def revoke(self, name: str, reason: str = "unspecified") -> StoredCertificate:
        if reason not in REVOCATION_REASONS:
            raise InputError(f"unknown revocation reason {reason!r}: use one of {sorted(REVOCATION_REASONS)}")
        (spec,) = self.select((name,))
        self.state.check_ready()
        stored, unreadable = self._load(spec.name)
        if stored is None:
            raise InputError(f"{name} has no stored certificate to revoke" + (f" ({unreadable})" if unreadable else ""))
        self._ready_ca().revoke(stored.material.cert_pem, REVOCATION_REASONS[reason])
        log.info("revoked %s serial %s (%s)", name, stored.info.serial, reason)
        return self.state.update(replace(stored, revoked=reason))

    def select(self, only: tuple[str, ...]) -> list[CertificateSpec]:
        known = self.config.names()
        unknown = [n for n in only if n not in known]
        if unknown:
            raise InputError(f"unknown certificate name(s) {unknown}: the config has {known}")
        return [c for c in self.config.certificates if not only or c.name in only]

    # -- before anything is written ------------------------------------------------------------

    def _preflight(self, rows: list[PlanRow]) -> dict[str, CertificateResult]:
        """Check every target of each certificate that will act (zones, regions, distributions)
        and what registering an account needs, with read-only calls; failures end that
        certificate with a clear reason before any order, lease or write."""
        failed: dict[str, CertificateResult] = {}
        acting = [r for r in rows if r.decision.action is not Action.NONE]
        if any(r.decision.action is Action.ISSUE for r in acting):
            if self.state.load_account(self.config.acme.directory) is None:
                self._client().check_registration_inputs()
        for row in acting:
            try:
                self._check_targets(row)
            except CertrenewError as exc:
                log.error("%s: %s", row.spec.name, exc)
                failed[row.spec.name] = _result(row.spec, Outcome.FAILED, str(exc), row.stored, None)
        return failed

    def _check_targets(self, row: PlanRow) -> None:
        spec = row.spec
        for region in spec.deploy.all_acm_regions:
            self.importer.check_region(region)
        for distribution in spec.deploy.cloudfront:
            self.cloudfront.check(distribution)
        if spec.deploy.s3:
            self.exporter.check(spec.deploy.s3.bucket)
        if row.decision.action is Action.ISSUE:
            for domain in dict.fromkeys(d.removeprefix("*.") for d in spec.domains):
                self.dns.locate(f"_acme-challenge.{domain}", "", spec)

    def _take_leases(self, rows: list[PlanRow], run_id: str, deadline: Deadline,
                     held: list[str]) -> tuple[list[PlanRow], dict[str, CertificateResult]]:
        """One lease per acting certificate; one another run holds is skipped, never waited for.
        After taking a lease the state is read again: another run may have just renewed it."""
        now = self.clock.now()
        until = now + dt.timedelta(seconds=deadline.remaining()) + LEASE_MARGIN

        def take(row: PlanRow) -> PlanRow | None:
            if row.decision.action is Action.NONE:
                return row
            if not self.state.acquire(row.spec.name, run_id, until, now):
                return None
            held.append(row.spec.name)
            return self._recheck(row, now)
        kept, locked = [], {}
        for row, taken in zip(rows, map_settled(take, rows, self.workers)):
            taken = _raise_unexpected(taken)
            if taken is not None:
                kept.append(taken)
            else:
                log.info("%s is being renewed by another run: skipped", row.spec.name)
                locked[row.spec.name] = _result(row.spec, Outcome.SKIPPED, "locked: another run holds its lease",
                                                row.stored, None)
        return kept, locked

    def _recheck(self, row: PlanRow, now: dt.datetime) -> PlanRow:
        stored, _ = self._load(row.spec.name)
        if _serial(stored) == _serial(row.stored):
            return row
        window = stored.window if stored else None
        decision = planning.decide(row.spec, stored, now, self.config.acme.directory,
                                   lookahead=self.check_interval, window=window)
        log.info("%s changed while waiting for its lease: %s", row.spec.name, decision.reason)
        return PlanRow(row.spec, decision, stored, window)

    # -- planning helpers -----------------------------------------------------------------------

    def _client(self) -> AcmeCa:
        if self._ca is None:
            self._ca = self.ca()
        return self._ca

    def _load(self, name: str) -> tuple[StoredCertificate | None, str]:
        """The stored certificate, checked: damaged material is flagged (and so reissued, never
        deployed); unreadable metadata counts as no certificate, with the reason."""
        try:
            stored = self.state.load_certificate(name)
        except StateError as exc:
            log.error("stored state of %s is unreadable: %s", name, exc)
            return None, f"stored state unreadable ({exc})"
        if stored is not None and not stored.damaged:
            problem = pki.material_problem(stored.material, stored.info.serial)
            if problem:
                stored = replace(stored, damaged=problem)
        if stored is not None and stored.damaged:
            log.error("stored certificate of %s is damaged: %s", name, stored.damaged)
        return stored, ""

    def _check_profiles(self, specs: list[CertificateSpec]) -> None:
        """A profile the CA does not advertise is a config error, before any order."""
        wanted = [(i, s) for i, s in enumerate(self.config.certificates) if s in specs and s.profile]
        if not wanted:
            return
        offered = self._client().profiles() or {}
        problems = [Problem(f"certificates[{i}].profile",
                            f"{s.profile!r} is not offered by {self.config.acme.directory}; it offers "
                            f"{sorted(offered) or 'no profiles'}") for i, s in wanted if s.profile not in offered]
        if problems:
            raise ConfigError(problems, self.config.source)

    def _window(self, stored: StoredCertificate | None, now: dt.datetime) -> RenewalWindow | None:
        """The ARI window of the stored certificate: kept until the CA's Retry-After, then asked again."""
        if stored is None or stored.directory != self.config.acme.directory or stored.revoked:
            return stored.window if stored else None
        if now >= stored.info.not_after:
            return None  # RFC 9773: never ask about an expired certificate
        if stored.window is not None and now < stored.window.next_check:
            return stored.window
        return self._fetch_window(stored.material.cert_pem, stored.window, now)

    def _fetch_window(self, cert_pem: str, previous: RenewalWindow | None, now: dt.datetime) -> RenewalWindow | None:
        info = self._client().renewal_info(cert_pem)
        if info is None:
            return None
        return planning.updated_window(previous, info.start, info.end, dt.timedelta(seconds=info.retry_after),
                                       now, self.random_fraction(), info.explanation_url)

    # -- issuing --------------------------------------------------------------------------------

    def _issue(self, rows: list[PlanRow], deadline: Deadline, run_id: str) -> dict[str, Issued | Exception]:
        log.info("issuing %d certificate(s): %s", len(rows), ", ".join(r.spec.name for r in rows))
        self._sweep_stale_challenges()
        try:
            ca = self._ready_ca()
        except CertrenewError as exc:
            return {r.spec.name: exc for r in rows}
        until = self.clock.now() + dt.timedelta(seconds=deadline.remaining()) + LEASE_MARGIN
        issuer = Issuer(ca=ca, dns=self.dns, propagation=self.propagation, clock=self.clock,
                        workers=self.workers,
                        on_publish=lambda records: self.state.record_challenges(
                            run_id, [asdict(r) for r in records], until),
                        on_cleaned=lambda: self.state.forget_challenges(run_id))
        replaces = {r.spec.name: cert_id for r in rows if (cert_id := self._replaces(r))}
        return issuer.issue_all([r.spec for r in rows], deadline, replaces)

    def _sweep_stale_challenges(self) -> None:
        """Remove TXT values that a crashed earlier run published and never removed."""
        for run, records in self.state.stale_challenges(self.clock.now()):
            try:
                self.dns.remove([TxtRecord(**r) for r in records])
                self.state.forget_challenges(run)
                log.info("swept %d TXT values left by run %s", len(records), run)
            except (CertrenewError, TypeError) as exc:
                log.warning("could not sweep the TXT values of run %s: %s", run, exc)

    def _replaces(self, row: PlanRow) -> str | None:
        """The ARI CertID of the certificate a renewal replaces (same CA only)."""
        stored = row.stored
        if stored is None or stored.directory != self.config.acme.directory:
            return None
        try:
            return pki.ari_cert_id(stored.material.cert_pem)
        except CertrenewError:
            return None

    def _ready_ca(self) -> AcmeCa:
        """The CA client bound to our account: created once per directory, kept in S3."""
        ca = self._client()
        account = self.state.load_account(ca.directory)
        if account is None:
            fresh = ca.new_account_key(ca.directory, self.config.acme.email)
            account = self.state.save_account(fresh)
        bound: AccountState = ca.use_account(account)
        if bound.url != account.url:
            self.state.save_account(bound)
        return ca

    # -- settling each certificate --------------------------------------------------------------

    def _settle(self, row: PlanRow, issued: Issued | Exception | None) -> CertificateResult:
        spec, decision, stored = row.spec, row.decision, row.stored
        try:
            if decision.action is Action.NONE:
                if row.window_changed:
                    stored = self.state.update(replace(stored, window=row.window))
                stored, notes = self._retire_superseded(stored)
                return _result(spec, Outcome.SKIPPED, _with_notes(decision.reason, notes), stored, decision.renew_at)
            if decision.action is Action.DEPLOY:
                assert stored is not None
                return self._deploy(spec, stored, stored.deployment, Outcome.DEPLOYED, decision.reason)
            if isinstance(issued, Exception) or issued is None:
                raise issued or CertrenewError("not issued")
            new = self._store(spec, issued, stored)
            outcome = Outcome.RENEWED if stored is not None else Outcome.ISSUED
            reason = decision.reason + (f"; replaces {issued.replaced}" if issued.replaced else "")
            result = self._deploy(spec, new, stored.deployment if stored else Deployment(), outcome, reason)
            return replace(result, issuance_seconds=issued.seconds, dns_wait_seconds=issued.dns_wait)
        except CertrenewError as exc:
            log.error("%s failed: %s", spec.name, exc)
            return _result(spec, Outcome.FAILED, str(exc), stored, None)
        except Exception as exc:  # a bug or an untranslated library error: this certificate only
            log.exception("%s failed unexpectedly", spec.name)
            return _result(spec, Outcome.FAILED, f"unexpected error: {type(exc).__name__}: {exc}", stored, None)

    def _store(self, spec: CertificateSpec, issued: Issued, previous: StoredCertificate | None) -> StoredCertificate:
        now = self.clock.now()
        window = None
        try:
            window = self._fetch_window(issued.material.cert_pem, None, now)
        except CertrenewError as exc:
            log.warning("%s: no renewal information yet (%s)", spec.name, exc)
        new = StoredCertificate(
            name=spec.name, version=_version(now, issued.info.serial), domains=spec.domains,
            key_type=spec.key, profile=spec.profile, directory=self.config.acme.directory,
            info=issued.info, material=issued.material, issued_at=now,
            deployment=previous.deployment if previous else Deployment(), window=window,
            replaced=issued.replaced)
        return self.state.save_certificate(new)

    def _deploy(self, spec: CertificateSpec, stored: StoredCertificate, before: Deployment, outcome: Outcome,
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
        deployment = _mark_superseded(before, deployment, self.clock.now())
        stored = self.state.update(replace(stored, deployment=deployment))
        stored, notes = self._retire_superseded(stored)
        if errors:
            return _result(spec, Outcome.FAILED, _with_notes(f"{reason}; deploy failed: " + "; ".join(errors), notes),
                           stored, None)
        return _result(spec, outcome, _with_notes(reason, notes), stored, None, deployment.targets(serial))

    def _deploy_one(self, spec: CertificateSpec, stored: StoredCertificate, target: str,
                    deployment: Deployment) -> Placement:
        serial, material = stored.info.serial, stored.material
        if target.startswith("acm:"):
            region = target.removeprefix("acm:")
            arn = self.importer.import_certificate(region, material, spec.name, deployment.acm_arn(region))
            return Placement(target, serial, arn)
        if target.startswith("cloudfront:"):
            placement = deployment.get(f"acm:{US_EAST_1}")
            if placement is None or placement.serial != serial or placement.arn is None:
                raise CertrenewError(f"{target}: the us-east-1 ACM copy was not imported")
            self.cloudfront.attach(target.removeprefix("cloudfront:"), placement.arn, stored.info.names)
            return Placement(target, serial, placement.arn)
        assert spec.deploy.s3 is not None
        location = self.exporter.export(spec.deploy.s3.bucket, spec.deploy.s3.prefix, material)
        return Placement(location, serial)

    def _retire_superseded(self, stored: StoredCertificate | None) -> tuple[StoredCertificate | None, list[str]]:
        """Delete the superseded ACM certificates (replaced by a new ARN) that nothing uses any
        more; one still in use (CloudFront lets go of it a while after UpdateDistribution) stays
        on the list for a later run. Only runs when the list is not empty."""
        if stored is None or not stored.deployment.retiring:
            return stored, []
        deployment, notes, settled = stored.deployment, [], set()
        for old in deployment.retiring:
            if deployment.acm_arn(old.region) == old.arn:
                settled.add(old.arn)  # in use by this very certificate again: never delete it
                continue
            try:
                users = self.cloudfront.distributions_using(old.arn) if old.region == US_EAST_1 else []
                done, note = self.importer.delete_if_unused(old.region, old.arn, users)
            except CertrenewError as exc:
                done, note = False, f"kept {old.arn} for a later run: could not retire it ({exc})"
            notes.append(note)
            if done:
                settled.add(old.arn)
        if settled:
            try:
                stored = self.state.update(replace(stored, deployment=deployment.without_retiring(settled)))
            except CertrenewError as exc:
                log.warning("%s: could not record the retired certificates (%s); a later run sees they are gone",
                            stored.name, exc)
        return stored, notes


def _mark_superseded(before: Deployment, after: Deployment, now: dt.datetime) -> Deployment:
    """ACM certificates `before` held that `after` replaced by a new ARN go on the retire list."""
    for old in before.placements:
        region = old.target.removeprefix("acm:")
        if old.target.startswith("acm:") and old.arn and after.acm_arn(region) != old.arn:
            after = after.with_retiring(region, old.arn, now)
    return after


def _with_notes(reason: str, notes: list[str]) -> str:
    return "; ".join([reason, *notes])


def _raise_unexpected(value):
    """map_settled hands back exceptions; the steps catch their own, so any other is a bug: raise it."""
    if isinstance(value, BaseException):
        raise value
    return value


def _serial(stored: StoredCertificate | None) -> str | None:
    return stored.info.serial if stored else None


def _version(now: dt.datetime, serial: str) -> str:
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{serial[:16]}"


def _planned(row: PlanRow) -> CertificateResult:
    decision = row.decision
    outcome = Outcome.SKIPPED if decision.action is Action.NONE else Outcome.PLANNED
    reason = decision.reason if decision.action is Action.NONE else f"would {decision.action.value}: {decision.reason}"
    return _result(row.spec, outcome, reason, row.stored, decision.renew_at)


def _result(spec: CertificateSpec, outcome: Outcome, reason: str, stored: StoredCertificate | None,
            next_check: dt.datetime | None, targets: tuple[str, ...] | None = None) -> CertificateResult:
    if stored is None:
        return CertificateResult(spec.name, outcome, reason, next_check=next_check, targets=targets or ())
    if targets is None:
        targets = stored.deployment.targets(stored.info.serial)
    if next_check is None and outcome is not Outcome.FAILED:
        next_check = planning.renewal_time(spec, stored, stored.window)[0]
    return CertificateResult(spec.name, outcome, reason, serial=stored.info.serial,
                             not_after=stored.info.not_after, next_check=next_check, targets=targets)
