#!/usr/bin/env python3
"""A fleet on the devstack: N single-name certificates, what each kind of run costs.

    make bench-fleet                  # or: .venv/bin/python bench/fleet.py [--count 1000] [--delay 10]
    .venv/bin/python bench/fleet.py --count 50 --keep        # a quick look, logs kept

A private devstack (strict mode on) keeps every Route53 change PENDING for `--delay` seconds.
N certificates, one name each, spread over `--zones` hosted zones, each deployed to ACM in
us-east-1 and one in `--export-every` also exported to an S3 bucket. The runs, in order:

  one certificate   a config of one new certificate (the reference of the "100 due" target)
  first issue       all N due in one run
  no-op             right after: nothing due, every ARI answer still fresh (Retry-After 6 h)
  100 due           "a week later": every stored ARI next check has passed (as it has at the
                    weekly run) and the CA's ARI window of 100 of them is in the past, so the
                    run asks the CA about all N and renews those 100, as a real weekly run would
  no-op, week later the same a week later again: every ARI check due, nothing to renew

Each run is the Lambda handler (`handler.local.invoke` on events/scheduled.json, no fan-out
queue) in a child process of its own: the path and the single invocation the targets are about
(`--via cli` runs `certrenew run --config ... --json` instead). Its peak RSS is the child's
ru_maxrss. Requests are counted outside the product: AWS calls from the devstack proxy's
recording (by service and operation); KMS-protected reads are the GetObject answers the proxy
saw S3 mark `x-amz-server-side-encryption: aws:kms` (the state bucket has no default
encryption here, so exactly the objects the product writes as secrets carry it); ACME requests
from Pebble's own log (a line per request it handles). The devstack's share: the time some AWS
call was in flight at the proxy (and the sum of the time moto took), and the CPU seconds each
devstack process used during the run.

The product reaches Pebble through bench/acme_gate.py, which hands Pebble one POST at a time
(GETs side by side, never during a POST): Pebble's in-memory store deadlocks under many
concurrent orders of one account (`--no-gate` to see it). Pebble does not query DNS itself (PEBBLE_VA_ALWAYS_VALID; `--validate` to make it):
it asks 3 times per challenge with a 2 s timeout, and the Python DNS bridge answers a burst of
3,000 queries too slowly (most of 1,000 validations failed). The product still publishes every
TXT record, waits for Route53 INSYNC and checks every value through the bridge before it
answers the challenges. All configs ask for Pebble's 90-day `default` profile: for an order
that names none Pebble picks one at random, and its 6-day certificates would be due at every
weekly run.

The table shows totals and, in brackets, per certificate of the fleet; the figures go to
bench/results/fleet-<UTC time>.json (`--out`), or to stdout alone with `--json`.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.acme_gate import AcmeGate  # noqa: E402
from bench.harness import admin_session, private_devstack, product_env, run_child_usage  # noqa: E402
from devstack import pebble_client, procs, proxy_client, world  # noqa: E402

STATE_BUCKET = "certrenew-fleet-state"
EXPORT_BUCKET = "certrenew-fleet-export"
DOMAIN = "fleet.test"
ACM_REGION = "us-east-1"
LAMBDA_TIMEOUT = 900.0
SCHEDULED = REPO / "events" / "scheduled.json"
DEVSTACK_PROCESSES = ("moto", "aws_proxy", "dns_bridge", "pebble")
# The handler as Lambda calls it, nothing else in the process: event file, result file, timeout.
INVOKE = ("import json, sys\n"
          "from handler.local import invoke\n"
          "result = invoke(json.load(open(sys.argv[1])), timeout=float(sys.argv[3]))\n"
          "open(sys.argv[2], 'w').write(json.dumps(result))\n"
          "sys.exit(1 if result.get('ok') is False else 0)\n")
PEBBLE_REQUEST = re.compile(r"^Pebble \S+ \S+ ([A-Z]+) (\S+) -> calling handler\(\)", re.M)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Measure:
    """One run: what it did, what it took, and what it asked of AWS and the CA."""

    label: str
    certificates: int  # the fleet (the config's certificates)
    seconds: float
    rss_mb: float
    cpu_seconds: float
    exit_code: int
    outcomes: dict[str, int]
    s3: dict[str, int]
    kms_reads: int
    acm: dict[str, int]
    route53: dict[str, int]
    other_aws: dict[str, int]
    acme: dict[str, int]
    devstack: dict[str, float] = field(default_factory=dict)
    aws_seconds: dict[str, float] = field(default_factory=dict)  # proxy time (moto's within) by operation

    def total(self, kind: str) -> int:
        return sum(getattr(self, kind).values())


# ---- the world: buckets, zones, configs -------------------------------------------------------------

def cert_name(i: int) -> str:
    return f"c{i:04d}"


def fleet_config(directory: str, count: int, zones: int, export_every: int) -> dict:
    certificates = []
    for i in range(count):
        deploy: dict = {"acm": {"regions": [ACM_REGION]}}
        if export_every and i % export_every == 0:
            deploy["s3"] = {"bucket": EXPORT_BUCKET, "prefix": f"{cert_name(i)}/"}
        certificates.append({"name": cert_name(i), "domains": [f"{cert_name(i)}.z{i % zones}.{DOMAIN}"],
                             "deploy": deploy})
    return {**common_config(directory), "certificates": certificates}


def single_config(directory: str, name: str) -> dict:
    return {**common_config(directory), "certificates": [
        {"name": name, "domains": [f"{name}.z0.{DOMAIN}"], "deploy": {"acm": {"regions": [ACM_REGION]}}}]}


def common_config(directory: str) -> dict:
    """The CA, and its 90-day profile: Pebble picks a profile at random for an order that names
    none, and a 6-day certificate is due at once under a weekly check interval."""
    return {"acme": {"directory": directory}, "defaults": {"profile": "default"}}


def seed(stack, zones: int) -> None:
    """The buckets and zones, and the deployment strict IAM judges the product's calls by."""
    session = admin_session()
    s3 = session.client("s3", endpoint_url=stack.aws_endpoint_url)
    for bucket in (STATE_BUCKET, EXPORT_BUCKET):
        world.create_bucket(s3, bucket)
    route53 = session.client("route53", endpoint_url=stack.aws_endpoint_url)
    zone_ids = [world.create_zone(route53, f"z{k}.{DOMAIN}") for k in range(zones)]
    proxy_client.configure(stack.aws_endpoint_url, deployment={
        "StateBucket": STATE_BUCKET, "ExportBucket": EXPORT_BUCKET, "HostedZoneIds": zone_ids})


