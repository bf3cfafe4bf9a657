"""Every rule of a run, against the real Renewer over the in-memory fakes (tests/fakes.py).

Each test builds the adapters, runs `plan` then `apply` (one or several runs, the clock moved
between them) and asserts what the fakes saw: orders, state writes, leases, imports, TXT values.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from acme_flow import pki
from acme_flow.deadline import Deadline
from acme_flow.errors import ConfigError, DnsError, InputError, StateError
from acme_flow.models import (CertificateSpec, Deployment, DeploySpec, DnsSpec, IssuanceTimings, KeyType, Outcome,
                              Placement, S3Export, StoredCertificate)
from acme_flow.ports import TxtRecord
from acme_flow.renewal import RunOptions
from certfactory import MiniCA
from fakes import DIRECTORY, DIST, NOW, FakeImporter, make_adapters, make_config, make_renewer

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
SITE = CertificateSpec("site", ("example.com", "*.example.com"),
                       deploy=DeploySpec(acm_regions=("eu-west-1",), cloudfront=(DIST,),
                                         s3=S3Export("exports", "site/")))
OTHER = CertificateSpec("other", ("example.org",), deploy=DeploySpec(acm_regions=("eu-west-1",)))


def run(adapters, *specs, options=RunOptions(), **kw):
    renewer = make_renewer(make_config(*specs), adapters, **kw)
    return renewer.apply(renewer.plan(options), Deadline(adapters.clock, 600))


def by_name(report):
    return {r.name: r for r in report.results}


def acm_arn(adapters, name, region):
    return adapters.state.current(name).deployment.acm_arn(region)


def foreign_stored(spec: CertificateSpec, issued: dt.datetime = NOW - HOUR) -> StoredCertificate:
    """What another run stored and deployed everywhere: a real leaf of another CA."""
    material = MiniCA().leaf(spec.domains, spec.key, not_before=issued)
    info = pki.describe(material.cert_pem)
    placements = tuple(Placement(t, info.serial, f"arn:aws:acm:{t.id}:1:certificate/x" if t.kind == "acm" else None)
                       for t in spec.deploy.targets())
    return StoredCertificate(spec.name, f"other-{info.serial[:8]}", spec.domains, spec.key, spec.profile, DIRECTORY,
                             info, material, issued, Deployment(placements))


# ---- first issue, and a second run that has nothing to do --------------------------------------


def test_a_first_issue_deploys_to_every_target_and_reports_them():
    adapters = make_adapters()
    report = run(adapters, SITE)
    (result,) = report.results
    assert result.outcome is Outcome.ISSUED and result.reason == "no certificate yet"
    stored = adapters.state.current("site")
    assert result.serial == stored.info.serial and stored.damaged is None
    importer, cloudfront = adapters.importer, adapters.cloudfront
    assert sorted(region for region, _, _, _ in importer.imports) == ["eu-west-1", "us-east-1"], \
        "the configured region and the us-east-1 copy CloudFront implies"
    assert all(serial == result.serial for _, _, _, serial in importer.imports)
    us_east = acm_arn(adapters, "site", "us-east-1")
    assert cloudfront.viewer[DIST] == us_east, "CloudFront serves the us-east-1 copy"
    assert adapters.exporter.exports == [("exports", "site/", result.serial)]
    assert set(result.targets) == {f"acm:{acm_arn(adapters, 'site', 'eu-west-1')}", f"acm:{us_east}",
                                   f"cloudfront:{DIST}", "s3://exports/site/"}
    assert adapters.notifier.reports == [report]
    assert adapters.state.holder("site") is None, "the lease is given back"


def test_a_second_run_is_a_no_op():
    adapters = make_adapters()
    run(adapters, SITE)
    ca, state, importer = adapters.ca, adapters.state, adapters.importer
    before = (len(ca.ordered), list(state.writes), len(importer.imports), len(adapters.cloudfront.attached),
              len(adapters.exporter.exports), len(ca.ari_asked))
    adapters.clock.advance(HOUR)
    report = run(adapters, SITE)
    assert [r.outcome for r in report.results] == [Outcome.SKIPPED]
    assert (len(ca.ordered), state.writes, len(importer.imports), len(adapters.cloudfront.attached),
            len(adapters.exporter.exports), len(ca.ari_asked)) == before, \
        "no order, no write (not even a lease), no import, no ARI question before Retry-After"
    assert report.issuance is None


def test_a_certificate_not_yet_on_a_new_target_is_deployed_without_a_new_order():
    adapters = make_adapters()
    first = run(adapters, SITE)
    wider = replace(SITE, deploy=replace(SITE.deploy, acm_regions=("eu-west-1", "ap-south-1")))
    (result,) = run(adapters, wider).results
    assert result.outcome is Outcome.DEPLOYED and "not deployed to acm:ap-south-1" in result.reason
    assert len(adapters.ca.ordered) == 1
    assert [(region, serial) for region, _, _, serial in adapters.importer.imports[-1:]] == \
        [("ap-south-1", first.results[0].serial)]


# ---- a key type change goes to new ARNs and retires the old ones --------------------------------


def test_a_key_type_change_reissues_and_retires_the_old_arns():
    adapters = make_adapters()
    run(adapters, SITE)
    old = {r: acm_arn(adapters, "site", r) for r in ("eu-west-1", "us-east-1")}
    (result,) = run(adapters, replace(SITE, key=KeyType.RSA_2048)).results
    assert result.outcome is Outcome.RENEWED and "key type changed: ec-p256 -> rsa-2048" in result.reason
    new = {r: acm_arn(adapters, "site", r) for r in old}
    assert all(new[r] != old[r] for r in old), "ACM cannot re-import another key type into the same ARN"
    assert adapters.cloudfront.viewer[DIST] == new["us-east-1"]
    assert sorted(adapters.importer.deleted) == sorted(old.values())
    assert adapters.state.current("site").deployment.retiring == ()
    assert f"deleted {old['us-east-1']}" in result.reason


def test_an_old_arn_still_in_use_stays_on_the_retire_list_for_a_later_run():
    adapters = make_adapters()
    run(adapters, SITE)
    old = acm_arn(adapters, "site", "us-east-1")
    adapters.importer.in_use.add(old)  # CloudFront lets go of it a while after the update
    rsa = replace(SITE, key=KeyType.RSA_2048)
    (result,) = run(adapters, rsa).results
    assert result.outcome is Outcome.RENEWED and f"kept {old} for a later run" in result.reason
    assert [(r.region, r.arn, r.since) for r in adapters.state.current("site").deployment.retiring] == \
        [("us-east-1", old, NOW)]
    assert old not in adapters.importer.deleted
    adapters.importer.in_use.clear()
    adapters.clock.advance(HOUR)
    orders = len(adapters.ca.ordered)
    (later,) = run(adapters, rsa).results
    assert later.outcome is Outcome.SKIPPED and f"deleted {old}" in later.reason, "retired with nothing due"
    assert old in adapters.importer.deleted and adapters.state.current("site").deployment.retiring == ()
    assert len(adapters.ca.ordered) == orders


def test_a_same_key_renewal_reimports_into_the_same_arns():
    adapters = make_adapters()
    run(adapters, SITE)
    arns = {r: acm_arn(adapters, "site", r) for r in ("eu-west-1", "us-east-1")}
    (result,) = run(adapters, SITE, options=RunOptions(force=True)).results
    assert result.outcome is Outcome.RENEWED and result.reason.startswith("forced")
    assert {r: acm_arn(adapters, "site", r) for r in arns} == arns
    assert adapters.importer.deleted == [] and adapters.state.current("site").deployment.retiring == ()


# ---- leases -------------------------------------------------------------------------------------


def test_a_lease_held_by_another_run_skips_that_certificate_only():
    adapters = make_adapters()
    adapters.state.hold("site", "another-run", NOW + HOUR)
    report = by_name(run(adapters, SITE, OTHER))
    assert report["site"].outcome is Outcome.SKIPPED and "locked" in report["site"].reason
    assert report["other"].outcome is Outcome.ISSUED
    assert [o["domains"] for o in adapters.ca.ordered] == [OTHER.domains]
    assert adapters.state.holder("site") == "another-run", "another run's lease is left alone"
    assert adapters.state.current("site") is None


def test_an_expired_lease_is_taken_over():
    adapters = make_adapters()
    adapters.state.hold("site", "a-dead-run", NOW - DAY)
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.ISSUED and adapters.state.holder("site") is None


def test_a_certificate_another_run_renewed_while_this_one_waited_is_not_issued_again():
    adapters = make_adapters()
    theirs = foreign_stored(SITE)
    adapters.state.hooks["acquire"] = lambda name: adapters.state.put(theirs)  # just before our lease
    (result,) = run(adapters, SITE).results
    assert adapters.ca.ordered == [], "rechecked after the lease: nothing is due any more"
    assert result.outcome is Outcome.SKIPPED and result.serial == theirs.info.serial
    assert adapters.state.current("site").info.serial == theirs.info.serial


def test_a_lease_lasts_the_run_s_deadline_and_a_margin_then_is_given_back():
    adapters = make_adapters()
    seen = {}
    adapters.state.hooks["release"] = lambda name: seen.update(lease=adapters.state.leases[name])
    run(adapters, SITE)  # a 600 s deadline
    holder, until = seen["lease"]
    assert holder and until == NOW + dt.timedelta(seconds=600) + dt.timedelta(minutes=5)
    assert adapters.state.leases["site"] == (None, NOW)


def test_leases_are_released_when_every_order_fails():
    adapters = make_adapters()
    adapters.dns.present_error = DnsError("Route53 said Throttling")
    report = by_name(run(adapters, SITE, OTHER))
    assert {n: r.outcome for n, r in report.items()} == {"site": Outcome.FAILED, "other": Outcome.FAILED}
    assert "Throttling" in report["site"].reason
    assert sorted(adapters.state.released) == ["other", "site"]
    assert adapters.state.holder("site") is None and adapters.state.holder("other") is None


def test_leases_are_released_when_a_step_raises_unexpectedly():
    adapters = make_adapters()
    adapters.dns.present_error = RuntimeError("a bug")
    renewer = make_renewer(make_config(SITE, OTHER), adapters)
    with pytest.raises(RuntimeError, match="a bug"):
        renewer.apply(renewer.plan(RunOptions()), Deadline(adapters.clock, 600))
    assert sorted(adapters.state.released) == ["other", "site"]
    assert adapters.state.holder("site") is None and adapters.state.holder("other") is None


def test_an_unexpected_error_while_deploying_fails_that_certificate_and_releases_its_lease():
    adapters = make_adapters()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the importer")
    adapters.importer.import_certificate = broken
    report = by_name(run(adapters, SITE, replace(OTHER, deploy=DeploySpec())))
    assert report["site"].outcome is Outcome.FAILED and "RuntimeError: a bug in the importer" in report["site"].reason
    assert report["other"].outcome is Outcome.ISSUED
    assert sorted(adapters.state.released) == ["other", "site"]


# ---- stored state that cannot be used -----------------------------------------------------------


@pytest.mark.parametrize("damage", ["key", "cert", "missing"])
def test_damaged_material_is_reissued_and_never_deployed(damage):
    adapters = make_adapters()
    first = run(adapters, SITE).results[0]
    adapters.state.damage("site", damage)
    wider = replace(SITE, deploy=replace(SITE.deploy, acm_regions=("eu-west-1", "ap-south-1")))
    imports = len(adapters.importer.imports)
    (result,) = run(adapters, wider).results
    assert result.outcome is Outcome.RENEWED and "damaged" in result.reason
    assert result.serial != first.serial
    deployed = {serial for _, _, _, serial in adapters.importer.imports[imports:]}
    assert deployed == {result.serial}, "the damaged certificate is never deployed, not even to the new region"
    assert adapters.state.current("site").damaged is None


def test_unreadable_state_is_reissued():
    adapters = make_adapters()
    adapters.state.put(foreign_stored(SITE))
    adapters.state.unreadable["site"] = "not JSON (Expecting value: line 1 column 1)"
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.ISSUED and "stored state unreadable" in result.reason
    assert adapters.state.current("site").info.serial == result.serial
    assert len(adapters.ca.ordered) == 1


def test_a_dry_run_reports_unreadable_state_and_writes_nothing():
    adapters = make_adapters()
    adapters.state.put(foreign_stored(SITE))
    adapters.state.unreadable["site"] = "not JSON"
    report = run(adapters, SITE, options=RunOptions(dry_run=True))
    assert report.dry_run and report.results[0].outcome is Outcome.PLANNED
    assert "stored state unreadable" in report.results[0].reason
    assert adapters.state.writes == [] and adapters.ca.ordered == []


# ---- preflight: a bad target fails before anything is written ----------------------------------


BAD_TARGETS = {
    "unknown distribution": (replace(SITE, deploy=replace(SITE.deploy, cloudfront=("EUNKNOWN1",))), {},
                             "cloudfront:EUNKNOWN1: no such distribution"),
    "disabled region": (replace(SITE, deploy=replace(SITE.deploy, acm_regions=("ap-east-1",))), {},
                        "acm:ap-east-1: the AWS account has not enabled the region"),
    "zone not found": (replace(SITE, domains=("example.com", "www.nowhere.test")), {},
                       "no Route53 hosted zone found for _acme-challenge.www.nowhere.test"),
    "missing export bucket": (SITE, {"exporter_missing": "exports"}, "s3://exports: no such export bucket"),
}


@pytest.mark.parametrize("case", BAD_TARGETS, ids=list(BAD_TARGETS))
def test_a_bad_target_fails_in_preflight_with_nothing_written(case):
    spec, setup, message = BAD_TARGETS[case]
    adapters = make_adapters(importer=FakeImporter(disabled={"ap-east-1"}))
    adapters.exporter.missing_buckets.add(setup.get("exporter_missing", "-"))
    report = run(adapters, spec)
    (result,) = report.results
    assert result.outcome is Outcome.FAILED and message in result.reason
    assert adapters.ca.ordered == [], "no order"
    assert adapters.state.writes == [], "no lease, no ledger, no account, no certificate written"
    assert adapters.importer.imports == [] and adapters.cloudfront.attached == [] and adapters.exporter.exports == []
    assert adapters.dns.presented == []
    assert adapters.notifier.reports == [report] and not report.ok


def test_a_bad_target_of_one_certificate_does_not_stop_the_others():
    adapters = make_adapters()
    bad = replace(OTHER, deploy=DeploySpec(cloudfront=("EUNKNOWN1",)))
    report = by_name(run(adapters, SITE, bad))
    assert report["other"].outcome is Outcome.FAILED and report["site"].outcome is Outcome.ISSUED
    assert [o["domains"] for o in adapters.ca.ordered] == [SITE.domains]
    assert "other" not in adapters.state.acquired and adapters.state.current("other") is None


def test_a_bad_target_of_a_deploy_only_certificate_fails_before_any_import():
    adapters = make_adapters()
    run(adapters, SITE)
    imports = len(adapters.importer.imports)
    bad = replace(SITE, deploy=replace(SITE.deploy, acm_regions=("eu-west-1", "ap-east-1")))
    adapters.importer.disabled.add("ap-east-1")
    (result,) = run(adapters, bad).results
    assert result.outcome is Outcome.FAILED and "ap-east-1" in result.reason
    assert len(adapters.importer.imports) == imports and adapters.state.acquired == ["site"]


def test_a_profile_the_ca_does_not_offer_fails_the_plan():
    adapters = make_adapters()
    adapters.ca.offered_profiles = {"classic": "the default"}
    renewer = make_renewer(make_config(replace(SITE, profile="shortlived")), adapters)
    with pytest.raises(ConfigError, match="'shortlived' is not offered"):
        renewer.plan(RunOptions())
    assert adapters.state.writes == [] and adapters.ca.ordered == []


# ---- one certificate's failure never stops the others ------------------------------------------


def test_a_failed_validation_fails_only_its_certificate():
    adapters = make_adapters()
    adapters.ca.fail_validation["example.org"] = "no TXT record found"
    report = by_name(run(adapters, SITE, OTHER))
    assert report["other"].outcome is Outcome.FAILED
    assert "DNS-01 validation failed for example.org: no TXT record found" in report["other"].reason
    assert report["site"].outcome is Outcome.ISSUED
    assert adapters.state.current("other") is None and adapters.state.current("site") is not None
    assert len(adapters.dns.presented) == 1, "one DNS round for every order"
    assert adapters.dns.published == set(), "every TXT value removed, the failed one's too"
    assert sorted(adapters.state.released) == ["other", "site"]


def test_a_failure_is_retried_by_the_next_run():
    adapters = make_adapters()
    adapters.ca.fail_validation["example.org"] = "no TXT record found"
    run(adapters, OTHER)
    adapters.ca.fail_validation.clear()
    (result,) = run(adapters, OTHER).results
    assert result.outcome is Outcome.ISSUED


# ---- dry run ------------------------------------------------------------------------------------


def test_a_dry_run_changes_nothing_and_says_what_would_be_done():
    adapters = make_adapters()
    run(adapters, OTHER)
    writes = list(adapters.state.writes)
    report = run(adapters, SITE, OTHER, options=RunOptions(dry_run=True))
    assert report.dry_run
    got = by_name(report)
    assert got["site"].outcome is Outcome.PLANNED and got["site"].reason == "would issue: no certificate yet"
    assert got["other"].outcome is Outcome.SKIPPED
    assert adapters.state.writes == writes and len(adapters.ca.ordered) == 1
    assert len(adapters.importer.imports) == 1 and adapters.notifier.reports[-1] is not report


# ---- ARI ----------------------------------------------------------------------------------------


def test_the_ari_window_is_not_asked_for_again_before_retry_after():
    adapters = make_adapters()
    adapters.ca.retry_after = 6 * 3600
    run(adapters, SITE)
    stored = adapters.state.current("site")
    assert stored.window is not None and stored.window.next_check == NOW + 6 * HOUR
    asked = len(adapters.ca.ari_asked)
    adapters.clock.advance(5 * HOUR)
    run(adapters, SITE)
    assert len(adapters.ca.ari_asked) == asked, "not before Retry-After"
    adapters.clock.advance(2 * HOUR)
    run(adapters, SITE)
    assert len(adapters.ca.ari_asked) == asked + 1


def test_a_retry_after_reaching_past_the_next_scheduled_run_is_kept():
    adapters = make_adapters()
    run(adapters, SITE)
    adapters.ca.retry_after = 10 * 24 * 3600  # the CA asks not to be asked again for 10 days
    adapters.clock.advance(7 * HOUR)
    run(adapters, SITE, check_interval=dt.timedelta(days=7))
    assert adapters.state.current("site").window.next_check == NOW + 7 * HOUR + 10 * DAY
    asked = len(adapters.ca.ari_asked)
    adapters.clock.advance(7 * DAY)
    run(adapters, SITE, check_interval=dt.timedelta(days=7))
    assert len(adapters.ca.ari_asked) == asked, "the next weekly run honours it"


def test_an_unchanged_window_with_a_short_retry_after_is_not_written_back():
    """A weekly run asks about every certificate; when the CA's window is the same and its
    Retry-After ends before the next scheduled run (which would ask anyway), nothing is written."""
    adapters = make_adapters()
    run(adapters, SITE)
    writes, asked = list(adapters.state.writes), len(adapters.ca.ari_asked)
    adapters.clock.advance(7 * DAY)
    (result,) = run(adapters, SITE, check_interval=dt.timedelta(days=7)).results
    assert result.outcome is Outcome.SKIPPED and len(adapters.ca.ari_asked) == asked + 1
    assert adapters.state.writes == writes


def test_a_moved_window_is_written_back_whatever_its_retry_after():
    adapters = make_adapters()
    run(adapters, SITE)
    adapters.ca.window = (NOW + 40 * DAY, NOW + 42 * DAY)
    adapters.clock.advance(7 * HOUR)
    (result,) = run(adapters, SITE, check_interval=dt.timedelta(days=7)).results
    assert result.outcome is Outcome.SKIPPED
    assert adapters.state.current("site").window.start == NOW + 40 * DAY


def test_a_window_that_opened_renews_and_sends_replaces():
    adapters = make_adapters()
    run(adapters, SITE)
    old = adapters.state.current("site")
    adapters.ca.window = (NOW + DAY, NOW + 2 * DAY)  # the CA moves the window (e.g. a revocation to come)
    adapters.clock.advance(7 * HOUR)  # past Retry-After: asked again
    (result,) = run(adapters, SITE, check_interval=dt.timedelta(days=7)).results
    cert_id = pki.ari_cert_id(old.material.cert_pem)
    assert result.outcome is Outcome.RENEWED and f"replaces {cert_id}" in result.reason
    assert adapters.ca.ordered[-1]["replaces"] == cert_id
    assert adapters.state.current("site").replaced == cert_id


def test_replaces_is_not_sent_for_a_certificate_of_another_ca():
    adapters = make_adapters()
    adapters.state.put(replace(foreign_stored(SITE), directory="https://other.test/dir"))
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.RENEWED and "CA changed" in result.reason
    assert adapters.ca.ordered[-1]["replaces"] is None


# ---- pipelining ---------------------------------------------------------------------------------


def test_no_ari_request_goes_to_the_ca_while_the_rounds_orders_are_in_flight():
    """Pebble 2.10 deadlocks when a renewalInfo lookup meets an order being finalized and polled
    (seen in CI when each certificate was stored, and its first ARI window fetched, as soon as it
    was issued): the new certificates' windows are asked once every order of the round is done."""
    adapters = make_adapters()
    report = run(adapters, SITE, OTHER, workers=1)
    assert {r.outcome for r in report.results} == {Outcome.ISSUED}
    events = [e for e in adapters.state.journal.events() if e in ("ca.finalize", "ca.ari")]
    assert events == ["ca.finalize", "ca.finalize", "ca.ari", "ca.ari"]


