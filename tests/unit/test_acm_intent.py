"""An ACM import into a region whose ARN does not hold the certificate yet (a first import, or a
move to a new ARN) is recorded in the state (an intent) before it is made, and cleared with the ARN
that holds it: only a run that died in between leaves an intent, and only then does the next run,
before importing under a new ARN, search ACM (a listing of the account) for what that run left.

The common path costs nothing more: a new certificate's intents travel in the pointer written
when it is stored, and the pointer written after its deploy clears them. A deploy of a stored
certificate into a new region writes the intent first (one pointer update).
"""
from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from acme_flow import pki
from acme_flow.adapters.s3_state import S3StateStore
from acme_flow.deadline import Deadline
from acme_flow.models import (CertificateSpec, Deployment, DeploySpec, KeyType, Outcome, Placement, S3Export,
                              StoredCertificate)
from acme_flow.renewal import RunOptions
from certfactory import MiniCA
from fakes import DIRECTORY, NOW, RunKilled, make_adapters, make_config, make_renewer

EU, US = "eu-west-1", "us-east-1"
SITE = CertificateSpec("site", ("example.com",), deploy=DeploySpec(acm_regions=(EU,)))


def run(adapters, *specs, options=RunOptions()):
    renewer = make_renewer(make_config(*specs), adapters)
    return renewer.apply(renewer.plan(options), Deadline(adapters.clock, 600))


def killed_run(adapters, region, *specs, options=RunOptions()):
    """A run whose process dies right after its import into `region`, before the ARN is recorded."""
    adapters.importer.kill_after_import = {region}
    with pytest.raises(RunKilled):
        run(adapters, *specs, options=options)


def pointer(adapters, name="site"):
    return adapters.state.current(name).deployment


def pointer_writes(adapters, name="site"):
    return adapters.state.writes.count(("pointer", name))


# ---- the common path: no search, no extra write ----------------------------------------------------


def test_a_first_issue_of_many_certificates_makes_no_search_and_no_extra_write():
    specs = [CertificateSpec(f"site{i}", (f"s{i}.example.com",), deploy=DeploySpec(acm_regions=(EU, US)))
             for i in range(6)]
    adapters = make_adapters()
    report = run(adapters, *specs)
    assert {r.outcome for r in report.results} == {Outcome.ISSUED}
    importer = adapters.importer
    assert importer.searches == [], "no certificate was ever half-imported: ACM is not listed"
    assert len(importer.imports) == 12 and len(importer.certs) == 12
    for spec in specs:
        written = [s.deployment for s in adapters.state.history if s.name == spec.name]
        assert [d.importing for d in written] == [(EU, US), ()], "recorded with the version, cleared with the ARNs"
        assert pointer_writes(adapters, spec.name) == 2, "the version's pointer and the deployed one, as before"
        assert pointer(adapters, spec.name).acm_arn(EU) and pointer(adapters, spec.name).acm_arn(US)


def test_a_renewal_reimports_into_the_recorded_arn_without_a_search():
    adapters = make_adapters()
    run(adapters, SITE)
    arn, first = pointer(adapters).acm_arn(EU), len(adapters.state.history)
    run(adapters, SITE, options=RunOptions(force=True))
    assert adapters.importer.searches == [] and pointer(adapters).acm_arn(EU) == arn
    assert [s.deployment.importing for s in adapters.state.history[first:]] == [(EU,), ()], \
        "recorded with the version, cleared by the re-import, never searched for"


# ---- a run that died mid-import ------------------------------------------------------------------------


def test_a_first_issue_killed_after_the_import_is_recovered_without_a_second_certificate():
    adapters = make_adapters()
    killed_run(adapters, EU, SITE)
    importer = adapters.importer
    (orphan,) = importer.held_for("site", EU)
    assert pointer(adapters).acm_arn(EU) is None and pointer(adapters).importing == (EU,), \
        "the state knows a first import began and has no ARN for it"

    report = run(adapters, SITE)
    assert report.results[0].outcome is Outcome.DEPLOYED
    assert importer.searches == [(EU, "site")], "searched once, for the region the intent names"
    assert importer.held_for("site", EU) == [orphan], "re-imported into the earlier import, no second certificate"
    assert pointer(adapters).acm_arn(EU) == orphan and pointer(adapters).importing == ()

    run(adapters, SITE)
    assert importer.searches == [(EU, "site")], "recorded: no later run searches again"


