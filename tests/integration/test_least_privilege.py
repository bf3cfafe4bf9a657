"""Least privilege, proven: every AWS call the code makes in a representative full flow is
allowed by the role template.yaml gives the renewer, on the resources it makes it on.

The flow runs on the devstack through the CLI and the Lambda handler: a first issuance with EAB
(the HMAC key read from SSM) deployed to ACM in two regions, a CloudFront distribution and an
S3 export, with an SNS report and EventBridge outcome events; plan and status; a key type
change that imports under a new ARN and deletes the old one; a forced renewal; a revoke and the
reissue after it; the config read from S3; a fan-out to SQS and the worker renewing the batch.
The proxy in front of moto records every call (setup excluded); each is mapped to the IAM
actions it needs (tests/template_policy.py) and checked against the statements the template
resolves, for this deployment's parameters, for the function that made it (renewer or worker):
the action must be allowed, on a resource the statement names, and Route53 changes must meet
the statement's conditions (TXT `_acme-challenge.*` only, CREATE and DELETE only).
"""
from __future__ import annotations

import fnmatch
import json
import re

import boto3
import pytest
import yaml

from acme_flow import cli
from devstack import proxy_client, world
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world
from template_policy import (FUNCTION, PSEUDO_PARAMETERS, WORKER, actions_for_call, missing_permissions,
                             statements_allowing)

ACCOUNT = "123456789012"  # moto's account, and template_policy's AWS::AccountId
CONFIG_BUCKET = "certrenew-test-config"
CONFIG_KEY = "certrenew/certificates.yaml"
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
ROUTE53_ACTIONS = {"CREATE", "DELETE"}

# Calls the code makes that template.yaml does not allow: none. (The test requires this set to
# be exactly the gap, so a missing permission fails it.)
KNOWN_MISSING: dict = {}

assert PSEUDO_PARAMETERS["AWS::AccountId"] == ACCOUNT


@pytest.fixture
def w(aws, tmp_path, monkeypatch, restart_pebble):
    restart_pebble(pebble_config={"externalAccountBindingRequired": True,
                                  "externalAccountMACKeys": {"kid-1": EAB_HMAC}})
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path)


def certificates(distribution: str, shop_key: str) -> list[dict]:
    return [
        {"name": "site", "domains": ["example.test", "*.example.test"],
         "deploy": {"acm": {"regions": ["us-east-1", "eu-west-1"]}, "cloudfront": {"distributions": [distribution]},
                    "s3": {"bucket": EXPORT_BUCKET, "prefix": "site/"}}},
        {"name": "shop", "domains": ["shop.test", "www.shop.test"], "key": shop_key,
         "deploy": {"acm": {"regions": ["us-east-1"]}}},
    ]


