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

from ..deadline import Deadline, SystemClock
from ..errors import DeadlineExceeded, DnsError, DnsRoleError, ZoneNotFound
from ..models import CertificateSpec
from ..ports import TxtRecord

log = logging.getLogger("certrenew.route53")

TTL = 30
MAX_VALUES_PER_BATCH = 1000  # ResourceRecord elements per request; an UPSERT counts twice
MAX_CHARS_PER_BATCH = 32000  # characters of all Value elements; an UPSERT counts twice
FIRST_POLL = 0.5  # GetChange: first wait, then x POLL_FACTOR up to MAX_POLL
POLL_FACTOR = 1.5
MAX_POLL = 5.0
MAX_CNAME_HOPS = 8
PAGE_SIZE = 300  # the most ListResourceRecordSets returns per call
LOCATE_LISTING_PAGES = 4  # zones up to 1,200 record sets are read whole once; bigger ones name by name
WRITE_ATTEMPTS = 5  # reads + change batches per zone when other writers keep changing our names
RETRY_BASE = 0.25  # seconds: a publish that lost a race waits a random 0.25-0.5, 0.25-1, ... s

CnameLookup = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Zone:
    id: str
    name: str  # no trailing dot
    private: bool = False
    record_count: int | None = None  # ResourceRecordSetCount when Route53 said it


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
    `clock` and `rng` time the waits and the jitter of the retries.
    """

    def __init__(self, client_for: Callable[[str | None], Any], lookup_cname: CnameLookup, *,
                 clock: Any = None, rng: random.Random | None = None) -> None:
        self._client_for = client_for
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
        name = _normal(record_name)
        override = self._zone(spec.dns.hosted_zone_id, role) if spec.dns.hosted_zone_id else None
        if override is not None and not _within(name, override.name):
            raise ZoneNotFound(name, f"hosted zone {override.id} is {override.name}")
        chain = [name]
        while True:
            if override is not None and _within(name, override.name):
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
        candidates = [z for z in self._zones_for(role) if not z.private and _within(name, z.name)]
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
                    zones = [_zone_from(z) for page in r53.get_paginator("list_hosted_zones").paginate()
                             for z in page["HostedZones"]]
                except _client_errors() as exc:
                    raise DnsError(f"cannot list Route53 hosted zones{_as(role)}: {exc}") from None
                log.info("%d hosted zones%s (%d public)", len(zones), _as(role), sum(not z.private for z in zones))
                self._zones[role] = zones
                for z in zones:
                    self._zone_by_id.setdefault(z.id, z)
            return self._zones[role]

    def _zone(self, zone_id: str, role: str | None) -> Zone:
        zone_id = _zone_id(zone_id)
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
        except _client_errors() as exc:
            raise DnsError(f"cannot read hosted zone {zone_id}{_as(role)}: {exc}") from None
        self._zone_by_id[zone_id] = _zone_from(got["HostedZone"])
        self._name_servers[zone_id] = list(got.get("DelegationSet", {}).get("NameServers", []))

    def name_servers(self, record: TxtRecord) -> list[str]:
        with self._lock:
            if record.zone_id not in self._name_servers:
                self._get_hosted_zone(record.zone_id, record.role_arn)
            return self._name_servers[record.zone_id]

    # -- CNAME delegation -----------------------------------------------------------------------

    def _cname_in_zone(self, zone: Zone, name: str, role: str | None) -> str | None:
        found = self._record_sets_at(zone, name, role).get("CNAME")
        return _normal(found[0][0]) if found and found[0] else None

    def _cname_in_dns(self, name: str) -> str | None:
        with self._lock:
            if name not in self._dns_cnames:
                target = self._lookup_cname(name)
                self._dns_cnames[name] = _normal(target) if target else None
                if target:
                    log.info("%s is a CNAME to %s in DNS", name, self._dns_cnames[name])
            return self._dns_cnames[name]

    def _record_sets_at(self, zone: Zone, name: str, role: str | None) -> dict[str, tuple[list[str], int]]:
        """What the zone holds at `name` (read for the run: the whole zone once if it is small)."""
        with self._lock:
            sets = self._record_sets.get(zone.id)
            if sets is None:
                sets = self._record_sets[zone.id] = _RecordSets()
                if _pages(zone.record_count) <= LOCATE_LISTING_PAGES:
                    listing = _listing(self._r53(role), zone.id, LOCATE_LISTING_PAGES)
                    if listing is not None:
                        sets.by_name, sets.complete = listing, True
            if sets.complete:
                return sets.by_name.get(name, {})
            if name not in sets.by_name:
                sets.by_name[name] = _read_name(self._r53(role), zone.id, name)
            return sets.by_name[name]

    # -- changes --------------------------------------------------------------------------------

    def _r53(self, role: str | None) -> Any:
        """The Route53 client for `role`; a role that cannot be assumed fails as a DnsRoleError."""
        try:
            return self._client_for(role)
        except DnsError:
            raise
        except _client_errors() as exc:
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
                               f"a retry of the Route53 change in zone {zone_id}", retryable=_InvalidChangeBatch,
                               attempts=WRITE_ATTEMPTS, base=RETRY_BASE,
                               jitter=lambda delay: self._random.uniform(RETRY_BASE, 2 * delay))
            except _InvalidChangeBatch as exc:
                raise DnsError(f"{exc} (another writer kept changing these names: "
                               f"gave up after {WRITE_ATTEMPTS} attempts)") from None
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
                              f"the cleanup in zone {zone_id}", retryable=_InvalidChangeBatch,
                              attempts=WRITE_ATTEMPTS, base=0.0)
            except _InvalidChangeBatch as exc:
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
        current = _txt_values(r53, zone_id, list(ours), self._size_of(zone_id))
        groups = [g for g in (edit(name, current.get(name), values) for name, values in ours.items()) if g]
        for part in _split_groups(groups):
            change_id, status = _submit(r53, zone_id, part, f"{what} of challenge records")
            names = len({c["ResourceRecordSet"]["Name"] for c in part})
            log.info("zone %s: %s of %d TXT names submitted (%s, %s)", zone_id, what, names, change_id, status)
            if status != "INSYNC":
                pending.append((r53, zone_id, change_id))

    def _wait_insync(self, changes: list[tuple[Any, str, str]], deadline: Deadline) -> None:
        """Poll every pending change together until all are INSYNC, bounded by the deadline
        (with one last look when it comes)."""
        pending = list(changes)

        def all_insync() -> bool | None:
            pending[:] = [c for c in pending if _change_status(*c) != "INSYNC"]
            return not pending or None
        try:
            if pending:
                deadline.poll(all_insync, "Route53 changes to be INSYNC", interval=FIRST_POLL,
                              max_interval=MAX_POLL, backoff=POLL_FACTOR, wait_first=True, last_look=True)
                log.info("Route53 is INSYNC for %d change(s)", len(changes))
        except DeadlineExceeded:
            raise DeadlineExceeded(f"Route53 change(s) {', '.join(c for _, _, c in pending)} to be INSYNC") from None


# -- Route53 calls ------------------------------------------------------------------------------


class _InvalidChangeBatch(DnsError):
    pass


def _client_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError
    return (ClientError, BotoCoreError)


def _submit(r53, zone_id: str, batch: list[dict], what: str) -> tuple[str, str]:
    """ChangeResourceRecordSets; returns the change id and its first status."""
    try:
        got = r53.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={"Comment": f"certrenew: {what}", "Changes": batch})
    except _client_errors() as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        error = _InvalidChangeBatch if code == "InvalidChangeBatch" else DnsError
        raise error(f"Route53 zone {zone_id}: {what} failed: {exc}") from None
    info = got["ChangeInfo"]
    return _zone_id(info["Id"]), info.get("Status", "PENDING")


def _change_status(r53, zone_id: str, change_id: str) -> str:
    try:
        return r53.get_change(Id=change_id)["ChangeInfo"]["Status"]
    except _client_errors() as exc:
        raise DnsError(f"Route53 zone {zone_id}: cannot read change {change_id}: {exc}") from None


def _rrset_entries(page: dict) -> list[tuple[str, str, list[str], int]]:
    """(name, type, values, ttl) of each plain record set of a listing page (alias and
    routing-policy sets are left out)."""
    return [(_normal(r["Name"]), r["Type"], [v["Value"] for v in r.get("ResourceRecords", [])], int(r.get("TTL", TTL)))
            for r in page.get("ResourceRecordSets", []) if "AliasTarget" not in r and "SetIdentifier" not in r]


def _listing(r53, zone_id: str, max_pages: int) -> dict[str, dict[str, tuple[list[str], int]]] | None:
    """The whole zone by name and type, or None when it has more than `max_pages` pages."""
    out: dict[str, dict[str, tuple[list[str], int]]] = defaultdict(dict)
    kwargs: dict[str, Any] = {"HostedZoneId": zone_id, "MaxItems": str(PAGE_SIZE)}
    for _ in range(max_pages):
        page = _list(r53, zone_id, **kwargs)
        for name, rtype, values, ttl in _rrset_entries(page):
            out[name][rtype] = (values, ttl)
        if not page.get("IsTruncated"):
            return dict(out)
        kwargs["StartRecordName"] = page["NextRecordName"]
        kwargs["StartRecordType"] = page["NextRecordType"]
        kwargs.pop("StartRecordIdentifier", None)
        if page.get("NextRecordIdentifier"):
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    return None


def _read_name(r53, zone_id: str, name: str) -> dict[str, tuple[list[str], int]]:
    """Every plain record set at one name (one call: they sort together)."""
    page = _list(r53, zone_id, HostedZoneId=zone_id, StartRecordName=name, MaxItems="10")
    return {rtype: (values, ttl) for at, rtype, values, ttl in _rrset_entries(page) if at == name}


def _txt_values(r53, zone_id: str, names: list[str], record_count: int | None) -> dict[str, tuple[list[str], int]]:
    """The TXT values (as stored, quoted) and TTL now at each name: read fresh, never cached.

    A listing of the whole zone costs one call per 300 record sets, a lookup one call per
    name: the zone is listed when it is known to be cheaper than asking name by name."""
    listing = None
    if _pages(record_count) < len(names):
        listing = _listing(r53, zone_id, _pages(record_count) + 1)  # + 1: our own records may add a page
    if listing is None:
        listing = {name: _read_name(r53, zone_id, name) for name in names}
    return {name: listing[name]["TXT"] for name in names if "TXT" in listing.get(name, {})}


def _pages(record_count: int | None) -> int:
    """ListResourceRecordSets calls needed to read a zone whole (unknown size: never cheap)."""
    if record_count is None:
        return 1 << 30
    return max(1, -(-record_count // PAGE_SIZE))


def _zone_from(zone: dict) -> Zone:
    count = zone.get("ResourceRecordSetCount")
    return Zone(_zone_id(zone["Id"]), _normal(zone["Name"]), bool(zone.get("Config", {}).get("PrivateZone")),
                int(count) if count is not None else None)


def _list(r53, zone_id: str, **kwargs) -> dict:
    try:
        return r53.list_resource_record_sets(**kwargs)
    except _client_errors() as exc:
        raise DnsError(f"Route53 zone {zone_id}: cannot list record sets: {exc}") from None


# -- pure helpers -------------------------------------------------------------------------------


def _change(action: str, name: str, values: list[str], ttl: int = TTL) -> dict:
    return {"Action": action, "ResourceRecordSet": {
        "Name": name, "Type": "TXT", "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}}


_Edit = Callable[[str, "tuple[list[str], int] | None", list[str]], list[dict]]


def _adding(name: str, there: tuple[list[str], int] | None, ours: list[str]) -> list[dict]:
    """Changes that add our values to a name: CREATE when it holds no TXT set, else DELETE of
    exactly what was read and CREATE of the union, with the TTL it has (one atomic pair)."""
    if there is None:
        return [_change("CREATE", name, ours)]
    values, ttl = there
    missing = [v for v in ours if v not in values]
    if not missing:
        return []
    return [_change("DELETE", name, values, ttl), _change("CREATE", name, values + missing, ttl)]


def _removing(name: str, there: tuple[list[str], int] | None, ours: list[str]) -> list[dict]:
    """Changes that take our values off a name: DELETE of exactly what was read, and CREATE of
    the rest (same TTL) when other values remain."""
    if there is None or not any(v in there[0] for v in ours):
        return []
    values, ttl = there
    rest = [v for v in values if v not in ours]
    return [_change("DELETE", name, values, ttl)] + ([_change("CREATE", name, rest, ttl)] if rest else [])


def _weight(change: dict) -> tuple[int, int]:
    """(values, characters) a change counts for in Route53's per-request limits."""
    records = change["ResourceRecordSet"]["ResourceRecords"]
    factor = 2 if change["Action"] == "UPSERT" else 1
    return len(records) * factor, sum(len(r["Value"]) for r in records) * factor


