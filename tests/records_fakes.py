"""Fakes for the record commands (persist, caa): hosted zones a person manages (ZoneRecords),
public DNS's CAA answers over the same zones (CaaLookup), and a CA that advertises its
caaIdentities and registers accounts (the parts of AcmeCa the record commands use)."""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace

from acme_flow.account import CaAccess
from acme_flow.caa_records import CaaRecords
from acme_flow.errors import DnsError, ZoneNotFound
from acme_flow.models import AccountState, AcmeSettings, CertificateSpec, Challenge, Config
from acme_flow.persist_records import PersistRecords
from acme_flow.ports import CaMeta, RecordSet
from fakes import FakeClock, FakeState

DIRECTORY = "https://ca.test/dir"
ISSUER = "ca.test"
THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"  # RFC 7638's example thumbprint


class FakeZones:
    """Route53 zones as ZoneRecords: `sets[(name, rtype)] = (values, ttl)` in Route53's
    presentation; a write is refused (as InvalidChangeBatch would be) when a set changed since it
    was read; `before_write(zone_id)` runs first (another writer); `fail[zone_id]` fails a zone."""

    def __init__(self, *zones: str) -> None:
        ids = itertools.count(1)
        self.zones = {zone: f"Z{next(ids):03d}" for zone in zones}
        self.sets: dict[tuple[str, str], tuple[tuple[str, ...], int]] = {}
        self.writes: list[list[tuple[RecordSet, tuple[str, ...]]]] = []
        self.reads: list[tuple[str, str]] = []
        self.fail: dict[str, Exception] = {}
        self.before_write = None

    def put(self, name: str, rtype: str, values: list[str], ttl: int = 60) -> None:
        self.sets[(name, rtype)] = (tuple(values), ttl)

    def values(self, name: str, rtype: str) -> tuple[str, ...]:
        return self.sets.get((name, rtype), ((), 0))[0]

    def zone_of(self, name: str) -> str | None:
        found = [z for z in self.zones if name == z or name.endswith("." + z)]
        return max(found, key=len) if found else None

    def read(self, name: str, rtype: str, spec: CertificateSpec) -> RecordSet:
        self.reads.append((name, rtype))
        zone = self.zone_of(name)
        if zone is None:
            raise ZoneNotFound(name)
        values, ttl = self.sets.get((name, rtype), ((), None))
        return RecordSet(name, rtype, values, self.zones[zone], zone, spec.dns.role_arn, ttl)

    def write(self, changes, deadline) -> None:
        for zone_id in sorted({old.zone_id for old, _ in changes}):
            if self.before_write:
                self.before_write(zone_id)
            if zone_id in self.fail:
                raise self.fail[zone_id]
        for old, _ in changes:
            if self.values(old.name, old.rtype) != old.values:
                raise DnsError(f"zone {old.zone_id}: {old.name} changed since certrenew read it")
        self.writes.append(list(changes))
        for old, new in changes:
            if new:
                self.sets[(old.name, old.rtype)] = (tuple(new), old.ttl or 300)
            else:
                self.sets.pop((old.name, old.rtype), None)


class FakeCaaDns:
    """Public DNS's CAA answers: what the zones hold (a person's write shows at once)."""

    def __init__(self, zones: FakeZones) -> None:
        self.zones = zones
        self.asked: list[str] = []

    def caa(self, name: str) -> list[str] | None:
        self.asked.append(name)
        return list(self.zones.values(name, "CAA")) or None


class MetaCa:
    """The CA as the record commands see it: a directory with caaIdentities (and, for draft
    -02, an accountHashPrefix), registration, the account key's thumbprint."""

    def __init__(self, caa_identities: tuple[str, ...] = (ISSUER,), account_hash_prefix: str | None = None) -> None:
        self.directory = DIRECTORY
        self._meta = CaMeta(caa_identities, account_hash_prefix)
        self.registered: list[str] = []
        self.made = 0

    def __call__(self) -> MetaCa:
        self.made += 1
        return self

    def new_account_key(self, directory: str, email: str | None) -> AccountState:
        return AccountState(directory, None, "not-a-real-key", email)

    def use_account(self, account: AccountState) -> AccountState:
        if account.url:
            return account
        url = f"https://ca.test/acct/{len(self.registered) + 1}"
        self.registered.append(url)
        return replace(account, url=url)

    def meta(self) -> CaMeta:
        return self._meta

    def account_thumbprint(self) -> str:
        return THUMBPRINT


def spec(name: str, *domains: str, challenge: Challenge = Challenge.DNS_PERSIST01) -> CertificateSpec:
    return CertificateSpec(name=name, domains=tuple(domains), challenge=challenge)


def config(*specs: CertificateSpec) -> Config:
    return Config(AcmeSettings(DIRECTORY), tuple(specs), source="certificates.yaml")


class World:
    """One config, the zones, public DNS over them, the CA and the state, and both use cases."""

    def __init__(self, *specs: CertificateSpec, zones: tuple[str, ...] = ("example.com", "shop.test"),
                 ca: MetaCa | None = None, now: dt.datetime | None = None) -> None:
        self.config = config(*specs)
        self.zones = FakeZones(*zones)
        self.dns = FakeCaaDns(self.zones)
        self.ca = ca or MetaCa()
        self.state = FakeState()
        self.clock = FakeClock(now) if now else FakeClock()

    def access(self) -> CaAccess:
        return CaAccess(self.ca, self.state, DIRECTORY, None)

    def persist(self, margin: dt.timedelta = dt.timedelta(days=7)) -> PersistRecords:
        return PersistRecords(self.config, self.zones, self.access(), self.state, self.clock, margin)

    def caa(self) -> CaaRecords:
        return CaaRecords(self.config, self.zones, self.dns, self.access(), self.state)

    @property
    def account_url(self) -> str:
        return self.state.accounts[DIRECTORY].url
