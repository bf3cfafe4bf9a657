"""`certrenew`: the same renewal path as the Lambda, from a shell."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

from . import bootstrap
from .deadline import Deadline
from .errors import CertrenewError, InputError
from .renewal import REVOCATION_REASONS, RunOptions
from .report import render_report, render_status, status_rows

log = logging.getLogger("certrenew.cli")
DEFAULT_TIMEOUT = 840.0
# Each registers its subcommand: register(subparsers) (imports what it needs when it runs).
COMMAND_MODULES: tuple[str, ...] = ("acme_flow.cli_discover", "acme_flow.cli_rehearse")
DEEP_HELP = ("also read and check every stored certificate's key and chain (one KMS-protected read each; "
             "a damaged one is reissued by run)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return args.func(args)
    except CertrenewError as exc:
        print(f"certrenew: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("certrenew: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="certrenew", description="Serverless ACME certificate renewer for AWS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="renew what is due and deploy it (what the scheduled Lambda does)")
    _common(run)
    run.add_argument("--force", action="store_true", help="reissue even if not due")
    run.add_argument("--dry-run", action="store_true",
                     help="plan only: show what would be done, order and change nothing (to rehearse a real "
                          "issuance from the CA's staging directory, use `certrenew rehearse`)")
    run.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, help="seconds the run may take")
    run.set_defaults(func=cmd_run)

    plan = sub.add_parser("plan", help="what is due and why; changes nothing")
    _common(plan)
    plan.set_defaults(func=cmd_plan, force=False, dry_run=True, timeout=DEFAULT_TIMEOUT)

    status = sub.add_parser("status", help="one row per certificate: serial, expiry, next renewal, targets")
    status.add_argument("--config", help="config document: path, s3://bucket/key or ssm:/name")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--deep", action="store_true", help=DEEP_HELP)
    status.set_defaults(func=cmd_status)

    revoke = sub.add_parser("revoke", help="revoke the current certificate of NAME (the next run reissues it)")
    revoke.add_argument("name")
    revoke.add_argument("--reason", default="unspecified", choices=sorted(REVOCATION_REASONS))
    revoke.add_argument("--config", help="config document: path, s3://bucket/key or ssm:/name")
    revoke.set_defaults(func=cmd_revoke)

    _invoke_command(sub)

    dev = sub.add_parser("devstack", help="the local stack: Pebble, moto server, DNS bridge")
    dev.add_argument("action", choices=["up", "down", "env"])
    dev.add_argument("--dir", default=None, help="state directory (default .devstack/run)")
    dev.add_argument("--route53-delay", type=float, default=0.0, help="seconds each Route53 change stays PENDING")
    dev.set_defaults(func=cmd_devstack)

    _records_commands(sub)

    demo = sub.add_parser("demo", help="issue and deploy certificates end to end on the devstack")
    demo.add_argument("--keep", action="store_true", help="leave the devstack running afterwards")
    demo.set_defaults(func=cmd_demo)
    for module in COMMAND_MODULES:  # commands that live in modules of their own
        importlib.import_module(module).register(sub)
    return parser


def _invoke_command(sub) -> None:
    invoke = sub.add_parser("invoke", help="run the Lambda handler on an event file, without Docker",
                            description="Without --function: the renewer's handler with the caller's environment. "
                            "With --function: that function as template.yaml configures it (Handler, Timeout, "
                            "MemorySize, Environment), as `sam local invoke` does.")
    invoke.add_argument("event", nargs="?", help="event JSON file (see events/)")
    invoke.add_argument("--function", metavar="NAME",
                        help="RenewerFunction or WorkerFunction: run it with its settings from template.yaml")
    invoke.add_argument("--parameter-overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="with --function: template parameters, SAM's syntax (Key=Value Key2=Value2)")
    invoke.add_argument("--env-vars", metavar="FILE",
                        help='with --function: SAM\'s JSON {"RenewerFunction": {"VAR": "value"}, "Parameters": {...}}')
    invoke.add_argument("--template", metavar="PATH",
                        help="with --function: the SAM template (default: ./template.yaml, else the checkout's)")
    invoke.add_argument("--timeout", type=_seconds, default=None,
                        help="without --function: the Lambda's timeout in seconds (default 900)")
    invoke.set_defaults(func=cmd_invoke)


def _records_commands(sub) -> None:
    persist = sub.add_parser("persist", help="the dns-persist-01 records a person writes once: plan, apply, check")
    persist.add_argument("action", choices=["plan", "apply", "check"],
                         help="plan: what is needed; apply: write what is missing or stale; check: fail if any is")
    persist.add_argument("--config", help="config document: path, s3://bucket/key or ssm:/name")
    persist.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these certificates")
    persist.add_argument("--json", action="store_true", help="print JSON instead of a table")
    persist.add_argument("--format", choices=["table", "cloudformation"], default="table",
                         help="plan only: cloudformation prints AWS::Route53::RecordSet resources (YAML, JSON with --json)")
    persist.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, help="seconds apply may wait for INSYNC")
    persist.set_defaults(func=cmd_persist)

    caa = sub.add_parser("caa", help="CAA records bound to our ACME account (RFC 8657): plan, apply, check")
    caa.add_argument("action", choices=["plan", "apply", "check"],
                     help="plan: each zone's new CAA set; apply: write it; check: would DNS block our CA or account")
    caa.add_argument("--config", help="config document: path, s3://bucket/key or ssm:/name")
    caa.add_argument("--exclusive", action="store_true", help="drop every other CA's issue/issuewild entry")
    caa.add_argument("--json", action="store_true", help="print JSON instead of a table")
    caa.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, help="seconds apply may wait for INSYNC")
    caa.set_defaults(func=cmd_caa)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 86400 seconds")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config document: path, s3://bucket/key or ssm:/name")
    p.add_argument("--only", nargs="+", default=[], metavar="NAME", help="only these certificates")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--deep", action="store_true", help=DEEP_HELP)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    bootstrap.quiet_libraries()


def cmd_run(args: argparse.Namespace) -> int:
    from .progress import for_run  # a status line while the run waits, when stderr is a terminal

    settings = bootstrap.Settings.from_env(config_ref=args.config)
    config = bootstrap.load_config(settings)
    clock = bootstrap.SystemClock()
    with for_run(sys.stderr, enabled=not args.json) as progress:
        renewer = bootstrap.build_renewer(config, settings, clock=clock, progress=progress)
        options = RunOptions(only=tuple(args.only), force=args.force, dry_run=args.dry_run, deep=args.deep)
        report = renewer.apply(renewer.plan(options), Deadline(clock, args.timeout))
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_report(report))
    return report.exit_code


def cmd_plan(args: argparse.Namespace) -> int:
    return cmd_run(args)


def _renewer(args: argparse.Namespace):
    settings = bootstrap.Settings.from_env(config_ref=args.config)
    return bootstrap.build_renewer(bootstrap.load_config(settings), settings)


def cmd_status(args: argparse.Namespace) -> int:
    renewer = _renewer(args)
    rows = status_rows(renewer.plan(RunOptions(deep=args.deep)).rows, renewer.clock.now())
    print(json.dumps(rows, indent=2) if args.json else render_status(rows))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    stored = _renewer(args).revoke(args.name, args.reason)
    print(f"revoked {stored.name} serial {stored.info.serial} ({args.reason}); the next run issues a new one")
    return 0


def _record_adapters(args: argparse.Namespace):
    """The config, settings and adapters of a person's record command (persist, caa)."""
    settings = bootstrap.Settings.from_env(config_ref=args.config)
    config = bootstrap.load_config(settings)
    clients = bootstrap.Clients(settings.region, app_id=bootstrap.OPERATOR_APP_ID)
    adapters = bootstrap.build_adapters(settings, clients, config, bootstrap.SystemClock())
    return config, settings, adapters


