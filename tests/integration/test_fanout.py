"""Fan-out on the devstack: the scheduled handler plans 200+ certificates and queues them (moto
SQS); the test plays Lambda's SQS event source mapping (receive up to ten, invoke the worker,
delete what succeeded, let failures come back, redrive to the dead-letter queue after
maxReceiveCount) and feeds the batches to the worker handler in-process. One certificate can
never be issued (its name is in no hosted zone): it lands in the report, the metrics, the
events and the dead-letter queue, while the others are issued and deployed.
"""
from __future__ import annotations

import json

import boto3
import pytest

from devstack import proxy_client
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world
from handler import app, worker
from handler.local import LocalContext

COUNT = 200
BATCH = 25  # the event source mapping's BatchSize (template WorkerBatchSize): one DNS round each
MAX_RECEIVES = 3  # the queue's maxReceiveCount (as in template.yaml)
SCHEDULED = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def site(i: int) -> dict:
    name = f"site-{i:03d}"
    deploy: dict = {"acm": {"regions": ["us-east-1"]}}
    if i == 0:
        deploy["s3"] = {"bucket": EXPORT_BUCKET, "prefix": f"{name}/"}
    return {"name": name, "domains": [f"{name}.fleet.test"], "deploy": deploy}


STRAY = {"name": "stray", "domains": ["www.nowhere.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}}


class Queues:
    """The work queue with its dead-letter queue, and sinks for the SNS topic and the events."""

    def __init__(self) -> None:
        self.sqs = boto3.client("sqs")
        self.dlq = self.sqs.create_queue(QueueName="certrenew-dlq")["QueueUrl"]
        dlq_arn = self.arn(self.dlq)
        self.work = self.sqs.create_queue(QueueName="certrenew-work", Attributes={
            "VisibilityTimeout": "900",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})})["QueueUrl"]
        self.work_arn = self.arn(self.work)
        # SNS topic -> queue, EventBridge rule on source certrenew -> queue
        self.reports = self.sqs.create_queue(QueueName="report-sink")["QueueUrl"]
        sns = boto3.client("sns")
        self.topic = sns.create_topic(Name="certrenew")["TopicArn"]
        sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=self.arn(self.reports))
        self.events = self.sqs.create_queue(QueueName="event-sink")["QueueUrl"]
        bridge = boto3.client("events")
        bridge.put_rule(Name="certrenew-outcomes", EventPattern=json.dumps({"source": ["certrenew"]}))
        bridge.put_targets(Rule="certrenew-outcomes", Targets=[{"Id": "sink", "Arn": self.arn(self.events)}])

    def arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def drain(self, url: str) -> list[dict]:
        out = []
        while True:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for message in got:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                             "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in attrs["Attributes"].values())

    def receive(self, up_to: int) -> list[dict]:
        """Up to `up_to` messages, ten per ReceiveMessage, as the poller gathers a batch."""
        got: list[dict] = []
        while len(got) < up_to:
            more = self.sqs.receive_message(QueueUrl=self.work, MaxNumberOfMessages=min(10, up_to - len(got)),
                                            AttributeNames=["All"]).get("Messages", [])
            if not more:
                break
            got.extend(more)
        return got

    def run_event_source_mapping(self) -> list[tuple[list[str], list[str]]]:
        """Lambda's SQS poller, synchronously: [(certificates of the batch, failed certificates)]."""
        invocations = []
        while True:
            got = self.receive(BATCH)
            if not got:
                return invocations
            event = {"Records": [{
                "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs", "eventSourceARN": self.work_arn, "awsRegion": "us-east-1"} for m in got]}
            response = worker.lambda_handler(event, LocalContext(900))
            assert set(response) == {"batchItemFailures"}, response
            failed_ids = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            names = {m["MessageId"]: json.loads(m["Body"])["certificate"] for m in got}
            assert failed_ids <= set(names)
            done = [m for m in got if m["MessageId"] not in failed_ids]
            for start in range(0, len(done), 10):
                self.sqs.delete_message_batch(QueueUrl=self.work, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])
            for m in got:
                if m["MessageId"] in failed_ids:  # back on the queue (visibility timeout over at once)
                    self.sqs.change_message_visibility(QueueUrl=self.work, ReceiptHandle=m["ReceiptHandle"],
                                                       VisibilityTimeout=0)
            invocations.append((sorted(names.values()), sorted(names[i] for i in failed_ids)))


