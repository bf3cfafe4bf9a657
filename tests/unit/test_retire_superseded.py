"""A superseded ACM certificate (a new ARN took its place) is kept on a retire list in the state
until nothing uses it, and deleted by a later run, even one where nothing is due."""
import datetime as dt
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from acme_flow import pki
from acme_flow.adapters import acm as acm_adapter
from acme_flow.errors import DeployError
from acme_flow.models import (Action, CertificateSpec, Deployment, DeploySpec, KeyType, Placement,
                              RenewalDecision)
from acme_flow.survey import PlanRow
from certfactory import MiniCA
from fakes import NOW, FakeImporter, make_adapters, make_config, make_renewer
from test_planning import stored

OLD = "arn:aws:acm:us-east-1:123456789012:certificate/" + "1" * 36
NEW = "arn:aws:acm:us-east-1:123456789012:certificate/" + "2" * 36
DIST = "E2ABCDEF123456"
SPEC = CertificateSpec(name="site", domains=("example.com", "*.example.com"),
                       deploy=DeploySpec(acm_regions=("us-east-1",), cloudfront=(DIST,)))
MINI = MiniCA()


def settlement(in_use=(), not_ours=(), broken=()):
    """The Settlement of a real Renewer over fakes. ACM holds OLD, a P-384 certificate: the
    P-256 one deployed now cannot be re-imported into it, so it goes to a new ARN."""
    adapters = make_adapters(importer=FakeImporter(in_use=in_use, not_ours=not_ours, broken=broken))
    adapters.importer.certs[OLD] = ("us-east-1", MINI.leaf(SPEC.domains, KeyType.EC_P384).cert_pem)
    adapters.cloudfront.viewer[DIST] = OLD
    return make_renewer(make_config(SPEC), adapters).settlement, adapters


def current(deployment):
    """The stored certificate: a real leaf, so it can be imported."""
    material = MINI.leaf(SPEC.domains)
    serial = pki.describe(material.cert_pem).serial
    return replace(stored(issued=NOW - dt.timedelta(days=1), serial=serial, deployment=deployment(serial)),
                   material=material)


def deployed(serial, arn, retiring=()):
    deployment = Deployment((Placement("acm:us-east-1", serial, arn), Placement(f"cloudfront:{DIST}", serial, arn)))
    for r in retiring:
        deployment = deployment.with_retiring("us-east-1", r, NOW - dt.timedelta(days=7))
    return deployment


def moved_to_a_new_arn(settle):
    """A certificate whose stored serial is not yet deployed, where ACM needs a new ARN."""
    row = PlanRow(SPEC, RenewalDecision("site", Action.DEPLOY, "not deployed"),  # its import intent as stored
                  current(lambda serial: replace(deployed("0a", OLD), importing=("us-east-1",))))
    return settle.finish(row, None)


def nothing_due(setup, retiring, served=NEW):
    """A certificate deployed everywhere (at NEW) with `retiring` on its list; CloudFront serves `served`."""
    settle, adapters = setup
    adapters.cloudfront.viewer[DIST] = served
    row = PlanRow(SPEC, RenewalDecision("site", Action.NONE, "renews at later"),
                  current(lambda serial: deployed(serial, NEW, retiring)))
    return settle.finish(row, None)


def test_an_old_arn_cloudfront_still_uses_is_kept_on_the_list_not_forgotten():
    settle, adapters = settlement(in_use={OLD})
    result = moved_to_a_new_arn(settle)
    assert result.outcome.value == "deployed"
    assert f"kept {OLD} for a later run" in result.reason
    last = adapters.state.history[-1].deployment
    assert [(r.region, r.arn, r.since) for r in last.retiring] == [("us-east-1", OLD, NOW)]
    assert last.acm_arn("us-east-1") not in (None, OLD) and adapters.importer.deleted == []
    assert adapters.cloudfront.viewer[DIST] == last.acm_arn("us-east-1")


def test_the_old_arn_is_on_the_list_before_its_deletion_is_tried():
    settle, adapters = settlement()
    result = moved_to_a_new_arn(settle)
    history = adapters.state.history
    assert [r.arn for r in history[0].deployment.retiring] == [OLD], "recorded first: a crash cannot lose it"
    assert adapters.importer.deleted == [OLD] and f"deleted {OLD}" in result.reason
    assert history[-1].deployment.retiring == ()


def test_a_later_run_with_nothing_due_retires_what_is_no_longer_used():
    settle, adapters = settlement()
    result = nothing_due((settle, adapters), [OLD])
    assert result.outcome.value == "skipped"
    assert adapters.importer.deleted == [OLD] and f"deleted {OLD}" in result.reason
    assert adapters.state.history[-1].deployment.retiring == ()


def test_still_in_use_stays_for_the_next_run_without_a_write():
    settle, adapters = settlement(in_use={OLD})
    result = nothing_due((settle, adapters), [OLD])
    assert f"kept {OLD} for a later run" in result.reason and adapters.state.history == []


def test_a_distribution_still_serving_it_keeps_it_without_a_write():
    """An earlier run could not move the distribution: CloudFront still serves the old ARN."""
    settle, adapters = settlement()
    result = nothing_due((settle, adapters), [OLD], served=OLD)
    assert f"kept {OLD} for a later run: still used by cloudfront:{DIST}" in result.reason
    assert adapters.importer.deleted == [] and adapters.state.history == []


