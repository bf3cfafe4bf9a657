"""The pieces of the ACME adapter that do not need a CA: messages, CertID, Retry-After, replaces fallback."""
import datetime as dt

import pytest
from acme import messages
from acme.client import _renewal_info_path_component
from cryptography import x509

from acme_flow import pki
from acme_flow.adapters import acme_ca
from acme_flow.errors import AcmeProblem, DeadlineExceeded
from acme_flow.deadline import Deadline
from certfactory import MiniCA
from fakes import FakeClock


def test_new_order_carries_replaces_only_when_given():
    ids = (messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="example.com"),)
    assert acme_ca.NewOrder(identifiers=ids, replaces="aki.serial").to_json()["replaces"] == "aki.serial"
    assert "replaces" not in acme_ca.NewOrder(identifiers=ids, replaces=None).to_json()
    assert acme_ca.NewOrder(identifiers=ids, profile="shortlived").to_json()["profile"] == "shortlived"


def test_order_body_keeps_the_replaces_the_ca_recorded():
    body = acme_ca.OrderBody.from_json({"status": "pending", "identifiers": [], "authorizations": [],
                                        "finalize": "https://ca/finalize", "replaces": "a.b"})
    assert body.replaces == "a.b"


@pytest.mark.parametrize("attempt", range(10))
def test_cert_id_matches_the_acme_library(attempt):
    pem = MiniCA().leaf(("example.com",)).cert_pem
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert pki.ari_cert_id(pem) == _renewal_info_path_component(cert)


def test_retry_after_seconds():
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
    assert acme_ca.retry_after_seconds("30", default=1) == 30
    assert acme_ca.retry_after_seconds(None, default=1.5) == 1.5
    assert acme_ca.retry_after_seconds("garbage", default=2) == 2
    assert acme_ca.retry_after_seconds("Sun, 22 Nov 2026 12:00:10 GMT", default=1, now=now) == 10
    assert acme_ca.retry_after_seconds("Sun, 22 Nov 2026 11:00:00 GMT", default=1, now=now) == 0


class ScriptedAdapter(acme_ca.AcmeCaAdapter):
    """The adapter with the network replaced by a script of newOrder answers."""

    def __init__(self, answers, ari=True):
        super().__init__("https://ca.test/dir")
        self.answers, self.sent, self.ari = list(answers), [], ari

    def supports_ari(self):
        return self.ari

    def _post_new_order(self, csr_pem, domains, profile, replaces):
        self.sent.append(replaces)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        body = acme_ca.OrderBody(identifiers=(), authorizations=(), status="pending", replaces=replaces)
        return messages.OrderResource(body=body, uri="https://ca.test/order/1", authorizations=[], csr_pem=csr_pem)


def test_already_replaced_retries_once_without_replaces():
    adapter = ScriptedAdapter([AcmeProblem(acme_ca.ALREADY_REPLACED, "already replaced"), "ok"])
    order = adapter.new_order(b"csr", ("example.com",), None, replaces="a.b")
    assert adapter.sent == ["a.b", None]
    assert order.replaces is None


@pytest.mark.parametrize("typ", ["malformed", "serverInternal"])
def test_an_order_the_ca_cannot_take_with_replaces_is_placed_once_without_it(typ):
    # `replaces` only buys the rate-limit exemption: a CA that fails on it (Pebble 2.10 cannot find
    # the certificate of a serial whose DER has a leading zero byte) still gets the renewal ordered
    adapter = ScriptedAdapter([AcmeProblem(f"urn:ietf:params:acme:error:{typ}", "could not find order"), "ok"])
    order = adapter.new_order(b"csr", ("example.com",), None, replaces="a.b")
    assert adapter.sent == ["a.b", None]
    assert order.replaces is None


def test_other_problems_are_not_retried():
    adapter = ScriptedAdapter([AcmeProblem("urn:ietf:params:acme:error:rejectedIdentifier", "no"), "ok"])
    with pytest.raises(AcmeProblem, match="no"):
        adapter.new_order(b"csr", ("example.com",), None, replaces="a.b")
    assert adapter.sent == ["a.b"]