def test_a_renewal_killed_after_its_reimport_needs_no_search():
    adapters = make_adapters()
    run(adapters, SITE)
    arn = pointer(adapters).acm_arn(EU)
    killed_run(adapters, EU, SITE, options=RunOptions(force=True))
    run(adapters, SITE)
    assert adapters.importer.searches == [] and adapters.importer.held_for("site", EU) == [arn]
    assert pointer(adapters).acm_arn(EU) == arn


def test_a_key_type_change_killed_after_its_import_under_a_new_arn_is_recovered():
    """ACM cannot re-import across key types: the renewal goes to a new ARN. Killed right after that
    import, the next run finds it rather than import a third certificate."""
    adapters = make_adapters()
    run(adapters, SITE)
    old = pointer(adapters).acm_arn(EU)
    rsa = replace(SITE, key=KeyType.RSA_2048)
    killed_run(adapters, EU, rsa)
    importer = adapters.importer
    (moved,) = [a for a in importer.held_for("site", EU) if a != old]
    assert pointer(adapters).acm_arn(EU) == old and pointer(adapters).importing == (EU,)

    report = run(adapters, rsa)
    assert report.results[0].outcome is Outcome.DEPLOYED
    assert importer.searches == [(EU, "site")]
    assert pointer(adapters).acm_arn(EU) == moved and importer.deleted == [old]
    assert importer.held_for("site", EU) == [moved], "the old one retired, no third certificate"


def test_only_the_regions_with_an_unfinished_import_are_searched():
    spec = replace(SITE, deploy=DeploySpec(acm_regions=(EU, US)))
    adapters = make_adapters()
    killed_run(adapters, EU, spec)  # died after the EU import, before the US one began
    assert pointer(adapters).importing == (EU, US)
    run(adapters, spec)
    importer = adapters.importer
    assert sorted(importer.searches) == [(EU, "site"), (US, "site")], "both were intended; each searched once"
    assert len(importer.held_for("site", EU)) == 1 and len(importer.held_for("site", US)) == 1


def test_a_failed_first_import_keeps_its_intent_for_the_next_run():
    """ACM may have taken an import whose every answer was lost: the intent stays until an ARN is known."""
    adapters = make_adapters()
    adapters.importer.fail_import[EU] = "ServiceUnavailable: lost"
    assert run(adapters, SITE).results[0].outcome is Outcome.FAILED
    assert pointer(adapters).importing == (EU,)
    del adapters.importer.fail_import[EU]
    run(adapters, SITE)
    assert adapters.importer.searches == [(EU, "site")] and len(adapters.importer.held_for("site", EU)) == 1
    assert pointer(adapters).importing == ()


# ---- a stored certificate deployed to a region it was not in ------------------------------------------


def test_a_deploy_to_a_new_region_records_the_intent_before_importing():
    adapters = make_adapters()
    run(adapters, SITE)
    journal = adapters.state.journal
    start, history = len(journal), len(adapters.state.history)
    report = run(adapters, replace(SITE, deploy=DeploySpec(acm_regions=(EU, US))))
    assert report.results[0].outcome is Outcome.DEPLOYED
    steps = [(e, d) for e, d in journal[start:] if e in ("state.pointer", "acm.import")]
    assert steps == [("state.pointer", "site"), ("acm.import", US), ("state.pointer", "site")]
    assert [s.deployment.importing for s in adapters.state.history[history:]] == [(US,), ()]
    assert adapters.importer.searches == []


