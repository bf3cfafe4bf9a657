"""Route53 as the DNS-01 provider: zone discovery, CNAME delegation, batched TXT changes, INSYNC waits.

- Zones: the longest matching *public* hosted zone (private ones are skipped), from one
  ListHostedZones pagination per role, cached for the run; or the certificate's
  `dns.hosted_zone_id`; a `dns.role_arn` reaches a zone in another account.
- Delegation: when `_acme-challenge.<domain>` is a CNAME (in one of our zones, else in public
  DNS), the TXT value is written at the CNAME's target, in the zone that holds the target.
- Changes: all values of a run go into one change batch per hosted zone, split only at
  Route53's limits (1,000 values and 32,000 characters, an UPSERT counting twice) and never
  inside one name's changes; all zones are then polled together until INSYNC, with a short
  first interval and backoff to a cap.
- Concurrent writers (two runs, another ACME client on the same `_acme-challenge` name):
  optimistic concurrency on Route53's atomic change batches. A name that holds TXT values is
  changed by a DELETE of exactly the values and TTL just read plus a CREATE of the new set, in
  one batch; a name that holds none by a CREATE alone. If another writer changed the name in
  between, Route53 refuses the whole batch (InvalidChangeBatch): read again and retry, a few
  times, within the deadline. Nobody's value is overwritten and nobody's TTL changed.
- Hygiene: values already on a name (another client's, or the other half of an apex +
  wildcard pair) are kept with their TTL; cleanup removes only our values, the same way.
- Cross-account roles: a role that cannot be assumed is a DnsRoleError (naming the role and
  what to check), so only the certificates that name it fail.
- Throttling: botocore's standard retry mode (set up in bootstrap) already retries Route53's
  `Throttling` and `PriorRequestNotComplete` with jittered exponential backoff.
"""
from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from ...deadline import Deadline, SystemClock
from ...errors import DnsError, DnsRoleError, ZoneNotFound
from ...models import CertificateSpec
from ...ports import NO_PROGRESS, Progress, TxtRecord
from .calls import (InvalidChangeBatch, Zone, bare_zone_id, change, client_errors, listing, normal,
                    pages, read_name, split_groups, submit, txt_values, wait_insync, within, zone_from)

log = logging.getLogger("certrenew.route53")

MAX_CNAME_HOPS = 8
LOCATE_LISTING_PAGES = 4  # zones up to 1,200 record sets are read whole once; bigger ones name by name
WRITE_ATTEMPTS = 5  # reads + change batches per zone when other writers keep changing our names
RETRY_BASE = 0.25  # seconds: a publish that lost a race waits a random 0.25-0.5, 0.25-1, ... s

CnameLookup = Callable[[str], "str | None"]


@dataclass
class _RecordSets:
    """Record sets of one zone by name and type: (values, ttl). `complete` when read whole."""

    by_name: dict[str, dict[str, tuple[list[str], int]]] = field(default_factory=dict)
    complete: bool = False