def test_replaces_is_never_sent_to_a_ca_without_ari():
    adapter = ScriptedAdapter(["ok"], ari=False)
    order = adapter.new_order(b"csr", ("example.com",), None, replaces="a.b")
    assert adapter.sent == [None] and order.replaces is None


# ---- retries with intent ------------------------------------------------------------------


def response(status, body=None, headers=None):
    import json as _json

    import requests

    r = requests.Response()
    r.status_code = status
    r._content = _json.dumps(body).encode() if body is not None else b"<html>busy</html>"
    r.headers.update({"Content-Type": "application/problem+json" if body is not None else "text/html",
                      **(headers or {})})
    return r


def problem(code, detail="d"):
    return {"type": f"urn:ietf:params:acme:error:{code}", "detail": detail}


def raising(*responses):
    """A call that checks each scripted response in turn, as the network does."""
    script = list(responses)

    def call():
        return acme_ca._Network._check_response(script.pop(0))
    call.left = script
    return call


@pytest.fixture
def clock():
    return FakeClock()


def adapter_call(clock, **kwargs):
    """The adapter's request wrapper, waiting through the fake clock."""
    return acme_ca.AcmeCaAdapter("https://ca.test/dir", clock=clock, **kwargs)._request


def test_rate_limited_with_a_short_retry_after_waits_that_long_and_retries(clock):
    ok = response(200, {"status": "valid"})
    call = raising(response(429, problem("rateLimited"), {"Retry-After": "3"}), ok)
    assert adapter_call(clock)("creating the order", call) is ok
    assert clock.sleeps == [3.0]


def test_rate_limited_for_longer_than_the_run_can_wait_fails_at_once_with_the_ca_text(clock):
    call = raising(response(429, problem("rateLimited", "too many certificates"), {"Retry-After": "3600"}))
    with pytest.raises(acme_ca.AcmeTransientProblem, match="too many certificates"):
        adapter_call(clock)("creating the order", call)
    assert clock.sleeps == []


def test_a_5xx_without_a_problem_document_is_retried_with_backoff(clock):
    ok = response(200, {"status": "valid"})
    call = raising(response(503), response(502), ok)
    assert adapter_call(clock)("polling", call) is ok
    assert len(clock.sleeps) == 2 and 0.5 <= clock.sleeps[0] <= 1.5 and 1.0 <= clock.sleeps[1] <= 3.0


def test_transient_problems_are_tried_a_bounded_number_of_times_then_raised(clock):
    call = raising(*[response(503)] * 10)
    with pytest.raises(acme_ca.AcmeTransientProblem, match="polling: HTTP 503"):
        adapter_call(clock, jitter=lambda delay: delay)("polling", call)
    assert clock.sleeps == [1.0, 2.0, 4.0] and len(call.left) == 10 - acme_ca.RETRY_ATTEMPTS


def test_retries_of_a_request_stop_at_the_run_deadline(clock):
    call = raising(*[response(429, problem("rateLimited"), {"Retry-After": "20"})] * 4)
    with pytest.raises(DeadlineExceeded, match="polling the order"):
        adapter_call(clock)("polling the order", call, Deadline(clock, 30))
    assert clock.sleeps == [20.0], "the second wait would pass the deadline: none is taken"


def test_permanent_problems_fail_at_once(clock):
    call = raising(response(403, problem("unauthorized", "no such authorization")), response(200, {}))
    with pytest.raises(AcmeProblem, match="no such authorization") as err:
        adapter_call(clock)("answering", call)
    assert not isinstance(err.value, acme_ca.AcmeTransientProblem)
    assert clock.sleeps == [] and len(call.left) == 1


def test_a_409_with_a_problem_document_stays_a_problem():
    with pytest.raises(AcmeProblem) as err:
        adapter_call(FakeClock())("creating the order", raising(response(409, problem("alreadyReplaced"))))
    assert err.value.typ == acme_ca.ALREADY_REPLACED