def test_a_certificate_whose_settling_fails_does_not_stop_the_others_being_issued():
    adapters = make_adapters()
    adapters.importer.fail_import["ap-south-1"] = "AccessDenied"
    got = by_name(run(adapters, SITE, replace(OTHER, deploy=DeploySpec(acm_regions=("ap-south-1",))), workers=1))
    assert got["other"].outcome is Outcome.FAILED and got["site"].outcome is Outcome.ISSUED
    assert len(adapters.ca.issued) == 2


# ---- the challenge ledger -----------------------------------------------------------------------


def test_the_ledger_is_written_before_the_txt_values_and_forgotten_after_cleanup():
    adapters = make_adapters()
    run(adapters, SITE)
    journal = adapters.state.journal
    assert journal.first("ledger.record") < journal.first("dns.present")
    assert journal.first("dns.remove") < journal.first("ledger.forget")
    assert adapters.state.challenges == {} and adapters.dns.published == set()


def test_a_stale_ledger_is_swept_by_the_next_run_that_orders():
    adapters = make_adapters()
    left = TxtRecord("_acme-challenge.example.org", "left-behind", "Z-example.org")
    fresh = TxtRecord("_acme-challenge.example.org", "still-in-use", "Z-example.org")
    adapters.state.record_challenges("dead-run", [left], NOW - HOUR)
    adapters.state.record_challenges("live-run", [fresh], NOW + HOUR)
    adapters.dns.published |= {(left.name, left.value), (fresh.name, fresh.value)}
    run(adapters, SITE)
    assert (left.name, left.value) not in adapters.dns.published
    assert (fresh.name, fresh.value) in adapters.dns.published, "a live run's values are left alone"
    assert set(adapters.state.challenges) == {"live-run"}


