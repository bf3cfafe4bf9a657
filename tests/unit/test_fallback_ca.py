"""CA fallback (`acme.fallback`): a certificate the primary CA cannot issue (down, failing,
rate-limiting past the deadline) is issued by the next CA in the same run; the certificate a
fallback issued keeps its CA for ARI, and its next renewal goes back to the primary."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

from acme_flow.deadline import Deadline
from acme_flow.errors import AcmeTransientProblem, ConfigError, Problem
from acme_flow.models import AcmeSettings, CertificateSpec, Config, DeploySpec, Outcome
from acme_flow.renewal import RunOptions
from fakes import DIRECTORY, FakeCa, make_adapters, make_renewer

FALLBACK = "https://fallback.test/dir"
SITE = CertificateSpec("site", ("example.com",), deploy=DeploySpec(acm_regions=("eu-west-1",)))
OTHER = CertificateSpec("other", ("example.org",), deploy=DeploySpec(acm_regions=("eu-west-1",)))
DOWN = AcmeTransientProblem("urn:ietf:params:acme:error:serverInternal", "creating the order: HTTP 503 from the CA",
                            status=503)


def config(*specs):
    return Config(AcmeSettings(DIRECTORY, fallback=(AcmeSettings(FALLBACK),)), tuple(specs), source="c.yaml")


def adapters_with_fallback():
    adapters = make_adapters()
    fallback = FakeCa(clock=adapters.clock, dns=adapters.dns, directory=FALLBACK)
    adapters = replace(adapters, fallback_cas=(fallback,))
    return adapters, adapters.ca, fallback


def run(adapters, *specs, options=RunOptions()):
    renewer = make_renewer(config(*specs), adapters)
    return renewer.apply(renewer.plan(options), Deadline(adapters.clock, 600))


def by_name(report):
    return {r.name: r for r in report.results}


def test_a_certificate_the_primary_cannot_issue_comes_from_the_fallback_in_the_same_run():
    adapters, primary, fallback = adapters_with_fallback()
    primary.order_error = DOWN
    report = run(adapters, SITE)
    (result,) = report.results
    assert report.ok and result.outcome is Outcome.ISSUED
    assert result.directory == FALLBACK and f"issued by fallback CA {FALLBACK}" in result.reason
    assert "HTTP 503" in result.reason
    assert adapters.state.current("site").directory == FALLBACK
    assert primary.refused and len(fallback.ordered) == 1 and fallback.registered, "its own account"


def test_the_next_due_renewal_goes_back_to_the_primary_without_replaces():
    adapters, primary, fallback = adapters_with_fallback()
    primary.order_error = DOWN
    run(adapters, SITE)
    primary.order_error = None
    (result,) = run(adapters, SITE, options=RunOptions(force=True)).results
    assert result.outcome is Outcome.RENEWED and result.directory == DIRECTORY
    assert primary.ordered[-1]["replaces"] is None, "replaces names a certificate of another CA"
    assert len(fallback.ordered) == 1


def test_a_certificate_from_the_fallback_is_kept_until_due_and_asks_that_ca_for_ari():
    adapters, primary, fallback = adapters_with_fallback()
    primary.order_error = DOWN
    run(adapters, SITE)
    primary.order_error = None
    adapters.clock.advance(dt.timedelta(days=7))  # past the stored ARI Retry-After
    asked = len(fallback.ari_asked)
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.SKIPPED and "CA changed" not in result.reason
    assert len(fallback.ari_asked) == asked + 1 and not primary.ordered


def test_only_what_the_primary_could_not_issue_moves_and_a_validation_failure_never_does():
    adapters, primary, fallback = adapters_with_fallback()
    primary.fail_validation["example.org"] = "no TXT record found"
    got = by_name(run(adapters, SITE, OTHER))
    assert got["site"].outcome is Outcome.ISSUED and got["site"].directory == DIRECTORY
    assert got["other"].outcome is Outcome.FAILED and fallback.ordered == []


def test_when_every_ca_fails_the_reason_names_each():
    adapters, primary, fallback = adapters_with_fallback()
    primary.order_error = DOWN
    fallback.order_error = AcmeTransientProblem("urn:ietf:params:acme:error:rateLimited", "too many orders")
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.FAILED
    assert "HTTP 503" in result.reason and f"then fallback CA {FALLBACK}" in result.reason
    assert "too many orders" in result.reason


def test_a_fallback_that_cannot_be_used_is_a_warning_of_every_run_that_orders():
    adapters, primary, fallback = adapters_with_fallback()
    fallback.registration_error = ConfigError([Problem("acme.fallback[0].eab.hmac_key", "ssm:/gts not found")])
    report = run(adapters, SITE)
    assert report.ok and report.results[0].directory == DIRECTORY
    (warning,) = report.warnings
    assert f"fallback CA {FALLBACK} cannot be used" in warning and "ssm:/gts not found" in warning
    assert report.to_dict()["warnings"] == [warning]


def test_a_validation_failure_at_the_fallback_is_reported_after_the_primary_error():
    adapters, primary, fallback = adapters_with_fallback()
    primary.order_error = DOWN
    fallback.fail_validation["example.com"] = "CAA forbids fallback.test"
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.FAILED and "CAA forbids" in result.reason and "HTTP 503" in result.reason


def test_status_says_which_ca_issued_each_certificate():
    from acme_flow.report import render_status, status_rows

    adapters, primary, fallback = adapters_with_fallback()
    primary.order_error = DOWN
    run(adapters, SITE)
    renewer = make_renewer(config(SITE), adapters)
    rows = status_rows(list(renewer.plan().rows), adapters.clock.now())
    assert rows[0]["directory"] == FALLBACK
    assert f"site: {FALLBACK}" in render_status(rows)
