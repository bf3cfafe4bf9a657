"""The deployable package: `make build` (sam build for python3.13, arm64, byte-compiled) makes an
artifact with the handler, the core, the pinned dependencies and the packaged config, and the
artifact's handler imports and answers an event in a fresh python3.13 that sees nothing else.
The builds run the Makefile's `build` target, with the build and cache dirs moved aside.

The artifact for arm64 cannot run on an x86_64 machine (cryptography is compiled), so the
import and the run use the same build for this machine's architecture (the template with only
`Architectures` changed). Both builds keep SAM's caches under .aws-sam/package-tests/, so only
the first run on a machine downloads the wheels (about a minute); later runs copy and compile.

Needs the SAM CLI (`make sam-tools`) and a python3.13 (see `make build`); without them these
tests fail with what to install, they never skip.
"""
from __future__ import annotations

import fcntl
import glob
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = ("RenewerFunction", "WorkerFunction")
HOW = ("install Python 3.13 (apt install python3.13, pyenv install 3.13 or uv python install 3.13) "
       "or set CERTRENEW_PY313 to one")
ELF_MACHINE = {"x86_64": 62, "arm64": 183}  # e_machine of EM_X86_64 and EM_AARCH64


def _python313() -> str:
    candidates = [os.environ.get("CERTRENEW_PY313"), shutil.which("python3.13"),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13"))),
                  *sorted(glob.glob(os.path.expanduser("~/.local/share/uv/python/cpython-3.13*/bin/python3.13"))),
                  "/usr/local/bin/python3.13", "/usr/bin/python3.13"]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.stdout.strip() == "True":
            return candidate
    pytest.fail(f"no python3.13 found for sam build: {HOW}", pytrace=False)


def _native_arch() -> str:
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


@pytest.fixture(scope="module")
def py313() -> str:
    return _python313()


def _make_build(py313: str, name: str, template: Path, build_dir: Path) -> Path:
    """`make build` for `template` into `build_dir`, run from a private, persistent work dir.

    sam build keeps reusable dependencies in `.aws-sam/deps` under its working directory and
    deletes the ones of any other template there; a work dir per build (with a lock, for two
    test runs at once) keeps them apart from each other and from the developer's own
    `make build`, and lets a rebuild copy the dependencies instead of downloading them."""
    sam = REPO / ".venv-sam" / "bin" / "sam"
    if not sam.exists():
        pytest.fail("SAM CLI not found in .venv-sam: run `make sam-tools`", pytrace=False)
    work = REPO / ".aws-sam" / "package-tests" / name
    work.mkdir(parents=True, exist_ok=True)
    flags = f"--cached --parallel --cache-dir {work / 'cache'}"
    if template.parent != REPO:
        flags += f" --base-dir {REPO}"
    args = ["make", "-s", "-f", str(REPO / "Makefile"), "build", f"SAM={sam}", f"PY313={py313}",
            f"SAM_TEMPLATE={template}", f"SAM_BUILD_DIR={build_dir}", f"SAM_BUILD_FLAGS={flags}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAM_"))}
    env.update(AWS_DEFAULT_REGION="us-east-1", SAM_CLI_TELEMETRY="0")
    with open(work / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env, cwd=work)
    assert done.returncode == 0, f"make build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return build_dir


@pytest.fixture(scope="module")
def artifact(py313, tmp_path_factory) -> Path:
    """`make build` of the template as it is (arm64), into a temporary dir."""
    return _make_build(py313, "arm64", REPO / "template.yaml", tmp_path_factory.mktemp("sam") / "build")


