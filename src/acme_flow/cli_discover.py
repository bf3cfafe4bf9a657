"""`certrenew discover [--write FILE] [--regions R ...] [--json]` (issue 14): a read-only inventory
of what in the account uses a certificate, and the config that would have certrenew cover it.

Wiring only (the judging and the config proposal are acme_flow.discover): the reads run with the
person's credentials (the operator's user agent), and whether a name can be validated is asked
of the same Route53 zone lookup a run uses, CNAME delegation included."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

CLOUDFRONT_REGION = "us-east-1"


def register(sub) -> None:
    """Add the `discover` subcommand to the CLI's subparsers."""
    p = sub.add_parser("discover", help="read-only: what in the account uses a certificate (CloudFront, "
                                        "load balancers, API Gateway), and whether certrenew can cover it")
    p.add_argument("--write", metavar="FILE",
                   help="propose a config covering what certrenew can cover, merged into FILE (nothing is dropped)")
    p.add_argument("--regions", nargs="+", metavar="R",
                   help="regions for listeners and API domains (default: AWS_REGION and us-east-1)")
    p.add_argument("--json", action="store_true", help="print one JSON object per resource instead of a table")
    p.set_defaults(func=cmd_discover)


def cmd_discover(args: argparse.Namespace) -> int:
    import datetime as dt

    from . import bootstrap, discover

    if not args.verbose:  # the zone lookups log as a run's would ("writing the TXT value in ...")
        logging.getLogger("certrenew.route53").setLevel(logging.WARNING)
    settings = bootstrap.Settings.from_env()
    regions = regions_of(args.regions, settings.region)
    existing = read_existing(args.write) if args.write else None  # a bad FILE stops us before any call
    inventory, locate = bootstrap.build_discovery(settings)
    found = inventory.scan(regions)
    facts = inventory.certificates([arn for f in found for arn in f.certificates])
    zones = inventory.public_zones()
    resources = discover.assess(found, facts, locate, dt.datetime.now(dt.timezone.utc))
    if args.json:
        print(json.dumps([r.to_dict() for r in resources], indent=2))
    else:
        print(render(resources, zones, regions))
    for problem in inventory.problems:
        print(f"certrenew: {problem} (the list above is incomplete)", file=sys.stderr)
    if args.write:
        write_proposal(Path(args.write), resources, existing)
    return 1 if inventory.problems else 0


def regions_of(given: list[str] | None, session_region: str) -> list[str]:
    from .config.targets import REGION_RE
    from .errors import InputError

    regions = list(dict.fromkeys(given or [session_region, CLOUDFRONT_REGION]))
    bad = [r for r in regions if not REGION_RE.match(r)]
    if bad:
        raise InputError(f"--regions: {', '.join(repr(r) for r in bad)} is not an AWS region (like eu-west-1)")
    return regions


def read_existing(path_text: str) -> tuple[str, Any] | None:
    """(text, data) of an existing FILE, which must be a valid config already; None if absent."""
    from .config import parse_config
    from .errors import ConfigError, InputError

    path = Path(path_text)
    if not path.exists():
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--write {path}: cannot read it: {exc}") from None
    if not text.strip():
        return None
    try:
        parse_config(text, str(path))
    except ConfigError:
        print(f"certrenew: --write {path} is not a valid config now; fix it first (nothing written)",
              file=sys.stderr)
        raise
    import yaml

    return text, yaml.safe_load(text)


def write_proposal(path: Path, resources: list, existing: tuple[str, Any] | None) -> None:
    """Merge the proposed certificates into FILE, check the result as `plan` would, then write
    it (atomically; a `.bak` of the old file when it had to be rewritten) and say what was left out."""
    from . import discover
    from .config import parse_config

    proposal = discover.propose(resources, existing[1] if existing else None)
    for line in proposal.left_out:
        print(f"left out: {line}", file=sys.stderr)
    for line in proposal.notes:
        print(f"note: {line}", file=sys.stderr)
    if not proposal.certificates:
        print(f"nothing to add: {path} {'left as it is' if existing else 'not written'}", file=sys.stderr)
        return
    merged = discover.merge_text(existing[0] if existing else None, proposal)
    parse_config(merged.text, str(path))  # what `certrenew plan` will read: refused here, nothing written
    if merged.how == "rewritten" and existing:
        Path(f"{path}.bak").write_text(existing[0])
    temporary = path.with_name(f".{path.name}.discover-tmp")
    temporary.write_text(merged.text)
    os.replace(temporary, path)
    how = {"new": "a new file",
           "appended": "appended to its certificates list as YAML text (comments and layout kept)",
           "rewritten": f"the document rewritten (comments and layout not kept; the old file is {path}.bak)"}
    print(f"wrote {len(proposal.certificates)} certificate(s) to {path}: {how[merged.how]}", file=sys.stderr)
    print(f"next: certrenew plan --config {path}", file=sys.stderr)


def render(resources: list, zones: list[str], regions: list[str]) -> str:
    head = ("KIND", "ID", "REGION", "NAMES", "CERTIFICATE", "DAYS", "KEY", "COVER", "WHY")
    rows = [head]
    for r in resources:
        names = ", ".join(r.names) or "-"
        if r.found.kind == "elb-listener" and r.names:
            names += " (its certificates' names)"
        cert = r.certificate
        rows.append((r.found.kind, r.found.id, r.found.region, names, r.source,
                     "-" if r.days_left is None else str(r.days_left), _key(cert), "yes" if r.coverable else "no",
                     r.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    if not resources:
        lines.append("(nothing found)")
    lines.append(f"regions: {', '.join(regions)} (CloudFront is global); public hosted zones: "
                 f"{', '.join(zones) or 'none'}")
    if any(r.found.kind == "elb-listener" for r in resources):
        lines.append("a listener has no aliases of its own: its names are those of its certificates (ACM)")
    return "\n".join(line.rstrip() for line in lines)


def _key(cert: Any) -> str:
    from .discover import key_type

    return key_type(cert) or "-"
