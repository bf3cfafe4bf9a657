"""What `certrenew persist` and `certrenew caa` print: tables, and CloudFormation resources for
people who keep DNS in infrastructure as code. Pure (JSON comes from the reports' to_dict)."""
from __future__ import annotations

import re
from typing import Any

from .caa_records import CaaReport
from .persist_records import PersistReport
from .report import render_table

_NO_PERSIST = ("no selected certificate may use dns-persist-01: set `challenge: dns-persist-01` (or `auto`) "
               "on a certificate or in defaults")


def render_persist(report: PersistReport) -> str:
    if not report.records:
        return _NO_PERSIST
    header = ["NAME", "ZONE", "STATUS", "CERTIFICATES", "PERSIST UNTIL", "REASON"]
    rows = [[r.name, r.zone, _persist_status(r.status, r.written), ",".join(r.certificates),
             r.persist_until.strftime("%Y-%m-%d %H:%MZ") if r.persist_until else "-", r.reason]
            for r in report.records]
    values = [f"  {r.name} TXT {_quote(r.value)}" for r in report.records]
    head = (f"CA {report.directory} (issuer {report.issuer}, {report.draft})\n"
            f"account {report.account_url}\n")
    missing = [r for r in report.records if r.status != "present" and not r.written]
    verdict = {"check": "all in place" if report.in_place else f"{len(missing)} record(s) missing or stale",
               "plan": f"{len(missing)} record(s) to write (certrenew persist apply)" if missing else "all in place",
               "apply": f"{sum(r.written for r in report.records)} record(s) written"}[report.command]
    errors = f"; {len(report.errors)} error(s)" if report.errors else ""
    return f"{head}\n{render_table(rows, header)}\n\nvalues:\n" + "\n".join(values) + \
        f"\n\npersist {report.command}: {verdict}{errors}"


def _persist_status(status: str, written: bool) -> str:
    return f"{status} -> written" if written else status


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def persist_cloudformation(report: PersistReport) -> dict[str, Any]:
    """A template fragment: one AWS::Route53::RecordSet per record, holding the whole set to
    publish (other issuers' and accounts' values included: CloudFormation owns the whole set)."""
    resources: dict[str, Any] = {}
    for record in (r for r in report.records if r.zone_id != "-"):
        logical = _logical_id(record.name, resources)
        resources[logical] = {"Type": "AWS::Route53::RecordSet", "Properties": {
            "HostedZoneId": record.zone_id, "Name": record.name + ".", "Type": "TXT", "TTL": str(record.ttl),
            "ResourceRecords": list(record.values),
            "Comment": f"dns-persist-01 for {', '.join(record.certificates)} (certrenew persist plan)"}}
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"dns-persist-01 records for account {report.account_url} at {report.directory}",
            "Resources": resources}


def _logical_id(name: str, taken: dict[str, Any]) -> str:
    base = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)[:240]
    logical, n = base, 2
    while logical in taken:
        logical, n = f"{base}{n}", n + 1
    return logical


def render_caa(report: CaaReport) -> str:
    head = f"CA {report.directory} (issuer {report.issuer})\naccount {report.account_url}\n"
    if report.command == "check":
        return head + "\n" + _render_check(report)
    sections = []
    for zone in report.zones:
        state = ("error" if zone.error else "written" if zone.written else
                 "changes" if zone.changed else "in place")
        lines = [f"zone {zone.zone} ({zone.zone_id}): {state}",
                 f"  names: {', '.join(zone.names)}  methods: {','.join(zone.methods)}"]
        if zone.error:
            lines.append(f"  error: {zone.error}")
        if zone.plan is not None:
            lines += [f"  + {r}" for r in zone.plan.added] + [f"  - {r}" for r in zone.plan.removed]
            lines += [f"    {r}" for r in zone.plan.kept] + [f"  warning: {w}" for w in zone.plan.warnings]
        sections.append("\n".join(lines))
    changed = sum(z.changed for z in report.zones)
    verb = {"plan": f"{changed} zone(s) to change (certrenew caa apply)" if changed else "all in place",
            "apply": f"{sum(z.written for z in report.zones)} zone(s) written"}[report.command]
    errors = sum(bool(z.error) for z in report.zones)
    tail = f"caa {report.command}{' --exclusive' if report.exclusive else ''}: {verb}" + \
        (f"; {errors} error(s)" if errors else "")
    return head + "\n" + "\n\n".join(sections) + "\n\n" + tail


def _render_check(report: CaaReport) -> str:
    header = ["NAME", "CERTIFICATE", "CA", "METHOD", "VERDICT", "CAA AT", "REASON"]
    rows = [[n.name, n.certificate, n.issuer or "-", n.method, "allowed" if n.allowed else "BLOCKED",
             n.found_at or "-", n.reason] for n in report.names]
    blocked = len(report.blocked)
    tail = f"caa check: {blocked} blocked" if blocked else "caa check: our CA and account may issue for every name"
    return render_table(rows, header) + "\n\n" + tail
