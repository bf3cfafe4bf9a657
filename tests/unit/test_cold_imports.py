"""Cold start: the Lambda entry points import only what an invocation needs.

A fresh interpreter (a subprocess, so this test session's imports do not count) imports the
handlers and builds the renewer as a `plan` invocation does, tracing off, and lists what it
loaded: the ACME client (`acme`, josepy, requests), `cryptography` (pki), dnspython, X-Ray,
Powertools' batch utilities and the CLI are loaded only by the runs that use them, and of the boto3 clients only the state
bucket's is made (the others when first called). `make bench-coldstart` measures the time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_NEEDED = ("acme", "josepy", "requests", "dns", "aws_xray_sdk", "aws_lambda_powertools.utilities.batch",
              "acme_flow.cli", "cryptography", "OpenSSL", "acme_flow.persist", "acme_flow.caa_records")

CHILD = """
import json, socket, sys

NOT_NEEDED = %r
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:200])
    raise RuntimeError("unit tests open no socket")
socket.socket.connect = socket.socket.connect_ex = socket.socket.sendto = refuse
socket.create_connection = socket.getaddrinfo = refuse

def loaded():
    return [m for m in NOT_NEEDED if m in sys.modules]

report = {}
import handler.app, handler.worker
report["import"] = loaded()

from handler import wiring
wired = wiring.build()  # what an invocation does before its plan: config, clients, adapters
report["build"] = loaded()
report["clients"] = sorted({service for service, _, _ in wired.clients._cache})
first_use = wired.clients.on_first_use("cloudfront")
report["first_use"] = [first_use.meta.service_model.service_name,
                       sorted({service for service, _, _ in wired.clients._cache})]

from acme_flow import bootstrap
bootstrap.build_ca(wired.settings, wired.config.acme, None, wired.clock)  # a run that orders
report["ca"] = loaded()
report["sockets"] = attempts
print(json.dumps(report))
"""


def run_child(tmp_path: Path) -> dict:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "CERTRENEW_", "POWERTOOLS_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(REPO / "src"), PYTHONDONTWRITEBYTECODE="1",
        LAMBDA_TASK_ROOT=str(REPO / "src"), AWS_LAMBDA_FUNCTION_NAME="certrenew-test",
        AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        CERTRENEW_STATE_BUCKET="certrenew-state", CERTRENEW_CONFIG=str(REPO / "certificates.yaml"),
        CERTRENEW_SNS_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:certrenew", CERTRENEW_EVENT_BUS="default",
        POWERTOOLS_TRACE_DISABLED="true")
    done = subprocess.run([sys.executable, "-c", CHILD % (NOT_NEEDED,)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_plan_invocation_loads_only_what_it_needs(tmp_path):
    report = run_child(tmp_path)
    hint = "import it where it is used (see `python -X importtime -c 'import handler.app'`)"
    assert report["import"] == [], f"importing the handlers loaded {report['import']}: {hint}"
    assert report["build"] == [], f"building the renewer for a plan loaded {report['build']}: {hint}"
    assert report["sockets"] == [], "building the renewer sends nothing"
    # of the boto3 clients, only the state's is made before the plan; the others on first use
    assert report["clients"] == ["s3"]
    assert report["first_use"] == ["cloudfront", ["cloudfront", "s3"]]
    # the check sees a lazy import when it happens: the first run that orders loads the ACME client
    assert {"acme", "josepy", "requests", "cryptography"} <= set(report["ca"])
