"""The fan-out queue adapter: one message per certificate, ten per SendMessageBatch, failures returned."""
from __future__ import annotations

import json

from botocore.exceptions import ClientError

from acme_flow.adapters.queue import SqsQueue, message_body

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/certrenew-work"


class FakeSqs:
    """Fails the listed names (SenderFault True: for good; False: once, then accepts them)."""

    def __init__(self, refuse=(), flaky=(), down=False):
        self.batches = []
        self.refuse = set(refuse)
        self.flaky = set(flaky)
        self.down = down

    def send_message_batch(self, QueueUrl, Entries):
        assert QueueUrl == URL and 1 <= len(Entries) <= 10
        assert len({e["Id"] for e in Entries}) == len(Entries)
        if self.down:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "SendMessageBatch")
        self.batches.append([json.loads(e["MessageBody"]) for e in Entries])
        ok, failed = [], []
        for e in Entries:
            name = json.loads(e["MessageBody"])["certificate"]
            if name in self.refuse:
                failed.append({"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents", "Message": "bad"})
            elif name in self.flaky:
                self.flaky.discard(name)
                failed.append({"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "retry"})
            else:
                ok.append({"Id": e["Id"], "MessageId": f"m-{name}"})
        return {"Successful": ok, "Failed": failed}


def test_message_body_is_the_contract_shape():
    assert json.loads(message_body("site")) == {"certificate": "site"}
    assert json.loads(message_body("site", force=True)) == {"certificate": "site", "force": True}


def test_one_message_per_certificate_ten_per_call():
    sqs = FakeSqs()
    names = [f"c{i:02d}" for i in range(23)]
    assert SqsQueue(sqs, URL).send(names) == {}
    assert [len(b) for b in sqs.batches] == [10, 10, 3]
    assert [m["certificate"] for b in sqs.batches for m in b] == names


def test_server_side_failures_are_retried_sender_faults_are_returned():
    sqs = FakeSqs(refuse={"c03"}, flaky={"c05", "c12"})
    failed = SqsQueue(sqs, URL).send([f"c{i:02d}" for i in range(15)], force=True)
    assert failed == {"c03": "could not queue: InvalidMessageContents: bad"}
    sent = [m["certificate"] for b in sqs.batches for m in b]
    assert sent.count("c05") == 2 and sent.count("c12") == 2 and sent.count("c03") == 1
    assert all(m["force"] is True for b in sqs.batches for m in b)


def test_a_refused_call_fails_its_batch_only_and_nothing_is_raised():
    failed = SqsQueue(FakeSqs(down=True), URL).send(["a", "b"])
    assert set(failed) == {"a", "b"}
    assert "AccessDenied" in failed["a"]


def test_nothing_to_send_makes_no_call():
    sqs = FakeSqs()
    assert SqsQueue(sqs, URL).send([]) == {}
    assert sqs.batches == []
