"""The use case, as two calls: `plan(options) -> Plan`, then `apply(plan, deadline) -> RunReport`.

`apply` is a short list of steps, each filling the one result slot of every certificate it
settles: check every target (read-only), take the leases, issue what is due in one DNS round,
then store, deploy and retire per certificate, report and notify. One certificate's failure
never stops the others. Only ports are used here: adapters are built in bootstrap.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

from . import planning
from .account import CaAccess
from .deploy import Deployer
from .errors import CertrenewError, InputError
from .issuance import Issued, Issuer
from .ordering import Ordering
from .deadline import Deadline
from .models import (Action, CertificateResult, CertificateSpec, Config, IssuanceTimings, Outcome, RunReport,
                     StoredCertificate)
from .parallel import Background, map_all
from .ports import Adapters, Clock, Notifier, StateStore
from .results import certificate_result, failed, planned
from .settle import Settlement
from .survey import PlanRow, Survey

log = logging.getLogger("certrenew.renewal")

LEASE_MARGIN = dt.timedelta(minutes=5)  # a lease outlives its run's deadline by this much
REVOCATION_REASONS = {"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4,
                      "cessationOfOperation": 5}


@dataclass(frozen=True)
class RunOptions:
    only: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    deep: bool = False  # read and check every stored material too (a KMS-protected read each)


@dataclass(frozen=True)
class Plan:
    options: RunOptions
    rows: tuple[PlanRow, ...]
    started: dt.datetime

    def due(self) -> list[str]:
        """Certificates a run would act on (a new order, or a deploy of the stored one)."""
        return [r.spec.name for r in self.rows if r.decision.action is not Action.NONE]

    def report(self, finished: dt.datetime) -> RunReport:
        """The dry run's report: what would be done, and why."""
        return RunReport(tuple(planned(row) for row in self.rows), self.started, finished, dry_run=True,
                         warnings=self.warnings())

    def warnings(self) -> tuple[str, ...]:
        return tuple(row.warning for row in self.rows if row.warning)


@dataclass
class _Slot:
    """One certificate's way through `apply`: its row, what issuing gave, and its result."""

    row: PlanRow
    issued: Issued | Exception | None = None
    result: CertificateResult | None = None

    @property
    def name(self) -> str:
        return self.row.spec.name

    def acting(self, action: Action | None = None) -> bool:
        wanted = self.row.decision.action
        return self.result is None and (wanted is action if action else wanted is not Action.NONE)


