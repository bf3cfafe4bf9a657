"""A run that orders first reads the CAA sets its names are under, as the CA will: a set that
would stop the configured CA (or our account, or the method) is a warning of the run, before any
order fails on it; the run goes on (DNS may be wrong only for the moment, or the CA lenient)."""
from __future__ import annotations

from dataclasses import replace

from acme_flow.deadline import Deadline
from acme_flow.errors import DnsError
from acme_flow.models import AccountState, CertificateSpec, Challenge, DeploySpec, Outcome
from fakes import DIRECTORY, ISSUER, make_adapters, make_config, make_renewer

SITE = CertificateSpec("site", ("www.example.com",), deploy=DeploySpec(acm_regions=("eu-west-1",)))
ACCOUNT = "https://ca.test/acct/1"


class FakeCaaLookup:
    def __init__(self, sets=None, error=None):
        self.sets, self.error, self.asked = dict(sets or {}), error, []

    def caa(self, name):
        self.asked.append(name)
        if self.error:
            raise self.error
        return self.sets.get(name)


def run(lookup, *specs, registered=True):
    adapters = replace(make_adapters(), caa=lookup)
    if registered:  # the account exists from an earlier run (the check never registers one)
        adapters.state.save_account(AccountState(DIRECTORY, ACCOUNT, "key", None))
        adapters.ca.registered.append(ACCOUNT)
    renewer = make_renewer(make_config(*specs), adapters)
    return renewer.apply(renewer.plan(), Deadline(adapters.clock, 600))


def test_a_caa_set_of_another_ca_is_a_warning_before_the_order():
    lookup = FakeCaaLookup({"example.com": ['0 issue "sectigo.com"']})
    report = run(lookup, SITE)
    (warning,) = report.warnings
    assert warning.startswith(f"site: CAA would stop {ISSUER} issuing www.example.com by dns-01")
    assert "sectigo.com" in warning and "certrenew caa plan" in warning
    assert report.results[0].outcome is Outcome.ISSUED, "a warning, not a failure"
    assert lookup.asked[:2] == ["www.example.com", "example.com"], "climbing as a CA does"


def test_caa_bound_to_another_account_or_method_is_named():
    other = FakeCaaLookup({"example.com": [f'0 issue "{ISSUER}; accounturi=https://ca.test/acct/99"']})
    (warning,) = run(other, SITE).warnings
    assert "accounturi" in warning
    method = FakeCaaLookup({"example.com": [f'0 issue "{ISSUER}; accounturi={ACCOUNT}; validationmethods=http-01"']})
    (warning,) = run(method, SITE).warnings
    assert "validationmethods" in warning


def test_caa_for_our_account_and_method_or_none_at_all_says_nothing():
    ours = FakeCaaLookup({"example.com": [f'0 issue "{ISSUER}; accounturi={ACCOUNT}; validationmethods=dns-01"']})
    assert run(ours, SITE).warnings == ()
    assert run(FakeCaaLookup(), SITE).warnings == ()


def test_auto_is_blocked_only_when_neither_method_may_be_used():
    spec = replace(SITE, challenge=Challenge.AUTO)
    persist_only = FakeCaaLookup({"example.com": [f'0 issue "{ISSUER}; validationmethods=dns-persist-01"']})
    assert run(persist_only, spec).warnings == ()


def test_a_caa_lookup_that_fails_is_a_warning_too_as_a_ca_would_refuse():
    """RFC 8659: a CA that cannot read the CAA set must not issue."""
    report = run(FakeCaaLookup(error=DnsError("SERVFAIL for example.com")), SITE)
    (warning,) = report.warnings
    assert "SERVFAIL" in warning and report.ok


def test_before_the_account_exists_caa_naming_an_account_blocks_it_and_nothing_is_written_first():
    lookup = FakeCaaLookup({"example.com": [f'0 issue "{ISSUER}; accounturi={ACCOUNT}"']})
    adapters = replace(make_adapters(), caa=lookup)
    renewer = make_renewer(make_config(SITE), adapters)
    plan = renewer.plan()
    writes = []
    original = adapters.state.save_account
    adapters.state.save_account = lambda account: (writes.append(adapters.state.journal.events()[:]), original(account))[1]
    report = renewer.apply(plan, Deadline(adapters.clock, 600))
    (warning,) = report.warnings
    assert "accounturi" in warning
    assert "lease.acquire" in writes[0], "the account is registered after the leases, as before"