class Route53Dns:
    """The DnsProvider port on Route53.

    `client_for(role_arn)` returns a Route53 client (assuming the role when one is given).
    `lookup_cname(name)` returns the CNAME target of a name in public DNS, or None; it is only
    asked about names that no hosted zone of ours holds (bootstrap: dns_check.dns_cname_lookup).
    `clock` and `rng` time the waits and the jitter of the retries. `progress` hears of each
    zone's values published and of each change INSYNC (a status line on a terminal).
    """

    def __init__(self, client_for: Callable[[str | None], Any], lookup_cname: CnameLookup, *,
                 clock: Any = None, rng: random.Random | None = None, progress: Progress = NO_PROGRESS) -> None:
        self._client_for = client_for
        self._progress = progress
        self._lookup_cname = lookup_cname
        self._clock = clock or SystemClock()
        self._random: Any = rng or random
        self._lock = threading.RLock()
        self._zones: dict[str | None, list[Zone]] = {}
        self._zone_by_id: dict[str, Zone] = {}
        self._name_servers: dict[str, list[str]] = {}
        self._record_sets: dict[str, _RecordSets] = {}
        self._dns_cnames: dict[str, str | None] = {}

    # -- zones ----------------------------------------------------------------------------------

    def locate(self, record_name: str, value: str, spec: CertificateSpec) -> TxtRecord:
        """The zone that must hold `record_name`'s TXT value, following CNAME delegation."""
        role = spec.dns.role_arn
        name = normal(record_name)
        override = self._zone(spec.dns.hosted_zone_id, role) if spec.dns.hosted_zone_id else None
        if override is not None and not within(name, override.name):
            raise ZoneNotFound(name, f"hosted zone {override.id} is {override.name}")
        chain = [name]
        while True:
            if override is not None and within(name, override.name):
                zone: Zone | None = override
            else:
                zone = self._longest_match(name, role)
            target = self._cname_in_zone(zone, name, role) if zone else self._cname_in_dns(name)
            if target is None:
                if zone is None:
                    first = chain[0].removeprefix("_acme-challenge.")
                    if len(chain) == 1:
                        raise ZoneNotFound(first)
                    raise ZoneNotFound(name, f"{_describe_chain(chain)}: the CNAME target is in no hosted zone")
                if len(chain) > 1:
                    log.info("%s: writing the TXT value in zone %s (%s)", chain[0], zone.id, _describe_chain(chain))
                return TxtRecord(name=name, value=value, zone_id=zone.id, role_arn=role)
            if target in chain or len(chain) > MAX_CNAME_HOPS:
                raise DnsError(f"CNAME chain from {chain[0]} loops or is too long: {_describe_chain(chain + [target])}")
            chain.append(target)
            name = target

    def _longest_match(self, name: str, role: str | None) -> Zone | None:
        candidates = [z for z in self._zones_for(role) if not z.private and within(name, z.name)]
        if not candidates:
            return None
        longest = max(len(z.name) for z in candidates)
        best = [z for z in candidates if len(z.name) == longest]
        if len(best) > 1:
            ids = ", ".join(sorted(z.id for z in best))
            raise DnsError(f"{len(best)} public hosted zones are named {best[0].name} ({ids}): "
                           f"set dns.hosted_zone_id for {name.removeprefix('_acme-challenge.')}")
        return best[0]

    def _zones_for(self, role: str | None) -> list[Zone]:
        """Every hosted zone the role sees: one ListHostedZones pagination per role and run."""
        with self._lock:
            if role not in self._zones:
                r53 = self._r53(role)
                try:
                    zones = [zone_from(z) for page in r53.get_paginator("list_hosted_zones").paginate()
                             for z in page["HostedZones"]]
                except client_errors() as exc:
                    raise DnsError(f"cannot list Route53 hosted zones{_as(role)}: {exc}") from None
                log.info("%d hosted zones%s (%d public)", len(zones), _as(role), sum(not z.private for z in zones))
                self._zones[role] = zones
                for z in zones:
                    self._zone_by_id.setdefault(z.id, z)
            return self._zones[role]

    def _zone(self, zone_id: str, role: str | None) -> Zone:
        zone_id = bare_zone_id(zone_id)
        with self._lock:
            if zone_id not in self._zone_by_id:
                self._get_hosted_zone(zone_id, role)
            return self._zone_by_id[zone_id]

    def _get_hosted_zone(self, zone_id: str, role: str | None) -> None:
        r53 = self._r53(role)
        try:
            got = r53.get_hosted_zone(Id=zone_id)
        except r53.exceptions.NoSuchHostedZone:
            raise ZoneNotFound(zone_id, f"the configured hosted_zone_id does not exist{_as(role)}") from None
        except client_errors() as exc:
            raise DnsError(f"cannot read hosted zone {zone_id}{_as(role)}: {exc}") from None
        self._zone_by_id[zone_id] = zone_from(got["HostedZone"])
        self._name_servers[zone_id] = list(got.get("DelegationSet", {}).get("NameServers", []))

    def name_servers(self, record: TxtRecord) -> list[str]:
        with self._lock:
            if record.zone_id not in self._name_servers:
                self._get_hosted_zone(record.zone_id, record.role_arn)
            return self._name_servers[record.zone_id]

    def zone(self, zone_id: str, role: str | None = None) -> Zone:
        """The hosted zone with this id (read once per run): records.py names the zone it writes."""
        return self._zone(zone_id, role)

    def client(self, role: str | None = None) -> Any:
        """The Route53 client for `role`; a role that cannot be assumed is a DnsRoleError."""
        return self._r53(role)

    # -- CNAME delegation -----------------------------------------------------------------------

    def _cname_in_zone(self, zone: Zone, name: str, role: str | None) -> str | None:
        found = self._record_sets_at(zone, name, role).get("CNAME")
        return normal(found[0][0]) if found and found[0] else None

    def _cname_in_dns(self, name: str) -> str | None:
        with self._lock:
            if name not in self._dns_cnames:
                target = self._lookup_cname(name)
                self._dns_cnames[name] = normal(target) if target else None
                if target:
                    log.info("%s is a CNAME to %s in DNS", name, self._dns_cnames[name])
            return self._dns_cnames[name]

    def _record_sets_at(self, zone: Zone, name: str, role: str | None) -> dict[str, tuple[list[str], int]]:
        """What the zone holds at `name` (read for the run: the whole zone once if it is small)."""
        with self._lock:
            sets = self._record_sets.get(zone.id)
            if sets is None:
                sets = self._record_sets[zone.id] = _RecordSets()
                if pages(zone.record_count) <= LOCATE_LISTING_PAGES:
                    whole = listing(self._r53(role), zone.id, LOCATE_LISTING_PAGES)
                    if whole is not None:
                        sets.by_name, sets.complete = whole, True
            if sets.complete:
                return sets.by_name.get(name, {})
            if name not in sets.by_name:
                sets.by_name[name] = read_name(self._r53(role), zone.id, name)
            return sets.by_name[name]

    # -- changes --------------------------------------------------------------------------------

    def _r53(self, role: str | None) -> Any:
        """The Route53 client for `role`; a role that cannot be assumed fails as a DnsRoleError."""
        try:
            return self._client_for(role)
        except DnsError:
            raise
        except client_errors() as exc:
            if role:
                raise DnsRoleError(role, str(exc)) from None
            raise DnsError(f"cannot reach Route53: {exc}") from None

    def present(self, records: list[TxtRecord], deadline: Deadline) -> None:
        """Add our values to each name (others' values and TTL kept), one batch per zone; wait for INSYNC."""
        submitted: list[tuple[Any, str, str]] = []
        for (zone_id, role), zone_records in _by_zone(records).items():
            r53, wanted = self._r53(role), _values_by_name(zone_records)
            try:
                deadline.retry(lambda: self._write(r53, zone_id, wanted, _adding, "publishing", submitted),
                               f"a retry of the Route53 change in zone {zone_id}", retryable=InvalidChangeBatch,
                               attempts=WRITE_ATTEMPTS, base=RETRY_BASE,
                               jitter=lambda delay: self._random.uniform(RETRY_BASE, 2 * delay))
            except InvalidChangeBatch as exc:
                raise DnsError(f"{exc} (another writer kept changing these names: "
                               f"gave up after {WRITE_ATTEMPTS} attempts)") from None
            self._progress.advance(len(zone_records))
        self._wait_insync(submitted, deadline)

    def remove(self, records: list[TxtRecord]) -> None:
        """Delete exactly our values, one batch per zone; other values on the same names stay.
        A batch that lost a race with another writer is read and tried again at once."""
        failures = []
        at_once = Deadline(self._clock, 0)
        for (zone_id, role), zone_records in _by_zone(records).items():
            ours = _values_by_name(zone_records)
            try:
                at_once.retry(lambda: self._write(self._r53(role), zone_id, ours, _removing, "removal", []),
                              f"the cleanup in zone {zone_id}", retryable=InvalidChangeBatch,
                              attempts=WRITE_ATTEMPTS, base=0.0)
            except InvalidChangeBatch as exc:
                failures.append(f"zone {zone_id}: {exc}")
            except DnsError as exc:
                failures.append(str(exc))
        if failures:
            raise DnsError("could not remove every challenge record: " + "; ".join(failures))

    def _size_of(self, zone_id: str) -> int | None:
        with self._lock:
            zone = self._zone_by_id.get(zone_id)
        return zone.record_count if zone else None

    def _write(self, r53, zone_id: str, ours: dict[str, list[str]], edit: "_Edit", what: str,
               pending: list[tuple]) -> None:
        """Read the names fresh, then change each one from exactly what was read (see the module
        docstring); the changes not yet INSYNC are added to `pending` as they are submitted, so
        a batch that went through before a later one lost a race is still waited for.
        InvalidChangeBatch: someone wrote first."""
        current = txt_values(r53, zone_id, list(ours), self._size_of(zone_id))
        groups = [g for g in (edit(name, current.get(name), values) for name, values in ours.items()) if g]
        for part in split_groups(groups):
            change_id, status = submit(r53, zone_id, part, f"{what} of challenge records")
            names = len({c["ResourceRecordSet"]["Name"] for c in part})
            log.info("zone %s: %s of %d TXT names submitted (%s, %s)", zone_id, what, names, change_id, status)
            if status != "INSYNC":
                pending.append((r53, zone_id, change_id))

    def _wait_insync(self, changes: list[tuple[Any, str, str]], deadline: Deadline) -> None:
        wait_insync(changes, deadline, self._progress)


