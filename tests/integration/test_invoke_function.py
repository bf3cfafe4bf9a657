"""`certrenew invoke --function NAME EVENT.json` on the devstack: each event of events/ runs the
function as template.yaml configures it (Handler, Timeout, MemorySize, Environment with Globals),
the stack's resources taken from the caller's environment, and a template parameter
(FanoutThreshold -> CERTRENEW_FANOUT_THRESHOLD) changes what a scheduled run does."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from devstack_world import STATE_BUCKET, make_world

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
REPORT = re.compile(r"^REPORT RequestId: [0-9a-f-]{36}\t(Init Duration: [0-9.]+ ms\t)?Duration: [0-9.]+ ms\t"
                    r"Billed Duration: \d+ ms\tMemory Size: (\d+) MB\tMax Memory Used: \d+ MB$", re.M)


@pytest.fixture
def stack_env(aws, tmp_path, monkeypatch):
    """A world with the certificate events/sqs-batch.json names, and the resources a deployed stack
    would have (topic, work queue) exported as the caller's environment, as `demo --keep` prints them."""
    w = make_world(aws, tmp_path, zones=("example.test",))
    config = w.write_config([{"name": "example-site", "domains": ["example.test", "*.example.test"],
                              "deploy": {"acm": {"regions": ["us-east-1"]}}}])
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="certrenew-work")["QueueUrl"]
    topic = boto3.client("sns").create_topic(Name="certrenew")["TopicArn"]
    for name, value in {"CERTRENEW_STATE_BUCKET": STATE_BUCKET, "CERTRENEW_STATE_KMS_KEY": "",
                        "CERTRENEW_SNS_TOPIC_ARN": topic, "CERTRENEW_QUEUE_URL": queue,
                        # the caller's own values the template must override
                        "CERTRENEW_CONFIG": str(tmp_path / "not-this.yaml"),
                        "CERTRENEW_FANOUT_THRESHOLD": "1000"}.items():
        monkeypatch.setenv(name, value)
    return w, config, queue


def invoke(function: str, event: str, *args: str) -> tuple[int, dict, str]:
    done = subprocess.run([sys.executable, "-m", "acme_flow.cli", "invoke", "--function", function, *args,
                           str(EVENTS / event)], capture_output=True, text=True, timeout=300, cwd=REPO)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def config_override(config: Path) -> str:
    return f"ConfigLocation={config}"


def queued(queue: str) -> list[dict]:
    got = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def test_plan_runs_the_renewer_with_its_template_settings(stack_env):
    w, config, _ = stack_env
    code, report, logs = invoke("RenewerFunction", "plan.json", "--parameter-overrides",
                                f"{config_override(config)} MemorySize=1024")
    assert code == 0, logs
    assert [(c["name"], c["outcome"]) for c in report["certificates"]] == [("example-site", "planned")]
    assert w.writes() == []
    [(_, memory)] = REPORT.findall(logs)
    assert memory == "1024", "MemorySize from the overridden template parameter"
    assert '"function_name":"RenewerFunction"' in logs, "the context carries the function's name"
    assert "# RenewerFunction from" in logs and "handler.app.lambda_handler, Timeout 900 s, MemorySize 1024 MB" in logs
    assert f"# CERTRENEW_STATE_BUCKET='{STATE_BUCKET}' <- !Ref StateBucket" in logs


def test_scheduled_renews_inline_below_the_template_s_threshold_then_renew_now_skips(stack_env):
    w, config, queue = stack_env
    code, report, logs = invoke("RenewerFunction", "scheduled.json", "--parameter-overrides", config_override(config))
    assert code == 0, logs
    assert "fanout" not in report and report["certificates"][0]["outcome"] == "issued"
    assert '"message":"renewing inline"' in logs and '"threshold":10' in logs, "FanoutThreshold's default, not the caller's 1000"
    assert queued(queue) == []
    assert w.current("example-site")["serial"]
    code, report, logs = invoke("RenewerFunction", "renew-now.json", "--parameter-overrides", config_override(config))
    assert code == 0, logs
    assert report["certificates"][0]["outcome"] == "skipped"


def test_a_fanout_threshold_override_sends_the_scheduled_run_to_the_queue(stack_env):
    w, config, queue = stack_env
    code, report, logs = invoke("RenewerFunction", "scheduled.json", "--parameter-overrides",
                                config_override(config), "FanoutThreshold=0")
    assert code == 0, logs
    assert report["fanout"]["queued"] == 1 and report["fanout"]["threshold"] == 0
    assert [(c["name"], c["outcome"]) for c in report["certificates"]] == [("example-site", "queued")]
    assert queued(queue) == [{"certificate": "example-site"}]
    assert "certificates/example-site/current.json" not in w.state_keys(), "nothing issued in-process"


def test_sqs_batch_runs_the_worker_function(stack_env):
    w, config, _ = stack_env
    env_vars = w.tmp / "env.json"
    env_vars.write_text(json.dumps({"WorkerFunction": {"CERTRENEW_CONFIG": str(config)}}))
    code, response, logs = invoke("WorkerFunction", "sqs-batch.json", "--env-vars", str(env_vars))
    assert code == 0, logs
    assert response == {"batchItemFailures": []}
    assert w.current("example-site")["serial"]
    assert '"function_name":"WorkerFunction"' in logs and '"message":"worker batch finished"' in logs
    assert len(REPORT.findall(logs)) == 1


def test_without_the_stack_s_resources_it_says_which_and_how(stack_env, monkeypatch):
    _, config, _ = stack_env
    monkeypatch.delenv("CERTRENEW_QUEUE_URL")
    code, _, logs = invoke("RenewerFunction", "plan.json", "--parameter-overrides", config_override(config))
    assert code == 2
    assert "CERTRENEW_QUEUE_URL: !Ref WorkQueue (a resource of the deployed stack) cannot be resolved" in logs
    assert "Traceback" not in logs
