"""The issuance flow against fakes of the CA and DNS ports (tests/fakes.py)."""
import datetime as dt

import pytest

from acme_flow import pki
from acme_flow.deadline import Deadline
from acme_flow.errors import ValidationFailed, VerificationError, ZoneNotFound
from acme_flow.issuance import Issuer, choose_chain
from acme_flow.models import CertificateSpec, IssuanceTimings
from acme_flow.parallel import map_settled
from acme_flow.ports import TxtRecord
from certfactory import MiniCA
from fakes import NOW, FakeCa, FakeClock, FakeDns, FakePropagation, FakeState

RUN, UNTIL = "run-1", NOW + dt.timedelta(minutes=20)


def issuer(dns=None, propagation=None, clock=None, **kw):
    """An Issuer over fakes (its ledger a FakeState), its FakeDns and a 60 s deadline."""
    clock = clock or FakeClock()
    dns = dns or FakeDns()
    iss = Issuer(dns, propagation or FakePropagation(dns), FakeState(), clock, workers=4, **kw)
    return iss, dns, Deadline(clock, 60)


def issue(iss, ca, specs, deadline, replaces=None):
    """The round's results, once its TXT values are removed (that goes on while a run stores)."""
    results = iss.issue_all(ca, specs, deadline, RUN, UNTIL, replaces)[0]
    iss.cleaned()
    return results


SITE = CertificateSpec("site", ("example.com", "*.example.com"))
OTHER = CertificateSpec("other", ("example.org",))


def test_all_records_are_published_together_and_removed():
    mini = MiniCA()
    iss, dns, deadline = issuer()
    results = issue(iss, FakeCa(mini, dns=dns), [SITE, OTHER], deadline)
    assert set(results) == {"site", "other"}
    assert all(not isinstance(r, Exception) for r in results.values()), results
    assert len(dns.presented) == 1 and len(dns.presented[0]) == 3
    assert dns.removed == dns.presented and dns.published == set()
    site = results["site"]
    assert pki.split_pem_chain(site.material.chain_pem) == [mini.int_pem], "chain without the root"
    assert set(site.info.names) == set(SITE.domains)


def test_records_are_removed_when_validation_fails_and_others_still_issue():
    iss, dns, deadline = issuer()
    ca = FakeCa(dns=dns)
    ca.fail_validation["example.org"] = "no TXT record found"
    results = issue(iss, ca, [SITE, OTHER], deadline)
    assert isinstance(results["other"], ValidationFailed)
    assert "no TXT record found" in str(results["other"])
    assert not isinstance(results["site"], Exception)
    assert dns.removed == dns.presented


def test_a_name_in_no_zone_fails_only_its_certificate():
    stray = CertificateSpec("stray", ("nowhere.invalid",))
    iss, dns, deadline = issuer()
    results = issue(iss, FakeCa(dns=dns), [stray, OTHER], deadline)
    assert isinstance(results["stray"], ZoneNotFound)
    assert not isinstance(results["other"], Exception)
    assert [r.name for r in dns.presented[0]] == ["_acme-challenge.example.org"]


def test_names_differing_from_the_request_are_never_returned():
    iss, _, deadline = issuer()
    results = issue(iss, FakeCa(tamper=True), [SITE], deadline)
    assert isinstance(results["site"], VerificationError)


def test_preferred_chain_picks_the_alternate():
    default, alternate = MiniCA("Root A"), MiniCA("Root B", "Int B")
    spec = CertificateSpec("site", ("example.com",), preferred_chain="Root B")
    iss, _, deadline = issuer()
    issued = issue(iss, FakeCa(default, alternates=(alternate,)), [spec], deadline)["site"]
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


def test_propagation_failure_of_one_zone_leaves_time_for_the_others():
    clock = FakeClock()
    slow = FakePropagation(clock=clock, missing={"_acme-challenge.example.org"})
    iss, dns, _ = issuer(propagation=slow, clock=clock, propagation_timeout=300)
    deadline = Deadline(clock, 900)
    results = issue(iss, FakeCa(clock=clock), [SITE, OTHER], deadline)
    assert slow.allowed == [300]
    assert "not confirmed" in str(results["other"])
    assert not isinstance(results["site"], Exception)
    assert deadline.remaining() == 600
    assert dns.removed == dns.presented


