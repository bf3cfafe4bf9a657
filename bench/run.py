#!/usr/bin/env python3
"""certrenew against certbot + certbot-dns-route53 on the devstack, with Route53 delay emulation.

    make bench                       # or: .venv/bin/python bench/run.py [--reps 3] [--delay 10]

A private devstack is started with every Route53 change PENDING for `--delay` seconds (real
Route53 takes 30-120 s). Each case is run by both tools on fresh names, alternating which goes
first, `--reps` times; the table shows medians and certrenew/certbot. certbot issues one
certificate per invocation (as it would from cron), so N certificates are N invocations.
certrenew runs as a subprocess (`certrenew run --config ... --json`): its peak RSS is the
child's ru_maxrss. certbot lives in bench/.venv (pinned in bench/requirements-certbot.txt),
made on first use. The phase table splits certrenew's time by its own log lines.

The case "10 renewed, dns-persist-01" times renewals, not first issues: both tools first issue
the 10 certificates (untimed), then certrenew renews them in one run (`--force`) validated by
the persistent `_validation-persist` records (written once, untimed, as a person would with
`certrenew persist apply`), and certbot renews each (`certbot renew --force-renewal
--cert-name`) with DNS-01, as it must: certbot has no dns-persist-01.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import admin_session, product_env, run_child  # noqa: E402
from devstack import proxy_client, world  # noqa: E402
from devstack import stack as devstack  # noqa: E402

BENCH = REPO / "bench"
CERTBOT_VENV = BENCH / ".venv"
CERTBOT_REQUIREMENTS = BENCH / "requirements-certbot.txt"
CERTRENEW = Path(sys.executable).parent / "certrenew"
ZONE = "bench.test"
STATE_BUCKET = "certrenew-bench-state"


@dataclass(frozen=True)
class Case:
    label: str
    certificates: int
    names: int
    certbot: bool = True
    persist_renewal: bool = False  # time renewals through dns-persist-01 (see the module docstring)


CASES = [
    Case("1 name", 1, 1),
    Case("20 names", 1, 20),
    Case("10 certs x 2 names", 10, 2),
    Case("100 certs x 1 name", 100, 1, certbot=False),
    Case("10 renewed, dns-persist-01", 10, 1, persist_renewal=True),
]


@dataclass
class Sample:
    seconds: float
    rss_mb: float | None = None
    route53_calls: int = 0
    route53_writes: int = 0
    phases: dict[str, float] = field(default_factory=dict)


# ---- tools ---------------------------------------------------------------------------------------

def ensure_certbot() -> Path:
    """bench/.venv with the pinned certbot and certbot-dns-route53 (made once)."""
    certbot = CERTBOT_VENV / "bin" / "certbot"
    stamp = CERTBOT_VENV / ".installed"
    wanted = CERTBOT_REQUIREMENTS.read_text()
    if certbot.exists() and stamp.exists() and stamp.read_text() == wanted:
        return certbot
    print(f"installing certbot into {CERTBOT_VENV.relative_to(REPO)} ...", flush=True)
    python = shutil.which("python3") or sys.executable
    subprocess.run([python, "-m", "venv", "--clear", str(CERTBOT_VENV)], check=True)
    pip = [str(CERTBOT_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-r", str(CERTBOT_REQUIREMENTS)], check=True)
    stamp.write_text(wanted)
    return certbot


def names_for(case: Case, tag: str) -> list[list[str]]:
    return [[f"n{j}.c{i}.{tag}.{ZONE}" for j in range(case.names)] for i in range(case.certificates)]


class Bench:
    def __init__(self, stack, workdir: Path, certbot: Path, delay: float = 10.0):
        self.stack, self.workdir, self.certbot, self.delay = stack, workdir, certbot, delay
        self.zone_id = ""
        self.env = product_env(stack, workdir, STATE_BUCKET)
        self.certbot_dirs = {d: workdir / "certbot" / d for d in ("config", "work", "logs")}
        self.runs = 0
        self.failures = 0

    def set_up(self) -> None:
        session = admin_session()
        endpoint = self.stack.aws_endpoint_url
        world.create_bucket(session.client("s3", endpoint_url=endpoint), STATE_BUCKET)
        self.zone_id = zone_id = world.create_zone(session.client("route53", endpoint_url=endpoint), ZONE)
        # The deployment the proxy's strict IAM judges certrenew's calls by (certbot's are not judged).
        proxy_client.configure(endpoint, deployment={"StateBucket": STATE_BUCKET, "HostedZoneIds": [zone_id]})
        for path in self.certbot_dirs.values():
            path.mkdir(parents=True, exist_ok=True)

    def warm_up(self) -> None:
        """Untimed: certrenew registers its account (kept in S3), certbot its own (kept in its config dir)."""
        proxy_client.configure(self.stack.aws_endpoint_url, route53_delay=0)
        sample = self.certrenew(Case("warm-up", 1, 1), "warm")
        if sample is None:
            raise SystemExit("certrenew warm-up failed: see " + str(self.workdir))
        code = subprocess.run([str(self.certbot), "register", "--non-interactive", "--agree-tos",
                               "--register-unsafely-without-email", "--server", self.stack.acme_directory,
                               *self._certbot_dir_args()], env=self._certbot_env(),
                              capture_output=True).returncode
        if code:
            raise SystemExit("certbot register failed")

    def _certbot_env(self) -> dict:
        return {**self.env, "REQUESTS_CA_BUNDLE": self.stack.ca_bundle}

    def _certbot_dir_args(self) -> list[str]:
        return ["--config-dir", str(self.certbot_dirs["config"]), "--work-dir", str(self.certbot_dirs["work"]),
                "--logs-dir", str(self.certbot_dirs["logs"])]

    def _route53_calls(self) -> int:
        return len(proxy_client.calls(self.stack.aws_endpoint_url, "route53"))

    def _route53_writes(self) -> int:
        return len(proxy_client.calls(self.stack.aws_endpoint_url, "route53", "ChangeResourceRecordSets"))

    def certrenew(self, case: Case, tag: str) -> Sample | None:
        self.runs += 1
        run_dir = self.workdir / f"certrenew-{tag}"
        run_dir.mkdir(parents=True, exist_ok=True)
        challenge = {"challenge": "dns-persist-01"} if case.persist_renewal else {}
        certificates = [{"name": f"c{i}-{tag}", "domains": names, **challenge}
                        for i, names in enumerate(names_for(case, tag))]
        config = run_dir / "certificates.yaml"
        config.write_text(json.dumps({"acme": {"directory": self.stack.acme_directory},
                                      "certificates": certificates}, indent=1))
        extra, wanted = [], "issued"
        if case.persist_renewal:  # untimed: the persistent records, then the first issue
            self.write_persistent_records([n for names in names_for(case, tag) for n in names])
            if self._certrenew_once(config, run_dir / "first", [], "issued", tag) is None:
                return None
            extra, wanted = ["--force"], "renewed"
        proxy_client.reset_calls(self.stack.aws_endpoint_url)
        return self._certrenew_once(config, run_dir / "run", extra, wanted, tag)

    def _certrenew_once(self, config: Path, log_to: Path, extra: list[str], wanted: str, tag: str) -> Sample | None:
        seconds, rss, code = run_child([str(CERTRENEW), "run", "--config", str(config), "--json", "--timeout", "900",
                                        *extra], self.env, log_to)
        report = json.loads(log_to.with_suffix(".out").read_text() or "{}")
        outcomes = {c["outcome"] for c in report.get("certificates", [])}
        if code != 0 or outcomes != {wanted}:
            print(f"  certrenew {tag} failed (exit {code}, {outcomes}); logs in {log_to.parent}", flush=True)
            self.failures += 1
            return None
        return Sample(seconds, rss, self._route53_calls(), self._route53_writes(),
                      phases(log_to.with_suffix(".err").read_text(), seconds))

    def write_persistent_records(self, names: list[str]) -> None:
        """What `certrenew persist apply` writes, written here as the zone's administrator."""
        from acme_flow import persist

        s3 = admin_session().client("s3", endpoint_url=self.stack.aws_endpoint_url)
        listed = s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix="accounts/").get("Contents", [])
        key = next(o["Key"] for o in listed if o["Key"].endswith("/account.json"))
        url = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())["url"]
        who = persist.PersistIdentity("pebble.letsencrypt.org", url, persist.Draft.D01)
        route53 = admin_session().client("route53", endpoint_url=self.stack.aws_endpoint_url)
        proxy_client.configure(self.stack.aws_endpoint_url, route53_delay=0)
        try:
            for name, wanted in persist.wanted_records(names, who).items():
                world.upsert_txt(route53, self.zone_id, name, [wanted.value(persist.Draft.D01)])
        finally:
            proxy_client.configure(self.stack.aws_endpoint_url, route53_delay=self.delay)

    def certbot_run(self, case: Case, tag: str) -> Sample | None:
        """certbot issues each certificate (one invocation each, as from cron); for the
        dns-persist-01 case it then renews each, and only the renewals are timed."""
        self.runs += 1
        run_dir = self.workdir / f"certbot-{tag}"
        run_dir.mkdir(parents=True, exist_ok=True)
        issues = {f"c{i}": ["certonly", "--agree-tos", "--register-unsafely-without-email", "--server",
                            self.stack.acme_directory, "--dns-route53", "--cert-name", f"c{i}-{tag}",
                            *(arg for name in names for arg in ("-d", name))]
                  for i, names in enumerate(names_for(case, tag))}
        sample = self._certbot_each(issues, tag, run_dir)
        if sample is None or not case.persist_renewal:
            return sample
        renewals = {f"renew-c{i}": ["renew", "--no-random-sleep-on-renew", "--force-renewal", "--cert-name",
                                    f"c{i}-{tag}"] for i in range(case.certificates)}
        return self._certbot_each(renewals, tag, run_dir)

    def _certbot_each(self, invocations: dict[str, list[str]], tag: str, run_dir: Path) -> Sample | None:
        """Each certbot invocation in turn (its log under its key); their summed time."""
        proxy_client.reset_calls(self.stack.aws_endpoint_url)
        total = 0.0
        for key, args in invocations.items():
            argv = [str(self.certbot), args[0], "--non-interactive", *self._certbot_dir_args(), *args[1:]]
            seconds, _, code = run_child(argv, self._certbot_env(), run_dir / key)
            total += seconds
            if code != 0:
                print(f"  certbot {args[0]} {tag} {key} failed (exit {code}); logs in {run_dir}", flush=True)
                self.failures += 1
                return None
        return Sample(total, None, self._route53_calls())