def run_flow(w, tmp_path, capsys, monkeypatch) -> dict:
    """The representative flow; returns the deployment's template parameters."""
    distribution = world.create_distribution(boto3.client("cloudfront"), ["www.example.test"])
    topic = boto3.client("sns").create_topic(Name="certrenew")["TopicArn"]
    boto3.client("ssm").put_parameter(Name="/certrenew/eab-hmac", Value=EAB_HMAC, Type="SecureString")
    world.create_bucket(w.s3, CONFIG_BUCKET)
    acme = {"directory": w.stack.acme_directory, "email": "ops@example.test",
            "eab": {"kid": "kid-1", "hmac_key": "ssm:/certrenew/eab-hmac"}}
    monkeypatch.setenv("CERTRENEW_SNS_TOPIC_ARN", topic)
    monkeypatch.setenv("CERTRENEW_EVENT_BUS", "default")
    proxy_client.reset_calls(w.stack.aws_endpoint_url)

    def run(shop_key, *args) -> str:
        config = w.write_config(certificates(distribution, shop_key), acme=acme)
        code = cli.main([args[0], "--config", str(config), *args[1:]])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        return out

    proxy_client.configure(w.stack.aws_endpoint_url, route53_delay=0.5)  # so INSYNC is polled (GetChange)
    run("rsa-2048", "run")                                        # issue, deploy everywhere, notify
    proxy_client.configure(w.stack.aws_endpoint_url, route53_delay=0)
    run("rsa-2048", "plan")
    run("rsa-2048", "status")
    changed = json.loads(run("ec-p256", "run", "--json"))         # new ARN, the old one deleted
    assert "deleted arn:aws:acm:us-east-1" in changed["certificates"][1]["reason"], changed
    run("ec-p256", "run", "--force")                              # re-import into the same ARNs
    run("ec-p256", "revoke", "site", "--reason", "superseded")
    run("ec-p256", "run")                                         # reissue after the revoke
    # the Lambda handler, its config in S3 (the template's ConfigLocation), a forced renewal;
    # the config is put straight into moto (setup, not a call of the code)
    text = yaml.safe_dump({"acme": acme, "certificates": certificates(distribution, "ec-p256")})
    boto3.client("s3", endpoint_url=w.stack.moto_url).put_object(Bucket=CONFIG_BUCKET, Key=CONFIG_KEY,
                                                                  Body=text.encode())
    monkeypatch.setenv("CERTRENEW_CONFIG", f"s3://{CONFIG_BUCKET}/{CONFIG_KEY}")
    event = tmp_path / "renew.json"
    event.write_text(json.dumps({"action": "renew", "force": True}))
    code = cli.main(["invoke", str(event)])
    out, err = capsys.readouterr()
    assert code == 0 and '"outcome": "renewed"' in out, out + err
    return {
        "HostedZoneIds": ",".join(w.zones.values()), "DistributionIds": distribution,
        "ExportBucket": EXPORT_BUCKET, "NotificationTopicArn": topic,
        "ConfigLocation": f"s3://{CONFIG_BUCKET}/{CONFIG_KEY}",
    }


def run_fanout(w, tmp_path, capsys, monkeypatch) -> tuple[list[dict], list[dict]]:
    """The renewer fans a forced renewal out to SQS; the worker renews the batch. Returns the
    calls each made."""
    sqs = boto3.client("sqs", endpoint_url=w.stack.moto_url)  # setup, straight into moto
    queue_url = sqs.create_queue(QueueName="certrenew-work")["QueueUrl"]
    monkeypatch.setenv("CERTRENEW_QUEUE_URL", queue_url)
    monkeypatch.setenv("CERTRENEW_FANOUT_THRESHOLD", "0")
    event = tmp_path / "fanout.json"
    event.write_text(json.dumps({"action": "renew", "force": True}))
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code = cli.main(["invoke", str(event)])
    out, err = capsys.readouterr()
    assert code == 0 and '"queued"' in out, out + err
    renewer_calls = proxy_client.calls(w.stack.aws_endpoint_url)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    batch = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": {}, "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                          "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:certrenew-work",
                          "awsRegion": "us-east-1"} for m in messages]}
    assert len(batch["Records"]) == 2, messages
    event.write_text(json.dumps(batch))
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code = cli.main(["invoke", str(event)])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) == {"batchItemFailures": []}, out + err
    return renewer_calls, proxy_client.calls(w.stack.aws_endpoint_url)


def resource_of(call: dict) -> str | None:
    """The ARN an IAM policy judges this call by (None: it is in the body, not recorded)."""
    service, operation, path, region = call["service"], call["operation"], call["path"], call["region"]
    if service == "s3":
        bucket, _, key = path.lstrip("/").partition("/")
        return f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
    if service == "route53":
        if operation != "ListHostedZones" and (m := re.search(r"/hostedzone/([^/]+)", path)):
            return f"arn:aws:route53:::hostedzone/{m.group(1)}"
        if m := re.search(r"/change/([^/]+)", path):
            return f"arn:aws:route53:::change/{m.group(1)}"
        return "*"
    if service == "cloudfront":
        if m := re.search(r"/distribution/([^/]+)", path):
            return f"arn:aws:cloudfront::{ACCOUNT}:distribution/{m.group(1)}"
        return "*"
    if service == "acm":
        if operation == "ListCertificates":
            return "*"
        return f"arn:aws:acm:{region}:{ACCOUNT}:certificate/00000000-0000-0000-0000-000000000000"
    if service == "events" and operation == "PutEvents":
        return f"arn:aws:events:{region}:{ACCOUNT}:event-bus/default"
    return None  # sns Publish, ssm GetParameter: the resource is in the body