def _split(batch: list[dict]) -> list[list[dict]]:
    """Cut a change list only where Route53's per-request limits force it (order kept)."""
    return _split_groups([[change] for change in batch])


def _split_groups(groups: list[list[dict]]) -> list[list[dict]]:
    """Cut only where Route53's per-request limits force it, never inside a group (one name's
    DELETE + CREATE must go in the same atomic batch); order kept."""
    parts: list[list[dict]] = [[]]
    values = chars = 0
    for group in groups:
        weight = sum(_weight(c)[0] for c in group)
        size = sum(_weight(c)[1] for c in group)
        if parts[-1] and (values + weight > MAX_VALUES_PER_BATCH or chars + size > MAX_CHARS_PER_BATCH):
            parts.append([])
            values = chars = 0
        parts[-1].extend(group)
        values += weight
        chars += size
    return [p for p in parts if p]


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


def _within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def _normal(name: str) -> str:
    return name.rstrip(".").lower().replace("\\052", "*")


def _zone_id(raw: str) -> str:
    return raw.rsplit("/", 1)[-1]


def _as(role: str | None) -> str:
    return f" (as {role})" if role else ""


def _describe_chain(chain: list[str]) -> str:
    return " -> ".join(chain[:1] + [f"CNAME {n}" for n in chain[1:]])