# ---- making certificates due ------------------------------------------------------------------------

def _past_next_checks(node, when: str) -> int:
    """Set every `next_check` in a JSON document to `when`; how many there were."""
    found = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "next_check" and value is not None:
                node[key] = when
                found += 1
            else:
                found += _past_next_checks(value, when)
    elif isinstance(node, list):
        found = sum(_past_next_checks(item, when) for item in node)
    return found


def age_ari_checks(stack, names: list[str]) -> None:
    """What a week does to the stored state: every ARI next check (the CA's Retry-After, 6 h
    on Pebble) has passed. Rewrites each pointer in moto directly (not recorded, not judged)."""
    s3 = admin_session().client("s3", endpoint_url=stack.moto_url)
    when = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()

    def age(name: str) -> None:
        key = f"certificates/{name}/current.json"
        document = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())
        if not _past_next_checks(document, when):
            raise SystemExit(f"s3://{STATE_BUCKET}/{key} holds no ARI next_check: bench/fleet.py cannot age "
                             "the state of this layout; teach age_ari_checks() where it is now")
        s3.put_object(Bucket=STATE_BUCKET, Key=key, Body=json.dumps(document, indent=2).encode(),
                      ContentType="application/json")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(age, names))


def open_ari_windows(stack, names: set[str]) -> None:
    """Pebble's ARI answers a window that has passed for these certificates (their PEMs read
    from ACM, where they are deployed: independent of the state layout)."""
    acm = admin_session().client("acm", endpoint_url=stack.moto_url)
    arns = {}
    for page in acm.get_paginator("list_certificates").paginate():
        for summary in page["CertificateSummaryList"]:
            name = summary["DomainName"].split(".", 1)[0]
            if name in names:
                arns[name] = summary["CertificateArn"]
    missing = names - set(arns)
    if missing:
        raise SystemExit(f"not in ACM, cannot make them due: {sorted(missing)[:5]}")
    now = dt.datetime.now(dt.timezone.utc)

    def open_window(arn: str) -> None:
        pem = acm.get_certificate(CertificateArn=arn)["Certificate"]
        pebble_client.set_renewal_info(stack, pem, now - dt.timedelta(days=2), now - dt.timedelta(days=1))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(open_window, arns.values()))