def test_a_stale_ledger_is_swept_by_a_run_with_nothing_to_issue():
    """A run killed before removing its TXT values may leave nothing for the next run to order
    (another run finished the work meanwhile): that run still removes what the dead run published."""
    adapters = make_adapters()
    run(adapters, SITE)
    left = TxtRecord("_acme-challenge.example.com", "left-behind", "Z-example.com")
    adapters.state.record_challenges("dead-run", [left], NOW - HOUR)
    adapters.dns.published.add((left.name, left.value))
    ordered = len(adapters.ca.ordered)
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.SKIPPED and len(adapters.ca.ordered) == ordered
    assert (left.name, left.value) not in adapters.dns.published and adapters.state.challenges == {}


def test_a_ledger_that_cannot_be_listed_does_not_fail_the_run():
    adapters = make_adapters()
    adapters.state.ledger_error = StateError("s3://state/challenges/", "cannot list the challenge ledgers (AccessDenied)")
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.ISSUED


def test_a_dry_run_sweeps_nothing():
    adapters = make_adapters()
    left = TxtRecord("_acme-challenge.example.com", "left-behind", "Z-example.com")
    adapters.state.record_challenges("dead-run", [left], NOW - HOUR)
    run(adapters, SITE, options=RunOptions(dry_run=True))
    assert set(adapters.state.challenges) == {"dead-run"}


