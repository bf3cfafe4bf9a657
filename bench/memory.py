#!/usr/bin/env python3
"""Memory of a warm Lambda: resident set size over many invocations of each handler, on the devstack.

    make bench-memory                     # or: .venv/bin/python bench/memory.py [--invocations 50]
    .venv/bin/python bench/memory.py --src /path/to/other/src   # the same against another source tree

A warm Lambda runs every invocation in the same process, so whatever one invocation leaves
reachable stays for the life of the container. A private devstack is started and a few
certificates issued once; then each handler runs in its own process, `--invocations` times in a
row, as Lambda would call it (handler.app.lambda_handler with a local context):
- the renewer on a scheduled event that finds nothing due,
- the renewer on a `plan` event,
- the SQS worker on a batch whose certificate is not due.
After each invocation the process's VmRSS (and at the end its peak, VmHWM) is read from
/proc/self/status; no explicit garbage collection is done (Lambda does none either). The table
shows RSS after invocation 1, 10, 25 and the last, and the growth from the first to the last.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import admin_session, private_devstack, product_env  # noqa: E402

ZONE = "memory.test"
STATE_BUCKET = "certrenew-bench-memory"
CERTIFICATES = 3
CHECKPOINTS = (1, 10, 25, 50)
SCHEDULED = json.loads((REPO / "events" / "scheduled.json").read_text())
HANDLERS = {
    "renewer (scheduled, nothing due)": SCHEDULED,
    "renewer (plan)": {"action": "plan"},
    "worker (SQS batch, not due)": {"Records": [{
        "messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps({"certificate": "c0"}),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:certrenew-work", "awsRegion": "us-east-1"}]},
}


def status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


# ---- child: one handler, many warm invocations ----------------------------------------------------

def local_invoke():
    """`handler.local.invoke`; a `--src` tree older than handler/local.py gets the same from its CLI."""
    try:
        from handler.local import invoke
    except ImportError:
        from acme_flow.cli import LocalContext
        from handler.app import lambda_handler

        return lambda event, timeout: lambda_handler(event, LocalContext(timeout))
    return invoke


def child(event_file: Path, invocations: int, out: Path) -> int:
    invoke = local_invoke()
    event = json.loads(event_file.read_text())
    rss = []
    for _ in range(invocations):
        result = invoke(event, timeout=900)
        if result.get("ok") is False or result.get("batchItemFailures"):
            raise SystemExit(f"the handler failed: {json.dumps(result)[:2000]}")
        rss.append(status_kb("VmRSS"))
    out.write_text(json.dumps({"rss_kb": rss, "peak_kb": status_kb("VmHWM")}))
    return 0


# ---- parent: devstack, state, one child per handler ------------------------------------------------

def prepare(stack, workdir: Path, env: dict) -> Path:
    """A bucket, a zone and CERTIFICATES issued once, so that nothing is due afterwards."""
    from devstack import proxy_client, world

    session = admin_session()
    world.create_bucket(session.client("s3", endpoint_url=stack.aws_endpoint_url), STATE_BUCKET)
    zone_id = world.create_zone(session.client("route53", endpoint_url=stack.aws_endpoint_url), ZONE)
    # The deployment strict IAM judges the handlers' calls by (without it the state bucket is not theirs).
    proxy_client.configure(stack.aws_endpoint_url, deployment={"StateBucket": STATE_BUCKET, "HostedZoneIds": [zone_id]})
    config = workdir / "certificates.yaml"
    config.write_text(json.dumps({"acme": {"directory": stack.acme_directory}, "certificates": [
        {"name": f"c{i}", "domains": [f"c{i}.{ZONE}"]} for i in range(CERTIFICATES)]}, indent=1))
    done = subprocess.run([str(Path(sys.executable).parent / "certrenew"), "run", "--config", str(config), "--json"],
                          env=env, capture_output=True, text=True)
    report = json.loads(done.stdout or "{}")
    if done.returncode or {c["outcome"] for c in report.get("certificates", [])} != {"issued"}:
        raise SystemExit(f"could not issue the certificates first (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return config


def measure(label: str, event: dict, env: dict, workdir: Path, invocations: int) -> dict:
    slug = "".join(ch if ch.isalnum() else "-" for ch in label)
    event_file, out, log = (workdir / f"{slug}.{ext}" for ext in ("event.json", "result.json", "log"))
    event_file.write_text(json.dumps(event))
    with log.open("w") as log_file:
        code = subprocess.run([sys.executable, __file__, "--child", str(event_file), "--out", str(out),
                               "--invocations", str(invocations)], env=env, stdout=log_file, stderr=log_file,
                              stdin=subprocess.DEVNULL).returncode
    if code:
        raise SystemExit(f"{label}: exit {code}; see {log}:\n{log.read_text()[-3000:]}")
    return json.loads(out.read_text())


def print_table(results: dict[str, dict], invocations: int, source: str) -> None:
    points = sorted({p for p in CHECKPOINTS if p < invocations} | {invocations})
    settled = points[1] if len(points) > 1 else points[0]  # the first invocations load modules and warm caches
    print(f"\nRSS (MB) after warm invocations of each handler, one process per handler; code from {source}")
    head = (f"{'handler':<34}" + "".join(f"{'#' + str(p):>9}" for p in points)
            + f"{'#1->#' + str(invocations):>10}{'#' + str(settled) + '->#' + str(invocations):>11}{'peak':>9}")
    print(head)
    print("-" * len(head))
    for label, got in results.items():
        rss = [kb / 1024 for kb in got["rss_kb"]]
        cells = "".join(f"{rss[p - 1]:>9.1f}" for p in points)
        print(f"{label:<34}{cells}{rss[-1] - rss[0]:>+10.1f}{rss[-1] - rss[settled - 1]:>+11.1f}"
              f"{got['peak_kb'] / 1024:>9.1f}")
    print(f"growth columns: RSS after the last invocation minus after invocation 1 and {settled}; "
          "peak: VmHWM of the process")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=50, help="warm invocations per handler (default 50)")
    parser.add_argument("--src", help="run the handlers from this source tree (e.g. an older checkout's src/)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs of every child)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.invocations, args.out)

    with private_devstack("certrenew-bench-memory-", keep=args.keep) as (stack, workdir):
        env = product_env(stack, workdir, STATE_BUCKET, POWERTOOLS_METRICS_NAMESPACE="certrenew-bench",
                          POWERTOOLS_TRACE_DISABLED="true")
        if args.src:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(args.src).resolve()), env.get("PYTHONPATH")]))
        env["CERTRENEW_CONFIG"] = str(prepare(stack, workdir, env))
        results = {}
        for label, event in HANDLERS.items():
            print(f"  {label}: {args.invocations} invocations ...", flush=True)
            results[label] = measure(label, event, env, workdir, args.invocations)
    print_table(results, args.invocations, args.src or str(REPO / "src"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
