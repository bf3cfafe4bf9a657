"""Record sets a person manages through certrenew (the ZoneRecords port): the dns-persist-01
`_validation-persist` TXT records and the CAA set of a zone apex.

- Zones and CNAME delegation are the DNS-01 provider's (the Route53Dns given): the same zone
  discovery, `dns.hosted_zone_id` override, `dns.role_arn` and CNAME following.
- Reads are fresh (never the provider's per-run cache): what a write replaces must be what the
  zone holds now.
- Writes use the same optimistic concurrency as DNS-01: a set that exists is changed by a DELETE
  of exactly the values and TTL read plus a CREATE of the new set, in one atomic batch; a set that
  did not exist by a CREATE alone. If anyone changed the set since it was read, Route53 refuses
  the batch (InvalidChangeBatch): that is a DnsError saying so, never a blind retry (a person's
  records: read them again and decide). One change batch per zone, then an INSYNC wait.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from ...deadline import Deadline
from ...errors import DnsError
from ...models import CertificateSpec
from ...ports import RecordSet
from .calls import InvalidChangeBatch, change, normal, read_name, split_groups, submit, wait_insync
from .dns01 import Route53Dns

log = logging.getLogger("certrenew.route53")

NEW_SET_TTL = 300  # a set we create; an existing set keeps its TTL


class Route53Records:
    """ZoneRecords on Route53, composed on the DNS-01 provider's zone discovery."""

    def __init__(self, dns: Route53Dns) -> None:
        self._dns = dns

    def read(self, name: str, rtype: str, spec: CertificateSpec) -> RecordSet:
        """The `rtype` set at `name` (after CNAME delegation) as Route53 holds it now."""
        located = self._dns.locate(normal(name), "", spec)
        zone = self._dns.zone(located.zone_id, located.role_arn)
        found = read_name(self._dns.client(located.role_arn), zone.id, located.name).get(rtype)
        values, ttl = (tuple(found[0]), found[1]) if found else ((), None)
        return RecordSet(name=located.name, rtype=rtype, values=values, zone_id=zone.id, zone_name=zone.name,
                         role_arn=located.role_arn, ttl=ttl)

    def write(self, changes: list[tuple[RecordSet, tuple[str, ...]]], deadline: Deadline) -> None:
        """Replace each set read earlier by its new values: one batch per zone, then INSYNC."""
        submitted: list[tuple[Any, str, str]] = []
        for (zone_id, role), edits in _by_zone(changes).items():
            groups = [g for g in (_replacing(old, new) for old, new in edits) if g]
            if not groups:
                continue
            r53 = self._dns.client(role)
            names = ", ".join(sorted({f"{old.name} {old.rtype}" for old, _ in edits}))
            for part in split_groups(groups):
                try:
                    change_id, status = submit(r53, zone_id, part, "records a person manages")
                except InvalidChangeBatch as exc:
                    raise DnsError(f"zone {zone_id}: {names} changed since certrenew read them (someone else "
                                   f"wrote in between), so nothing was written in this batch: run the command "
                                   f"again to read them anew ({exc})") from None
                log.info("zone %s: %s submitted (%s, %s)", zone_id, names, change_id, status)
                if status != "INSYNC":
                    submitted.append((r53, zone_id, change_id))
        wait_insync(submitted, deadline)


def _replacing(old: RecordSet, new: tuple[str, ...]) -> list[dict]:
    """The changes that turn `old` (as read) into `new`: nothing when equal; CREATE when there
    was no set; DELETE exactly what was read, then CREATE the new set (same TTL) when values remain."""
    wanted = list(dict.fromkeys(new))
    if list(old.values) == wanted:
        return []
    if old.ttl is None or not old.values:
        return [change("CREATE", old.name, wanted, NEW_SET_TTL, old.rtype)] if wanted else []
    delete = change("DELETE", old.name, list(old.values), old.ttl, old.rtype)
    return [delete] + ([change("CREATE", old.name, wanted, old.ttl, old.rtype)] if wanted else [])


def _by_zone(changes: list[tuple[RecordSet, tuple[str, ...]]]
             ) -> dict[tuple[str, str | None], list[tuple[RecordSet, tuple[str, ...]]]]:
    out: dict[tuple[str, str | None], list[tuple[RecordSet, tuple[str, ...]]]] = defaultdict(list)
    for old, new in changes:
        out[(old.zone_id, old.role_arn)].append((old, new))
    return out
