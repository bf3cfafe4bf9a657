"""What a plan reads: each selected certificate's stored state, checked, and its ARI window.

Damaged material is flagged here (so it is reissued, never deployed); unreadable metadata counts
as no certificate, with the reason. The ARI window is kept until the CA's Retry-After, then
asked for again; a CA that cannot answer leaves the fallback rule in charge.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Callable

from . import pki, planning
from .account import CaAccess
from .errors import ConfigError, Problem, StateError
from .models import CertificateSpec, Config, RenewalDecision, RenewalWindow, StoredCertificate
from .parallel import map_all, map_settled
from .ports import StateStore

log = logging.getLogger("certrenew.renewal")


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
class Survey:
    config: Config
    state: StateStore
    ca: CaAccess
    lookahead: dt.timedelta  # time to the next scheduled run
    random_fraction: Callable[[], float]
    workers: int = 8

    def rows(self, specs: list[CertificateSpec], now: dt.datetime, force: bool = False) -> list[PlanRow]:
        """One row per spec: what it needs, and why."""
        self.check_profiles(specs)
        loaded = map_all(lambda spec: self.load(spec.name), specs, self.workers)
        windows = map_settled(lambda pair: self.window(pair[0], now), loaded, self.workers)
        return [self._row(spec, stored, unreadable, window, now, force)
                for spec, (stored, unreadable), window in zip(specs, loaded, windows)]

    def _row(self, spec: CertificateSpec, stored: StoredCertificate | None, unreadable: str,
             window: RenewalWindow | None | Exception, now: dt.datetime, force: bool) -> PlanRow:
        if isinstance(window, Exception):
            log.warning("%s: renewal information unavailable (%s); using the fallback rule", spec.name, window)
            window = stored.window if stored else None
        decision = planning.decide(spec, stored, now, self.config.acme.directory, force=force,
                                   lookahead=self.lookahead, window=window)
        if unreadable:
            decision = replace(decision, reason=f"{unreadable}; reissuing")
        return PlanRow(spec, decision, stored, window)

    def recheck(self, row: PlanRow, now: dt.datetime) -> PlanRow:
        """The row again if another run changed the certificate meanwhile (read after a lease)."""
        stored, _ = self.load(row.spec.name)
        if _serial(stored) == _serial(row.stored):
            return row
        window = stored.window if stored else None
        decision = planning.decide(row.spec, stored, now, self.config.acme.directory,
                                   lookahead=self.lookahead, window=window)
        log.info("%s changed while waiting for its lease: %s", row.spec.name, decision.reason)
        return PlanRow(row.spec, decision, stored, window)

    def load(self, name: str) -> tuple[StoredCertificate | None, str]:
        """The stored certificate, checked, and why it counts as absent when it does."""
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
        """The ARI window of the stored certificate: kept until the CA's Retry-After, then asked again."""
        if stored is None or stored.directory != self.config.acme.directory or stored.revoked:
            return stored.window if stored else None
        if now >= stored.info.not_after:
            return None  # RFC 9773: never ask about an expired certificate
        if stored.window is not None and now < stored.window.next_check:
            return stored.window
        return self.fetch_window(stored.material.cert_pem, stored.window, now)

    def fetch_window(self, cert_pem: str, previous: RenewalWindow | None, now: dt.datetime) -> RenewalWindow | None:
        info = self.ca.client().renewal_info(cert_pem)
        if info is None:
            return None
        return planning.updated_window(previous, info.start, info.end, dt.timedelta(seconds=info.retry_after),
                                       now, self.random_fraction(), info.explanation_url)


def _serial(stored: StoredCertificate | None) -> str | None:
    return stored.info.serial if stored else None
