"""`certrenew rehearse`: every selected certificate issued end to end from the CA's staging
directory, and nothing of it kept.

What certbot users know as `--dry-run`: the one way to find a broken zone, DNS role, CAA record
or deploy target before it counts against the production rate limits (5 failed validations per
name per hour). The rehearsal runs the same machinery as a real run (`Issuer` through `Ordering`:
preflight, one DNS round, TXT values published and removed, orders finalized, chain, key and
names verified) against the staging directory with its own staging account (kept in the state
like every account, under that directory's own prefix). Then it stops: nothing is stored as
current, nothing deployed, no renewal notified; the report is its only output.

Production state is untouched: no pointer, version or lease is written. Taking no lease means a
rehearsal neither blocks a real run nor waits for one: the only things both write are TXT values
at the same `_acme-challenge` names, and the DNS adapter adds and removes its own values next to
the others'. The run's TXT values are kept in the challenge ledger while published (deleted when
they are removed), so the sweep of a later real run cleans up after a rehearsal that was killed.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from . import pki
from .account import CaAccess
from .config.schema import LETSENCRYPT, LETSENCRYPT_STAGING
from .deadline import Deadline
from .deploy import Deployer
from .errors import (AcmeProblem, CertrenewError, DeadlineExceeded, DeployError, DnsError, DnsRoleError,
                     InputError, Problem, PropagationTimeout, ValidationFailed, VerificationError, ZoneNotFound)
from .issuance import Issued, Issuer
from .models import Action, AcmeSettings, CertificateSpec, Config, RenewalDecision
from .ordering import Ordering
from .ports import Adapters, Clock, StateStore
from .survey import PlanRow

log = logging.getLogger("certrenew.rehearsal")

STAGING_OF = {LETSENCRYPT: LETSENCRYPT_STAGING, LETSENCRYPT_STAGING: LETSENCRYPT_STAGING}
LEDGER_MARGIN = dt.timedelta(minutes=5)  # the ledger outlives the rehearsal's deadline by this much
REHEARSED = "rehearsed"


def staging_directory(acme: AcmeSettings) -> str:
    """The staging directory that matches the configured CA: `acme.rehearsal_directory` when
    set, Let's Encrypt's staging for Let's Encrypt; for any other CA an InputError naming the
    setting (a guess could be a production directory)."""
    if acme.rehearsal_directory:
        return acme.rehearsal_directory
    if acme.directory in STAGING_OF:
        return STAGING_OF[acme.directory]
    raise InputError(Problem("acme.rehearsal_directory", (
        f"no staging directory is known for the CA {acme.directory}: set acme.rehearsal_directory to the "
        "https:// URL of its staging (test) directory to rehearse")))


def staged(config: Config) -> Config:
    """The config as the rehearsal runs it: the staging directory as the only CA (no fallback),
    the same email, no EAB (a staging account is registered without one)."""
    return replace(config, acme=AcmeSettings(directory=staging_directory(config.acme), email=config.acme.email))


@dataclass(frozen=True)
class Rehearsed:
    """One certificate's rehearsal: `stage` is `rehearsed`, or where it would have failed."""

    name: str
    domains: tuple[str, ...]
    stage: str
    reason: str
    serial: str | None = None
    not_after: dt.datetime | None = None
    root: str | None = None  # the issuer name of the chain's root
    challenge: str | None = None

    @property
    def ok(self) -> bool:
        return self.stage == REHEARSED

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "domains": list(self.domains), "outcome": REHEARSED if self.ok else "failed",
                "stage": self.stage, "reason": self.reason, "serial": self.serial,
                "not_after": self.not_after.isoformat() if self.not_after else None, "root": self.root,
                "challenge": self.challenge}


@dataclass(frozen=True)
class RehearsalReport:
    directory: str  # the staging directory rehearsed against
    results: tuple[Rehearsed, ...]
    started: dt.datetime
    finished: dt.datetime
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {"rehearsal": True, "ok": self.ok, "directory": self.directory,
                "started": self.started.isoformat(), "finished": self.finished.isoformat(),
                "counts": {"rehearsed": sum(r.ok for r in self.results),
                           "failed": sum(not r.ok for r in self.results)},
                "warnings": list(self.warnings), "certificates": [r.to_dict() for r in self.results]}


def failure_stage(exc: BaseException) -> str:
    """Where a real run would have failed, in a person's words."""
    text = str(exc).lower()
    if isinstance(exc, ZoneNotFound):
        return "zone not found"
    if isinstance(exc, DnsRoleError):
        return "dns role"
    if isinstance(exc, DeployError):
        return "deploy target"
    if isinstance(exc, PropagationTimeout):
        return "propagation"
    if isinstance(exc, DnsError):
        return "dns"
    if isinstance(exc, AcmeProblem) and exc.code in ("caa", "rateLimited"):
        return "caa" if exc.code == "caa" else "rate limit"
    if isinstance(exc, (ValidationFailed, AcmeProblem)) and "caa" in text:
        return "caa"
    if isinstance(exc, ValidationFailed):
        return "validation"
    if isinstance(exc, VerificationError):
        return "chain"
    if isinstance(exc, DeadlineExceeded):
        return "deadline"
    return "ca" if isinstance(exc, AcmeProblem) else "error"