def spread(count: int, wanted: int) -> list[str]:
    """`wanted` names evenly spread over the fleet."""
    wanted = max(1, min(wanted, count))
    return [cert_name(i * count // wanted) for i in range(wanted)]


# ---- measuring one run --------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def in_flight_seconds(calls: list[dict]) -> float:
    """The time at least one AWS call was being answered (the union of the calls' intervals)."""
    spans = sorted((c["time"], c["time"] + c["duration_ms"] / 1000) for c in calls)
    total, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def by_operation(calls: list[dict], service: str) -> dict[str, int]:
    return dict(Counter(c["operation"] for c in calls if c["service"] == service).most_common())


def seconds_by_operation(calls: list[dict], most: int = 6) -> dict[str, float]:
    """The AWS operations that took the devstack longest: seconds summed over their calls."""
    spent: Counter = Counter()
    for call in calls:
        spent[f"{call['service']}:{call['operation']}"] += call["duration_ms"] / 1000
    return {op: round(seconds, 1) for op, seconds in spent.most_common(most)}


def acme_requests(log: str) -> dict[str, int]:
    """Requests Pebble handled, by method and path (its log line per request)."""
    return dict(Counter(f"{m} {p}" for m, p in PEBBLE_REQUEST.findall(log)).most_common())


class Fleet:
    def __init__(self, stack, workdir: Path, via: str, gate: AcmeGate | None):
        self.stack, self.workdir, self.via, self.gate = stack, workdir, via, gate
        self.directory = gate.directory if gate else stack.acme_directory
        self.env = product_env(stack, workdir, STATE_BUCKET, POWERTOOLS_METRICS_NAMESPACE="certrenew-bench",
                               POWERTOOLS_TRACE_DISABLED="true")
        self.pids = {name: stack.pids[name] for name in DEVSTACK_PROCESSES}
        self.pebble_log = procs.log_file(stack.state_dir, "pebble")

    def argv(self, config: Path, run_dir: Path) -> list[str]:
        if self.via == "cli":
            certrenew = Path(sys.executable).parent / "certrenew"
            return [str(certrenew), "run", "--config", str(config), "--json", "--timeout", str(LAMBDA_TIMEOUT)]
        return [sys.executable, "-c", INVOKE, str(SCHEDULED), str(run_dir / "result.json"), str(LAMBDA_TIMEOUT)]

    def run(self, label: str, config: dict) -> Measure:
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        run_dir = self.workdir / slug
        run_dir.mkdir(parents=True, exist_ok=True)
        config_file = run_dir / "certificates.yaml"
        config_file.write_text(json.dumps(config, indent=1))
        env = {**self.env, "CERTRENEW_CONFIG": str(config_file)}
        proxy_client.reset_calls(self.stack.aws_endpoint_url)
        cpu_before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        gate_before = self.gate_figures()
        pebble_from = self.pebble_log.stat().st_size
        seconds, usage, code = run_child_usage(self.argv(config_file, run_dir), env, run_dir / "run")
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in self.pids.items()}
        gate = {k: v - gate_before[k] for k, v in self.gate_figures().items()}
        with self.pebble_log.open("rb") as log:
            log.seek(pebble_from)
            pebble = log.read().decode(errors="replace")
        calls = proxy_client.calls(self.stack.aws_endpoint_url)
        report = self.report(run_dir)
        measure = Measure(
            label=label, certificates=len(config["certificates"]), seconds=seconds,
            rss_mb=usage.ru_maxrss / 1024, cpu_seconds=usage.ru_utime + usage.ru_stime, exit_code=code,
            outcomes=dict(Counter(c.get("outcome", "?") for c in report.get("certificates", [])).most_common()),
            s3=by_operation(calls, "s3"),
            kms_reads=sum(1 for c in calls if c["service"] == "s3" and c["operation"] == "GetObject"
                          and c.get("sse") == "aws:kms"),
            acm=by_operation(calls, "acm"), route53=by_operation(calls, "route53"),
            other_aws=dict(Counter(f"{c['service']}:{c['operation']}" for c in calls
                                   if c["service"] not in ("s3", "acm", "route53")).most_common()),
            acme=acme_requests(pebble), aws_seconds=seconds_by_operation(calls),
            devstack={"aws_in_flight_s": round(in_flight_seconds(calls), 2),
                      "proxy_sum_s": round(sum(c["duration_ms"] for c in calls) / 1000, 2),
                      "moto_sum_s": round(sum(c.get("moto_ms", 0.0) for c in calls) / 1000, 2),
                      **{f"cpu_{name}_s": round(value, 2) for name, value in cpu.items()},
                      **{k: round(v, 2) for k, v in gate.items()}})
        print(f"  {label:<22} {seconds:7.1f}s  rss {measure.rss_mb:5.0f} MB  exit {code}  {measure.outcomes}",
              flush=True)
        return measure

    def gate_figures(self) -> dict[str, float]:
        """The ACME gate's busy time and CPU so far (it is a thread of this process, which
        otherwise only waits for the run)."""
        if self.gate is None:
            return {}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"acme_gate_busy_s": self.gate.upstream.busy_seconds,
                "cpu_acme_gate_s": usage.ru_utime + usage.ru_stime}

    def report(self, run_dir: Path) -> dict:
        source = run_dir / ("run.out" if self.via == "cli" else "result.json")
        try:
            return json.loads(source.read_text() or "{}")
        except (OSError, ValueError):
            return {}