def emf_documents(stderr: str) -> list[dict]:
    docs = []
    for line in stderr.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def metric_values(docs: list[dict], metric: str) -> list[tuple[str | None, float]]:
    """(certificate, value) of every document carrying `metric` (one value per document)."""
    out = []
    for d in docs:
        if metric in d:
            values = d[metric] if isinstance(d[metric], list) else [d[metric]]
            assert len(values) == 1, d
            out.append((d.get("certificate"), values[0]))
    return out


@pytest.fixture
def fleet(aws, tmp_path, monkeypatch):
    w = make_world(aws, tmp_path, zones=("fleet.test",))
    queues = Queues()
    config = w.write_config([site(i) for i in range(COUNT // 2)] + [STRAY]
                            + [site(i) for i in range(COUNT // 2, COUNT)])
    for name, value in {"CERTRENEW_STATE_BUCKET": STATE_BUCKET, "CERTRENEW_CONFIG": str(config),
                        "CERTRENEW_QUEUE_URL": queues.work, "CERTRENEW_EVENT_BUS": "default",
                        "CERTRENEW_SNS_TOPIC_ARN": queues.topic, "POWERTOOLS_METRICS_NAMESPACE": "certrenew"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CERTRENEW_FANOUT_THRESHOLD", raising=False)  # the default, 10
    proxy_client.reset_calls(aws.aws_endpoint_url)
    return w, queues


@pytest.mark.timeout(900)
def test_two_hundred_certificates_through_the_queue(fleet, capsys):
    w, queues = fleet
    capsys.readouterr()

    # 1. the scheduled run plans and queues every due certificate, one message each
    answer = app.lambda_handler(SCHEDULED, LocalContext(900))
    assert answer["fanout"]["queued"] == COUNT + 1 and answer["fanout"]["threshold"] == 10
    assert answer["counts"] == {"queued": COUNT + 1}
    assert {c["outcome"] for c in answer["certificates"]} == {"queued"}
    assert [c["name"] for c in answer["certificates"]][COUNT // 2] == "stray", "config order is kept"
    sends = proxy_client.calls(w.stack.aws_endpoint_url, "sqs", "SendMessageBatch")
    assert len(sends) == -(-(COUNT + 1) // 10), "messages go ten per SendMessageBatch"
    assert proxy_client.calls(w.stack.aws_endpoint_url, "acm", "ImportCertificate") == [], "the planner issues nothing"
    queued_docs = metric_values(emf_documents(capsys.readouterr().err), "CertificatesQueued")
    assert len(queued_docs) == COUNT + 1

    # 2. the worker drains the queue in batches of ten; only the stray's record ever fails
    invocations = queues.run_event_source_mapping()
    err = capsys.readouterr().err
    failures = [name for _, failed in invocations for name in failed]
    assert failures.count("stray") == MAX_RECEIVES, failures
    # Another certificate may fail once on a devstack hiccup: then it must succeed on a retry.
    retried = set(failures) - {"stray"}
    renewed = {name for names, failed in invocations for name in names if name not in failed}
    assert renewed == {f"site-{i:03d}" for i in range(COUNT)}
    assert all(len(names) <= BATCH for names, _ in invocations)
    assert len(invocations) <= -(-COUNT // BATCH) + MAX_RECEIVES + 2 * len(retried)
    assert queues.depth(queues.work) == 0

    # the dead-letter queue holds the stray's message, nothing else
    assert queues.drain(queues.dlq) == [{"certificate": "stray"}]

    # every other certificate is issued, stored and in ACM; the stray left nothing behind
    for i in (0, 57, COUNT - 1):
        assert w.current(f"site-{i:03d}")["serial"]
    imported = w.acm().list_certificates(Includes={"keyTypes": ["EC_prime256v1"]}, MaxItems=1000)
    assert len(imported["CertificateSummaryList"]) == COUNT
    assert not any(k.startswith("certificates/stray/") for k in w.state_keys())
    assert w.acme_records() == {}
    exported = {o["Key"] for o in w.s3.list_objects_v2(Bucket=EXPORT_BUCKET)["Contents"]}
    assert exported == {f"site-000/{f}" for f in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")}

    # metrics: one document per certificate and attempt, the stray's failure with its reason
    docs = emf_documents(err)
    issued = metric_values(docs, "CertificatesIssued")
    assert sorted(name for name, _ in issued) == sorted(renewed)
    failed = [d for d in docs if "CertificatesFailed" in d and d["certificate"] == "stray"]
    assert len(failed) == MAX_RECEIVES
    assert {d["certificate"] for d in docs if "CertificatesFailed" in d} == {"stray"} | retried
    assert "no Route53 hosted zone found for www.nowhere.test" in failed[0]["reason"]
    days = [value for name, value in metric_values(docs, "DaysToExpiry") if name in renewed]
    assert len(days) == COUNT and all(89 < d <= 90 for d in days), "Pebble's default profile: 90 days"
    rounds = metric_values(docs, "IssuanceDuration")  # once per issuance round, with the run's duration
    assert not any(name for name, _ in rounds), "a run-level figure, not one per certificate"
    assert len(rounds) >= -(-COUNT // BATCH) and all(t >= 0 for _, t in rounds)
    dns = metric_values(docs, "DnsWait")
    assert len(dns) == len(rounds) and all(0 <= wait <= took for (_, wait), (_, took) in zip(dns, rounds))
    assert len(metric_values(docs, "RunDuration")) == len(invocations)
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "certrenew" for d in docs)
    assert all(d["service"] == "certrenew" for d in docs)

    # the report of each batch reaches SNS once; the stray's batches say FAILED and name it
    reports = [json.loads(n["Message"]) for n in queues.drain(queues.reports)]
    assert len(reports) == len(invocations)
    stray_reports = [r for r in reports if any(c["name"] == "stray" for c in r["certificates"])]
    assert len(stray_reports) == MAX_RECEIVES and not any(r["ok"] for r in stray_reports)
    assert all(r["ok"] for r in reports if r not in stray_reports and not retried)
    assert sum(r["counts"].get("issued", 0) for r in reports) == COUNT

    # EventBridge: one `renewed` event per certificate, one `failed` per attempt of the stray
    events = queues.drain(queues.events)
    by_type: dict[str, list[dict]] = {}
    for event in events:
        assert event["source"] == "certrenew"
        by_type.setdefault(event["detail-type"], []).append(event["detail"])
    assert sorted(d["name"] for d in by_type["certrenew.certificate.renewed"]) == sorted(renewed)
    failed_events = [d["name"] for d in by_type["certrenew.certificate.failed"]]
    assert failed_events.count("stray") == MAX_RECEIVES and set(failed_events) == {"stray"} | retried
    first = next(d for d in by_type["certrenew.certificate.renewed"] if d["name"] == "site-000")
    assert first["serial"] == w.current("site-000")["serial"]
    assert first["export"]["location"] == f"s3://{EXPORT_BUCKET}/site-000/"
    assert first["export"]["files"]["fullchain.pem"] == "site-000/fullchain.pem"
    assert first["domains"] == ["site-000.fleet.test"]

    # 3. a run with fewer certificates due than the threshold renews inline, queue or not
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    report = app.lambda_handler({"action": "renew", "certificates": ["site-000", "stray", "site-199"]},
                                LocalContext(900))
    assert "fanout" not in report
    assert [(c["name"], c["outcome"]) for c in report["certificates"]] == [
        ("site-000", "skipped"), ("stray", "failed"), ("site-199", "skipped")]
    assert proxy_client.calls(w.stack.aws_endpoint_url, "sqs", "SendMessageBatch") == []
    assert proxy_client.calls(w.stack.aws_endpoint_url, "acm", "ImportCertificate") == []
    # planned once: each certificate's pointer is read once, not again by the run
    reads = [c for c in proxy_client.calls(w.stack.aws_endpoint_url, "s3", "GetObject")
             if c["path"].endswith("/current.json")]
    assert len(reads) == 3, [c["path"] for c in reads]