def test_a_deploy_to_a_new_region_killed_after_the_import_is_recovered():
    adapters = make_adapters()
    run(adapters, SITE)
    wider = replace(SITE, deploy=DeploySpec(acm_regions=(EU, US)))
    killed_run(adapters, US, wider)
    run(adapters, wider)
    importer = adapters.importer
    assert importer.searches == [(US, "site")]
    assert importer.held_for("site", US) == [pointer(adapters).acm_arn(US)]


def test_a_deploy_that_adds_no_region_writes_no_intent():
    adapters = make_adapters()
    run(adapters, SITE)
    before = pointer_writes(adapters)
    run(adapters, replace(SITE, deploy=DeploySpec(acm_regions=(EU,), s3=S3Export("exports", "site/"))))
    assert pointer_writes(adapters) == before + 1, "only the pointer after the deploy"
    assert adapters.importer.searches == []


# ---- pointers written before intents were recorded ------------------------------------------------------


def legacy(spec: CertificateSpec, placements=()) -> StoredCertificate:
    """A certificate stored by an older version: no `importing` in its pointer (read as None)."""
    material = MiniCA().leaf(spec.domains)
    info = pki.describe(material.cert_pem)
    deployment = Deployment(tuple(Placement(t, info.serial, a) for t, a in placements), importing=None)
    return StoredCertificate(spec.name, f"old-{info.serial[:8]}", spec.domains, spec.key, spec.profile, DIRECTORY,
                             info, material, NOW, deployment)


def test_an_older_pointer_without_an_arn_is_searched_as_before_until_its_next_version():
    """A run of an older version may have died mid-import: its orphan is still found. The pointer
    stays as it was (no write to mark it) until its next version carries intents of its own."""
    adapters = make_adapters()
    stored = adapters.state.put(legacy(SITE))
    importer = adapters.importer
    orphan = importer.arn(EU)
    importer.certs[orphan], importer.names[orphan] = (EU, stored.material.cert_pem), "site"
    run(adapters, SITE)
    assert importer.searches == [(EU, "site")] and importer.held_for("site", EU) == [orphan]
    assert pointer(adapters).acm_arn(EU) == orphan and pointer(adapters).importing is None
    assert pointer_writes(adapters) == 1, "no write for the intent: None already says any region may"
    run(adapters, SITE)
    run(adapters, SITE, options=RunOptions(force=True))
    assert importer.searches == [(EU, "site")], "deployed everywhere, then re-imported: never searched again"
    assert [s.deployment.importing for s in adapters.state.history[-2:]] == [(EU,), ()]


def test_an_older_pointer_deployed_everywhere_costs_nothing():
    adapters = make_adapters()
    adapters.state.put(legacy(SITE, [("acm:eu-west-1", "arn:aws:acm:eu-west-1:1:certificate/x")]))
    assert run(adapters, SITE).results[0].outcome is Outcome.SKIPPED
    assert adapters.importer.searches == [] and adapters.importer.imports == []


# ---- the field in current.json --------------------------------------------------------------------------


class Bucket:
    """Just enough S3 for the pointer's round trip."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket, Key, Body, **kw):
        self.objects[Key] = Body
        return {"ETag": f'"{len(self.objects)}"'}

    def get_object(self, Bucket, Key):
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key]), "ETag": '"e"'}


@pytest.mark.parametrize("importing", [(EU, US), ()])
def test_the_intents_survive_the_pointer_round_trip(importing):
    bucket = Bucket()
    stored = replace(legacy(SITE), deployment=Deployment(importing=importing))
    S3StateStore(bucket, "state").save_certificate(stored)
    assert S3StateStore(bucket, "state").load_certificate("site").deployment.importing == importing


def test_a_pointer_without_the_field_reads_as_not_recorded():
    bucket = Bucket()
    S3StateStore(bucket, "state").save_certificate(replace(legacy(SITE), deployment=Deployment()))
    key = "certificates/site/current.json"
    meta = json.loads(bucket.objects[key])
    del meta["importing"]
    bucket.objects[key] = json.dumps(meta).encode()
    deployment = S3StateStore(bucket, "state").load_certificate("site").deployment
    assert deployment.importing is None and deployment.may_hold_orphan(EU)
