"""What a run reads from the state (issue 11): planning reads one small pointer per certificate
and no material; the material (a KMS-protected read at AWS) is read only where it is used."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

from acme_flow.deadline import Deadline
from acme_flow.models import Outcome
from acme_flow.renewal import RunOptions
from fakes import make_adapters, make_config, make_renewer
from test_run_rules import OTHER, SITE, run

DAY = dt.timedelta(days=1)


def test_a_run_with_nothing_due_reads_one_pointer_per_certificate_and_no_material():
    adapters = make_adapters()
    run(adapters, SITE, OTHER)
    state = adapters.state
    state.pointer_reads.clear()
    state.material_reads.clear()
    report = run(adapters, SITE, OTHER)
    assert [r.outcome for r in report.results] == [Outcome.SKIPPED, Outcome.SKIPPED]
    assert sorted(state.pointer_reads) == ["other", "site"]
    assert state.material_reads == [], "no KMS-protected read when nothing is deployed"


def test_a_renewal_reads_no_old_material_and_still_sends_replaces():
    adapters = make_adapters()
    first = run(adapters, SITE).results[0]
    adapters.state.material_reads.clear()
    adapters.clock.advance(70 * DAY)  # past 2/3 of the 90-day life
    (result,) = run(adapters, SITE).results
    assert result.outcome is Outcome.RENEWED and result.serial != first.serial
    assert adapters.state.material_reads == [], "the CertID for `replaces` is in the pointer"
    assert adapters.ca.ordered[-1]["replaces"] == adapters.state.history[0].ari_cert_id


def test_a_deploy_of_the_stored_certificate_reads_its_material_once():
    adapters = make_adapters()
    first = run(adapters, SITE).results[0]
    adapters.state.material_reads.clear()
    wider = replace(SITE, deploy=replace(SITE.deploy, acm_regions=("eu-west-1", "ap-south-1")))
    (result,) = run(adapters, wider).results
    assert result.outcome is Outcome.DEPLOYED and result.serial == first.serial
    assert adapters.state.material_reads == ["site"]


def test_damaged_material_of_a_certificate_not_due_is_found_by_a_deep_read():
    adapters = make_adapters()
    first = run(adapters, SITE).results[0]
    adapters.state.damage("site", "key")
    (quiet,) = run(adapters, SITE).results
    assert quiet.outcome is Outcome.SKIPPED, "a plain run does not read the material"
    renewer = make_renewer(make_config(SITE), adapters)
    (row,) = renewer.plan(RunOptions(deep=True)).rows
    assert row.stored.damaged and "damaged" in row.decision.reason, "status --deep sees it"
    (deep,) = renewer.apply(renewer.plan(RunOptions(deep=True)), Deadline(adapters.clock, 600)).results
    assert deep.outcome is Outcome.RENEWED and deep.serial != first.serial and "damaged" in deep.reason


def test_material_that_cannot_be_read_fails_that_certificate_only_and_is_not_reissued():
    adapters = make_adapters()
    run(adapters, SITE, OTHER)
    adapters.state.material_denied["site"] = "cannot read the stored material (AccessDenied)"
    wider = [replace(spec, deploy=replace(spec.deploy, acm_regions=("eu-west-1", "ap-south-1")))
             for spec in (SITE, OTHER)]
    orders, imports = len(adapters.ca.ordered), len(adapters.importer.imports)
    results = {r.name: r for r in run(adapters, *wider).results}
    assert results["site"].outcome is Outcome.FAILED and "AccessDenied" in results["site"].reason
    assert results["other"].outcome is Outcome.DEPLOYED
    assert len(adapters.ca.ordered) == orders, "an access error is not damage: nothing is reissued"
    assert {i[0] for i in adapters.importer.imports[imports:]} == {"ap-south-1"}
    assert adapters.state.holder("site") is None, "its lease is given back"