# ---- the runs -----------------------------------------------------------------------------------------

def run_all(fleet: Fleet, args) -> dict[str, Measure]:
    stack = fleet.stack
    config = fleet_config(fleet.directory, args.count, args.zones, args.export_every)
    names = [c["name"] for c in config["certificates"]]
    proxy_client.configure(stack.aws_endpoint_url, route53_delay=0)
    fleet.run("warm-up (account)", single_config(fleet.directory, "warm"))  # registers the ACME account, untimed
    proxy_client.configure(stack.aws_endpoint_url, route53_delay=args.delay)
    print(f"{args.count} certificates in {args.zones} zones, Route53 changes PENDING {args.delay:g}s, "
          f"via {args.via}", flush=True)
    runs = {"one certificate": fleet.run("one certificate", single_config(fleet.directory, "one"))}
    runs["first issue"] = fleet.run("first issue", config)
    catch_up(fleet, config, runs["first issue"])
    runs["no-op"] = fleet.run("no-op", config)
    age_ari_checks(stack, names)
    open_ari_windows(stack, set(spread(args.count, args.due)))
    runs[f"{args.due} due"] = fleet.run(f"{args.due} due", config)
    age_ari_checks(stack, names)
    runs["no-op, week later"] = fleet.run("no-op, week later", config)
    return runs


def catch_up(fleet: Fleet, config: dict, first: Measure) -> None:
    """If the first run did not issue all (a MISS), finish the fleet untimed so the later cases
    start from a whole fleet."""
    missing = first.certificates - first.outcomes.get("issued", 0)
    attempt = 0
    while missing and attempt < 3:
        attempt += 1
        print(f"  {missing} certificates not issued by the first run: catching up (untimed)", flush=True)
        again = fleet.run(f"catch-up {attempt}", config)
        missing -= again.outcomes.get("issued", 0)