def cmd_persist(args: argparse.Namespace) -> int:
    from .persist_records import PersistRecords
    from .records_report import persist_cloudformation, render_persist

    if args.format == "cloudformation" and args.action != "plan":
        raise InputError(f"--format cloudformation goes with `persist plan`, not `persist {args.action}`")
    config, settings, adapters = _record_adapters(args)
    use_case = PersistRecords.from_adapters(config, adapters, margin=settings.check_interval)
    if args.action == "apply":
        report = use_case.apply(Deadline(adapters.clock, args.timeout), tuple(args.only))
    else:
        report = getattr(use_case, args.action)(tuple(args.only))
    if args.format == "cloudformation":
        template = persist_cloudformation(report)
        print((json.dumps(template, indent=2) if args.json else _yaml(template)).rstrip("\n"))
        return report.exit_code
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_persist(report))
    return report.exit_code


def _yaml(doc: dict) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, width=1000)


def cmd_caa(args: argparse.Namespace) -> int:
    from .caa_records import CaaRecords
    from .records_report import render_caa

    config, _, adapters = _record_adapters(args)
    use_case = CaaRecords.from_adapters(config, adapters)
    if args.action == "apply":
        report = use_case.apply(Deadline(adapters.clock, args.timeout), args.exclusive)
    elif args.action == "plan":
        report = use_case.plan(args.exclusive)
    else:
        report = use_case.check()
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_caa(report))
    return report.exit_code