@dataclass
class Renewer:
    config: Config
    state: StateStore
    ca: CaAccess
    survey: Survey
    issuer: Issuer
    ordering: Ordering  # the primary CA (`ca`), then the fallbacks
    settlement: Settlement
    notifier: Notifier
    clock: Clock
    workers: int = 8

    @classmethod
    def from_adapters(cls, config: Config, adapters: Adapters, *, workers: int = 8,
                      check_interval: dt.timedelta = dt.timedelta(days=7),
                      random_fraction: Callable[[], float] = random.random) -> Renewer:
        ca = CaAccess(adapters.ca, adapters.state, config.acme.directory, config.acme.email)
        fallbacks = tuple(CaAccess(make, adapters.state, f.directory, f.email)
                          for f, make in zip(config.acme.fallback, adapters.fallback_cas))
        survey = Survey(config, adapters.state, ca, check_interval, random_fraction, workers, fallbacks)
        issuer = Issuer(adapters.dns, adapters.propagation, adapters.ledger, adapters.clock, workers=workers,
                        records=adapters.records, progress=adapters.progress)
        return cls(config, adapters.state, ca, survey, issuer, Ordering(issuer, (ca, *fallbacks), adapters.caa),
                   Settlement(config.acme.directory, adapters.state, survey, Deployer.from_adapters(adapters),
                              adapters.clock), adapters.notifier, adapters.clock, workers)

    def plan(self, options: RunOptions = RunOptions()) -> Plan:
        """What each selected certificate needs, and why. Reads state and the CA's ARI only."""
        started = self.clock.now()
        specs = self.select(options.only)
        self.state.check_ready()
        return Plan(options, tuple(self.survey.rows(specs, started, options.force, options.deep)), started)

    def apply(self, plan: Plan, deadline: Deadline) -> RunReport:
        if plan.options.dry_run:
            return plan.report(self.clock.now())
        slots = [_Slot(row) for row in plan.rows]
        warnings = self._preflight(slots)  # 1. every target checked, read-only: a bad one fails before any write
        caa = self._check_caa(slots)  # its DNS lookups go on while the run takes its leases and orders
        # what a killed run published and never removed: swept by the next run, whether it orders or not
        self.issuer.sweep_stale()
        with _Leases.taken(self, slots, deadline) as leases:  # 2. one lease each; a held one is skipped
            try:
                timings = self._issue(slots, deadline, leases.run_id, leases.until)  # 3. one DNS round for all
                map_all(lambda slot: self._settle(slot, leases), [s for s in slots if s.result is None],
                        self.workers)  # 4. store, deploy (while the round's TXT values are removed)
            finally:
                self.issuer.cleaned()
                warnings += caa.join()
        results = tuple(s.result for s in slots if s.result is not None)
        assert len(results) == len(slots), "every certificate ends with exactly one result"
        report = RunReport(results, plan.started, self.clock.now(), issuance=timings,
                           warnings=(*warnings, *_record_warnings(slots, self.clock.now(), self.survey.lookahead)))
        self.notifier.notify(report)  # 5. report
        return report

    def revoke(self, name: str, reason: str = "unspecified") -> StoredCertificate:
        if reason not in REVOCATION_REASONS:
            raise InputError(f"unknown revocation reason {reason!r}: use one of {sorted(REVOCATION_REASONS)}")
        (spec,) = self.select((name,))
        self.state.check_ready()
        stored, unreadable = self.survey.load(spec.name)
        if stored is None:
            raise InputError(f"{name} has no stored certificate to revoke" + (f" ({unreadable})" if unreadable else ""))
        material = self.state.load_material(stored).material
        if material is None or not material.cert_pem:
            raise InputError(f"{name}: the stored certificate cannot be read, so it cannot be revoked")
        self.ca.bound().revoke(material.cert_pem, REVOCATION_REASONS[reason])
        log.info("revoked %s serial %s (%s)", name, stored.info.serial, reason)
        return self.state.update(replace(stored, revoked=reason))

    def select(self, only: tuple[str, ...]) -> list[CertificateSpec]:
        return self.config.select(only)

    # -- the steps of apply ---------------------------------------------------------------------

    def _preflight(self, slots: list[_Slot]) -> list[str]:
        """Targets and zones checked per certificate; what a person should fix, for the report."""
        warnings = []
        if any(s.acting(Action.ISSUE) for s in slots):
            self.ca.check_registration()
            warnings += self.ordering.check_fallbacks()
        for slot in (s for s in slots if s.acting()):
            try:
                self.settlement.deployer.check(slot.row.spec)
                if slot.acting(Action.ISSUE):
                    self.issuer.check(slot.row.spec)
            except CertrenewError as exc:
                log.error("%s: %s", slot.name, exc)
                slot.result = failed(slot.row, str(exc))
        return warnings

    def _check_caa(self, slots: list[_Slot]) -> Background[list[str]]:
        return self.ordering.check_caa(self.config, self.state, [s.row for s in slots if s.acting(Action.ISSUE)])

    def _issue(self, slots: list[_Slot], deadline: Deadline, run_id: str,
               until: dt.datetime) -> IssuanceTimings | None:
        due = [s for s in slots if s.acting(Action.ISSUE)]
        if not due:
            return None
        log.info("issuing %d certificate(s): %s", len(due), ", ".join(s.name for s in due))
        issued, timings = self.ordering.issue([s.row for s in due], deadline, run_id, until)
        for slot in due:
            slot.issued = issued.get(slot.name)
        return timings

    def _settle(self, slot: _Slot, leases: _Leases) -> None:
        try:
            slot.result = self.settlement.finish(slot.row, slot.issued)
        except CertrenewError as exc:
            log.error("%s failed: %s", slot.name, exc)
            slot.result = failed(slot.row, str(exc))
        except Exception as exc:  # a bug or an untranslated library error: this certificate only
            log.exception("%s failed unexpectedly", slot.name)
            slot.result = failed(slot.row, f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            leases.release(slot.name)  # settled: no need to hold it until the others are


@dataclass
class _Leases:
    """The leases a run holds: taken before ordering, each given back once its certificate is
    settled, and whatever is left when the run ends (also when it fails)."""

    renewer: Renewer
    run_id: str
    until: dt.datetime
    held: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    @contextmanager
    def taken(cls, renewer: Renewer, slots: list[_Slot], deadline: Deadline) -> Iterator[_Leases]:
        """After taking a lease the state is read again: another run may have just renewed it."""
        now = renewer.clock.now()
        leases = cls(renewer, uuid.uuid4().hex[:16], now + dt.timedelta(seconds=deadline.remaining()) + LEASE_MARGIN)
        try:
            map_all(lambda slot: leases.take(slot, now), [s for s in slots if s.acting()], renewer.workers)
            yield leases
        finally:
            map_all(leases.release, sorted(leases.held), renewer.workers)

    def take(self, slot: _Slot, now: dt.datetime) -> None:
        state, survey = self.renewer.state, self.renewer.survey
        if not state.acquire(slot.name, self.run_id, self.until, now):
            log.info("%s is being renewed by another run: skipped", slot.name)
            slot.result = certificate_result(slot.row.spec, Outcome.SKIPPED,
                                             "locked: another run holds its lease", slot.row.stored)
            return
        with self.lock:
            self.held.add(slot.name)
        try:
            slot.row = survey.recheck(slot.row, now)
        except CertrenewError as exc:  # e.g. its material cannot be read: this certificate only
            log.error("%s: %s", slot.name, exc)
            slot.result = failed(slot.row, str(exc))

    def release(self, name: str) -> None:
        with self.lock:
            if name not in self.held:
                return
            self.held.discard(name)
        self.renewer.state.release(name, self.run_id, self.renewer.clock.now())


def _record_warnings(slots: list[_Slot], now: dt.datetime, lookahead: dt.timedelta) -> list[str]:
    """Each certificate's persistUntil warning, for the certificate in place after the run."""
    return [w for s in slots if s.result and (w := planning.persist_warning(
        s.row.spec, s.result.persist_until, s.result.next_check, now, lookahead))]