def test_not_ours_or_gone_leaves_the_list():
    settle, adapters = settlement(not_ours={OLD})
    result = nothing_due((settle, adapters), [OLD])
    assert "not imported by certrenew" in result.reason and adapters.state.history[-1].deployment.retiring == ()
    settle, adapters = settlement()
    del adapters.importer.certs[OLD]
    result = nothing_due((settle, adapters), [OLD])
    assert f"{OLD} already gone" in result.reason and adapters.state.history[-1].deployment.retiring == ()


def test_an_error_keeps_it_for_the_next_run_and_the_certificate_is_fine():
    settle, adapters = settlement(broken={OLD})
    result = nothing_due((settle, adapters), [OLD])
    assert result.outcome.value == "skipped"
    assert f"kept {OLD} for a later run: could not retire it" in result.reason and adapters.state.history == []


def test_nothing_on_the_list_costs_no_call():
    settle, adapters = settlement()
    result = nothing_due((settle, adapters), [])
    assert adapters.importer.asked == [] and adapters.state.history == [] and result.reason == "renews at later"


def test_the_current_arn_is_never_deleted_even_if_listed():
    settle, adapters = settlement()
    nothing_due((settle, adapters), [NEW])
    assert adapters.importer.asked == [] and adapters.state.history[-1].deployment.retiring == ()


def test_the_list_survives_the_pointer_round_trip():
    deployment = deployed("0b", NEW, [OLD])
    back = Deployment.from_dict(deployment.to_dict(), deployment.retiring_to_dict())
    assert back == deployment and Deployment.from_dict(deployment.to_dict()).retiring == ()


# ---- the ACM adapter: what ACM answers while CloudFront lets go of the certificate

def error(code, op):
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": 400}}, op)


class Acm:
    def __init__(self, in_use_by=(), delete_error=None, tags=None, gone=False):
        self.in_use_by, self.delete_error, self.gone, self.deleted = list(in_use_by), delete_error, gone, []
        self.tags = tags if tags is not None else [{"Key": "certrenew:managed", "Value": "true"}]

    def describe_certificate(self, CertificateArn):
        if self.gone:
            raise error("ResourceNotFoundException", "DescribeCertificate")
        return {"Certificate": {"CertificateArn": CertificateArn, "InUseBy": self.in_use_by}}

    def list_tags_for_certificate(self, CertificateArn):
        return {"Tags": self.tags}

    def delete_certificate(self, CertificateArn):
        if self.delete_error:
            raise error(self.delete_error, "DeleteCertificate")
        self.deleted.append(CertificateArn)


@pytest.mark.parametrize("acm, settled, note", [
    (Acm(), True, f"deleted {OLD}"),
    (Acm(in_use_by=["arn:aws:cloudfront::123456789012:distribution/E2ABCDEF123456"]), False,
     f"kept {OLD} for a later run: still used by cloudfront:E2ABCDEF123456"),
    (Acm(delete_error="ResourceInUseException"), False, f"kept {OLD} for a later run: ACM says it is still in use"),
    (Acm(delete_error="ResourceNotFoundException"), True, f"{OLD} already gone"),
    (Acm(gone=True), True, f"{OLD} already gone"),
    (Acm(tags=[]), True, f"left {OLD} alone: not imported by certrenew"),
], ids=["unused", "InUseBy", "ResourceInUseException", "gone on delete", "gone", "not ours"])
def test_the_adapter_says_whether_the_retirement_is_settled(acm, settled, note):
    got = acm_adapter.AcmImporter(lambda region: acm).delete_if_unused("us-east-1", OLD, [])
    assert got[0] is settled and got[1].startswith(note)
    assert acm.deleted == ([OLD] if note.startswith("deleted") else [])


def test_a_distribution_acm_and_the_scan_both_name_is_named_once():
    acm = Acm(in_use_by=["arn:aws:cloudfront::123456789012:distribution/E2ABCDEF123456"])
    _, note = acm_adapter.AcmImporter(lambda region: acm).delete_if_unused(
        "us-east-1", OLD, ["cloudfront:E2ABCDEF123456", "cloudfront:E3OTHER"])
    assert note == f"kept {OLD} for a later run: still used by cloudfront:E2ABCDEF123456, cloudfront:E3OTHER"


def test_the_adapter_fails_clearly_on_other_errors():
    with pytest.raises(DeployError, match="acm:us-east-1: AccessDeniedException"):
        acm_adapter.AcmImporter(lambda region: Acm(delete_error="AccessDeniedException")).delete_if_unused(
            "us-east-1", OLD, [])


def test_a_failed_cloudfront_move_keeps_the_old_arn_on_the_list():
    """The new ARN is imported but the distribution could not be moved: the old certificate is
    still served, so it is kept (not forgotten, not deleted) until a later run moves it."""
    settle, adapters = settlement()
    adapters.cloudfront.refuse[DIST] = "PreconditionFailed"
    result = moved_to_a_new_arn(settle)
    assert result.outcome.value == "failed" and "PreconditionFailed" in result.reason
    assert f"kept {OLD} for a later run: still used by cloudfront:{DIST}" in result.reason
    assert [x.arn for x in adapters.state.history[-1].deployment.retiring] == [OLD]
    assert adapters.importer.deleted == [] and adapters.cloudfront.viewer[DIST] == OLD
