"""The pieces of the ACME adapter that do not need a CA: messages, CertID, Retry-After, replaces fallback."""
import datetime as dt

import pytest
from acme import messages
from acme.client import _renewal_info_path_component
from cryptography import x509

from acme_flow import pki
from acme_flow.adapters import acme_ca
from acme_flow.errors import AcmeProblem
from certfactory import MiniCA


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


def test_other_problems_are_not_retried():
    adapter = ScriptedAdapter([AcmeProblem("urn:ietf:params:acme:error:rejectedIdentifier", "no"), "ok"])
    with pytest.raises(AcmeProblem, match="no"):
        adapter.new_order(b"csr", ("example.com",), None, replaces="a.b")
    assert adapter.sent == ["a.b"]


def test_replaces_is_never_sent_to_a_ca_without_ari():
    adapter = ScriptedAdapter(["ok"], ari=False)
    order = adapter.new_order(b"csr", ("example.com",), None, replaces="a.b")
    assert adapter.sent == [None] and order.replaces is None