@pytest.fixture(scope="module")
def native(py313, artifact, tmp_path_factory) -> Path:
    """The same build for this machine's architecture, so its handler can be imported here."""
    arch = _native_arch()
    if arch == "arm64":
        return artifact
    text = (REPO / "template.yaml").read_text()
    assert text.count("Architectures: [arm64]") == 1
    work = tmp_path_factory.mktemp("sam-native")
    template = work / "template.yaml"
    template.write_text(text.replace("Architectures: [arm64]", f"Architectures: [{arch}]"))
    return _make_build(py313, arch, template, work / "build")


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def test_make_build_makes_the_deployable_artifact(artifact):
    built = (artifact / "template.yaml").read_text()
    for name in FUNCTIONS:
        root = artifact / name
        assert f"CodeUri: {name}" in built
        for module in ("handler/app.py", "handler/worker.py", "handler/events.py", "handler/local.py",
                       "acme_flow/renewal.py", "acme_flow/deploy.py", "acme_flow/config/__init__.py",
                       "acme_flow/config/schema.py", "acme_flow/bootstrap.py", "acme_flow/adapters/queue.py",
                       "acme_flow/adapters/notify.py"):
            assert (root / module).is_file(), f"{name}: {module} missing"
        # the packaged config is a real file (src/certificates.yaml is a symlink in the repo)
        packaged = root / "certificates.yaml"
        assert packaged.is_file() and not packaged.is_symlink()
        assert packaged.read_text() == (REPO / "certificates.yaml").read_text()
        # every pinned dependency, at its pin
        for line in (REPO / "src" / "requirements.txt").read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            dist, version = line.split("==")
            pattern = re.sub(r"[-_.]+", "[-_.]", dist)
            found = [p.name for p in root.glob("*.dist-info") if re.fullmatch(f"(?i){pattern}-{re.escape(version)}.dist-info", p.name)]
            assert found, f"{name}: {line} not installed"
        # compiled for the template's architecture (arm64), and byte-compiled for 3.13
        (rust,) = root.glob("cryptography/hazmat/bindings/_rust*.so")
        assert _elf_machine(rust) == ELF_MACHINE["arm64"]
        pyc = root / "handler" / "__pycache__" / "app.cpython-313.pyc"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, "hash-based .pyc that Lambda uses without checking the source"
        # nothing from the development tree
        assert not list(root.glob("*.egg-info")) and not (root / "tests").exists() and not (root / "devstack").exists()
        assert not list(root.rglob("*.cpython-311.pyc")) and not list(root.rglob("*.cpython-312.pyc"))


IMPORT = """
import json, sys
import handler.app, handler.worker, aws_lambda_powertools, cryptography
print(json.dumps({m.__name__: m.__file__ for m in (handler.app, handler.worker, aws_lambda_powertools, cryptography)}))
"""


def test_built_handler_imports_in_a_fresh_python313(native, py313):
    root = native / "RenewerFunction"
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([py313, "-S", "-c", IMPORT], capture_output=True, text=True, timeout=120, env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)
    assert all(Path(f).resolve().is_relative_to(root.resolve()) for f in files.values()), files


RUN = """
import json, sys, time
from handler.app import lambda_handler

class Context:
    function_name = "certrenew-package-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:certrenew-package-test"
    memory_limit_in_mb = 512
    aws_request_id = "package-test"
    def get_remaining_time_in_millis(self):
        return 300000

result = lambda_handler(json.loads(sys.argv[1]), Context())
print("RESULT " + json.dumps(result))
"""


def test_built_handler_plans_the_packaged_config_on_the_devstack(native, py313, aws):
    import boto3

    from devstack import proxy_client

    boto3.client("s3").create_bucket(Bucket="package-test-state")
    proxy_client.update_deployment(aws.aws_endpoint_url, {"StateBucket": "package-test-state"})  # strict IAM
    root = native / "RenewerFunction"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTRENEW_", "PYTHON", "POWERTOOLS_"))}
    env.update(aws.env(), PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1", LAMBDA_TASK_ROOT=str(root),
               AWS_SAM_LOCAL="true", CERTRENEW_STATE_BUCKET="package-test-state", POWERTOOLS_SERVICE_NAME="certrenew")
    done = subprocess.run([py313, "-S", "-c", RUN, json.dumps({"action": "plan"})], capture_output=True, text=True,
                          timeout=300, env=env, cwd=root)
    assert done.returncode == 0, done.stderr
    # stdout: the JSON log lines (as in Lambda) and the result; the EMF metrics went to stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    report = json.loads(line.removeprefix("RESULT "))
    assert '"_aws"' not in done.stdout and '"message":"run requested"' in done.stdout
    assert report["dry_run"] is True
    assert [(c["name"], c["outcome"]) for c in report["certificates"]] == [("example-site", "planned")]
    assert "ColdStart" in done.stderr, "the cold-start metric (EMF) goes to stderr"
