"""ElbListeners against a fake elbv2 client: where our certificate goes (default or SNI entry), the
order of the writes (new in before old out), and each refusal named with its target and cause."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters.elb import ElbListeners
from acme_flow.errors import DeployError

REGION, ACCOUNT = "eu-west-1", "111111111111"
LISTENER = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
TARGET = f"elb:{LISTENER}"


def cert(n: int, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:acm:{region}:{account}:certificate/{n:08d}-1111-2222-3333-444444444444"


OLD, NEW, OTHER = cert(1), cert(2), cert(3)


def client_error(code: str, operation: str, message: str = "refused") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class FakeElb:
    """One listener: a default certificate and an SNI list, served two entries a page."""

    def __init__(self, default: str | None, sni: list[str], protocol: str = "HTTPS") -> None:
        self.default, self.sni, self.protocol = default, list(sni), protocol
        self.writes: list[tuple] = []
        self.fail: dict[str, ClientError] = {}  # method -> error it raises

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail[method]

    def describe_listeners(self, ListenerArns):
        self._maybe_fail("describe_listeners")
        assert ListenerArns == [LISTENER]
        certs = [{"CertificateArn": self.default}] if self.default else []
        return {"Listeners": [{"ListenerArn": LISTENER, "Protocol": self.protocol, "Port": 443,
                               "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "Certificates": certs}]}

    def get_paginator(self, name):
        assert name == "describe_listener_certificates"
        return self

    def paginate(self, ListenerArn):
        self._maybe_fail("describe_listener_certificates")
        entries = ([{"CertificateArn": self.default, "IsDefault": True}] if self.default else []) + \
            [{"CertificateArn": a, "IsDefault": False} for a in self.sni]
        for start in range(0, max(len(entries), 1), 2):
            yield {"Certificates": entries[start:start + 2]}

    def modify_listener(self, ListenerArn, Certificates, **rest):
        self._maybe_fail("modify_listener")
        self.writes.append(("modify", [c["CertificateArn"] for c in Certificates], rest))
        self.default = Certificates[0]["CertificateArn"]
        return {}

    def add_listener_certificates(self, ListenerArn, Certificates):
        self._maybe_fail("add_listener_certificates")
        arns = [c["CertificateArn"] for c in Certificates]
        self.writes.append(("add", arns))
        self.sni += arns
        return {}

    def remove_listener_certificates(self, ListenerArn, Certificates):
        self._maybe_fail("remove_listener_certificates")
        arns = [c["CertificateArn"] for c in Certificates]
        self.writes.append(("remove", arns))
        self.sni = [a for a in self.sni if a not in arns]
        return {}


def listeners(fake: FakeElb, asked: list | None = None) -> ElbListeners:
    def client_for(region, role):
        if asked is not None:
            asked.append((region, role))
        return fake
    return ElbListeners(client_for)


def test_the_default_certificate_moves_with_modify_listener_and_nothing_else():
    fake = FakeElb(OLD, [OTHER])
    asked: list = []
    assert listeners(fake, asked).attach(LISTENER, NEW, OLD, "arn:aws:iam::111111111111:role/deploy") is True
    assert fake.writes == [("modify", [NEW], {})]
    assert (fake.default, fake.sni) == (NEW, [OTHER])
    assert asked == [(REGION, "arn:aws:iam::111111111111:role/deploy")], "the listener's region, the role given"


def test_an_old_default_also_listed_leaves_the_sni_list_after_the_move():
    fake = FakeElb(OLD, [OTHER, OLD])
    assert listeners(fake).attach(LISTENER, NEW, OLD, None) is True
    assert fake.writes == [("modify", [NEW], {}), ("remove", [OLD])]
    assert (fake.default, fake.sni) == (NEW, [OTHER])


def test_a_first_attachment_adds_an_sni_entry_and_keeps_the_default():
    fake = FakeElb(OTHER, [cert(4), cert(5), cert(6)])
    assert listeners(fake).attach(LISTENER, NEW, None, None) is True
    assert fake.writes == [("add", [NEW])]
    assert fake.default == OTHER


def test_a_move_adds_the_new_entry_before_removing_the_old_one():
    fake = FakeElb(OTHER, [cert(4), cert(5), OLD])  # OLD on the second page
    assert listeners(fake).attach(LISTENER, NEW, OLD, None) is True
    assert fake.writes == [("add", [NEW]), ("remove", [OLD])]
    assert (fake.default, fake.sni) == (OTHER, [cert(4), cert(5), NEW])


def test_a_move_whose_new_arn_is_already_listed_only_removes_the_old_one():
    fake = FakeElb(OTHER, [NEW, OLD])  # a run that died between the two writes
    assert listeners(fake).attach(LISTENER, NEW, OLD, None) is True
    assert fake.writes == [("remove", [OLD])]


@pytest.mark.parametrize("default, sni, replaces", [
    (OTHER, [cert(4), cert(5), NEW], None),
    (OTHER, [cert(4), cert(5), NEW], NEW),
    (NEW, [OTHER], None),
    (NEW, [OTHER], NEW),
    (OTHER, [NEW], OLD),  # the old one is gone already
])
def test_nothing_is_written_when_the_certificate_already_serves(default, sni, replaces):
    fake = FakeElb(default, sni)
    assert listeners(fake).attach(LISTENER, NEW, replaces, None) is False
    assert fake.writes == []


def test_a_default_that_is_already_ours_and_an_old_sni_entry_only_removes_that():
    fake = FakeElb(NEW, [OLD, OTHER])
    assert listeners(fake).attach(LISTENER, NEW, OLD, None) is True
    assert fake.writes == [("remove", [OLD])]
    assert fake.default == NEW


@pytest.mark.parametrize("arn, why", [
    (cert(2, region="us-east-1"), "region eu-west-1"),
    (cert(2, account="222222222222"), "account 111111111111"),
    ("arn:aws:iam::111111111111:server-certificate/site", "not an ACM certificate"),
    ("not-an-arn", "not an ACM certificate"),
])
def test_a_certificate_of_another_region_or_account_is_refused_before_any_call(arn, why):
    fake = FakeElb(OLD, [])
    with pytest.raises(DeployError) as err:
        listeners(fake).attach(LISTENER, arn, OLD, None)
    assert err.value.target == TARGET and why in err.value.reason and "own region" in err.value.reason
    assert fake.writes == []


def test_a_malformed_listener_arn_is_named():
    with pytest.raises(DeployError, match="not a listener ARN"):
        listeners(FakeElb(OLD, [])).check("arn:aws:elasticloadbalancing:eu-west-1:111111111111:loadbalancer/app/x/y", None)


@pytest.mark.parametrize("protocol", ["HTTP", "TCP", "UDP"])
def test_a_listener_without_tls_is_refused_by_check_and_attach(protocol):
    fake = FakeElb(None, [], protocol=protocol)
    for act in (lambda e: e.check(LISTENER, None), lambda e: e.attach(LISTENER, NEW, None, None)):
        with pytest.raises(DeployError) as err:
            act(listeners(fake))
        assert err.value.target == TARGET
        assert f"an {protocol} listener cannot use a certificate" in err.value.reason
    assert fake.writes == []


@pytest.mark.parametrize("protocol", ["HTTPS", "TLS"])
def test_check_accepts_https_and_tls_listeners_and_writes_nothing(protocol):
    fake = FakeElb(OLD, [OTHER], protocol=protocol)
    listeners(fake).check(LISTENER, None)
    assert fake.writes == []


def test_a_missing_listener_says_so():
    fake = FakeElb(OLD, [])
    fake.fail["describe_listeners"] = client_error("ListenerNotFound", "DescribeListeners", "One or more listeners not found")
    with pytest.raises(DeployError) as err:
        listeners(fake).check(LISTENER, None)
    assert err.value.target == TARGET and "ListenerNotFound" in err.value.reason and "no such listener" in err.value.reason


@pytest.mark.parametrize("method, operation", [
    ("describe_listeners", "DescribeListeners"),
    ("describe_listener_certificates", "DescribeListenerCertificates"),
    ("add_listener_certificates", "AddListenerCertificates"),
])
def test_access_denied_names_the_action(method, operation):
    fake = FakeElb(OTHER, [OLD])
    fake.fail[method] = client_error("AccessDenied", operation, "User is not authorized")
    with pytest.raises(DeployError) as err:
        listeners(fake).attach(LISTENER, NEW, OLD, None)
    assert err.value.target == TARGET
    assert f"access denied to elasticloadbalancing:{operation} (AccessDenied)" in err.value.reason
    assert ("remove", [OLD]) not in fake.writes, "the old one stays when the new one could not be added"


def test_other_aws_errors_carry_their_code():
    fake = FakeElb(OTHER, [OLD])
    fake.fail["add_listener_certificates"] = client_error("TooManyCertificates", "AddListenerCertificates",
                                                          "You've reached the limit on the number of certificates")
    with pytest.raises(DeployError) as err:
        listeners(fake).attach(LISTENER, NEW, OLD, None)
    assert "elasticloadbalancing:AddListenerCertificates failed (TooManyCertificates" in err.value.reason


def test_an_unknown_certificate_is_explained():
    fake = FakeElb(OLD, [])
    fake.fail["modify_listener"] = client_error("CertificateNotFound", "ModifyListener", f"Certificate '{NEW}' not found")
    with pytest.raises(DeployError) as err:
        listeners(fake).attach(LISTENER, NEW, OLD, None)
    assert "CertificateNotFound" in err.value.reason and "listener's region and account" in err.value.reason
