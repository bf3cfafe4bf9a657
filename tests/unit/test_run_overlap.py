"""What a run does at the same time (issue 11): the round's TXT values are removed while the
certificates are stored and deployed, each lease is given back once its certificate is settled,
and the CAA check goes on while the leases are taken; never at the cost of an order."""
import threading
from dataclasses import replace

from acme_flow.deadline import Deadline
from acme_flow.issuance import Issuer
from acme_flow.models import CertificateSpec, Outcome
from acme_flow.renewal import RunOptions
from fakes import NOW, FakeCa, FakeClock, FakeDns, FakePropagation, FakeState, make_adapters, make_config, make_renewer

SITE = CertificateSpec("site", ("example.com",))
OTHER = CertificateSpec("other", ("example.org",))
WAIT = 10  # seconds a test waits for the other thread before it calls the overlap missing


def run(adapters, *specs, **kw):
    renewer = make_renewer(make_config(*specs), adapters, **kw)
    return renewer.apply(renewer.plan(RunOptions()), Deadline(adapters.clock, 600))


def test_certificates_are_stored_while_the_txt_values_are_removed_and_reported_after():
    adapters = make_adapters()
    stored, seen = threading.Event(), {}
    save, remove, notify = adapters.state.save_certificate, adapters.dns.remove, adapters.notifier.notify

    def save_and_signal(certificate):
        saved = save(certificate)
        stored.set()
        return saved

    def remove_once_stored(records):
        seen["stored during removal"] = stored.wait(WAIT)
        remove(records)

    def notify_and_look(report):
        seen["published at report"] = set(adapters.dns.published)
        notify(report)
    adapters.state.save_certificate = save_and_signal
    adapters.dns.remove = remove_once_stored
    adapters.notifier.notify = notify_and_look
    report = run(adapters, SITE)
    assert [r.outcome for r in report.results] == [Outcome.ISSUED]
    assert seen == {"stored during removal": True, "published at report": set()}
    assert adapters.state.challenges == {}, "the ledger is forgotten once the values are removed"


def test_a_failed_removal_during_settling_leaves_the_ledger_and_the_outcome():
    adapters = make_adapters()

    def refuse(records):
        raise RuntimeError("Route53 is down")
    adapters.dns.remove = refuse
    report = run(adapters, SITE)
    assert [r.outcome for r in report.results] == [Outcome.ISSUED]
    assert len(adapters.state.challenges) == 1, "kept for a later run's sweep"


def test_each_lease_is_given_back_once_its_certificate_is_settled():
    adapters = make_adapters()
    run(adapters, SITE, OTHER, workers=1)  # settled one after the other
    events = [(e, d) for e, d in adapters.state.journal if e in ("state.version", "lease.release")]
    first = events[0][1]
    assert events[:2] == [("state.version", first), ("lease.release", first)], events
    assert sorted(adapters.state.released) == ["other", "site"]


def test_the_caa_lookups_go_on_while_the_run_orders_and_their_warnings_reach_the_report():
    lookup = SlowCaaLookup()
    adapters = replace(make_adapters(), caa=lookup)
    ordered = threading.Event()
    new_order = adapters.ca.new_order

    def order_and_signal(*args):
        got = new_order(*args)
        ordered.set()
        return got
    adapters.ca.new_order = order_and_signal
    lookup.waits_for = ordered
    report = run(adapters, SITE)
    assert lookup.waited is True, "the order went out while the lookup was still waiting"
    assert [r.outcome for r in report.results] == [Outcome.ISSUED]
    (warning,) = report.warnings
    assert warning.startswith("site: CAA would stop ca.test issuing example.com") and "sectigo.com" in warning


class SlowCaaLookup:
    """CAA of example.com names another CA; the first lookup waits for `waits_for`."""

    def __init__(self):
        self.waits_for, self.waited = None, None

    def caa(self, name):
        if self.waited is None:
            self.waited = self.waits_for.wait(WAIT)
        return ['0 issue "sectigo.com"'] if name == "example.com" else None


def test_a_round_waits_for_the_removal_of_the_round_before_it():
    """A fallback CA's round publishes values under the same names: the first round's removal
    (a read-modify-write of the same TXT sets) ends before the second round publishes."""
    clock, dns = FakeClock(), FakeDns()
    issuer = Issuer(dns, FakePropagation(dns), FakeState(), clock, workers=2)
    deadline, until = Deadline(clock, 60), NOW
    release, order = threading.Event(), []
    remove, present = dns.remove, dns.present

    def slow_remove(records):
        release.wait(WAIT)
        order.append("removed")
        remove(records)

    def present_and_note(records, deadline):
        order.append("published")
        present(records, deadline)
    dns.remove, dns.present = slow_remove, present_and_note
    issuer.issue_all(FakeCa(dns=dns), [OTHER], deadline, "run-1", until)
    assert order == ["published"], "the removal goes on after the round returns"
    threading.Timer(0.2, release.set).start()
    issuer.issue_all(FakeCa(dns=dns), [OTHER], deadline, "run-1", until)
    issuer.cleaned()
    assert order == ["published", "removed", "published", "removed"]
    assert dns.published == set()
