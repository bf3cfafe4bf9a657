"""Route53 calls and change-batch helpers shared by the DNS-01 provider (dns01.py) and the
record sets a person manages (records.py): listing and reading record sets, submitting a change
batch (InvalidChangeBatch told apart: someone else wrote first), splitting batches at Route53's
per-request limits, and waiting for INSYNC."""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ...deadline import Deadline
from ...errors import DeadlineExceeded, DnsError
from ...ports import NO_PROGRESS, Progress

log = logging.getLogger("certrenew.route53")

TTL = 30
MAX_VALUES_PER_BATCH = 1000  # ResourceRecord elements per request; an UPSERT counts twice
MAX_CHARS_PER_BATCH = 32000  # characters of all Value elements; an UPSERT counts twice
FIRST_POLL = 0.5  # GetChange: first wait, then x POLL_FACTOR up to MAX_POLL
POLL_FACTOR = 1.5
MAX_POLL = 5.0
PAGE_SIZE = 300  # the most ListResourceRecordSets returns per call


@dataclass(frozen=True)
class Zone:
    id: str
    name: str  # no trailing dot
    private: bool = False
    record_count: int | None = None  # ResourceRecordSetCount when Route53 said it


class InvalidChangeBatch(DnsError):
    pass


def client_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError
    return (ClientError, BotoCoreError)


def submit(r53, zone_id: str, batch: list[dict], what: str) -> tuple[str, str]:
    """ChangeResourceRecordSets; returns the change id and its first status."""
    try:
        got = r53.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={"Comment": f"certrenew: {what}", "Changes": batch})
    except client_errors() as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        error = InvalidChangeBatch if code == "InvalidChangeBatch" else DnsError
        raise error(f"Route53 zone {zone_id}: {what} failed: {exc}") from None
    info = got["ChangeInfo"]
    return bare_zone_id(info["Id"]), info.get("Status", "PENDING")


def change_status(r53, zone_id: str, change_id: str) -> str:
    try:
        return r53.get_change(Id=change_id)["ChangeInfo"]["Status"]
    except client_errors() as exc:
        raise DnsError(f"Route53 zone {zone_id}: cannot read change {change_id}: {exc}") from None


def rrset_entries(page: dict) -> list[tuple[str, str, list[str], int]]:
    """(name, type, values, ttl) of each plain record set of a listing page (alias and
    routing-policy sets are left out)."""
    return [(normal(r["Name"]), r["Type"], [v["Value"] for v in r.get("ResourceRecords", [])], int(r.get("TTL", TTL)))
            for r in page.get("ResourceRecordSets", []) if "AliasTarget" not in r and "SetIdentifier" not in r]


def listing(r53, zone_id: str, max_pages: int) -> dict[str, dict[str, tuple[list[str], int]]] | None:
    """The whole zone by name and type, or None when it has more than `max_pages` pages."""
    out: dict[str, dict[str, tuple[list[str], int]]] = defaultdict(dict)
    kwargs: dict[str, Any] = {"HostedZoneId": zone_id, "MaxItems": str(PAGE_SIZE)}
    for _ in range(max_pages):
        page = list_sets(r53, zone_id, **kwargs)
        for name, rtype, values, ttl in rrset_entries(page):
            out[name][rtype] = (values, ttl)
        if not page.get("IsTruncated"):
            return dict(out)
        kwargs["StartRecordName"] = page["NextRecordName"]
        kwargs["StartRecordType"] = page["NextRecordType"]
        kwargs.pop("StartRecordIdentifier", None)
        if page.get("NextRecordIdentifier"):
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    return None


def read_name(r53, zone_id: str, name: str) -> dict[str, tuple[list[str], int]]:
    """Every plain record set at one name (one call: they sort together)."""
    page = list_sets(r53, zone_id, HostedZoneId=zone_id, StartRecordName=name, MaxItems="10")
    return {rtype: (values, ttl) for at, rtype, values, ttl in rrset_entries(page) if at == name}


