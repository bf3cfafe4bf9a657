"""What the benchmarks share: the environment the product runs in on a private devstack, the
administrator's boto3 session that seeds the world, and running the product as a child process
whose own peak RSS is measured.

Imported by bench/run.py, bench/memory.py and bench/fleet.py (each puts the repository on sys.path
first). Standard library only at import time: boto3 is imported when a session is made.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Settings of the caller's shell that would point the product anywhere but the devstack.
DROPPED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "CERTRENEW_QUEUE_URL")


def product_env(stack, workdir: Path, state_bucket: str, **extra: str) -> dict[str, str]:
    """The environment of a certrenew child: the devstack's variables, the state bucket, no AWS
    profile or config file of the user's, and `extra` on top."""
    env = {**os.environ, **stack.env(), "CERTRENEW_STATE_BUCKET": state_bucket}
    for name in DROPPED_ENV:
        env.pop(name, None)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(workdir) / "no-aws-config")
    env.update(extra)
    return env


def admin_session(region: str = "us-east-1"):
    """A boto3 session with the devstack's test credentials: the benchmarks' own set-up calls
    (not the product's; strict IAM judges only calls made by certrenew's clients)."""
    import boto3

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name=region)


def run_child(argv: list[str], env: dict, log_to: Path) -> tuple[float, float, int]:
    """Run to completion; (wall seconds, peak RSS in MB of that child alone, exit code).
    stdout goes to log_to.out, stderr to log_to.err."""
    seconds, usage, code = run_child_usage(argv, env, log_to)
    return seconds, usage.ru_maxrss / 1024, code


def run_child_usage(argv: list[str], env: dict, log_to: Path):
    """As run_child, with the child's whole resource usage (ru_maxrss, ru_utime, ru_stime, ...)."""
    with open(log_to.with_suffix(".out"), "wb") as out, open(log_to.with_suffix(".err"), "wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage, proc.returncode


@contextlib.contextmanager
def private_devstack(prefix: str, *, keep: bool = False, **up: object):
    """(stack, work directory): a devstack of its own (`up` are devstack.stack.up's keywords),
    started in a new work directory and stopped afterwards; the directory is removed unless
    `keep` or the block failed (then its path is printed: the logs of every run and of the
    devstack's processes)."""
    from devstack import stack as devstack

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    stack = devstack.up(workdir / "devstack", **up)
    ok = False
    try:
        yield stack, workdir
        ok = True
    finally:
        devstack.down(workdir / "devstack")
        if keep or not ok:
            print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
