"""Runs with dns-persist-01: no DNS write for a certificate whose persistent record is in place,
a clear failure (before any answer to the CA) when it is not, and `auto` falling back to DNS-01
with the reason in the report."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

from acme_flow import persist
from acme_flow.deadline import Deadline
from acme_flow.errors import DnsError
from acme_flow.models import CertificateSpec, Challenge, DeploySpec, Outcome
from acme_flow.renewal import RunOptions
from fakes import ISSUER, NOW, make_adapters, make_config, make_renewer

ACCOUNT_URL = "https://ca.test/acct/1"  # the fake CA's first registration
PERSISTENT = CertificateSpec("site", ("example.com", "*.example.com"), deploy=DeploySpec(acm_regions=("eu-west-1",)),
                             challenge=Challenge.DNS_PERSIST01)
CLASSIC = CertificateSpec("other", ("example.org",), deploy=DeploySpec(acm_regions=("eu-west-1",)))


def run(adapters, *specs, options=RunOptions()):
    renewer = make_renewer(make_config(*specs), adapters)
    return renewer.apply(renewer.plan(options), Deadline(adapters.clock, 600))


def by_name(report):
    return {r.name: r for r in report.results}


def persistent_ca(**kw):
    adapters = make_adapters(**kw)
    adapters.ca.persist_offered = True
    return adapters


def publish(adapters, spec, account_url=ACCOUNT_URL, wildcard_policy=True):
    who = persist.PersistIdentity(ISSUER, account_url, persist.Draft.D01)
    for name, wanted in persist.wanted_records(spec.domains, who).items():
        adapters.records.put_txt(name, replace(wanted, wildcard=wanted.wildcard and wildcard_policy).value(
            persist.Draft.D01), "other-ca.example; accounturi=https://other.example/acct/9")


def test_a_certificate_with_its_persistent_record_is_issued_with_no_dns_write():
    adapters = persistent_ca()
    publish(adapters, PERSISTENT)
    (result,) = run(adapters, PERSISTENT).results
    assert result.outcome is Outcome.ISSUED and result.challenge is Challenge.DNS_PERSIST01
    assert adapters.dns.presented == [] and adapters.dns.located == []
    assert adapters.state.challenges == {} and "ledger.record" not in adapters.state.journal.events()
    assert sorted(adapters.ca.persist_answered) == ["*.example.com", "example.com"]
    assert adapters.records.reads == [("_validation-persist.example.com", "TXT")], "one record, read once"
    assert result.to_dict()["challenge"] == "dns-persist-01" and result.directory == adapters.ca.directory


def test_a_missing_record_fails_the_certificate_before_the_ca_is_answered():
    adapters = persistent_ca()
    (result,) = run(adapters, PERSISTENT).results
    assert result.outcome is Outcome.FAILED
    assert "dns-persist-01 cannot be used" in result.reason and "_validation-persist.example.com" in result.reason
    assert "certrenew persist plan" in result.reason
    assert adapters.ca.answered == [], "no failed validation counts against the CA's limits"
    assert adapters.dns.presented == []


def test_a_record_for_another_account_or_without_the_wildcard_policy_is_not_used():
    adapters = persistent_ca()
    publish(adapters, PERSISTENT, account_url="https://ca.test/acct/77")
    (result,) = run(adapters, PERSISTENT).results
    assert result.outcome is Outcome.FAILED and adapters.ca.answered == []
    adapters = persistent_ca()
    publish(adapters, PERSISTENT, wildcard_policy=False)
    (result,) = run(adapters, PERSISTENT).results
    assert result.outcome is Outcome.FAILED and "wildcard" in result.reason


def test_dns_persist_01_fails_when_the_ca_does_not_offer_it():
    adapters = make_adapters()
    publish(adapters, PERSISTENT)
    (result,) = run(adapters, PERSISTENT).results
    assert result.outcome is Outcome.FAILED and "does not offer it for example.com, *.example.com" in result.reason


def test_auto_uses_the_persistent_record_when_it_is_in_place():
    adapters = persistent_ca()
    spec = replace(PERSISTENT, challenge=Challenge.AUTO)
    publish(adapters, spec)
    (result,) = run(adapters, spec).results
    assert result.outcome is Outcome.ISSUED and result.challenge is Challenge.DNS_PERSIST01
    assert adapters.dns.presented == []


def test_auto_falls_back_to_dns01_and_says_why():
    adapters = persistent_ca()
    spec = replace(PERSISTENT, challenge=Challenge.AUTO)
    (result,) = run(adapters, spec).results
    assert result.outcome is Outcome.ISSUED and result.challenge is Challenge.DNS01
    assert "auto: dns-01 (_validation-persist.example.com:" in result.reason
    assert len(adapters.dns.presented) == 1
    adapters = make_adapters()  # a CA without the challenge
    (result,) = run(adapters, spec).results
    assert result.challenge is Challenge.DNS01 and "auto: dns-01 (the CA does not offer it" in result.reason


def test_auto_falls_back_when_the_records_cannot_be_read():
    adapters = persistent_ca()
    adapters.records.read_error = DnsError("cannot list Route53 hosted zones: AccessDenied")
    spec = replace(PERSISTENT, challenge=Challenge.AUTO)
    (result,) = run(adapters, spec).results
    assert result.outcome is Outcome.ISSUED and result.challenge is Challenge.DNS01
    assert "AccessDenied" in result.reason


def test_persistent_orders_are_answered_before_the_other_orders_wait_for_dns():
    adapters = persistent_ca()
    publish(adapters, PERSISTENT)
    got = by_name(run(adapters, PERSISTENT, CLASSIC))
    assert got["site"].challenge is Challenge.DNS_PERSIST01 and got["other"].challenge is Challenge.DNS01
    events = adapters.state.journal.events()
    assert events.index("ca.answer") < events.index("dns.present")
    (published,) = adapters.dns.presented
    assert [r.name for r in published] == ["_acme-challenge.example.org"]


def test_a_persistent_certificate_needs_no_route53_zone():
    """Its records may be served by DNS that is not Route53: preflight does not look for a zone."""
    adapters = persistent_ca()
    adapters.dns.zones = ("example.org",)
    publish(adapters, PERSISTENT)
    (result,) = run(adapters, PERSISTENT).results
    assert result.outcome is Outcome.ISSUED and adapters.dns.located == []


def test_a_renewal_uses_the_same_record_again():
    adapters = persistent_ca()
    publish(adapters, PERSISTENT)
    run(adapters, PERSISTENT)
    (result,) = run(adapters, PERSISTENT, options=RunOptions(force=True)).results
    assert result.outcome is Outcome.RENEWED and result.challenge is Challenge.DNS_PERSIST01
    assert adapters.dns.presented == [] and adapters.records.writes == []


def test_a_failed_dns_round_fails_only_the_dns01_certificates():
    adapters = persistent_ca()
    publish(adapters, PERSISTENT)
    adapters.dns.present_error = DnsError("AccessDenied on route53:ChangeResourceRecordSets")
    got = by_name(run(adapters, PERSISTENT, CLASSIC))
    assert got["site"].outcome is Outcome.ISSUED and got["site"].challenge is Challenge.DNS_PERSIST01
    assert got["other"].outcome is Outcome.FAILED and "AccessDenied" in got["other"].reason


def publish_until(adapters, spec, until):
    who = persist.PersistIdentity(ISSUER, ACCOUNT_URL, persist.Draft.D01)
    for name, wanted in persist.wanted_records(spec.domains, who, persist_until=until).items():
        adapters.records.put_txt(name, wanted.value(persist.Draft.D01))


def test_a_record_ending_before_the_next_renewal_is_a_warning_in_every_run_and_a_metric_input():
    adapters = persistent_ca()
    until = NOW + dt.timedelta(days=40)  # the 90-day certificate renews after day 60
    publish_until(adapters, PERSISTENT, until)
    report = run(adapters, PERSISTENT)
    (result,) = report.results
    assert result.outcome is Outcome.ISSUED and result.persist_until == until
    assert adapters.state.current("site").persist_until == until
    (warning,) = report.warnings
    assert warning.startswith("site: the dns-persist-01 record it was issued through ends 2027-01-01")
    assert "certrenew persist plan" in warning
    later = run(adapters, PERSISTENT)  # nothing due: still said, while there is time
    assert later.results[0].outcome is Outcome.SKIPPED and later.warnings == report.warnings
    assert later.to_dict()["certificates"][0]["persist_until"] == until.isoformat().replace("+00:00", "Z")


def test_a_record_that_outlives_the_next_renewal_or_has_no_end_says_nothing():
    adapters = persistent_ca()
    publish_until(adapters, PERSISTENT, NOW + dt.timedelta(days=400))
    report = run(adapters, PERSISTENT)
    assert report.warnings == () and report.results[0].persist_until == NOW + dt.timedelta(days=400)
    adapters = persistent_ca()
    publish(adapters, PERSISTENT)
    report = run(adapters, PERSISTENT)
    assert report.warnings == () and report.results[0].persist_until is None


def test_a_record_ending_soon_makes_the_certificate_expiring_in_notifications():
    from acme_flow.adapters.notify import expiring

    adapters = persistent_ca()
    publish_until(adapters, PERSISTENT, NOW + dt.timedelta(days=10))
    report = run(adapters, PERSISTENT)
    assert [r.name for r in expiring(report, 14)] == ["site"]
    assert expiring(report, 7) == []
