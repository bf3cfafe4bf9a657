"""Route53 as the DNS-01 provider: zone discovery, batched TXT changes, INSYNC waits.

All values of a run go into one change batch per hosted zone (split only at Route53's
limits). Values already on a name (another client's, or the other half of an apex +
wildcard pair) are kept: an UPSERT writes the union, cleanup removes only our values.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import DnsError, ZoneNotFound
from ..models import CertificateSpec, Deadline
from ..ports import TxtRecord

log = logging.getLogger("certrenew.route53")

TTL = 30
MAX_VALUES_PER_BATCH = 1000  # an UPSERT counts twice
MAX_CHARS_PER_BATCH = 32000
FIRST_POLL = 1.0
MAX_POLL = 10.0


@dataclass(frozen=True)
class Zone:
    id: str
    name: str  # no trailing dot
    private: bool = False


class Route53Dns:
    """`client_for(role_arn)` returns a Route53 client (assuming the role when one is given)."""

    def __init__(self, client_for: Callable[[str | None], Any]) -> None:
        self._client_for = client_for
        self._zones: dict[str | None, list[Zone]] = {}
        self._zone_by_id: dict[str, Zone] = {}
        self._name_servers: dict[str, list[str]] = {}

    # -- zones ----------------------------------------------------------------------------------

    def locate(self, record_name: str, value: str, spec: CertificateSpec) -> TxtRecord:
        role = spec.dns.role_arn
        name = record_name.lower().rstrip(".")
        if spec.dns.hosted_zone_id:
            zone = self._zone(spec.dns.hosted_zone_id, role)
            if not _within(name, zone.name):
                raise ZoneNotFound(name, f"hosted zone {zone.id} is {zone.name}")
        else:
            zone = self._longest_match(name, role)
        return TxtRecord(name=name, value=value, zone_id=zone.id, role_arn=role)

    def _longest_match(self, name: str, role: str | None) -> Zone:
        if role not in self._zones:
            zones = []
            for page in self._client_for(role).get_paginator("list_hosted_zones").paginate():
                for z in page["HostedZones"]:
                    zones.append(Zone(_zone_id(z["Id"]), z["Name"].rstrip(".").lower(),
                                      bool(z.get("Config", {}).get("PrivateZone"))))
            self._zones[role] = zones
        candidates = [z for z in self._zones[role] if not z.private and _within(name, z.name)]
        if not candidates:
            raise ZoneNotFound(name.removeprefix("_acme-challenge."))
        return max(candidates, key=lambda z: len(z.name))

    def _zone(self, zone_id: str, role: str | None) -> Zone:
        if zone_id not in self._zone_by_id:
            try:
                got = self._client_for(role).get_hosted_zone(Id=zone_id)
            except self._client_for(role).exceptions.NoSuchHostedZone:
                raise ZoneNotFound(zone_id, "the configured hosted_zone_id does not exist") from None
            zone = got["HostedZone"]
            self._zone_by_id[zone_id] = Zone(_zone_id(zone["Id"]), zone["Name"].rstrip(".").lower())
            self._name_servers[zone_id] = list(got.get("DelegationSet", {}).get("NameServers", []))
        return self._zone_by_id[zone_id]

    def name_servers(self, record: TxtRecord) -> list[str]:
        if record.zone_id not in self._name_servers:
            got = self._client_for(record.role_arn).get_hosted_zone(Id=record.zone_id)
            self._name_servers[record.zone_id] = list(got.get("DelegationSet", {}).get("NameServers", []))
        return self._name_servers[record.zone_id]

    # -- changes --------------------------------------------------------------------------------

    def present(self, records: list[TxtRecord], deadline: Deadline) -> None:
        changes = []
        for (zone_id, role), zone_records in _by_zone(records).items():
            r53 = self._client_for(role)
            wanted = _values_by_name(zone_records)
            batch = []
            for name, ours in wanted.items():
                current, _ = self._current_values(r53, zone_id, name)
                batch.append(_change("UPSERT", name, _union(current, ours)))
            for part in _split(batch):
                change_id = self._submit(r53, zone_id, part, "publishing challenge records")
                log.info("zone %s: UPSERT of %d TXT names submitted (%s)", zone_id, len(part), change_id)
                changes.append((r53, change_id))
        for r53, change_id in changes:
            self._wait_insync(r53, change_id, deadline)

    def remove(self, records: list[TxtRecord]) -> None:
        for (zone_id, role), zone_records in _by_zone(records).items():
            r53 = self._client_for(role)
            batch = []
            for name, ours in _values_by_name(zone_records).items():
                current, ttl = self._current_values(r53, zone_id, name)
                if not current:
                    continue
                remaining = [v for v in current if v not in ours]
                if remaining:
                    batch.append(_change("UPSERT", name, remaining, ttl))
                else:
                    batch.append(_change("DELETE", name, current, ttl))
            for part in _split(batch):
                self._submit(r53, zone_id, part, "removing challenge records")

    def _current_values(self, r53, zone_id: str, name: str) -> tuple[list[str], int]:
        got = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=name,
                                            StartRecordType="TXT", MaxItems="1")
        for rrset in got.get("ResourceRecordSets", []):
            if _normal(rrset["Name"]) == name and rrset["Type"] == "TXT":
                return [r["Value"] for r in rrset.get("ResourceRecords", [])], int(rrset.get("TTL", TTL))
        return [], TTL

    def _submit(self, r53, zone_id: str, batch: list[dict], what: str) -> str:
        try:
            got = r53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Comment": f"certrenew: {what}", "Changes": batch})
        except r53.exceptions.ClientError as exc:
            raise DnsError(f"Route53 zone {zone_id}: {what} failed: {exc}") from None
        return got["ChangeInfo"]["Id"]

    def _wait_insync(self, r53, change_id: str, deadline: Deadline) -> None:
        interval = FIRST_POLL
        while True:
            status = r53.get_change(Id=change_id)["ChangeInfo"]["Status"]
            if status == "INSYNC":
                return
            deadline.sleep(interval, f"Route53 change {change_id} to be INSYNC")
            interval = min(interval * 1.5, MAX_POLL)


def _change(action: str, name: str, values: list[str], ttl: int = TTL) -> dict:
    return {"Action": action, "ResourceRecordSet": {
        "Name": name, "Type": "TXT", "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}}


def _split(batch: list[dict]) -> list[list[dict]]:
    """Cut a change list at Route53's per-request limits (values, with UPSERT twice; characters)."""
    parts: list[list[dict]] = [[]]
    values = chars = 0
    for change in batch:
        records = change["ResourceRecordSet"]["ResourceRecords"]
        weight = len(records) * (2 if change["Action"] == "UPSERT" else 1)
        size = sum(len(r["Value"]) for r in records)
        if parts[-1] and (values + weight > MAX_VALUES_PER_BATCH or chars + size > MAX_CHARS_PER_BATCH):
            parts.append([])
            values = chars = 0
        parts[-1].append(change)
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


def _union(current: list[str], ours: list[str]) -> list[str]:
    return current + [v for v in ours if v not in current]


def _within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def _normal(name: str) -> str:
    return name.rstrip(".").lower().replace("\\052", "*")


def _zone_id(raw: str) -> str:
    return raw.rsplit("/", 1)[-1]
