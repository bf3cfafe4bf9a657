#!/usr/bin/env python3
"""Cold start of the built package: what `import handler.app` costs in a fresh Lambda-like process.

    make bench-coldstart               # or: .venv/bin/python bench/coldstart.py [--runs 9] [--no-build]

1. Builds the package as `make build` does (sam build for python3.13, byte-compiled with
   unchecked-hash .pyc), for this machine's architecture (the template with only `Architectures`
   changed; the arm64 artifact's cryptography cannot load on x86_64), into
   .aws-sam/bench-coldstart/build. `--no-build` reuses that build.
2. Imports each entry point (`handler.app`, `handler.worker`) `--runs` times in a fresh python3.13
   (`-S -X importtime`: nothing but the package on the path) with a Lambda-like environment
   (AWS_LAMBDA_FUNCTION_NAME, LAMBDA_TASK_ROOT, the template's variables) and keeps the best run:
   its wall time against the target (under 0.4 s), the CPU time (steadier on a shared machine),
   the top modules by cumulative import time, the time by top-level package, boto3's share
   (boto3 and everything it imports first), and which heavy libraries the import loaded (the
   ACME client, cryptography, X-Ray, dnspython, Powertools batch, the CLI: none should be).
3. The time from process start to the first line of work: a process imports the handler, calls
   it on a `plan` event and is stopped when the renewer is built, about to plan (config read,
   clients and adapters made, nothing sent); best of `--runs`, with tracing off and with X-Ray
   on (the template's default). Then botocore's client creation per service, in one session.
Wall times on a shared machine vary by 2x from run to run: compare best-of figures, or CPU times.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".aws-sam" / "bench-coldstart"
TARGET_SECONDS = 0.4
ENTRY_POINTS = {"RenewerFunction": "handler.app", "WorkerFunction": "handler.worker"}
# Distributions that come with boto3: its share of the import is theirs together.
BOTO = ("boto3", "botocore", "s3transfer", "urllib3", "jmespath", "dateutil", "six")
HEAVY = ("acme", "josepy", "cryptography.x509", "aws_xray_sdk", "dns", "OpenSSL", "requests",
         "aws_lambda_powertools.utilities.batch", "acme_flow.cli")
SERVICES = ("s3", "acm", "cloudfront", "sns", "events", "route53", "sqs", "sts")
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "certrenew-bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
    "CERTRENEW_STATE_BUCKET": "certrenew-bench-coldstart", "CERTRENEW_CHECK_INTERVAL": "7d",
    "CERTRENEW_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:certrenew", "CERTRENEW_EVENT_BUS": "default",
    "POWERTOOLS_SERVICE_NAME": "certrenew", "POWERTOOLS_METRICS_NAMESPACE": "certrenew",
    "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_TRACE_DISABLED": "true",
}

# The child of step 3: imports the handler, calls it on a plan event, stops before the plan.
FIRST_WORK = """
import json, sys, time
started = time.perf_counter()
import handler.app as app
imported = time.perf_counter()

class Stop(Exception):
    pass

real_build = app.build
def build():
    wired = real_build()
    print("READY " + json.dumps({"import": imported - started, "build": time.perf_counter() - imported}),
          file=sys.__stdout__, flush=True)
    raise Stop

app.build = build
class Context:
    function_name = "certrenew-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:certrenew-bench"
    memory_limit_in_mb = 512
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self):
        return 900000
try:
    app.lambda_handler({"action": "plan"}, Context())
except Stop:
    pass
"""

CLIENTS = """
import json, sys, time
import boto3
session = boto3.session.Session()
made = {}
for service in sys.argv[1:]:
    t = time.perf_counter()
    session.client(service, region_name="us-east-1")
    made[service] = time.perf_counter() - t
