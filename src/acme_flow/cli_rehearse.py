"""`certrenew rehearse`: issue every selected certificate from the CA's staging directory, end to
end, and keep, deploy and notify nothing (rehearsal.py). Heavy modules load when it runs."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .rehearsal import Rehearsal, RehearsalReport

DEFAULT_TIMEOUT = 840.0
ROOTS_ENV = "CERTRENEW_REHEARSAL_ROOTS"  # PEM file of the staging CA's roots to verify chains against


def register(sub) -> None:
    """Add the `rehearse` subcommand to the CLI's subparsers."""
    p = sub.add_parser("rehearse", help="issue from the CA's staging directory end to end; store, deploy and "
                                        "notify nothing (what certbot calls --dry-run)")
    p.add_argument("--config", help="config document: path, s3://bucket/key or ssm:/name")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these certificates")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, help="seconds the rehearsal may take")
    p.set_defaults(func=cmd_rehearse)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 86400 seconds")
    return value


def build_rehearsal(settings: Any, clients: Any, config: Any, clock: Any, env: dict[str, str] | None = None,
                    wrap: Callable[[str, Any], Any] | None = None) -> Rehearsal:
    """The rehearsal use case on adapters built from the staged config (their CA is the staging
    directory); shared by the CLI and the handler's `rehearse` action."""
    from . import bootstrap
    from .rehearsal import Rehearsal, staged

    adapters = bootstrap.build_adapters(settings, clients, staged(config), clock, wrap)
    return Rehearsal.from_adapters(staged(config), adapters, roots=read_roots(os.environ if env is None else env),
                                   workers=bootstrap.WORKERS)


def read_roots(env) -> tuple[str, ...]:
    """The staging roots from the PEM file `CERTRENEW_REHEARSAL_ROOTS` names (none when unset)."""
    from . import pki
    from .errors import SettingsError

    path = env.get(ROOTS_ENV)
    if not path:
        return ()
    try:
        roots = tuple(pki.split_pem_chain(Path(path).read_text()))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{ROOTS_ENV}={path!r}: cannot read it ({exc})") from None
    if not roots:
        raise SettingsError(f"{ROOTS_ENV}={path!r} holds no PEM certificate")
    return roots


def cmd_rehearse(args: argparse.Namespace) -> int:
    from . import bootstrap
    from .deadline import Deadline

    settings = bootstrap.Settings.from_env(config_ref=args.config)
    clients = bootstrap.Clients(settings.region)
    config = bootstrap.load_config(settings, clients)
    clock = bootstrap.SystemClock()
    rehearsal = build_rehearsal(settings, clients, config, clock)
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
