"""Route53 ChangeResourceRecordSets as Route53 checks it (moto is lenient).

Route53 applies a change batch atomically and checks each change against the zone as the
earlier changes of the same batch left it:
- DELETE must name a record set that exists, with exactly its TTL and values (in any order);
- CREATE must name a record set that does not exist yet;
- UPSERT creates or replaces;
- a CAA value must be `<flags 0-255> <tag> "<value>"` (moto stores any string).
Otherwise the whole batch is refused with 400 InvalidChangeBatch and Route53's own message,
e.g. "Tried to delete resource record set [name='x.example.com.', type='TXT'] but the values
provided do not match the current values". moto instead deletes whatever the name holds and
lets a CREATE add a second record set of the same name and type, so optimistic concurrency
(DELETE exactly what was read + CREATE the new set) could never fail on it.

The check reads moto's zone just before the batch is forwarded; the devstack's tests
interleave writers call by call, which this sees exactly.

moto is also wrong the other way: it refuses a CREATE identical to one in its change journal
when any record set sorts at or after the name (even in a batch that DELETEs the set first), and
a DELETE whose values are not in the order of a journalled CREATE/UPSERT. A batch this rule
found valid that moto refuses so is applied to moto as the equivalent batch it accepts (a
DELETE + CREATE pair of one set as an UPSERT) and answered as Route53 would.
"""
from __future__ import annotations

import re
from collections import Counter
from xml.sax.saxutils import escape

from devstack import aws_ops
from devstack.strict import RULE_FACTORIES, AwsError, Call

Key = tuple[str, str, str]  # (name as Route53 writes it, type, set identifier)


def _name(raw: str) -> str:
    """Route53's form of a record name: lowercase, trailing dot, `*` escaped as \\052."""
    name = raw.strip().lower().replace("*", "\\052")
    return name if name.endswith(".") else name + "."


def _refused(message: str) -> AwsError:
    return AwsError("InvalidChangeBatch", message, 400)


# RFC 8659 presentation form as Route53 takes it: flags 0-255, an alphanumeric tag, a quoted value
_CAA_VALUE = re.compile(r'^(\d{1,3}) ([A-Za-z0-9]+) "((?:[^"\\]|\\.)*)"$')


def check_caa_value(value: str) -> None:
    """Route53 refuses a CAA value that is not `<flags> <tag> "<value>"` (moto stores anything)."""
    match = _CAA_VALUE.match(value)
    if not match or int(match.group(1)) > 255:
        raise _refused(f"[Invalid Resource Record: 'FATAL problem: CAAValueMalformed (Value is not a valid "
                       f"CAA record) encountered with '{value}'']")


class ChangeBatchRule:
    """Refuse a change batch Route53 would refuse (DELETE that does not match, CREATE of an existing set)."""

    def before(self, call: Call) -> None:
        if call.service != "route53" or call.operation != "ChangeResourceRecordSets":
            return
        zone_id = aws_ops.route53_zone_id(call.path)
        changes = aws_ops.parse_change_batch(call.body)
        if not zone_id or not changes:
            return
        r53 = _moto_as_caller(call)
        current: dict[Key, tuple[int | None, Counter]] = {}
        for change in changes:
            key = (_name(change["name"] or ""), (change["type"] or "").upper(), "")
            if key[1] == "CAA" and (change["action"] or "").upper() in ("CREATE", "UPSERT"):
                for value in change["values"]:
                    check_caa_value(value)
            if key not in current:
                current[key] = _read(r53, zone_id, key)
            check_change(change, key, current)

    def after(self, call: Call, resp):
        if (call.service != "route53" or call.operation != "ChangeResourceRecordSets" or resp.status != 400
                or not any(quirk in resp.body for quirk in MOTO_QUIRKS)):
            return resp
        zone_id = aws_ops.route53_zone_id(call.path)
        changes = _moto_friendly(aws_ops.parse_change_batch(call.body))
        moto = _moto_as_caller(call)
        # A DELETE moto refuses for its journal's value order: journal exactly these values first
        # (the set already holds them: `before` checked).
        primers = [dict(c, Action="UPSERT") for c in changes if c["Action"] == "DELETE"]
        if primers:
            moto.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": primers})
        info = moto.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsResponse '
                f'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo><Id>{escape(info["ChangeInfo"]["Id"])}'
                f'</Id><Status>INSYNC</Status><SubmittedAt>{info["ChangeInfo"]["SubmittedAt"].isoformat()}'
                "</SubmittedAt></ChangeInfo></ChangeResourceRecordSetsResponse>").encode()
        return type(resp)(200, [("Content-Type", "text/xml")], body)


# moto's refusals of valid batches (its change-journal checks), by a fragment of their message
MOTO_QUIRKS = (b"but it already exists", b"Expected exactly one of [AliasTarget")


def _moto_friendly(changes: list[dict]) -> list[dict]:
    """The batch as boto3 changes, each DELETE + CREATE pair of one set sent as an UPSERT."""
    out: list[dict] = []
    for change in changes:
        rrset = {"Name": change["name"], "Type": change["type"], "TTL": change["ttl"],
                 "ResourceRecords": [{"Value": v} for v in change["values"]]}
        previous = out[-1] if out else None
        if (change["action"] == "CREATE" and previous and previous["Action"] == "DELETE"
                and _name(previous["ResourceRecordSet"]["Name"]) == _name(change["name"])
                and previous["ResourceRecordSet"]["Type"] == change["type"]):
            out[-1] = {"Action": "UPSERT", "ResourceRecordSet": rrset}
        else:
            out.append({"Action": change["action"], "ResourceRecordSet": rrset})
    return out


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


def _moto_as_caller(call: Call):
    """A Route53 client straight to moto in the caller's account: moto tells accounts apart by
    the access key (an assumed role's key belongs to the role's account), not by the signature."""
    return call.moto("route53", None, access_key=aws_ops.access_key_id(call.headers))


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
