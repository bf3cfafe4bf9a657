"""The issuance flow against fakes of the CA and DNS ports."""

import pytest

from acme_flow import pki
from acme_flow.errors import ValidationFailed, VerificationError, ZoneNotFound
from acme_flow.issuance import Issuer, choose_chain, map_settled
from acme_flow.deadline import Deadline
from acme_flow.models import CertificateSpec
from acme_flow.ports import Dns01Challenge, IssuedChains, PendingOrder, TxtRecord
from certfactory import MiniCA, make_cert
from fakes import FakeClock



class FakeCA:
    directory = "https://ca.test/dir"

    def __init__(self, ca: MiniCA, fail_validation=(), alternate: MiniCA | None = None, tamper=False):
        self.ca, self.fail_validation, self.alternate, self.tamper = ca, set(fail_validation), alternate, tamper
        self.answered = []

    def new_order(self, csr_pem, domains, profile, replaces=None):
        challenges = tuple(Dns01Challenge(d, "_acme-challenge." + d.removeprefix("*."), f"v-{d}") for d in domains)
        return PendingOrder(url=f"https://ca.test/order/{domains[0]}", domains=domains, challenges=challenges)

    def answer(self, challenge):
        self.answered.append(challenge.domain)

    def wait_valid(self, order, deadline):
        bad = {d: "no TXT record found" for d in order.domains if d in self.fail_validation}
        if bad:
            raise ValidationFailed(bad)

    def finalize(self, order, csr_pem, deadline):
        from cryptography import x509

        csr = x509.load_pem_x509_csr(csr_pem)
        chains = []
        for ca in [self.ca] + ([self.alternate] if self.alternate else []):
            leaf = make_cert(order.domains[0], ca.int_name, csr.public_key(), ca.int_key, ca=False,
                             names=order.domains if not self.tamper else order.domains[:1])
            chains.append(leaf + ca.int_pem + ca.root_pem)
        return IssuedChains(tuple(chains))


class FakeDns:
    def __init__(self, zones=("example.com", "example.org")):
        self.zones, self.presented, self.removed = zones, [], []

    def locate(self, record_name, value, spec):
        zone = next((z for z in self.zones if record_name.endswith("." + z)), None)
        if zone is None:
            raise ZoneNotFound(record_name)
        return TxtRecord(record_name, value, zone_id=f"Z-{zone}")

    def present(self, records, deadline):
        self.presented.append(list(records))

    def remove(self, records):
        self.removed.append(list(records))



class FakePropagation:
    def __init__(self):
        self.seen = None

    def wait_visible(self, records, deadline):
        self.seen = list(records)


def issuer(ca, dns=None):
    clock = FakeClock()
    dns = dns or FakeDns()
    return Issuer(ca=ca, dns=dns, propagation=FakePropagation(), clock=clock, workers=4), dns, Deadline(clock, 60)


SITE = CertificateSpec("site", ("example.com", "*.example.com"))
OTHER = CertificateSpec("other", ("example.org",))


def test_all_records_are_published_together_and_removed():
    ca = MiniCA()
    iss, dns, deadline = issuer(FakeCA(ca))
    results = iss.issue_all([SITE, OTHER], deadline)
    assert set(results) == {"site", "other"}
    assert all(not isinstance(r, Exception) for r in results.values()), results
    assert len(dns.presented) == 1 and len(dns.presented[0]) == 3
    assert dns.removed == dns.presented
    site = results["site"]
    assert pki.split_pem_chain(site.material.chain_pem) == [ca.int_pem], "chain without the root"
    assert set(site.info.names) == set(SITE.domains)


def test_records_are_removed_when_validation_fails_and_others_still_issue():
    iss, dns, deadline = issuer(FakeCA(MiniCA(), fail_validation={"example.org"}))
    results = iss.issue_all([SITE, OTHER], deadline)
    assert isinstance(results["other"], ValidationFailed)
    assert "no TXT record found" in str(results["other"])
    assert not isinstance(results["site"], Exception)
    assert dns.removed == dns.presented


def test_a_name_in_no_zone_fails_only_its_certificate():
    stray = CertificateSpec("stray", ("nowhere.invalid",))
    iss, dns, deadline = issuer(FakeCA(MiniCA()))
    results = iss.issue_all([stray, OTHER], deadline)
    assert isinstance(results["stray"], ZoneNotFound)
    assert not isinstance(results["other"], Exception)
    assert [r.name for r in dns.presented[0]] == ["_acme-challenge.example.org"]


def test_names_differing_from_the_request_are_never_returned():
    iss, _, deadline = issuer(FakeCA(MiniCA(), tamper=True))
    results = iss.issue_all([SITE], deadline)
    assert isinstance(results["site"], VerificationError)


def test_preferred_chain_picks_the_alternate():
    default, alternate = MiniCA("Root A"), MiniCA("Root B", "Int B")
    spec = CertificateSpec("site", ("example.com",), preferred_chain="Root B")
    iss, _, deadline = issuer(FakeCA(default, alternate=alternate))
    issued = iss.issue_all([spec], deadline)["site"]
    assert issued.root == "Root B"
    assert issued.info.issuer == "Int B"


def test_choose_chain_falls_back_to_the_default():
    a, b = MiniCA("Root A"), MiniCA("Root B")
    chain_a = a.leaf(("x.com",)).cert_pem + a.int_pem
    chain_b = b.leaf(("x.com",)).cert_pem + b.int_pem
    assert choose_chain([chain_a, chain_b], "Root B") == chain_b
    assert choose_chain([chain_a, chain_b], "Nope") == chain_a
    assert choose_chain([chain_a, chain_b], None) == chain_a
    with pytest.raises(VerificationError):
        choose_chain([], None)


def test_map_settled_keeps_exceptions_per_item():
    def fn(x):
        if x == 2:
            raise ValueError("two")
        return x * 10

    out = map_settled(fn, [1, 2, 3], workers=3)
    assert out[0] == 10 and out[2] == 30 and isinstance(out[1], ValueError)


class SlowPropagation:
    """Never sees one record; records how long it was allowed to wait."""

    def __init__(self, clock):
        self.clock, self.allowed = clock, None

    def wait_visible(self, records, deadline):
        from acme_flow.errors import PropagationTimeout

        self.allowed = deadline.remaining()
        deadline._clock.sleep(deadline.remaining())
        raise PropagationTimeout({"_acme-challenge.example.org": ["127.0.0.1:53"]})


def test_propagation_failure_of_one_zone_leaves_time_for_the_others():
    clock = FakeClock()
    dns = FakeDns()
    slow = SlowPropagation(clock)
    iss = Issuer(ca=FakeCA(MiniCA()), dns=dns, propagation=slow, clock=clock, propagation_timeout=300)
    deadline = Deadline(clock, 900)
    results = iss.issue_all([SITE, OTHER], deadline)
    assert slow.allowed == 300
    assert "not confirmed" in str(results["other"])
    assert not isinstance(results["site"], Exception)
    assert deadline.remaining() == 600
    assert dns.removed == dns.presented