def test_an_order_with_replaces_that_the_ca_fails_on_is_placed_again_without_it_at_once(clock):
    """A serverInternal on an order with `replaces` (Pebble 2.10 fails on some serials) is not
    retried with backoff first: the renewal is ordered at once without the field, as the CA
    then takes it (every other order of the run waits for this one before the DNS round)."""
    answers = [response(500, problem("serverInternal", "could not find an order for the given certificate")),
               response(201, {"status": "pending", "identifiers": [], "authorizations": []},
                        {"Location": "https://ca.test/order/2"})]
    sent = []
    adapter = acme_ca.AcmeCaAdapter("https://ca.test/dir", clock=clock)
    adapter.supports_ari = lambda: True
    net = type("Net", (), {"post": lambda self, url, order, new_nonce_url: (
        sent.append(order.replaces), acme_ca._Network._check_response(answers.pop(0)))[1]})()
    adapter._client = type("Client", (), {"net": net, "directory": {"newOrder": "o", "newNonce": "n"}})()
    order = adapter.new_order(b"csr", ("example.com",), None, replaces="a.b")
    assert sent == ["a.b", None] and order.replaces is None
    assert clock.sleeps == []


def _finalizing_adapter(clock, answers, sent):
    """An adapter whose network answers `answers` in turn, recording (time, url) of each POST."""
    from acme import messages
    from acme_flow.ports import PendingOrder

    adapter = acme_ca.AcmeCaAdapter("https://ca.test/dir", clock=clock)
    net = type("Net", (), {"post": lambda self, url, body, new_nonce_url: (
        sent.append((clock.monotonic(), url)), acme_ca._Network._check_response(answers.pop(0)))[1]})()
    adapter._client = type("Client", (), {"net": net, "directory": {"newNonce": "n"}})()
    body = messages.Order(status="ready", finalize="https://ca.test/finalize/1", identifiers=[], authorizations=[])
    handle = messages.OrderResource(body=body, uri="https://ca.test/order/1", csr_pem=_csr())
    return adapter, PendingOrder("https://ca.test/order/1", ("example.com",), (), handle=handle)


def _csr() -> bytes:
    from acme_flow import pki
    from acme_flow.models import KeyType

    return pki.make_csr(pki.generate_key(KeyType.EC_P256), ("example.com",))


def test_the_first_order_poll_after_finalize_waits_for_the_retry_after_the_ca_asked(clock):
    """RFC 8555 7.4: a processing order is polled after its Retry-After. Polling at once met
    Pebble 2.10 still issuing, and it then never answered that account again (a full-suite hang)."""
    from acme_flow.deadline import Deadline

    processing = {"status": "processing", "identifiers": [], "authorizations": [], "finalize": "https://ca.test/finalize/1"}
    valid = {**processing, "status": "valid", "certificate": "https://ca.test/cert/1"}
    chain = response(200, None, {"Content-Type": "application/pem-certificate-chain"})
    chain._content = b"PEM"
    answers = [response(200, processing, {"Retry-After": "2", "Content-Type": "application/json"}),
               response(200, valid, {"Content-Type": "application/json"}), chain]
    sent = []
    adapter, order = _finalizing_adapter(clock, answers, sent)
    issued = adapter.finalize(order, b"", Deadline(clock, 600))
    assert [url for _, url in sent] == ["https://ca.test/finalize/1", "https://ca.test/order/1", "https://ca.test/cert/1"]
    assert sent[1][0] - sent[0][0] >= 2, "the order was polled before the Retry-After the CA asked"
    assert issued.fullchains == ("PEM",)


def test_an_order_valid_in_the_finalize_answer_is_not_polled(clock):
    from acme_flow.deadline import Deadline

    valid = {"status": "valid", "identifiers": [], "authorizations": [], "finalize": "https://ca.test/finalize/1",
             "certificate": "https://ca.test/cert/1"}
    chain = response(200, None, {"Content-Type": "application/pem-certificate-chain"})
    chain._content = b"PEM"
    sent = []
    adapter, order = _finalizing_adapter(clock, [response(200, valid, {"Content-Type": "application/json"}), chain], sent)
    adapter.finalize(order, b"", Deadline(clock, 600))
    assert [url for _, url in sent] == ["https://ca.test/finalize/1", "https://ca.test/cert/1"]