def txt_values(r53, zone_id: str, names: list[str], record_count: int | None) -> dict[str, tuple[list[str], int]]:
    """The TXT values (as stored, quoted) and TTL now at each name: read fresh, never cached.

    A listing of the whole zone costs one call per 300 record sets, a lookup one call per
    name: the zone is listed when it is known to be cheaper than asking name by name."""
    whole = None
    if pages(record_count) < len(names):
        whole = listing(r53, zone_id, pages(record_count) + 1)  # + 1: our own records may add a page
    if whole is None:
        whole = {name: read_name(r53, zone_id, name) for name in names}
    return {name: whole[name]["TXT"] for name in names if "TXT" in whole.get(name, {})}


def pages(record_count: int | None) -> int:
    """ListResourceRecordSets calls needed to read a zone whole (unknown size: never cheap)."""
    if record_count is None:
        return 1 << 30
    return max(1, -(-record_count // PAGE_SIZE))


def zone_from(zone: dict) -> Zone:
    count = zone.get("ResourceRecordSetCount")
    return Zone(bare_zone_id(zone["Id"]), normal(zone["Name"]), bool(zone.get("Config", {}).get("PrivateZone")),
                int(count) if count is not None else None)


def list_sets(r53, zone_id: str, **kwargs) -> dict:
    try:
        return r53.list_resource_record_sets(**kwargs)
    except client_errors() as exc:
        raise DnsError(f"Route53 zone {zone_id}: cannot list record sets: {exc}") from None


# -- pure helpers -------------------------------------------------------------------------------


def change(action: str, name: str, values: list[str], ttl: int = TTL, rtype: str = "TXT") -> dict:
    return {"Action": action, "ResourceRecordSet": {
        "Name": name, "Type": rtype, "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}}


def weight(change: dict) -> tuple[int, int]:
    """(values, characters) a change counts for in Route53's per-request limits."""
    records = change["ResourceRecordSet"]["ResourceRecords"]
    factor = 2 if change["Action"] == "UPSERT" else 1
    return len(records) * factor, sum(len(r["Value"]) for r in records) * factor


def split(batch: list[dict]) -> list[list[dict]]:
    """Cut a change list only where Route53's per-request limits force it (order kept)."""
    return split_groups([[change] for change in batch])


def split_groups(groups: list[list[dict]]) -> list[list[dict]]:
    """Cut only where Route53's per-request limits force it, never inside a group (one name's
    DELETE + CREATE must go in the same atomic batch); order kept."""
    parts: list[list[dict]] = [[]]
    values = chars = 0
    for group in groups:
        count = sum(weight(c)[0] for c in group)
        size = sum(weight(c)[1] for c in group)
        if parts[-1] and (values + count > MAX_VALUES_PER_BATCH or chars + size > MAX_CHARS_PER_BATCH):
            parts.append([])
            values = chars = 0
        parts[-1].extend(group)
        values += count
        chars += size
    return [p for p in parts if p]


def within(name: str, zone: str) -> bool:
    return name == zone or name.endswith("." + zone)


def normal(name: str) -> str:
    return name.rstrip(".").lower().replace("\\052", "*")


def bare_zone_id(raw: str) -> str:
    return raw.rsplit("/", 1)[-1]


def wait_insync(changes: list[tuple[Any, str, str]], deadline: Deadline, progress: Progress = NO_PROGRESS) -> None:
    """Poll every pending (client, zone id, change id) together until all are INSYNC, bounded by
    the deadline (with one last look when it comes); `progress` hears of each change INSYNC."""
    pending = list(changes)

    def all_insync() -> bool | None:
        before = len(pending)
        pending[:] = [c for c in pending if change_status(*c) != "INSYNC"]
        progress.advance(before - len(pending))
        return not pending or None
    try:
        if pending:
            progress.phase("waiting for Route53 INSYNC", len(pending), "changes")
            deadline.poll(all_insync, "Route53 changes to be INSYNC", interval=FIRST_POLL,
                          max_interval=MAX_POLL, backoff=POLL_FACTOR, wait_first=True, last_look=True)
            log.info("Route53 is INSYNC for %d change(s)", len(changes))
    except DeadlineExceeded:
        raise DeadlineExceeded(f"Route53 change(s) {', '.join(c for _, _, c in pending)} to be INSYNC") from None