# ---- targets, tables, JSON ----------------------------------------------------------------------------

def targets(runs: dict[str, Measure], count: int, due: int) -> list[tuple[str, bool, str]]:
    at = "" if count == 1000 else f" (at N={count}; the target is for 1,000)"
    one, first = runs["one certificate"], runs["first issue"]
    some = runs[f"{due} due"]
    checks = [(f"{due} due <= 1.5x one certificate", some.seconds <= 1.5 * one.seconds,
               f"{some.seconds:.1f}s / {one.seconds:.1f}s = {some.seconds / one.seconds:.2f}x")]
    for label in ("no-op", "no-op, week later"):
        noop = runs[label]
        gets = noop.s3.get("GetObject", 0) / noop.certificates
        checks += [(f"{label}: <= 1 GET per certificate{at}", gets <= 1, f"{gets:.2f}"),
                   (f"{label}: no KMS-protected read{at}", noop.kms_reads == 0, str(noop.kms_reads)),
                   (f"{label}: < 5 s{at}", noop.seconds < 5, f"{noop.seconds:.1f}s"),
                   (f"{label}: < 128 MB{at}", noop.rss_mb < 128, f"{noop.rss_mb:.0f} MB")]
    issued = first.outcomes.get("issued", 0)
    checks += [(f"{count} due in one invocation < 15 min{at}",
                first.seconds < LAMBDA_TIMEOUT and issued == first.certificates,
                f"{first.seconds:.0f}s, {issued}/{first.certificates} issued"),
               (f"{count} due in one invocation < 256 MB{at}", first.rss_mb < 256, f"{first.rss_mb:.0f} MB")]
    return checks


def cell(total: float, certificates: int) -> str:
    return f"{total:g} ({total / certificates:.2f})" if total else "-"


def rows(runs: dict[str, Measure]) -> list[tuple[str, list[str]]]:
    values = list(runs.values())
    out = [("certificates in the config", [str(m.certificates) for m in values]),
           ("outcomes", [", ".join(f"{k} {v}" for k, v in m.outcomes.items()) or f"exit {m.exit_code}"
                         for m in values]),
           ("wall time", [f"{m.seconds:.1f}s" for m in values]),
           ("peak RSS", [f"{m.rss_mb:.0f} MB" for m in values]),
           ("CPU of the run", [f"{m.cpu_seconds:.1f}s" for m in values])]
    for kind, title in (("s3", "S3"), ("acm", "ACM"), ("route53", "Route53"), ("other_aws", "other AWS"),
                        ("acme", "ACME")):
        out.append((f"{title} requests", [cell(m.total(kind), m.certificates) for m in values]))
        if kind == "s3":
            out.append(("  KMS-protected reads", [cell(m.kms_reads, m.certificates) for m in values]))
        operations = sorted({op for m in values for op in getattr(m, kind)},
                            key=lambda op: -max(getattr(m, kind).get(op, 0) for m in values))
        for op in operations:
            out.append((f"  {op}", [cell(getattr(m, kind).get(op, 0), m.certificates) for m in values]))
    out.append(("devstack: AWS call in flight", [f"{m.devstack['aws_in_flight_s']:.1f}s" for m in values]))
    out.append(("  sum of proxy / moto time", [f"{m.devstack['proxy_sum_s']:.1f}s / {m.devstack['moto_sum_s']:.1f}s"
                                              for m in values]))
    for name in DEVSTACK_PROCESSES:
        out.append((f"  CPU of {name}", [f"{m.devstack[f'cpu_{name}_s']:.1f}s" for m in values]))
    slowest = sorted({op for m in values for op in m.aws_seconds},
                     key=lambda op: -max(m.aws_seconds.get(op, 0) for m in values))
    for op in slowest[:6]:
        out.append((f"  time in {op}", [f"{m.aws_seconds[op]:.1f}s" if op in m.aws_seconds else "-"
                                        for m in values]))
    if "acme_gate_busy_s" in values[0].devstack:
        out.append(("  ACME gate busy / its CPU", [f"{m.devstack['acme_gate_busy_s']:.1f}s / "
                                                  f"{m.devstack['cpu_acme_gate_s']:.1f}s" for m in values]))
    return out