# ---- the challenge ledger, the stale sweep, replaces, name servers and timings


def test_the_ledger_holds_the_published_values_until_they_are_removed():
    iss, dns, deadline = issuer()
    seen = {}
    present = dns.present

    def present_and_look(records, deadline):
        seen.update(iss.ledger.challenges)
        present(records, deadline)
    dns.present = present_and_look
    issue(iss, FakeCa(dns=dns), [OTHER], deadline)
    assert list(seen) == [RUN] and seen[RUN][1] == UNTIL
    assert [r.value for r in seen[RUN][0]] == [r.value for r in dns.presented[0]]
    assert iss.ledger.challenges == {}, "forgotten once removed"


def test_a_failed_removal_keeps_the_ledger_for_a_later_sweep():
    iss, dns, deadline = issuer()

    def refuse(records):
        raise RuntimeError("Route53 is down")
    dns.remove = refuse
    results = issue(iss, FakeCa(dns=dns), [OTHER], deadline)
    assert not isinstance(results["other"], Exception), "cleanup never hides the outcome"
    assert list(iss.ledger.challenges) == [RUN]


def test_sweep_stale_removes_what_a_dead_run_left_and_keeps_live_runs():
    iss, dns, _ = issuer()
    left = TxtRecord("_acme-challenge.example.org", "left", "Z-example.org")
    live = TxtRecord("_acme-challenge.example.com", "live", "Z-example.com")
    iss.ledger.record_challenges("dead", [left], NOW - dt.timedelta(seconds=1))
    iss.ledger.record_challenges("live", [live], NOW + dt.timedelta(minutes=5))
    iss.sweep_stale()
    assert dns.removed == [[left]] and list(iss.ledger.challenges) == ["live"]


def test_replaces_goes_with_its_order_and_comes_back_as_what_the_ca_accepted():
    iss, dns, deadline = issuer()
    ca = FakeCa(dns=dns)
    results = issue(iss, ca, [SITE, OTHER], deadline, replaces={"site": "aki.serial"})
    assert {o["domains"][0]: o["replaces"] for o in ca.ordered} == {"example.com": "aki.serial", "example.org": None}
    assert results["site"].replaced == "aki.serial" and results["other"].replaced is None
    ca.already_replaced = True
    assert issue(iss, ca, [SITE], deadline, replaces={"site": "aki.serial"})["site"].replaced is None


def test_check_finds_every_zone_without_writing():
    iss, dns, _ = issuer()
    iss.check(SITE)
    assert dns.located == ["_acme-challenge.example.com"], "the wildcard shares its base name's record"
    with pytest.raises(ZoneNotFound):
        iss.check(CertificateSpec("stray", ("www.nowhere.invalid",)))
    assert dns.presented == [] and iss.ledger.writes == []


def test_the_timings_are_the_whole_round_and_its_dns_part():
    clock = FakeClock()
    iss, dns, _ = issuer(clock=clock, propagation=FakePropagation(clock=clock, delay=2.0))
    ca = FakeCa(clock=clock, dns=dns)
    ca.validation_delay = 3.0
    _, timings = iss.issue_all(ca, [OTHER], Deadline(clock, 600), RUN, UNTIL, None)
    assert timings == IssuanceTimings(seconds=5.0, dns_wait=2.0)


def test_every_csr_is_sent_before_any_order_is_waited_for():
    """The CA's Retry-After waits of a round's orders run side by side, not one after another."""
    iss, dns, deadline = issuer()
    ca = FakeCa(dns=dns)
    issue(iss, ca, [SITE, OTHER], deadline)
    events = [e for e in ca.journal.events() if e in ("ca.begin_finalize", "ca.finalize")]
    assert events == ["ca.begin_finalize"] * 2 + ["ca.finalize"] * 2
