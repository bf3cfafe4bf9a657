"""template.yaml passes the SAM CLI's validation and cfn-lint, offline.

Three checks, because each sees something the others do not:
- ``sam validate``: the SAM translator accepts the template (event sources, policies, ...).
- ``sam validate --lint`` and ``cfn-lint template.yaml``: cfn-lint with the SAM schemas. It does
  not look inside the function's inline ``Policies``.
- cfn-lint on the *translated* template: the generated IAM role, so unknown IAM actions,
  malformed ARNs and misused intrinsics (a function as a Join delimiter, ...) in the policy fail.

Needs the SAM CLI from ``make sam-tools`` (``.venv-sam/``: it pins its own boto3). ``make test``
installs it and sets CERTRENEW_SAM; without it these tests fail (they never skip).
Nothing here touches the network or needs AWS credentials: the region and credentials are
dummies, telemetry is off, and the weekly version check is marked as done.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
INSTALL_HINT = "run `make sam-tools` (it creates .venv-sam/ with aws-sam-cli), or set CERTRENEW_SAM to a sam binary"

# Translate the SAM template the way CloudFormation's SAM transform would (the code location
# is replaced by a dummy S3 URI, as `sam deploy` does after uploading).
TRANSLATE = r"""
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicyLookup:
    def load(self):
        return {}

with open(sys.argv[1]) as handle:
    template = yaml_parse(handle.read())
for resource in template["Resources"].values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://certrenew-artifacts/renewer.zip"
with open(sys.argv[2], "w") as handle:
    json.dump(transform(template, {}, NoManagedPolicyLookup()), handle, indent=1)
"""


def _find_sam() -> Path:
    candidates = [os.environ.get("CERTRENEW_SAM"), str(REPO_ROOT / ".venv-sam" / "bin" / "sam"), shutil.which("sam")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    pytest.fail(f"SAM CLI not found (CERTRENEW_SAM, .venv-sam/bin/sam, PATH): {INSTALL_HINT}", pytrace=False)


def _sam_python(sam: Path) -> Path:
    """The interpreter of a pip-installed sam (its shebang): it has samtranslator and cfnlint."""
    with open(sam, "rb") as handle:
        first = handle.readline().decode("utf-8", "replace").strip()
    if first.startswith("#!"):
        python = Path(first[2:].split()[0])
        if python.is_file():
            return python
    pytest.fail(f"{sam} is not a pip-installed SAM CLI (no Python shebang): {INSTALL_HINT}", pytrace=False)


@pytest.fixture(scope="module")
def sam() -> Path:
    return _find_sam()


@pytest.fixture(scope="module")
def sam_python(sam) -> Path:
    return _sam_python(sam)


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory) -> dict:
    app_dir = tmp_path_factory.mktemp("sam-app-dir")
    # SAM CLI's own state: telemetry off and the weekly PyPI version check recorded as done.
    (app_dir / "metadata.json").write_text(
        json.dumps({"telemetryEnabled": False, "lastVersionCheck": time.time()}), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAM_CLI_TELEMETRY": "0",
            "__SAM_CLI_APP_DIR": str(app_dir),
        }
    )
    return env


def _run(args: list, env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_sam_validate_translates(sam, offline_env, tmp_path):
    # samconfig.toml sets lint = true for validate; an empty config file keeps this run on the
    # translator path.
    empty_config = tmp_path / "samconfig.toml"
    empty_config.write_text("version = 0.1\n", encoding="utf-8")
    result = _run([sam, "validate", "--template", TEMPLATE, "--config-file", empty_config], offline_env)
    assert result.returncode == 0, _explain(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr
    assert "--lint" in result.stdout + result.stderr, "expected the translator's message, not the linter's"


def test_sam_validate_lint(sam, offline_env):
    # also reads the repository's samconfig.toml
    result = _run([sam, "validate", "--lint", "--template", TEMPLATE], offline_env)
    assert result.returncode == 0, _explain(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr


def _cfn_lint(sam_python: Path) -> Path:
    cfn_lint = sam_python.parent / "cfn-lint"
    if not cfn_lint.is_file():
        pytest.fail(f"cfn-lint not found next to {sam_python}: {INSTALL_HINT}", pytrace=False)
    return cfn_lint


def test_cfn_lint_template(sam_python, offline_env):
    result = _run([_cfn_lint(sam_python), TEMPLATE], offline_env)
    assert result.returncode == 0, _explain(result)


def test_cfn_lint_translated_template(sam_python, offline_env, tmp_path):
    translated = tmp_path / "translated.json"
    result = _run([sam_python, "-c", TRANSLATE, TEMPLATE, translated], offline_env)
    assert result.returncode == 0, _explain(result)
    resources = json.loads(translated.read_text(encoding="utf-8"))["Resources"]
    # what the SAM transform generates from the functions: their roles (which the shared
    # policy names), the schedule and the SQS event source mapping
    assert resources["RenewerFunctionRole"]["Type"] == "AWS::IAM::Role"
    assert resources["WorkerFunctionRole"]["Type"] == "AWS::IAM::Role"
    assert resources["RenewerPolicy"]["Properties"]["Roles"] == [{"Ref": "RenewerFunctionRole"},
                                                                 {"Ref": "WorkerFunctionRole"}]
    assert {r["Type"] for r in resources.values()} >= {"AWS::Lambda::Function", "AWS::Scheduler::Schedule",
                                                       "AWS::Lambda::EventSourceMapping"}
    (mapping,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["FunctionName"] == {"Ref": "WorkerFunction"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    result = _run([_cfn_lint(sam_python), "--", translated], offline_env)
    assert result.returncode == 0, _explain(result)
