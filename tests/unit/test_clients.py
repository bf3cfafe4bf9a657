"""bootstrap.Clients: one client per (service, region) and invocation, made safely from many
threads, and nothing kept alive once an invocation lets go of its Clients."""
from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from acme_flow.bootstrap import Clients, Settings, build_renewer
from acme_flow.errors import DnsError, DnsRoleError
from acme_flow.models import AcmeSettings, CertificateSpec, Config

ROLE = "arn:aws:iam::222222222222:role/certrenew-dns"


@pytest.fixture(autouse=True)
def offline_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _dead_after_gc(ref: weakref.ref) -> bool:
    gc.collect()
    return ref() is None


def test_a_clients_and_its_session_are_collected_once_dropped():
    clients = Clients("eu-west-1")
    clients.get("s3")
    clients.get("acm", "us-east-1")
    clients.single_try("acm", "us-east-1")
    clients.route53_for(None)
    refs = [weakref.ref(clients), weakref.ref(clients._session), weakref.ref(clients.get("s3"))]
    del clients
    assert all(_dead_after_gc(r) for r in refs), "a cache outside the instance keeps the invocation alive"


def test_an_invocations_renewer_and_clients_are_collected_once_dropped(tmp_path):
    """What the handler builds per invocation (wiring.build -> build_renewer) is freed with it."""
    config = Config(AcmeSettings("https://acme.example/dir"), (CertificateSpec("c", ("c.example",)),))
    settings = Settings(config_ref="unused", state_bucket="bucket", state_kms_key=None, ca_bundle=None,
                        dns_resolvers=None, region="us-east-1", sns_topic_arn="arn:aws:sns:eu-west-1:1:t",
                        event_bus="bus")
    refs = []
    for _ in range(3):  # three warm invocations in one process
        clients = Clients(settings.region)
        renewer = build_renewer(config, settings, clients=clients)
        renewer.settlement.deployer  # noqa: B018 - built and used as the handler would
        clients.get("acm", "eu-west-1")
        refs += [weakref.ref(clients), weakref.ref(clients._session), weakref.ref(renewer)]
        del clients, renewer
    assert all(_dead_after_gc(r) for r in refs)


def test_one_client_per_key_when_many_threads_ask_at_once():
    clients = Clients("us-east-1")
    made = []
    real = clients._session.client
    gate = threading.Barrier(32)

    def slow_client(*args, **kwargs):
        made.append((args, kwargs.get("region_name")))
        return real(*args, **kwargs)

    clients._session.client = slow_client
    keys = [("s3", None), ("acm", "us-east-1"), ("acm", "eu-west-1"), ("route53", None)]

    def ask(i):
        gate.wait()
        service, region = keys[i % len(keys)]
        return (service, region), clients.get(service, region)

    with ThreadPoolExecutor(max_workers=32) as pool:
        got = list(pool.map(ask, range(32 * 4)))
    by_key: dict = {}
    for key, client in got:
        by_key.setdefault(key, set()).add(id(client))
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    assert len(made) == len(keys), f"{len(made)} clients made for {len(keys)} keys"


def test_the_session_never_makes_two_clients_at_once():
    """botocore's Session is not thread-safe for client creation: creations are serialised."""
    clients = Clients("us-east-1")
    real = clients._session.client
    inside = []
    overlap = []
    gate = threading.Barrier(16)

    def watched(*args, **kwargs):
        inside.append(1)
        if len(inside) > 1:
            overlap.append(len(inside))
        try:
            return real(*args, **kwargs)
        finally:
            inside.pop()

    clients._session.client = watched

    def ask(i):
        gate.wait()
        return clients.get("acm", f"region-{i}") if i % 2 else clients.single_try("acm", f"region-{i}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(ask, range(16)))
    assert overlap == []


class RefusingSts:
    def assume_role(self, RoleArn, RoleSessionName):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": f"User: arn:aws:sts::111111111111:"
                                     f"assumed-role/certrenew is not authorized to perform: sts:AssumeRole "
                                     f"on resource: {RoleArn}"}}, "AssumeRole")


def test_a_refused_assume_role_is_a_dns_error_naming_the_role_and_what_to_check():
    clients = Clients("us-east-1")
    clients._cache[("sts", "us-east-1", "retrying")] = RefusingSts()
    with pytest.raises(DnsRoleError) as caught:
        clients.route53_for(ROLE)
    assert isinstance(caught.value, DnsError)
    message = str(caught.value)
    assert ROLE in message and "AccessDenied" in message
    assert "trust policy" in message and "DnsRoleArns" in message
    assert caught.value.role_arn == ROLE



def test_what_the_handler_builds_per_invocation_is_collected_after_it(tmp_path, monkeypatch):
    """handler.wiring.build() is what every invocation calls: nothing of it outlives the invocation."""
    from handler import wiring

    config = tmp_path / "certificates.yaml"
    config.write_text('{"acme": {"directory": "https://acme.example/dir"}, '
                      '"certificates": [{"name": "c", "domains": ["c.example"]}]}')
    monkeypatch.setenv("CERTRENEW_CONFIG", str(config))
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", "bucket")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("CERTRENEW_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/work")
    refs = []
    for _ in range(3):
        wired = wiring.build()
        wired.queue()
        refs += [weakref.ref(wired.clients), weakref.ref(wired.clients._session), weakref.ref(wired.renewer)]
        del wired
    assert all(_dead_after_gc(r) for r in refs)


def test_a_slow_role_assumption_holds_up_no_other_client():
    clients = Clients("us-east-1")
    asked, release = threading.Event(), threading.Event()

    class SlowSts:
        def assume_role(self, RoleArn, RoleSessionName):
            asked.set()
            assert release.wait(30), "another client waited for this AssumeRole"
            return {"Credentials": {"AccessKeyId": "AKIA", "SecretAccessKey": "s", "SessionToken": "t"}}

    clients._cache[("sts", "us-east-1", "retrying")] = SlowSts()
    with ThreadPoolExecutor(max_workers=1) as pool:
        assumed = pool.submit(clients.route53_for, ROLE)
        assert asked.wait(30)
        clients.get("s3")  # made while the role is being assumed
        release.set()
        assert assumed.result() is clients.route53_for(ROLE)
