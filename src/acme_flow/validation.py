"""Which challenge validates each order: DNS-01, or the persistent dns-persist-01 record.

A certificate's `challenge` setting decides: `dns-01` always publishes TXT values; with
`dns-persist-01` the CA must offer the challenge for every pending name and the persistent
record must be in place (read through the ZoneRecords port and judged by persist.py before the
challenge is answered: a record that would fail costs a failed validation at the CA, and CAs
rate-limit those); `auto` takes dns-persist-01 where both hold, else DNS-01, and says why.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import CertrenewError
from .models import CertificateSpec, Challenge
from .ports import AcmeCa, Clock, Dns01Challenge, PendingOrder, PersistChallenge, ZoneRecords


class ChallengeUnavailable(CertrenewError):
    """A certificate set to dns-persist-01 cannot be validated that way in this run."""

    def __init__(self, name: str, why: str) -> None:
        self.why = why
        super().__init__(f"{name}: dns-persist-01 cannot be used: {why}")


@dataclass(frozen=True)
class Choice:
    """How one order is validated: the method, the challenges to answer, and a note for the report."""

    method: Challenge | None  # None: nothing to validate (every authorization already valid)
    challenges: tuple[Dns01Challenge, ...] | tuple[PersistChallenge, ...] = ()
    note: str = ""
    persist_until: dt.datetime | None = None  # the earliest persistUntil of the records used

    @property
    def persistent(self) -> bool:
        return self.method is Challenge.DNS_PERSIST01


@dataclass
class ChallengeChooser:
    records: ZoneRecords | None
    clock: Clock

    def choose(self, ca: AcmeCa, spec: CertificateSpec, order: PendingOrder, account_url: str | None) -> Choice:
        if not order.pending and not order.challenges and not order.persist:
            return Choice(None, note="authorizations already valid")
        if spec.challenge is Challenge.DNS01:
            return _dns01(order)
        problem, until = self._persist_problem(ca, spec, order, account_url)
        if problem is None:
            return Choice(Challenge.DNS_PERSIST01, order.persist, persist_until=until)
        if spec.challenge is Challenge.DNS_PERSIST01:
            raise ChallengeUnavailable(spec.name, problem)
        return _dns01(order, f"auto: dns-01 ({problem})")

    def _persist_problem(self, ca: AcmeCa, spec: CertificateSpec, order: PendingOrder,
                         account_url: str | None) -> tuple[str | None, dt.datetime | None]:
        """Why dns-persist-01 cannot validate this order now (None when it can), and the
        earliest persistUntil of the records it would use."""
        offered = {c.domain for c in order.persist}
        names = order.pending or tuple(c.domain for c in order.challenges) or tuple(offered)
        missing = [d for d in names if d not in offered]
        if missing:
            return f"the CA does not offer it for {', '.join(missing)}", None
        if self.records is None or account_url is None:
            return (None if spec.challenge is Challenge.DNS_PERSIST01 else "its records cannot be read here"), None
        until: list[dt.datetime] = []
        try:
            # an apex and its wildcard share one record: read and judged once
            for challenge in {c.record_name: c for c in order.persist}.values():
                problem = self._record_problem(ca, spec, challenge, account_url, until)
                if problem:
                    return problem, None
        except CertrenewError as exc:  # a Route53 error, or a record persist.py cannot parse
            return str(exc), None
        return None, min(until, default=None)

    def _record_problem(self, ca: AcmeCa, spec: CertificateSpec, challenge: PersistChallenge,
                        account_url: str, until: list[dt.datetime]) -> str | None:
        from . import persist  # only when a certificate may use dns-persist-01: not at a cold start

        draft = persist.Draft(challenge.draft)
        meta = ca.meta()
        who = persist.PersistIdentity(
            issuer=persist.pick_issuer(challenge.issuers, meta.caa_identities), account_url=account_url,
            draft=draft, account_thumbprint=ca.account_thumbprint() if draft is persist.Draft.D02 else "",
            account_hash_prefix=meta.account_hash_prefix or "")
        wanted = persist.wanted_records(spec.domains, who)[challenge.record_name]
        found = self.records.read(challenge.record_name, "TXT", spec)  # type: ignore[union-attr]
        judged = persist.judge([persist.txt_value(v) for v in found.values], wanted, draft, now=self.clock.now())
        if judged.verdict is persist.Verdict.PRESENT:
            ends = [persist.parse_value(v).persist_until for v in judged.ours]
            if ends and None not in ends:  # every record of ours ends: the latest one counts
                until.append(dt.datetime.fromtimestamp(max(e for e in ends if e is not None), dt.timezone.utc))
            return None
        return f"{challenge.record_name}: {judged.reason} (see `certrenew persist plan`)"


def _dns01(order: PendingOrder, note: str = "") -> Choice:
    offered = {c.domain for c in order.challenges}
    missing = [d for d in order.pending if d not in offered]
    if missing:
        raise CertrenewError(f"the CA offers no dns-01 challenge for {', '.join(missing)}")
    return Choice(Challenge.DNS01, order.challenges, note)
