"""Ordering a run's due certificates: from the primary CA, then, for the certificates it could
not issue because it was down, failing or rate-limiting past the run's deadline (a transient CA
problem after its retries), from each fallback CA in turn (`acme.fallback`).

Each CA has its own account (registered once, kept in the state; its EAB read only when it is
first needed). `replaces` goes only to the CA that issued the certificate being replaced. A
certificate a fallback issued is stored with that CA's directory, so its ARI comes from that CA
and its next renewal goes to the primary again. Validation failures never move to another CA:
the same DNS would fail there too.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from .account import CaAccess
from .deadline import Deadline
from .errors import AcmeTransientProblem, CertrenewError
from .issuance import Issued, Issuer
from .models import Config, IssuanceTimings
from .parallel import Background
from .ports import CaaLookup, StateStore
from .results import with_notes
from .survey import PlanRow

if TYPE_CHECKING:  # imported when a run checks CAA, not at a cold start
    from .ca_identity import OurAccount
    from .caa_records import CaaRecords

log = logging.getLogger("certrenew.renewal")

@dataclass
class Ordering:
    issuer: Issuer
    cas: tuple[CaAccess, ...]  # the primary, then the fallbacks in order
    caa: CaaLookup | None = None  # public DNS, for the CAA check before ordering

    def check_caa(self, config: Config, state: StateStore, rows: list[PlanRow]) -> Background[list[str]]:
        """The names whose CAA set (as a CA finds it in DNS) would make the primary CA refuse to
        issue to our account by the certificate's method(s): said in the run's report, not only
        found in a CA's refusal. The account is read now (before this run may register it); the
        lookups go on while the run takes its leases and orders: `join` gives the warnings. A check
        that cannot be made is logged, never fails the run."""
        if self.caa is None or not rows:
            return Background.done([])
        from .ca_identity import OurAccount  # only in a run that orders: not at a cold start
        from .caa_records import CaaRecords
        try:
            primary = self.cas[0]
            account = state.load_account(primary.directory)  # not registered here: no write before the leases
            meta = primary.client().meta()
            ours = OurAccount(primary.directory, account.url if account and account.url else "",
                              meta.caa_identities, meta)
        except CertrenewError as exc:
            log.warning("could not check the CAA records before ordering: %s", exc)
            return Background.done([])
        if not ours.issuers:
            return Background.done([])
        names = tuple(r.spec.name for r in rows)
        return Background(lambda: _caa_warnings(CaaRecords(config, None, self.caa, primary, state), names, ours),
                          "caa-check")

    def check_fallbacks(self) -> list[str]:
        """Each fallback CA is usable now (its directory answers; its EAB reference resolves when
        no account is stored yet), not found broken on the day of an outage: what is not."""
        problems = []
        for access in self.cas[1:]:
            try:
                access.client().meta()
                access.check_registration()
            except CertrenewError as exc:
                log.error("fallback CA %s cannot be used: %s", access.directory, exc)
                problems.append(f"fallback CA {access.directory} cannot be used: {exc}")
        return problems

    def issue(self, rows: list[PlanRow], deadline: Deadline, run_id: str,
              until: dt.datetime) -> tuple[dict[str, Issued | Exception], IssuanceTimings | None]:
        """Issue every row: what each CA issued (from a fallback, saying so), or the last CA's
        error, naming the earlier ones'."""
        outcome: dict[str, Issued | Exception] = {}
        timings: IssuanceTimings | None = None
        pending = rows
        for n, access in enumerate(self.cas):
            if n:
                pending = [r for r in pending if _ca_could_not_issue(outcome.get(r.spec.name))]
                if not pending:
                    break
                log.warning("%d certificate(s) could not be issued by %s: ordering them from %s",
                            len(pending), self.cas[n - 1].directory, access.directory)
            got, spent = self._round(access, pending, deadline, run_id, until)
            outcome.update({name: _after(outcome.get(name), access, result) for name, result in got.items()})
            timings = _sum(timings, spent)
        return outcome, timings

    def _round(self, access: CaAccess, rows: list[PlanRow], deadline: Deadline, run_id: str,
               until: dt.datetime) -> tuple[dict[str, Issued | Exception], IssuanceTimings | None]:
        try:
            ca = access.bound()
        except CertrenewError as exc:
            return {r.spec.name: exc for r in rows}, None
        replaces = {r.spec.name: r.stored.ari_cert_id for r in rows
                    if r.stored and r.stored.directory == access.directory and r.stored.ari_cert_id}
        return self.issuer.issue_all(ca, [r.spec for r in rows], deadline, run_id, until, replaces,
                                     account_url=access.account_url)


class _Tried(CertrenewError):
    """A certificate no configured CA could issue: the last CA's error, after the earlier ones'."""

    def __init__(self, message: str, last: Exception) -> None:
        super().__init__(message)
        self.last = last


def _caa_warnings(records: CaaRecords, names: tuple[str, ...], ours: OurAccount) -> list[str]:
    try:
        report = records.check(names, ours)
    except CertrenewError as exc:
        log.warning("could not check the CAA records before ordering: %s", exc)
        return []
    allowed = {(n.certificate, n.name) for n in report.names if n.allowed}  # `auto`: one method is enough
    return [f"{n.certificate}: CAA would stop {report.issuer} issuing {n.name} by {n.method} ({n.reason}); "
            f"see `certrenew caa plan`" for n in report.blocked if (n.certificate, n.name) not in allowed]


def _ca_could_not_issue(outcome: Issued | Exception | None) -> bool:
    last = outcome.last if isinstance(outcome, _Tried) else outcome
    return isinstance(last, AcmeTransientProblem)


def _after(previous: Issued | Exception | None, access: CaAccess, result: Issued | Exception) -> Issued | Exception:
    """A round's result, after what the CAs before it answered: a fallback's certificate says
    which CA issued it and why the one before did not; a fallback's error follows the earlier ones."""
    if previous is None:
        return result
    if isinstance(result, Issued):
        said = f"issued by fallback CA {access.directory} ({previous})"
        return replace(result, note=with_notes(result.note, [said]) if result.note else said)
    return _Tried(f"{previous}; then fallback CA {access.directory}: {result}", result)


def _sum(a: IssuanceTimings | None, b: IssuanceTimings | None) -> IssuanceTimings | None:
    if a is None or b is None:
        return a or b
    return IssuanceTimings(a.seconds + b.seconds, a.dns_wait + b.dns_wait)