# ---- where certrenew's time goes -----------------------------------------------------------------

PHASES = [  # (label, log line that ends the phase, first or last occurrence)
    ("start-up, plan, leases", re.compile(r"issuing \d+ certificate"), "first"),
    ("orders", re.compile(r"publishing \d+ TXT values"), "first"),
    ("Route53 INSYNC", re.compile(r"Route53 is INSYNC|UPSERT of \d+ TXT names submitted \(\S+, INSYNC\)"), "last"),
    ("DNS check", re.compile(r"TXT values (seen on every server|are visible)"), "first"),
    ("validation", re.compile(r"authorizations valid for"), "last"),
    ("finalize", re.compile(r"certificate issued for"), "last"),
]
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def phases(log: str, total: float) -> dict[str, float]:
    """Seconds per phase from certrenew's log timestamps (the rest: store, report, exit)."""
    stamped = []
    for line in log.splitlines():
        match = _STAMP.match(line)
        if match:
            stamped.append((dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"), line))
    if not stamped:
        return {}
    ends: list[tuple[str, dt.datetime]] = []
    for label, pattern, which in PHASES:
        hits = [t for t, line in stamped if pattern.search(line)]
        if hits:
            ends.append((label, hits[0] if which == "first" else hits[-1]))
    out: dict[str, float] = {}
    first_log = stamped[0][0]
    previous = None
    for label, end in ends:
        out[label] = (end - previous).total_seconds() if previous else (end - first_log).total_seconds()
        previous = end
    logged = (stamped[-1][0] - first_log).total_seconds()
    out["start-up, plan, leases"] = out.get("start-up, plan, leases", 0.0) + max(0.0, total - logged)
    out["store, report, exit"] = (stamped[-1][0] - previous).total_seconds() if previous else 0.0
    return out


# ---- main ----------------------------------------------------------------------------------------

def median(samples: list[Sample], attr: str) -> float | None:
    values = [getattr(s, attr) for s in samples if getattr(s, attr) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, unit: str = "s") -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every case (default 3)")
    parser.add_argument("--delay", type=float, default=10.0, help="seconds each Route53 change stays PENDING")
    parser.add_argument("--cases", default="", help="comma-separated case numbers to run (1-5; default all)")
    parser.add_argument("--certbot-100", action="store_true", help="also run certbot on 100 certificates (~25 min)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every run)")
    args = parser.parse_args(argv)
    cases = [c for i, c in enumerate(CASES, 1) if not args.cases or str(i) in args.cases.split(",")]
    if args.certbot_100:
        cases = [replace(c, certbot=True) for c in cases]

    certbot = ensure_certbot()
    version = subprocess.run([str(certbot), "--version"], capture_output=True, text=True).stdout.strip()
    workdir = Path(tempfile.mkdtemp(prefix="certrenew-bench-"))
    stack = devstack.up(workdir / "devstack", route53_delay=args.delay)
    started = time.monotonic()
    results: dict[str, dict[str, list[Sample]]] = {c.label: {"certrenew": [], "certbot": []} for c in cases}
    bench = None
    try:
        bench = Bench(stack, workdir, certbot, args.delay)
        bench.set_up()
        bench.warm_up()
        proxy_client.configure(stack.aws_endpoint_url, route53_delay=args.delay)
        print(f"Route53 changes stay PENDING {args.delay:g}s; {args.reps} repetitions; {version}", flush=True)
        for rep in range(args.reps):
            for number, case in enumerate(cases, 1):
                order = ["certrenew", "certbot"] if (rep + number) % 2 == 0 else ["certbot", "certrenew"]
                for tool in order:
                    if tool == "certbot" and not case.certbot:
                        continue
                    tag = f"{tool[:2]}{rep}k{number}"
                    sample = bench.certrenew(case, tag) if tool == "certrenew" else bench.certbot_run(case, tag)
                    if sample:
                        results[case.label][tool].append(sample)
                        print(f"  rep {rep + 1} {case.label:<20} {tool:<9} {sample.seconds:6.1f}s"
                              + (f"  rss {sample.rss_mb:.0f} MB" if sample.rss_mb else ""), flush=True)
    finally:
        devstack.down(workdir / "devstack")
        if args.keep or bench is None or bench.failures:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_tables(results, args, time.monotonic() - started)
    return 0 if all(r["certrenew"] for r in results.values()) else 1


def print_tables(results: dict[str, dict[str, list[Sample]]], args, elapsed: float) -> None:
    print()
    print(f"Medians over {args.reps} repetitions, Route53 INSYNC delay {args.delay:g}s (bench took {elapsed / 60:.1f} min)")
    header = f"| {'case':<20} | {'certrenew':>9} | {'certbot':>9} | {'ratio':>6} | {'certrenew RSS':>13} | {'Route53 calls (ours/certbot)':>28} |"
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    one = None
    for label, by_tool in results.items():
        ours, theirs = median(by_tool["certrenew"], "seconds"), median(by_tool["certbot"], "seconds")
        if label == "1 name":
            one = ours
        ratio = f"{ours / theirs:.2f}x" if ours and theirs else "-"
        rss = max((s.rss_mb for s in by_tool["certrenew"] if s.rss_mb), default=None)
        calls = f"{fmt(median(by_tool['certrenew'], 'route53_calls'), '')} / {fmt(median(by_tool['certbot'], 'route53_calls'), '')}"
        print(f"| {label:<20} | {fmt(ours):>9} | {fmt(theirs):>9} | {ratio:>6} | {fmt(rss, ' MB'):>13} | {calls:>28} |")
    print()
    hundred = median(results.get("100 certs x 1 name", {}).get("certrenew", []), "seconds")
    ten = results.get("10 certs x 2 names", {})
    checks = []
    if ten and ten["certrenew"] and ten["certbot"]:
        ratio = median(ten["certrenew"], "seconds") / median(ten["certbot"], "seconds")
        checks.append(("10 certs x 2 names <= 0.15x certbot", ratio <= 0.15, f"{ratio:.2f}x"))
    if hundred and one:
        checks.append(("100 certs <= 3x one name", hundred <= 3 * one, f"{hundred / one:.2f}x"))
    persistent = results.get("10 renewed, dns-persist-01", {})
    if persistent and persistent["certrenew"] and persistent["certbot"]:
        ratio = median(persistent["certrenew"], "seconds") / median(persistent["certbot"], "seconds")
        checks.append(("10 renewed with dns-persist-01 <= 0.05x certbot", ratio <= 0.05, f"{ratio:.3f}x"))
        writes = median(persistent["certrenew"], "route53_writes")
        checks.append(("no Route53 write in the dns-persist-01 renewals", writes == 0, f"{writes:g}"))
    peak = max((s.rss_mb for r in results.values() for s in r["certrenew"] if s.rss_mb), default=None)
    if peak:
        checks.append(("certrenew peak RSS <= 128 MB", peak <= 128, f"{peak:.0f} MB"))
    for what, ok, got in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {what}: {got}")
    print()
    print("Where certrenew's time goes (medians, seconds, from its log timestamps):")
    labels = [label for label, _, _ in PHASES] + ["store, report, exit"]
    print(f"| {'case':<20} | " + " | ".join(f"{l:>{max(7, len(l))}}" for l in labels) + " |")
    print("|" + "-" * 22 + "|" + "|".join("-" * (max(7, len(l)) + 2) for l in labels) + "|")
    for label, by_tool in results.items():
        samples = by_tool["certrenew"]
        cells = []
        for phase in labels:
            values = [s.phases[phase] for s in samples if phase in s.phases]
            cells.append(f"{statistics.median(values):>{max(7, len(phase))}.1f}" if values else f"{'-':>{max(7, len(phase))}}")
        print(f"| {label:<20} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
