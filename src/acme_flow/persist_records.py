"""`certrenew persist plan|apply|check`: the `_validation-persist` TXT records (dns-persist-01)
a person writes once so that renewals need no DNS write at all.

For the selected certificates whose `challenge` may use dns-persist-01: one record per base
domain (`policy=wildcard` when a wildcard of it is configured), naming the configured CA's issuer
(its first caaIdentity) and our account, in the draft the CA speaks. `plan` and `check` only read
(`check` fails when a record is missing or stale); `apply` writes the missing and stale ones, one
change batch per zone, keeping every value of other issuers and other accounts on the name.
Ports only: the records come from ZoneRecords, the account from the state and the CA.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from . import persist
from .account import CaAccess
from .ca_identity import OurAccount, our_account
from .deadline import Deadline
from .errors import CertrenewError, DnsError, InputError
from .models import CertificateSpec, Config
from .ports import Adapters, AcmeCa, Clock, RecordSet, StateStore, ZoneRecords

PRESENT, MISSING, STALE, ERROR = "present", "missing", "stale", "error"
DEFAULT_MARGIN = dt.timedelta(days=7)  # a record passing its persistUntil within this is stale
NEW_TTL = 300


@dataclass(frozen=True)
class PersistRecord:
    """One `_validation-persist` record: where it goes, what we want there, and how it stands.

    `values`: the whole set to publish in Route53's quoted form (others' values kept, ours
    replaced); `published`: the values there now (unquoted)."""

    name: str
    certificates: tuple[str, ...]
    domains: tuple[str, ...]
    zone: str
    zone_id: str
    value: str
    status: str
    reason: str
    persist_until: dt.datetime | None = None
    values: tuple[str, ...] = ()
    published: tuple[str, ...] = ()
    ttl: int = NEW_TTL
    written: bool = False
    found: RecordSet | None = field(default=None, compare=False, repr=False)

    @property
    def needs_write(self) -> bool:
        return self.status in (MISSING, STALE) and self.found is not None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "certificates": list(self.certificates), "domains": list(self.domains),
                "zone": self.zone, "zone_id": self.zone_id, "value": self.value, "status": self.status,
                "reason": self.reason, "written": self.written,
                "persist_until": self.persist_until.isoformat() if self.persist_until else None,
                "values": list(self.values), "published": list(self.published), "ttl": self.ttl}


@dataclass(frozen=True)
class PersistReport:
    command: str  # plan | apply | check
    directory: str
    issuer: str | None
    account_url: str | None
    draft: str | None
    records: tuple[PersistRecord, ...]

    @property
    def errors(self) -> list[PersistRecord]:
        return [r for r in self.records if r.status == ERROR]

    @property
    def in_place(self) -> bool:
        return all(r.status == PRESENT or r.written for r in self.records)

    @property
    def exit_code(self) -> int:
        if self.errors or (self.command == "check" and not self.in_place):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "directory": self.directory, "issuer": self.issuer,
                "account_url": self.account_url, "draft": self.draft, "in_place": self.in_place,
                "records": [r.to_dict() for r in self.records]}


class PersistRecords:
    """The use case: survey the records, and write the ones that are missing or stale."""

    def __init__(self, config: Config, records: ZoneRecords, access: CaAccess, state: StateStore, clock: Clock,
                 margin: dt.timedelta = DEFAULT_MARGIN) -> None:
        self.config = config
        self.records = records
        self.access = access
        self.state = state
        self.clock = clock
        self.margin = margin

    @classmethod
    def from_adapters(cls, config: Config, adapters: Adapters, margin: dt.timedelta = DEFAULT_MARGIN) -> PersistRecords:
        if adapters.records is None:
            raise CertrenewError("no ZoneRecords adapter is wired: persist commands need Route53 record access")
        access = CaAccess(adapters.ca, adapters.state, config.acme.directory, config.acme.email)
        return cls(config, adapters.records, access, adapters.state, adapters.clock, margin)

    def plan(self, only: Sequence[str] = ()) -> PersistReport:
        return self._survey("plan", only)

    def check(self, only: Sequence[str] = ()) -> PersistReport:
        return self._survey("check", only)

    def apply(self, deadline: Deadline, only: Sequence[str] = ()) -> PersistReport:
        """Write every missing or stale record (one write per zone: a zone that fails is
        reported, the others are still written)."""
        report = self._survey("apply", only)
        by_zone: dict[str, list[PersistRecord]] = defaultdict(list)
        for record in report.records:
            if record.needs_write:
                by_zone[record.zone_id].append(record)
        done: dict[str, PersistRecord] = {}
        for zone_records in by_zone.values():
            try:
                self.records.write([(r.found, r.values) for r in zone_records], deadline)
                done.update({r.name: replace(r, written=True) for r in zone_records})
            except DnsError as exc:
                done.update({r.name: replace(r, status=ERROR, reason=f"not written: {exc}") for r in zone_records})
        return replace(report, records=tuple(done.get(r.name, r) for r in report.records))

    # -- the survey -----------------------------------------------------------------------------

    def _survey(self, command: str, only: Sequence[str]) -> PersistReport:
        specs = [s for s in select(self.config, only) if s.challenge.may_persist]
        if not specs:
            return PersistReport(command, self.config.acme.directory, None, None, None, ())
        self.state.check_ready()
        ours, ca = our_account(self.access)
        who = identity(ours, ca)
        now = self.clock.now()
        rows = [self._judged(name, wanted, spec, certs, now, who.draft)
                for name, (wanted, spec, certs) in wanted_by_name(specs, who).items()]
        return PersistReport(command, ours.directory, ours.issuer, ours.account_url, who.draft.value, tuple(rows))

    def _judged(self, name: str, wanted: persist.WantedRecord, spec: CertificateSpec, certs: list[CertificateSpec],
                now: dt.datetime, draft: persist.Draft) -> PersistRecord:
        value = wanted.value(draft)
        base = PersistRecord(name=name, certificates=tuple(dict.fromkeys(c.name for c in certs)),
                             domains=covered(name, certs), zone="-", zone_id="-", value=value, status=ERROR,
                             reason="", persist_until=wanted.persist_until)
        try:
            found = self.records.read(name, "TXT", spec)
        except DnsError as exc:
            return replace(base, reason=str(exc))
        readable, opaque = decoded(found.values)
        judgement = persist.judge(list(readable), wanted, draft, now=now, margin=self.margin)
        quoted = [readable.get(v) or persist.txt_rdata(v) for v in judgement.desired_values(value)]
        publish = tuple(dict.fromkeys([*quoted[:-1], *opaque, quoted[-1]]))
        present = judgement.verdict is persist.Verdict.PRESENT
        return replace(base, zone=found.zone_name, zone_id=found.zone_id, status=judgement.verdict.value,
                       reason=judgement.reason, found=found, ttl=found.ttl or NEW_TTL,
                       persist_until=_until(judgement.ours[-1]) if present else wanted.persist_until,
                       values=found.values if present else publish, published=(*readable, *opaque))


def select(config: Config, only: Sequence[str]) -> list[CertificateSpec]:
    """The certificates named by `only` (all when empty); an unknown name is bad input."""
    known = config.names()
    unknown = [n for n in only if n not in known]
    if unknown:
        raise InputError(f"unknown certificate name(s) {unknown}: the config has {known}")
    return [c for c in config.certificates if not only or c.name in only]


def identity(ours: OurAccount, ca: AcmeCa) -> persist.PersistIdentity:
    """Our issuer and account in the draft the CA speaks (-02: with the key thumbprint)."""
    prefix = ours.meta.account_hash_prefix
    draft = persist.pick_draft(directory_meta={"accountHashPrefix": prefix} if prefix else {})
    thumbprint = ca.account_thumbprint() if draft is persist.Draft.D02 else ""
    return persist.PersistIdentity(issuer=ours.issuer, account_url=ours.account_url, draft=draft,
                                   account_thumbprint=thumbprint, account_hash_prefix=prefix or "")


def wanted_by_name(specs: Sequence[CertificateSpec], who: persist.PersistIdentity
                   ) -> dict[str, tuple[persist.WantedRecord, CertificateSpec, list[CertificateSpec]]]:
    """Record name -> (the record, the first certificate's spec to locate it with, every
    certificate that needs it): a wildcard in any certificate makes the record a wildcard one."""
    out: dict[str, tuple[persist.WantedRecord, CertificateSpec, list[CertificateSpec]]] = {}
    for spec in specs:
        for name, wanted in persist.wanted_records(spec.domains, who).items():
            if name in out:
                before, first, certs = out[name]
                out[name] = (replace(before, wildcard=before.wildcard or wanted.wildcard), first, certs + [spec])
            else:
                out[name] = (wanted, spec, [spec])
    return out


def covered(name: str, certs: Sequence[CertificateSpec]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(d for c in certs for d in c.domains if persist.record_name(d) == name))


def decoded(values: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Route53's quoted TXT values as (unquoted value -> as stored, values that do not parse:
    kept exactly as they are, never judged)."""
    readable: dict[str, str] = {}
    opaque: list[str] = []
    for raw in values:
        try:
            readable.setdefault(persist.txt_value(raw), raw)
        except persist.PersistError:
            opaque.append(raw)
    return readable, opaque


def _until(value: str) -> dt.datetime | None:
    seconds = persist.parse_value(value).persist_until
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
