"""`certrenew rehearse`: issue every selected certificate from the CA's staging directory, end to
end, and keep, deploy and notify nothing (rehearsal.py). Heavy modules load when it runs."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rehearsal import RehearsalReport

def register(sub) -> None:
    """Add the `rehearse` subcommand to the CLI's subparsers."""
    from .cli import DEFAULT_TIMEOUT, _seconds

    p = sub.add_parser("rehearse", help="issue from the CA's staging directory end to end; store, deploy and "
                                        "notify nothing (what certbot calls --dry-run)")
    p.add_argument("--config", help="config document: path, s3://bucket/key or ssm:/name")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these certificates")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, help="seconds the rehearsal may take")
    p.set_defaults(func=cmd_rehearse)


def cmd_rehearse(args: argparse.Namespace) -> int:
    from . import bootstrap
    from .deadline import Deadline

    settings = bootstrap.Settings.from_env(config_ref=args.config)
    clients = bootstrap.Clients(settings.region)
    config = bootstrap.load_config(settings, clients)
    clock = bootstrap.SystemClock()
    rehearsal = bootstrap.build_rehearsal(config, settings, clients, clock)
    report = rehearsal.run(tuple(args.only), Deadline(clock, args.timeout))
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return report.exit_code


def render(report: RehearsalReport) -> str:
    from .report import render_table

    rows = [[r.name, "rehearsed" if r.ok else "FAILED", r.stage if not r.ok else "-", r.challenge or "-",
             (r.serial or "-")[:12], r.reason] for r in report.results]
    table = render_table(rows, ["NAME", "OUTCOME", "FAILED AT", "CHALLENGE", "SERIAL", "REASON"])
    lines = [table, "", *(f"warning: {w}" for w in report.warnings)]
    done = sum(r.ok for r in report.results)
    lines.append(f"rehearsal on {report.directory} {'ok' if report.ok else 'FAILED'}: {done} rehearsed, "
                 f"{len(report.results) - done} failed; nothing stored, deployed or notified")
    return "\n".join(line for line in lines if line is not None)