_STATEMENTS: dict[tuple[str, str, str], list] = {}


def _allowed_on(action: str, resource: str, parameters: dict, substitutions: dict[str, str],
                function: str = FUNCTION) -> bool:
    key = (action, function, json.dumps(parameters, sort_keys=True))
    if key not in _STATEMENTS:  # resolving reads the template: once per action and function
        _STATEMENTS[key] = statements_allowing(action, parameters, function=function)
    for statement in _STATEMENTS[key]:
        for pattern in statement.resources:
            for placeholder, value in substitutions.items():
                pattern = pattern.replace(placeholder, value)
            if pattern == "*" or fnmatch.fnmatchcase(resource, pattern):
                return True
    return False


def test_every_call_of_a_full_flow_is_allowed_by_the_template(w, tmp_path, capsys, monkeypatch):
    parameters = run_flow(w, tmp_path, capsys, monkeypatch)
    calls = proxy_client.calls(w.stack.aws_endpoint_url)
    fanout_calls, worker_calls = run_fanout(w, tmp_path, capsys, monkeypatch)
    made = sorted({(c["service"], c["operation"]) for c in calls + fanout_calls})
    assert len(made) >= 18, made  # the flow really exercised the code
    assert {("route53", "GetChange"), ("acm", "DeleteCertificate"), ("sqs", "SendMessageBatch")} <= set(made), made

    # 1. every action is allowed (but the known gap, listed exactly), for the function making the call
    missing = missing_permissions(made, parameters)
    worker_made = sorted({(c["service"], c["operation"]) for c in worker_calls})
    missing_in_worker = missing_permissions(worker_made, parameters, function=WORKER)
    missing_in_worker = {k: v for k, v in missing_in_worker.items() if k not in KNOWN_MISSING}
    assert missing == KNOWN_MISSING, "template.yaml does not allow calls the renewer makes: " + json.dumps(
        {f"{s}.{o}": list(a) for (s, o), a in sorted(missing.items())})
    assert missing_in_worker == {}, "template.yaml does not allow calls the worker makes: " + json.dumps(
        {f"{s}.{o}": list(a) for (s, o), a in sorted(missing_in_worker.items())})
    calls = [(FUNCTION, c) for c in calls + fanout_calls] + [(WORKER, c) for c in worker_calls]

    # 2. on the resources the calls were made on
    substitutions = {"{{StateBucket.Arn}}": f"arn:aws:s3:::{STATE_BUCKET}", "{{StateBucket}}": STATE_BUCKET}
    denied = set()
    for function, call in calls:
        resource = resource_of(call)
        if resource is None:
            continue
        for action in actions_for_call(call["service"], call["operation"]):
            if action in {a for actions in KNOWN_MISSING.values() for a in actions}:
                continue
            if action.startswith("kms:"):
                continue  # S3 calls KMS for SSE-KMS itself: judged by the key policy's ViaService condition
            if not _allowed_on(action, resource, parameters, substitutions, function):
                denied.add((function, action, resource))
    assert not denied, f"allowed actions on resources the template does not name: {sorted(denied)}"

    # 3. Route53 changes within the statement's conditions
    for _, call in calls:
        if call["operation"] == "ChangeResourceRecordSets":
            for change in call["changes"]:
                name = change["name"].rstrip(".").lower()
                assert name.startswith("_acme-challenge."), change
                assert change["type"] == "TXT" and change["action"] in ROUTE53_ACTIONS, change
