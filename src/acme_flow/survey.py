"""What a plan reads: each selected certificate's pointer, and its ARI window.

A plan reads one small pointer per certificate and no material (no PEM, no KMS-protected read):
everything it decides on is in the pointer. The material is read and checked where it is used:
for a certificate about to be deployed (after its lease is taken; damaged material is then
reissued, never deployed), and for every certificate in a deep plan (`RunOptions.deep`,
`certrenew status --deep`). Unreadable metadata counts as no certificate, with the reason. The
ARI window is kept until the CA's Retry-After, then asked for again; a CA that cannot answer
leaves the fallback rule in charge.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Callable

from . import planning
from .account import CaAccess
from .errors import ConfigError, Problem, StateError
from .models import Action, CertificateSpec, Config, RenewalDecision, RenewalWindow, StoredCertificate
from .parallel import map_all, settle
from .ports import StateStore

log = logging.getLogger("certrenew.renewal")


@dataclass(frozen=True)
class PlanRow:
    spec: CertificateSpec
    decision: RenewalDecision
    stored: StoredCertificate | None
    window: RenewalWindow | None = None  # the ARI window as now known (maybe freshly fetched)
    save_window: bool = False  # it is worth writing back (planning.worth_saving)
    warning: str | None = None  # what a person should fix before it fails a renewal


@dataclass
class Survey:
    config: Config
    state: StateStore
    ca: CaAccess
    lookahead: dt.timedelta  # time to the next scheduled run
    random_fraction: Callable[[], float]
    workers: int = 8
    fallbacks: tuple[CaAccess, ...] = ()  # the fallback CAs: ARI of the certificates they issued

    def access_for(self, directory: str) -> CaAccess | None:
        """The configured CA of that directory (the primary or a fallback), if it is one."""
        return next((a for a in (self.ca, *self.fallbacks) if a.directory == directory), None)

    @property
    def directories(self) -> tuple[str, ...]:
        return self.config.acme.all_directories()

    def rows(self, specs: list[CertificateSpec], now: dt.datetime, force: bool = False,
             deep: bool = False) -> list[PlanRow]:
        """One row per spec: what it needs, and why (`deep`: with every material checked)."""
        self.check_profiles(specs)

        def survey(spec: CertificateSpec) -> PlanRow:  # one pass per certificate: no wait for the others
            stored, unreadable = self.load(spec.name, deep)
            window = settle(lambda: self.window(stored, now))
            return self._row(spec, stored, unreadable, window, now, force)
        return map_all(survey, specs, self.workers)

    def _row(self, spec: CertificateSpec, stored: StoredCertificate | None, unreadable: str,
             window: RenewalWindow | None | Exception, now: dt.datetime, force: bool) -> PlanRow:
        if isinstance(window, Exception):
            log.warning("%s: renewal information unavailable (%s); using the fallback rule", spec.name, window)
            window = stored.window if stored else None
        decision = planning.decide(spec, stored, now, self.directories, force=force,
                                   lookahead=self.lookahead, window=window)
        if unreadable:
            decision = replace(decision, reason=f"{unreadable}; reissuing")
        save = stored is not None and planning.worth_saving(stored.window, window, now, self.lookahead)
        warning = planning.persist_warning(spec, stored.persist_until if stored else None, decision.renew_at, now,
                                           self.lookahead)
        return PlanRow(spec, decision, stored, window, save, warning)

    def recheck(self, row: PlanRow, now: dt.datetime) -> PlanRow:
        """The row again after its lease is taken: re-planned if another run changed the
        certificate meanwhile; with the material, checked, if it is to be deployed (damaged
        material is reissued instead)."""
        stored, _ = self.load(row.spec.name)
        if _serial(stored) != _serial(row.stored):
            row = self._replanned(row, stored, now)
            log.info("%s changed while waiting for its lease: %s", row.spec.name, row.decision.reason)
        if row.decision.action is not Action.DEPLOY or row.stored is None:
            return row
        checked = self.state.load_material(row.stored)
        if checked.damaged:
            log.error("stored certificate of %s is damaged: %s", row.spec.name, checked.damaged)
            return self._replanned(row, checked, now)
        return replace(row, stored=checked)

    def _replanned(self, row: PlanRow, stored: StoredCertificate | None, now: dt.datetime) -> PlanRow:
        window = stored.window if stored else None
        decision = planning.decide(row.spec, stored, now, self.directories,
                                   lookahead=self.lookahead, window=window)
        return PlanRow(row.spec, decision, stored, window)

    def load(self, name: str, deep: bool = False) -> tuple[StoredCertificate | None, str]:
        """The stored certificate (its material too, checked, when `deep`), and why it counts as
        absent when it does."""
        try:
            stored = self.state.load_certificate(name)
            if stored is not None and deep:
                stored = self.state.load_material(stored)
        except StateError as exc:
            log.error("stored state of %s is unreadable: %s", name, exc)
            return None, f"stored state unreadable ({exc})"
        if stored is not None and stored.damaged:
            log.error("stored certificate of %s is damaged: %s", name, stored.damaged)
        return stored, ""

    def check_profiles(self, specs: list[CertificateSpec]) -> None:
        """A profile the CA does not advertise is a config error, before any order."""
        wanted = [(i, s) for i, s in enumerate(self.config.certificates) if s in specs and s.profile]
        if not wanted:
            return
        offered = self.ca.client().profiles() or {}
        problems = [Problem(f"certificates[{i}].profile",
                            f"{s.profile!r} is not offered by {self.config.acme.directory}; it offers "
                            f"{sorted(offered) or 'no profiles'}") for i, s in wanted if s.profile not in offered]
        if problems:
            raise ConfigError(problems, self.config.source)

    def window(self, stored: StoredCertificate | None, now: dt.datetime) -> RenewalWindow | None:
        """The ARI window of the stored certificate, from the configured CA that issued it: kept
        until the CA's Retry-After, then asked again."""
        if stored is None or self.access_for(stored.directory) is None or stored.revoked:
            return stored.window if stored else None
        if now >= stored.info.not_after:
            return None  # RFC 9773: never ask about an expired certificate
        if (stored.window is not None and now < stored.window.next_check) or not stored.ari_cert_id:
            return stored.window
        return self.fetch_window(stored.ari_cert_id, stored.window, now, stored.directory)

    def fetch_window(self, cert_id: str, previous: RenewalWindow | None, now: dt.datetime,
                     directory: str | None = None) -> RenewalWindow | None:
        access = self.access_for(directory) if directory else self.ca
        info = (access or self.ca).client().renewal_info(cert_id)
        if info is None:
            return None
        return planning.updated_window(previous, info.start, info.end, dt.timedelta(seconds=info.retry_after),
                                       now, self.random_fraction(), info.explanation_url)


def _serial(stored: StoredCertificate | None) -> str | None:
    return stored.info.serial if stored else None
