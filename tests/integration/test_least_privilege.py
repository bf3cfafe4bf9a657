"""Least privilege, proven: every AWS call the code makes in a representative full flow is
allowed by the role template.yaml gives the renewer, on the resources it makes it on.

The flow runs on the devstack through the CLI and the Lambda handler: a first issuance with EAB
(the HMAC key read from SSM) deployed to ACM in two regions, a CloudFront distribution and an
S3 export, with an SNS report and EventBridge outcome events; plan and status; a key type
change that imports under a new ARN and deletes the old one; a forced renewal; a revoke and the
reissue after it; the config read from S3; a fan-out to SQS and the worker renewing the batch.
The proxy in front of moto judges every call the code makes by the renewer's policy, resolved
for this deployment's parameters (devstack/strict/iam.py: actions, resources, the Route53 and tag
conditions, KMS): a denied call answers AccessDenied and fails the flow. This test adds that the
flow really went through the policy (every call recorded as the renewer's, none refused) and that
the worker, which the proxy judges as the renewer, needs no action beyond its own policy.
"""
from __future__ import annotations

import json

import boto3
import pytest
import yaml

from acme_flow import cli
from devstack import proxy_client, world
from devstack.template_policy import WORKER, missing_permissions
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

ACCOUNT = "123456789012"  # moto's account, and template_policy's AWS::AccountId
CONFIG_BUCKET = "certrenew-test-config"
CONFIG_KEY = "certrenew/certificates.yaml"
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


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


def run_flow(w, tmp_path, capsys, monkeypatch) -> None:
    """The representative flow, under the policy of a deployment that lists exactly its resources."""
    distribution = world.create_distribution(boto3.client("cloudfront"), ["www.example.test"])
    topic = boto3.client("sns").create_topic(Name="certrenew")["TopicArn"]
    boto3.client("ssm").put_parameter(Name="/certrenew/eab-hmac", Value=EAB_HMAC, Type="SecureString")
    world.create_bucket(w.s3, CONFIG_BUCKET)
    acme = {"directory": w.stack.acme_directory, "email": "ops@example.test",
            "eab": {"kid": "kid-1", "hmac_key": "ssm:/certrenew/eab-hmac"}}
    monkeypatch.setenv("CERTRENEW_SNS_TOPIC_ARN", topic)
    monkeypatch.setenv("CERTRENEW_EVENT_BUS", "default")
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {
        "HostedZoneIds": list(w.zones.values()), "DistributionIds": [distribution], "DnsRoleArns": "",
        "ExportBucket": EXPORT_BUCKET, "NotificationTopicArn": topic, "EventBusName": "default",
        "ConfigLocation": f"s3://{CONFIG_BUCKET}/{CONFIG_KEY}"})
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


def run_fanout(w, tmp_path, capsys, monkeypatch) -> tuple[list[dict], list[dict]]:
    """The renewer fans a forced renewal out to SQS; the worker renews the batch. Returns the
    calls each made."""
    sqs = boto3.client("sqs", endpoint_url=w.stack.moto_url)  # setup, straight into moto
    queue_url = sqs.create_queue(QueueName="certrenew-work")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:certrenew-work"
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"WorkQueue.Arn": queue_arn})
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
                          "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
                          "awsRegion": "us-east-1"} for m in messages]}
    assert len(batch["Records"]) == 2, messages
    event.write_text(json.dumps(batch))
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code = cli.main(["invoke", str(event)])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) == {"batchItemFailures": []}, out + err
    return renewer_calls, proxy_client.calls(w.stack.aws_endpoint_url)


def test_every_call_of_a_full_flow_is_allowed_by_the_template(w, tmp_path, capsys, monkeypatch):
    assert proxy_client.get_config(w.stack.aws_endpoint_url)["strict"] is True
    run_flow(w, tmp_path, capsys, monkeypatch)
    calls = proxy_client.calls(w.stack.aws_endpoint_url)
    fanout_calls, worker_calls = run_fanout(w, tmp_path, capsys, monkeypatch)
    every = calls + fanout_calls + worker_calls
    made = sorted({(c["service"], c["operation"]) for c in every})
    assert len(made) >= 18, made  # the flow really exercised the code
    assert {("route53", "GetChange"), ("acm", "DeleteCertificate"), ("sqs", "SendMessageBatch"),
            ("ssm", "GetParameter"), ("sns", "Publish"), ("events", "PutEvents"),
            ("cloudfront", "UpdateDistribution")} <= set(made), made

    # 1. every call was the product's and went through the policy; none was refused
    assert {c.get("principal") for c in every} == {"renewer"}, sorted({c.get("principal") for c in every})
    refused = [c for c in every if "strict" in c]
    assert not refused, f"the policy refused calls of the flow: {refused}"

    # 2. the worker shares RenewerPolicy but not FanoutSend: the proxy judged its calls as the
    #    renewer's, so check here that it needs no action only the renewer has
    worker_made = sorted({(c["service"], c["operation"]) for c in worker_calls})
    missing_in_worker = missing_permissions(worker_made, {"HostedZoneIds": "Z1", "DistributionIds": "E1",
                                                          "ExportBucket": EXPORT_BUCKET}, function=WORKER)
    assert missing_in_worker == {}, "template.yaml does not allow calls the worker makes: " + json.dumps(
        {f"{s}.{o}": list(a) for (s, o), a in sorted(missing_in_worker.items())})
