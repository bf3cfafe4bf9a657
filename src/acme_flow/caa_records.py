"""`certrenew caa plan|apply|check`: CAA bound to our account (RFC 8657).

For each hosted zone holding a configured name, the apex's CAA set gets an `issue` entry (and
`issuewild` when a configured name in the zone is a wildcard) for each configured CA's issuer (its
first caaIdentity: the primary, then each `acme.fallback`) with `accounturi=<our account there>`
and `validationmethods=<the methods the zone's certificates use>`; other CAs' entries stay unless
`exclusive`. `check` judges every configured CA, each with its own account (a set that blocks a
fallback would fail it on the day it is needed); a run's own check before ordering judges the
primary, which every order goes to first. `apply` writes a zone only when
its plan changes something. `check` reads what public DNS serves for every configured name,
climbing the tree as a CA does, and reports each set that would block our CA or our account.
Ports only: ZoneRecords for the zones, CaaLookup for public DNS, the account from the state.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from . import caa
from .account import CaAccess
from .ca_identity import OurAccount, our_account
from .deadline import Deadline
from .errors import CertrenewError, DnsError
from .models import CertificateSpec, Challenge, Config
from .parallel import map_all
from .ports import Adapters, CaaLookup, RecordSet, StateStore, ZoneRecords

METHODS = {Challenge.DNS01: ("dns-01",), Challenge.DNS_PERSIST01: ("dns-persist-01",),
           Challenge.AUTO: ("dns-01", "dns-persist-01")}


@dataclass(frozen=True)
class ZoneCaa:
    """The plan for one zone apex: what is there, what it becomes, and why."""

    zone: str
    zone_id: str
    certificates: tuple[str, ...]
    names: tuple[str, ...]
    methods: tuple[str, ...]
    wildcard: bool
    existing: tuple[str, ...] = ()
    plan: caa.CaaPlan | None = None
    error: str | None = None
    written: bool = False
    found: RecordSet | None = field(default=None, compare=False, repr=False)

    @property
    def changed(self) -> bool:
        return self.plan is not None and self.plan.changed

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {"zone": self.zone, "zone_id": self.zone_id, "certificates": list(self.certificates),
                "names": list(self.names), "methods": list(self.methods), "wildcard": self.wildcard,
                "existing": list(self.existing), "changed": self.changed, "written": self.written,
                "values": plan.values() if plan else None,
                "added": [str(r) for r in plan.added] if plan else [],
                "removed": [str(r) for r in plan.removed] if plan else [],
                "warnings": list(plan.warnings) if plan else [], "error": self.error}


@dataclass(frozen=True)
class NameCaa:
    """Would the CA issue for one configured name, by one method it may use?"""

    name: str
    certificate: str
    method: str
    allowed: bool
    reason: str
    found_at: str | None = None
    issuer: str = ""  # the CA judged (its first caaIdentity): the primary, or a fallback

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "certificate": self.certificate, "method": self.method,
                "allowed": self.allowed, "reason": self.reason, "found_at": self.found_at, "issuer": self.issuer}


@dataclass(frozen=True)
class CaaReport:
    command: str  # plan | apply | check
    directory: str
    issuer: str
    account_url: str
    exclusive: bool
    zones: tuple[ZoneCaa, ...] = ()
    names: tuple[NameCaa, ...] = ()

    @property
    def blocked(self) -> list[NameCaa]:
        return [n for n in self.names if not n.allowed]

    @property
    def exit_code(self) -> int:
        return 1 if self.blocked or any(z.error for z in self.zones) else 0

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "directory": self.directory, "issuer": self.issuer,
                "account_url": self.account_url, "exclusive": self.exclusive,
                "zones": [z.to_dict() for z in self.zones], "names": [n.to_dict() for n in self.names],
                "blocked": len(self.blocked)}


class CaaRecords:
    """The use case: plan each zone's CAA set, write the changed ones, check what DNS serves."""

    def __init__(self, config: Config, records: ZoneRecords | None, lookup: CaaLookup | None, access: CaAccess,
                 state: StateStore, fallbacks: Sequence[CaAccess] = (), workers: int = 16) -> None:
        self.config = config
        self.records = records
        self.lookup = lookup
        self.access = access
        self.state = state
        self.fallbacks = tuple(fallbacks)  # acme.fallback: their entries too, each with its own account
        self.workers = workers

    @classmethod
    def from_adapters(cls, config: Config, adapters: Adapters) -> CaaRecords:
        access = CaAccess(adapters.ca, adapters.state, config.acme.directory, config.acme.email)
        fallbacks = [CaAccess(make, adapters.state, f.directory, f.email)
                     for f, make in zip(config.acme.fallback, adapters.fallback_cas)]
        return cls(config, adapters.records, adapters.caa, access, adapters.state, fallbacks)

    def plan(self, exclusive: bool = False) -> CaaReport:
        ours = self._ours()
        others = [our_account(a)[0] for a in self.fallbacks]
        zones = tuple(self._planned(z, [ours, *others], exclusive) for z in self._zones())
        return CaaReport("plan", ours.directory, ours.issuer, ours.account_url, exclusive, zones)

    def apply(self, deadline: Deadline, exclusive: bool = False) -> CaaReport:
        """One write per zone whose plan changes something; a zone that fails is reported."""
        report = self.plan(exclusive)
        zones = []
        for zone in report.zones:
            if zone.changed and zone.found is not None and zone.plan is not None:
                try:
                    self._zone_records().write([(zone.found, tuple(zone.plan.values()))], deadline)
                    zone = replace(zone, written=True)
                except DnsError as exc:
                    zone = replace(zone, error=f"not written: {exc}")
            zones.append(zone)
        return replace(report, command="apply", zones=tuple(zones))

    def check(self, only: Sequence[str] = (), ours: OurAccount | None = None) -> CaaReport:
        """For every configured name (of the `only` certificates, when given) and method: the CAA
        set a CA finds, and its verdict (for `ours`, when given: no account is registered)."""
        if self.lookup is None:
            raise CertrenewError("no CAA lookup is wired: caa check needs DNS access")
        judged_cas = [ours] if ours else [self._ours(), *(our_account(a)[0] for a in self.fallbacks)]
        ours = judged_cas[0]
        lookup = _memo(self.lookup.caa)
        specs = [s for s in self.config.certificates if not only or s.name in only]
        asked = [(spec, name, method, ca) for ca in judged_cas for spec in specs for name in spec.domains
                 for method in METHODS[spec.challenge]]
        rows = map_all(lambda a: self._judged(*a, lookup), asked, self.workers)  # DNS answers concurrently
        return CaaReport("check", ours.directory, ours.issuer, ours.account_url, False, names=tuple(rows))

    # -- steps ----------------------------------------------------------------------------------

    def _ours(self) -> OurAccount:
        self.state.check_ready()
        return our_account(self.access)[0]

    def _zone_records(self) -> ZoneRecords:
        if self.records is None:
            raise CertrenewError("no ZoneRecords adapter is wired: caa plan and apply need Route53 record access")
        return self.records

    def _zones(self) -> list[ZoneCaa]:
        """The zones holding a configured name, with their certificates, names and methods."""
        records = self._zone_records()
        zones: dict[str, ZoneCaa] = {}
        for spec in self.config.certificates:
            for name in spec.domains:
                try:
                    at = records.read(caa.normalize(name), "CAA", spec)
                except DnsError as exc:
                    zones[f"error:{name}"] = ZoneCaa("-", "-", (spec.name,), (name,), METHODS[spec.challenge],
                                                     name.startswith("*."), error=str(exc))
                    continue
                apex = at if at.name == at.zone_name else None
                zone = zones.get(at.zone_id) or ZoneCaa(at.zone_name, at.zone_id, (), (), (), False,
                                                        found=apex or records.read(at.zone_name, "CAA", spec))
                zones[at.zone_id] = replace(
                    zone, certificates=_added(zone.certificates, spec.name), names=_added(zone.names, name),
                    methods=_added(zone.methods, *METHODS[spec.challenge]),
                    wildcard=zone.wildcard or name.startswith("*."))
        return list(zones.values())

    def _planned(self, zone: ZoneCaa, cas: Sequence[OurAccount], exclusive: bool) -> ZoneCaa:
        """The zone's new set: an entry for every configured CA (the primary, then the fallbacks)."""
        if zone.error or zone.found is None:
            return zone
        methods = tuple(m for m in ("dns-01", "dns-persist-01") if m in zone.methods)
        wanted = [caa.WantedIssuer(ca.issuer, ca.account_url, methods, zone.wildcard) for ca in cas]
        try:
            plan = caa.plan_zone(zone.zone, zone.found.values, wanted, exclusive)
        except caa.MalformedCaa as exc:
            return replace(zone, existing=zone.found.values,
                           error=f"the CAA set of {zone.zone} cannot be read, fix it by hand first: {exc}")
        return replace(zone, existing=zone.found.values, plan=plan)

    def _judged(self, spec: CertificateSpec, name: str, method: str, ours: OurAccount,
                lookup: Callable[[str], list[str] | None]) -> NameCaa:
        try:
            found = caa.relevant_set(name, lookup)
        except (caa.MalformedCaa, DnsError) as exc:
            return NameCaa(name, spec.name, method, False, f"blocked: {exc}", issuer=ours.issuer)
        verdict = caa.judge(found, ours.issuers, ours.account_url, method, name)
        return NameCaa(name, spec.name, method, verdict.allowed, verdict.reason, verdict.found_at, ours.issuer)


def _added(items: tuple[str, ...], *more: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*items, *more)))


def _memo(lookup: Callable[[str], list[str] | None]) -> Callable[[str], list[str] | None]:
    """Each name is looked up once per check (names of a zone share their parents), also when
    many names are judged at once: a name being looked up is waited for, not asked again."""
    seen: dict[str, Future] = {}
    lock = threading.Lock()

    def cached(name: str) -> list[str] | None:
        with lock:
            pending = seen.get(name)
            mine = pending is None
            if mine:
                pending = seen[name] = Future()
        if mine:
            try:
                pending.set_result(lookup(name))
            except Exception as exc:  # noqa: BLE001 - every asker of this name gets it
                pending.set_exception(exc)
        return pending.result()
    return cached