# ---- the report ---------------------------------------------------------------------------------


def test_the_run_level_issuance_timings_are_on_the_report_once():
    adapters = make_adapters()
    adapters.propagation.delay = 0.5
    adapters.ca.validation_delay = 1.0
    report = run(adapters, SITE, OTHER, workers=1)
    assert report.issuance == IssuanceTimings(seconds=2.5, dns_wait=0.5), \
        "one DNS round for both orders; each order's validation polled in turn"
    assert report.to_dict()["dns_wait_seconds"] == 0.5
    assert run(adapters, SITE, OTHER).issuance is None, "a run that orders nothing has no issuance timings"


def test_the_notifier_gets_the_report_of_every_run():
    adapters = make_adapters()
    first = run(adapters, SITE)
    second = run(adapters, SITE)
    assert adapters.notifier.reports == [first, second]
    assert [r.outcome for r in second.results] == [Outcome.SKIPPED]


# ---- revoke -------------------------------------------------------------------------------------


def test_revoke_tells_the_ca_records_it_and_the_next_run_reissues():
    adapters = make_adapters()
    run(adapters, SITE)
    renewer = make_renewer(make_config(SITE), adapters)
    revoked = renewer.revoke("site", "keyCompromise")
    assert adapters.ca.revoked == [(revoked.info.serial, 1)]
    assert adapters.state.current("site").revoked == "keyCompromise"
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.RENEWED and "revoked (keyCompromise)" in result.reason


