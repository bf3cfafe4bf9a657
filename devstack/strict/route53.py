"""Route53 ChangeResourceRecordSets as Route53 checks it (moto is lenient).

Route53 applies a change batch atomically and checks each change against the zone as the
earlier changes of the same batch left it:
- DELETE must name a record set that exists, with exactly its TTL and values (in any order);
- CREATE must name a record set that does not exist yet;
- UPSERT creates or replaces.
Otherwise the whole batch is refused with 400 InvalidChangeBatch and Route53's own message,
e.g. "Tried to delete resource record set [name='x.example.com.', type='TXT'] but the values
provided do not match the current values". moto instead deletes whatever the name holds and
lets a CREATE add a second record set of the same name and type, so optimistic concurrency
(DELETE exactly what was read + CREATE the new set) could never fail on it.

The check reads moto's zone just before the batch is forwarded; the devstack's tests
interleave writers call by call, which this sees exactly.
"""
from __future__ import annotations

from collections import Counter

from devstack import aws_ops
from devstack.strict import RULE_FACTORIES, AwsError, Call

Key = tuple[str, str, str]  # (name as Route53 writes it, type, set identifier)


def _name(raw: str) -> str:
    """Route53's form of a record name: lowercase, trailing dot, `*` escaped as \\052."""
    name = raw.strip().lower().replace("*", "\\052")
    return name if name.endswith(".") else name + "."


def _refused(message: str) -> AwsError:
    return AwsError("InvalidChangeBatch", message, 400)


class ChangeBatchRule:
    """Refuse a change batch Route53 would refuse (DELETE that does not match, CREATE of an existing set)."""

    def before(self, call: Call) -> None:
        if call.service != "route53" or call.operation != "ChangeResourceRecordSets":
            return
        zone_id = aws_ops.route53_zone_id(call.path)
        changes = aws_ops.parse_change_batch(call.body)
        if not zone_id or not changes:
            return
        r53 = call.moto("route53", None)
        current: dict[Key, tuple[int | None, Counter]] = {}
        for change in changes:
            key = (_name(change["name"] or ""), (change["type"] or "").upper(), "")
            if key not in current:
                current[key] = _read(r53, zone_id, key)
            check_change(change, key, current)


def check_change(change: dict, key: Key, current: dict[Key, "tuple[int | None, Counter] | None"]) -> None:
    """Apply one change to `current` (the zone as the batch has left it so far), or refuse it."""
    action = (change["action"] or "").upper()
    there = current.get(key)
    described = f"[name='{key[0]}', type='{key[1]}']"
    wanted = (change["ttl"], Counter(change["values"]))
    if action == "DELETE":
        if there is None:
            raise _refused(f"Tried to delete resource record set {described} but it was not found")
        if there != wanted:
            raise _refused(f"Tried to delete resource record set {described} "
                           "but the values provided do not match the current values")
        current[key] = None
    elif action == "CREATE":
        if there is not None:
            raise _refused(f"Tried to create resource record set {described} but it already exists")
        current[key] = wanted
    elif action == "UPSERT":
        current[key] = wanted


def _read(r53, zone_id: str, key: Key) -> "tuple[int | None, Counter] | None":
    """The (TTL, values) moto holds for a plain record set, or None. moto may hold several sets
    of one name and type after a lenient CREATE: their values are taken together."""
    name, rtype, _ = key
    page = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=name, StartRecordType=rtype,
                                         MaxItems="20")
    found = [s for s in page.get("ResourceRecordSets", [])
             if _name(s["Name"]) == name and s["Type"] == rtype and "SetIdentifier" not in s]
    if not found:
        return None
    values: Counter = Counter(r["Value"] for s in found for r in s.get("ResourceRecords", []))
    return found[0].get("TTL"), values


RULE_FACTORIES.append(ChangeBatchRule)