def cmd_invoke(args: argparse.Namespace) -> int:
    overrides = list(args.parameter_overrides)
    if args.event is None and overrides and "=" not in overrides[-1]:
        args.event = overrides.pop()  # `--parameter-overrides A=1 EVENT.json`: argparse took the event
    if args.event is None:
        raise InputError("give the EVENT.json file to invoke the handler with (see events/)")
    try:
        event = json.loads(Path(args.event).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the event file {args.event}: {exc}") from None
    if args.function:
        return _invoke_function(args, event, overrides)
    given = [flag for flag, value in (("--parameter-overrides", overrides), ("--env-vars", args.env_vars),
                                      ("--template", args.template)) if value]
    if given:
        raise InputError(f"{', '.join(given)} configure a function of template.yaml: add --function "
                         "RenewerFunction or --function WorkerFunction")
    from handler.local import invoke  # the real handler, as `sam local invoke` runs it

    timeout = args.timeout if args.timeout is not None else 900.0
    result = invoke(event, timeout=timeout)  # logs on stderr, the result alone on stdout
    return _print_result(result)


def _print_result(result) -> int:
    print(json.dumps(result, indent=2))
    failed = isinstance(result, dict) and (result.get("ok") is False or bool(result.get("batchItemFailures")))
    return 1 if failed else 0  # a failed certificate, or failed SQS batch items


def _invoke_function(args: argparse.Namespace, event, overrides: list[str]) -> int:
    """The function as template.yaml configures it, as `sam local invoke` runs it (without Docker)."""
    from handler.local import invoke_function

    from . import lambda_template as lt

    if args.timeout is not None:
        raise InputError("--timeout goes without --function: with it, the timeout is the function's "
                         "Timeout in template.yaml")
    env_vars = {}
    if args.env_vars:
        try:
            text = Path(args.env_vars).read_text()
        except OSError as exc:
            raise InputError(f"cannot read the --env-vars file {args.env_vars}: {exc}") from None
        env_vars = lt.parse_env_vars(text, args.env_vars)
    path = lt.find_template(args.template)
    config = lt.function_config(lt.load_template(path), args.function, template_dir=path.parent.resolve(),
                                overrides=lt.parse_parameter_overrides(overrides), env_vars=env_vars,
                                caller_env=os.environ)
    print(f"# {config.name} from {path}: {config.handler}, Timeout {config.timeout:g} s, MemorySize "
          f"{config.memory_mb} MB", file=sys.stderr)
    for var, source in config.sources.items():  # values from --env-vars are not echoed (they may be secrets)
        shown = var if source == "--env-vars" else f"{var}={config.variables[var]!r}"
        print(f"# {shown} <- {source}", file=sys.stderr)
    for var in config.ignored:
        print(f"# --env-vars {var} ignored: not in {config.name}'s Environment (sam local ignores it too)",
              file=sys.stderr)
    done = invoke_function(config, event)
    code = _print_result(done.result)
    stopped = done.stopped_because()
    if stopped:
        print(f"certrenew: {stopped}", file=sys.stderr)
        return 1
    return code


def _devstack(args: argparse.Namespace, module: str) -> ModuleType:
    """`devstack.<module>`, loaded only when a devstack subcommand runs: the devstack is development
    tooling, absent where only src/ is installed (the Lambda package)."""
    try:
        return importlib.import_module(f"devstack.{module}")
    except ImportError as exc:
        raise CertrenewError(
            f"`certrenew {args.command}` needs the devstack (Pebble, moto server, DNS bridge): development "
            "tooling available from a source checkout of certrenew, not in this installation; in the "
            f"checkout run `pip install -e '.[dev]'` (or `make demo`) ({exc})") from None


def cmd_devstack(args: argparse.Namespace) -> int:
    stack = _devstack(args, "stack")
    state_dir = Path(args.dir or os.environ.get("CERTRENEW_DEVSTACK_DIR") or ".devstack/run")
    if args.action == "up":
        running = stack.up(state_dir, route53_delay=args.route53_delay)
        print(_exports(running.env()))
        print(f"# devstack running; stop it with: certrenew devstack down --dir {state_dir}", file=sys.stderr)
        return 0
    if args.action == "down":
        stopped = stack.down(state_dir)
        print("devstack stopped" if stopped else "devstack was not running", file=sys.stderr)
        return 0
    running = stack.load(state_dir)
    if running is None:
        raise InputError(f"no devstack is running in {state_dir}: start it with `certrenew devstack up`")
    print(_exports(running.env()))
    return 0


def _exports(env: dict[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()))


def cmd_demo(args: argparse.Namespace) -> int:
    return _devstack(args, "demo").run(keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