def test_revoke_refuses_an_unknown_reason_or_nothing_stored():
    adapters = make_adapters()
    renewer = make_renewer(make_config(SITE), adapters)
    with pytest.raises(InputError, match="unknown revocation reason"):
        renewer.revoke("site", "because")
    with pytest.raises(InputError, match="site has no stored certificate to revoke"):
        renewer.revoke("site")
    with pytest.raises(InputError, match="unknown certificate name"):
        renewer.revoke("nope")
    assert adapters.ca.revoked == [] and adapters.state.writes == []


# ---- the CA and its account ---------------------------------------------------------------------


def test_the_account_is_created_and_registered_once_then_reused():
    adapters = make_adapters()
    run(adapters, SITE)
    account = adapters.state.accounts[DIRECTORY]
    assert account.url == adapters.ca.registered[0]
    run(adapters, SITE, options=RunOptions(force=True))
    assert adapters.state.accounts[DIRECTORY] == account and len(adapters.ca.registered) == 1
    assert [w for w in adapters.state.writes if w[0] == "account"] == [("account", DIRECTORY)] * 2, \
        "the key, then its URL once registered; nothing on a later run"


def test_a_registration_that_cannot_resolve_its_inputs_fails_before_any_write():
    adapters = make_adapters()
    adapters.ca.registration_error = ConfigError("acme.eab.hmac_ref: ssm:/eab not found")
    renewer = make_renewer(make_config(SITE), adapters)
    with pytest.raises(ConfigError, match="ssm:/eab not found"):
        renewer.apply(renewer.plan(RunOptions()), Deadline(adapters.clock, 600))
    assert adapters.state.writes == [] and adapters.ca.ordered == []


def test_a_zone_given_in_the_config_is_used_without_a_lookup_by_suffix():
    adapters = make_adapters()
    spec = CertificateSpec("far", ("app.elsewhere.test",), dns=DnsSpec(hosted_zone_id="ZELSEWHERE"))
    (result,) = run(adapters, spec).results
    assert result.outcome is Outcome.ISSUED
    assert [r.zone_id for r in adapters.dns.presented[0]] == ["ZELSEWHERE"]