# -- DNS-01 edits -------------------------------------------------------------------------------


_Edit = Callable[[str, "tuple[list[str], int] | None", list[str]], list[dict]]


def _adding(name: str, there: tuple[list[str], int] | None, ours: list[str]) -> list[dict]:
    """Changes that add our values to a name: CREATE when it holds no TXT set, else DELETE of
    exactly what was read and CREATE of the union, with the TTL it has (one atomic pair)."""
    if there is None:
        return [change("CREATE", name, ours)]
    values, ttl = there
    missing = [v for v in ours if v not in values]
    if not missing:
        return []
    return [change("DELETE", name, values, ttl), change("CREATE", name, values + missing, ttl)]


def _removing(name: str, there: tuple[list[str], int] | None, ours: list[str]) -> list[dict]:
    """Changes that take our values off a name: DELETE of exactly what was read, and CREATE of
    the rest (same TTL) when other values remain."""
    if there is None or not any(v in there[0] for v in ours):
        return []
    values, ttl = there
    rest = [v for v in values if v not in ours]
    return [change("DELETE", name, values, ttl)] + ([change("CREATE", name, rest, ttl)] if rest else [])


def _by_zone(records: list[TxtRecord]) -> dict[tuple[str, str | None], list[TxtRecord]]:
    out: dict[tuple[str, str | None], list[TxtRecord]] = defaultdict(list)
    for r in records:
        out[(r.zone_id, r.role_arn)].append(r)
    return out


def _values_by_name(records: list[TxtRecord]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for r in records:
        quoted = f'"{r.value}"'
        if quoted not in out[r.name]:
            out[r.name].append(quoted)
    return out


def _as(role: str | None) -> str:
    return f" (as {role})" if role else ""


def _describe_chain(chain: list[str]) -> str:
    return " -> ".join(chain[:1] + [f"CNAME {n}" for n in chain[1:]])