@dataclass
class Rehearsal:
    config: Config  # as staged: the staging directory is its CA
    state: StateStore
    ca: CaAccess  # the staging CA, acting as its own staging account
    issuer: Issuer
    ordering: Ordering
    deployer: Deployer  # its read-only checks only
    clock: Clock
    roots: tuple[str, ...] = ()  # PEM roots of the staging CA to verify each chain against
    workers: int = 8
    _rows: dict[str, PlanRow] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_adapters(cls, config: Config, adapters: Adapters, *, roots: tuple[str, ...] = (),
                      workers: int = 8) -> Rehearsal:
        """`config` as `staged` gives it, `adapters` built from it (their CA is the staging CA)."""
        ca = CaAccess(adapters.ca, adapters.state, config.acme.directory, config.acme.email)
        issuer = Issuer(adapters.dns, adapters.propagation, adapters.ledger, adapters.clock, workers=workers,
                        records=adapters.records)
        return cls(config, adapters.state, ca, issuer, Ordering(issuer, (ca,), adapters.caa),
                   Deployer.from_adapters(adapters), adapters.clock, roots, workers)

    def select(self, only: tuple[str, ...]) -> list[CertificateSpec]:
        return self.config.select(only)

    def run(self, only: tuple[str, ...], deadline: Deadline) -> RehearsalReport:
        """Preflight (read-only), then one DNS round on the staging CA for what passed it."""
        started = self.clock.now()
        specs = self.select(only)
        self.state.check_ready()
        log.info("rehearsing %d certificate(s) on %s", len(specs), self.ca.directory)
        results: dict[str, Rehearsed] = {}
        rows = self._preflight(specs, results)
        warnings: list[str] = []
        if rows:
            caa = self.ordering.check_caa(self.config, self.state, rows)
            try:
                results.update(self._issue(rows, deadline))
            finally:
                self.issuer.cleaned()  # every TXT value removed before the report is given
                warnings += caa.join()
        report = RehearsalReport(self.ca.directory, tuple(results[s.name] for s in specs), started,
                                 self.clock.now(), tuple(warnings))
        log.info("rehearsal %s: %d rehearsed, %d failed", "ok" if report.ok else "FAILED",
                 sum(r.ok for r in report.results), sum(not r.ok for r in report.results))
        return report

    def _preflight(self, specs: list[CertificateSpec], results: dict[str, Rehearsed]) -> list[PlanRow]:
        """What a real run checks before it orders: the staging account can be registered, every
        deploy target exists, every `_acme-challenge` name has a zone. Read-only."""
        try:
            self.ca.check_registration()
        except CertrenewError as exc:
            for spec in specs:
                results[spec.name] = _failed(spec, exc, f"staging CA {self.ca.directory}: ")
            return []
        rows = []
        for spec in specs:
            try:
                self.deployer.check(spec)
                self.issuer.check(spec)
                rows.append(PlanRow(spec, RenewalDecision(spec.name, Action.ISSUE, "rehearsal"), None))
            except CertrenewError as exc:
                log.error("%s: %s", spec.name, exc)
                results[spec.name] = _failed(spec, exc)
        return rows

    def _issue(self, rows: list[PlanRow], deadline: Deadline) -> dict[str, Rehearsed]:
        run_id = f"rehearsal-{uuid.uuid4().hex[:12]}"
        until = self.clock.now() + dt.timedelta(seconds=deadline.remaining()) + LEDGER_MARGIN
        try:
            issued, _ = self.ordering.issue(rows, deadline, run_id, until)
        except Exception as exc:  # a bug or an untranslated library error: reported, not raised
            log.exception("the rehearsal could not order")
            issued = {row.spec.name: exc for row in rows}
        out = {}
        for row in rows:
            got = issued.get(row.spec.name) or CertrenewError("not issued")
            if isinstance(got, Issued):
                got = self._verified(got)
            out[row.spec.name] = _rehearsed(got) if isinstance(got, Issued) else _failed(row.spec, got)
        return out

    def _verified(self, issued: Issued) -> Issued | Exception:
        """`Issuer` verified the chain link by link, the key and the names; with the staging
        roots given, the chain must also end at one of them."""
        if not self.roots:
            return issued
        chain = [issued.material.cert_pem, *pki.split_pem_chain(issued.material.chain_pem)]
        for root in self.roots:
            try:
                pki.verify_against_root(chain, root)
                return issued
            except VerificationError:
                continue
        return VerificationError(f"the chain (ending at {issued.root!r}) is not signed by any of the "
                                 f"{len(self.roots)} staging root(s) given")


def _rehearsed(issued: Issued) -> Rehearsed:
    spec, info = issued.spec, issued.info
    return Rehearsed(spec.name, spec.domains, REHEARSED,
                     f"issued by the staging CA and verified (chain to {issued.root}); nothing stored or deployed",
                     info.serial, info.not_after, issued.root,
                     issued.challenge.value if issued.challenge else None)


def _failed(spec: CertificateSpec, exc: BaseException, prefix: str = "") -> Rehearsed:
    stage = failure_stage(exc)
    return Rehearsed(spec.name, spec.domains, stage, f"would fail ({stage}): {prefix}{exc}")