def print_tables(runs: dict[str, Measure], args, checks, elapsed: float) -> None:
    print(f"\n{args.count} certificates ({args.zones} zones), Route53 INSYNC delay {args.delay:g}s, "
          f"strict mode, via {args.via}; requests: total (per certificate of the config); "
          f"bench took {elapsed / 60:.1f} min")
    table = rows(runs)
    width = max(len(label) for label, _ in table)
    widths = [max(len(label), *(len(r[1][i]) for r in table)) for i, label in enumerate(runs)]
    print("| " + " | ".join([f"{'':<{width}}"] + [f"{k:>{w}}" for k, w in zip(runs, widths)]) + " |")
    print("|" + "|".join("-" * (w + 2) for w in [width] + widths) + "|")
    for label, cells in table:
        print("| " + " | ".join([f"{label:<{width}}"] + [f"{c:>{w}}" for c, w in zip(cells, widths)]) + " |")
    print("\nTargets (issue 11; a MISS is information, not a failure):")
    for what, ok, got in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {what}: {got}")


def document(runs: dict[str, Measure], args, checks) -> dict:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
            "count": args.count, "zones": args.zones, "delay": args.delay, "due": args.due, "via": args.via,
            "export_every": args.export_every, "pebble_validates_dns": args.validate, "runs": {label: asdict(m) for label, m in runs.items()},
            "targets": [{"target": what, "met": ok, "got": got} for what, ok, got in checks]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="certificates in the fleet (default 1000)")
    parser.add_argument("--zones", type=int, default=10, help="hosted zones they are spread over (default 10)")
    parser.add_argument("--due", type=int, default=100, help="certificates made due for the third run (default 100)")
    parser.add_argument("--export-every", type=int, default=100,
                        help="every Nth certificate is also exported to S3 (default 100; 0: none)")
    parser.add_argument("--delay", type=float, default=10.0, help="seconds each Route53 change stays PENDING")
    parser.add_argument("--via", choices=("handler", "cli"), default="handler",
                        help="run the Lambda handler (default) or `certrenew run`")
    parser.add_argument("--out", type=Path, help="JSON figures (default bench/results/fleet-<UTC time>.json)")
    parser.add_argument("--json", action="store_true", help="print the JSON figures alone on stdout")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every run)")
    parser.add_argument("--validate", action="store_true",
                        help="let Pebble query the DNS bridge for every challenge (its 2 s DNS timeout "
                             "fails most of a 1,000-name burst)")
    parser.add_argument("--no-gate", action="store_true",
                        help="talk to Pebble directly, not through bench/acme_gate.py (Pebble deadlocks at scale)")
    args = parser.parse_args(argv)
    args.due = max(1, min(args.due, args.count))
    if args.json:
        sys.stdout = sys.stderr  # progress to stderr; the document alone goes to the real stdout
    started = time.monotonic()
    pebble_env = {} if args.validate else {"PEBBLE_VA_ALWAYS_VALID": "1"}
    with private_devstack("certrenew-bench-fleet-", keep=args.keep, route53_delay=args.delay,
                          pebble_env=pebble_env) as (stack, workdir):
        seed(stack, args.zones)
        with contextlib.nullcontext() if args.no_gate else AcmeGate(stack) as gate:
            runs = run_all(Fleet(stack, workdir, args.via, gate), args)
    checks = targets(runs, args.count, args.due)
    figures = document(runs, args, checks)
    if args.json:
        sys.stdout = sys.__stdout__
        print(json.dumps(figures, indent=1))
        return 0
    print_tables(runs, args, checks, time.monotonic() - started)
    out = args.out or REPO / "bench" / "results" / f"fleet-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%MZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"\nfigures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