print(json.dumps(made))
"""


@dataclass(frozen=True)
class Import:
    name: str
    depth: int
    self_us: int
    cumulative_us: int
    parent: str | None


def parse_importtime(text: str) -> list[Import]:
    """`-X importtime` lines (children before their parent) into entries that know their parent."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((name.strip(), depth, int(self_us), int(cumulative_us)))
    imports, waiting = [], []  # waiting: indexes of rows whose parent comes later
    for index, (name, depth, self_us, cumulative_us) in enumerate(rows):
        imports.append(Import(name, depth, self_us, cumulative_us, None))
        for child in [i for i in waiting if imports[i].depth == depth + 1]:
            imports[child] = replace(imports[child], parent=name)
            waiting.remove(child)
        waiting.append(index)
    return imports


def find_python313(given: str | None) -> str:
    candidates = [given, os.environ.get("CERTRENEW_PY313"), shutil.which("python3.13"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13"))),
                  *sorted(glob.glob(os.path.expanduser("~/.local/share/uv/python/cpython-3.13*/bin/python3.13"))),
                  "/usr/local/bin/python3.13", "/usr/bin/python3.13"]
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                              capture_output=True, text=True)
        if done.stdout.strip() == "True":
            return candidate
    raise SystemExit("no python3.13 found: install one (apt, pyenv or uv) or pass --python")


def build(py313: str) -> Path:
    """`make build` of the template for this machine's architecture, into WORK/build."""
    arch = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"
    WORK.mkdir(parents=True, exist_ok=True)
    template = WORK / "template.yaml"
    template.write_text((REPO / "template.yaml").read_text().replace("Architectures: [arm64]", f"Architectures: [{arch}]"))
    flags = f"--cached --parallel --cache-dir {WORK / 'cache'} --base-dir {REPO}"
    done = subprocess.run(["make", "-s", "-C", str(REPO), "build", f"PY313={py313}", f"SAM_TEMPLATE={template}",
                           f"SAM_BUILD_DIR={WORK / 'build'}", f"SAM_BUILD_FLAGS={flags}"],
                          capture_output=True, text=True, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    if done.returncode != 0:
        raise SystemExit(f"make build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return WORK / "build"


def lambda_env(root: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": str(root),
            "LAMBDA_TASK_ROOT": str(root), "PYTHONDONTWRITEBYTECODE": "1", **LAMBDA_ENV}


@dataclass(frozen=True)
class ImportRun:
    imports: list[Import]
    heavy: list[str]  # the HEAVY modules loaded
    cpu: float  # CPU seconds of the import (steadier than wall time on a shared machine)

    def total(self, module: str) -> float:
        return next(i.cumulative_us for i in self.imports if i.name == module) / 1e6


def import_once(py313: str, root: Path, module: str) -> ImportRun:
    probe = (f"import json, sys, time; cpu = time.process_time(); import {module}; cpu = time.process_time() - cpu; "
             f"print(json.dumps([cpu, [m for m in {list(HEAVY)!r} if m in sys.modules]]))")
    done = subprocess.run([py313, "-S", "-X", "importtime", "-c", probe], capture_output=True, text=True,
                          env=lambda_env(root), cwd=root, check=False)
    if done.returncode != 0:
        raise SystemExit(f"import {module} failed:\n{done.stderr[-3000:]}")
    cpu, heavy = json.loads(done.stdout)
    return ImportRun(parse_importtime(done.stderr), heavy, cpu)


def under(imports: list[Import], module: str) -> list[Import]:
    """The imports that `module` triggered (its subtree in the best run), itself included."""
    parents = {i.name: i.parent for i in imports}
    def inside(name: str | None) -> bool:
        while name is not None:
            if name == module:
                return True
            name = parents.get(name)
        return False
    return [i for i in imports if inside(i.name)]


def by_package(imports: list[Import]) -> list[tuple[str, int]]:
    totals: dict[str, int] = {}
    for i in imports:
        top = i.name.split(".")[0]
        totals[top] = totals.get(top, 0) + i.self_us
    return sorted(totals.items(), key=lambda kv: -kv[1])


def print_imports(module: str, runs: list[ImportRun], top: int) -> float:
    """The best run (the smallest wall time) of `module`'s import; returns that time."""
    best = min(runs, key=lambda r: r.total(module))
    mine = under(best.imports, module)
    total = best.total(module)
    verdict = "PASS" if total < TARGET_SECONDS else "MISS"
    print(f"\nimport {module}: {total:.3f} s  {verdict} (target < {TARGET_SECONDS} s); CPU {min(r.cpu for r in runs):.3f} s; "
          f"wall time of every run: {', '.join(f'{r.total(module):.3f}' for r in sorted(runs, key=lambda r: r.total(module)))}")
    print(f"  top {top} modules by cumulative import time (best run; ms cumulative / self):")
    for i in sorted(mine, key=lambda i: -i.cumulative_us)[:top]:
        print(f"    {i.cumulative_us / 1000:8.1f} {i.self_us / 1000:7.1f}  {'  ' * i.depth}{i.name}")
    boto = sum(i.self_us for i in mine if i.name.split(".")[0] in BOTO) / 1e6
    first_boto = next((i for i in mine if i.name == "boto3"), None)
    print(f"  boto3's share: {first_boto.cumulative_us / 1e6 if first_boto else 0:.3f} s with all it imports first "
          f"({boto:.3f} s in {', '.join(BOTO)} themselves), of {total:.3f} s")
    print("  by top-level package (self time, ms): " + ", ".join(
        f"{name} {us / 1000:.0f}" for name, us in by_package(mine)[:14]))
    print(f"  heavy libraries loaded: {', '.join(best.heavy) if best.heavy else 'none'}")
    return total


def time_to_work(py313: str, root: Path, tracing: bool) -> dict[str, float]:
    """One process: seconds from its start (as its parent sees it) to the renewer built."""
    env = {**lambda_env(root), "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true"}
    started = time.perf_counter()
    with subprocess.Popen([py313, "-S", "-c", FIRST_WORK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, cwd=root) as child:
        for line in child.stdout:
            if line.startswith("READY "):
                times = {"to_work": time.perf_counter() - started, **json.loads(line.removeprefix("READY "))}
                break
        else:
            raise SystemExit(f"the handler did not reach its first line of work:\n{child.stderr.read()[-3000:]}")
        child.communicate()
    return times


def first_work(py313: str, root: Path, runs: int) -> None:
    print(f"\nfirst line of work: a process imports handler.app, calls it on a plan event, and has the renewer "
          f"built (config read, clients and adapters made, nothing sent); best of {runs}:")
    for tracing, label in ((False, "tracing off (TracingMode PassThrough)"), (True, "X-Ray on (the template's default)")):
        best = min((time_to_work(py313, root, tracing) for _ in range(runs)), key=lambda t: t["to_work"])
        print(f"  {label}: {best['to_work']:.3f} s from process start; in the process: import "
              f"{best['import']:.3f} s, then the handler to its first line of work {best['build']:.3f} s")
    done = subprocess.run([py313, "-S", "-c", CLIENTS, *SERVICES], capture_output=True, text=True,
                          env=lambda_env(root), cwd=root, check=True)
    made = json.loads(done.stdout)
    print("  botocore client creation, one session, in this order (ms): " + ", ".join(
        f"{service} {seconds * 1000:.0f}" for service, seconds in made.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per measurement (best one kept)")
    parser.add_argument("--top", type=int, default=25, help="modules listed per entry point")
    parser.add_argument("--no-build", action="store_true", help="reuse the last build in .aws-sam/bench-coldstart")
    parser.add_argument("--python", help="the python3.13 to build with and measure (default: found)")
    args = parser.parse_args(argv)
    py313 = find_python313(args.python)
    built = WORK / "build" if args.no_build else build(py313)
    print(f"cold import of the built package ({built}, {py313}, best of {args.runs})")
    totals = []
    for function, module in ENTRY_POINTS.items():
        runs = [import_once(py313, built / function, module) for _ in range(args.runs)]
        totals.append(print_imports(module, runs, args.top))
    first_work(py313, built / "RenewerFunction", args.runs)
    print(f"\ncold start: {'PASS' if max(totals) < TARGET_SECONDS else 'MISS'} "
          f"(slowest entry point {max(totals):.3f} s, target < {TARGET_SECONDS} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
