"""A superseded ACM certificate (a new ARN took its place) is kept on a retire list in the state
until nothing uses it, and deleted by a later run, even one where nothing is due."""
import datetime as dt

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters import acm as acm_adapter
from acme_flow.errors import DeployError
from acme_flow.models import (AcmeSettings, Action, CertificateSpec, Config, Deployment, DeploySpec, Placement,
                              RenewalDecision)
from acme_flow.renewal import PlanRow, Renewer
from fakes import NOW, FakeClock
from test_planning import DIRECTORY, stored

OLD = "arn:aws:acm:us-east-1:123456789012:certificate/" + "1" * 36
NEW = "arn:aws:acm:us-east-1:123456789012:certificate/" + "2" * 36
DIST = "E2ABCDEF123456"
SPEC = CertificateSpec(name="site", domains=("example.com", "*.example.com"),
                       deploy=DeploySpec(acm_regions=("us-east-1",), cloudfront=(DIST,)))


class FakeState:
    def __init__(self):
        self.saved = []

    def update(self, current):
        self.saved.append(current)
        return current


class FakeImporter:
    """ACM as the renewal sees it: `in_use` ARNs are refused (InUseBy / ResourceInUseException)."""

    def __init__(self, in_use=(), not_ours=(), broken=()):
        self.in_use, self.not_ours, self.broken = set(in_use), set(not_ours), set(broken)
        self.deleted, self.asked = [], []

    def import_certificate(self, region, material, name, existing_arn):
        return NEW

    def delete_if_unused(self, region, arn, other_users):
        self.asked.append(arn)
        if arn in self.broken:
            raise DeployError(f"acm:{region}", "ThrottlingException: Rate exceeded")
        if arn in self.not_ours:
            return True, f"left {arn} alone: not imported by certrenew"
        if arn in self.in_use or other_users:
            return False, f"kept {arn} for a later run: still used by {', '.join(other_users) or 'cloudfront'}"
        self.deleted.append(arn)
        return True, f"deleted {arn}"


class FakeCloudFront:
    def __init__(self):
        self.attached = {}

    def attach(self, distribution_id, arn, names):
        self.attached[distribution_id] = arn
        return True

    def distributions_using(self, arn):
        return []


def renewer(importer, state):
    config = Config(acme=AcmeSettings(directory=DIRECTORY), certificates=(SPEC,))
    return Renewer(config=config, state=state, ca=lambda: None, dns=None, propagation=None, importer=importer,
                   cloudfront=FakeCloudFront(), exporter=None, notifier=None, clock=FakeClock())


def deployed(serial, arn, retiring=()):
    deployment = Deployment((Placement("acm:us-east-1", serial, arn), Placement(f"cloudfront:{DIST}", serial, arn)))
    for r in retiring:
        deployment = deployment.with_retiring("us-east-1", r, NOW - dt.timedelta(days=7))
    return deployment


def moved_to_a_new_arn(r):
    """A certificate whose stored serial is not yet deployed, where ACM needs a new ARN."""
    current = stored(issued=NOW - dt.timedelta(days=1), serial="0b", deployment=deployed("0a", OLD))
    return r._settle(PlanRow(SPEC, RenewalDecision("site", Action.DEPLOY, "not deployed"), current), None)


def nothing_due(r, retiring):
    current = stored(issued=NOW - dt.timedelta(days=1), serial="0b", deployment=deployed("0b", NEW, retiring))
    return r._settle(PlanRow(SPEC, RenewalDecision("site", Action.NONE, "renews at later"), current), None)


def test_an_old_arn_cloudfront_still_uses_is_kept_on_the_list_not_forgotten():
    state, importer = FakeState(), FakeImporter(in_use={OLD})
    result = moved_to_a_new_arn(renewer(importer, state))
    assert result.outcome.value == "deployed"
    assert f"kept {OLD} for a later run" in result.reason
    last = state.saved[-1].deployment
    assert [(r.region, r.arn, r.since) for r in last.retiring] == [("us-east-1", OLD, NOW)]
    assert last.acm_arn("us-east-1") == NEW and importer.deleted == []


def test_the_old_arn_is_on_the_list_before_its_deletion_is_tried():
    state, importer = FakeState(), FakeImporter()
    result = moved_to_a_new_arn(renewer(importer, state))
    assert [r.arn for r in state.saved[0].deployment.retiring] == [OLD], "recorded first: a crash cannot lose it"
    assert importer.deleted == [OLD] and f"deleted {OLD}" in result.reason
    assert state.saved[-1].deployment.retiring == ()


def test_a_later_run_with_nothing_due_retires_what_is_no_longer_used():
    state, importer = FakeState(), FakeImporter()
    result = nothing_due(renewer(importer, state), [OLD])
    assert result.outcome.value == "skipped"
    assert importer.deleted == [OLD] and f"deleted {OLD}" in result.reason
    assert state.saved[-1].deployment.retiring == ()


def test_still_in_use_stays_for_the_next_run_without_a_write():
    state, importer = FakeState(), FakeImporter(in_use={OLD})
    result = nothing_due(renewer(importer, state), [OLD])
    assert f"kept {OLD} for a later run" in result.reason and state.saved == []


def test_not_ours_or_gone_leaves_the_list():
    state, importer = FakeState(), FakeImporter(not_ours={OLD})
    result = nothing_due(renewer(importer, state), [OLD])
    assert "not imported by certrenew" in result.reason and state.saved[-1].deployment.retiring == ()


def test_an_error_keeps_it_for_the_next_run_and_the_certificate_is_fine():
    state, importer = FakeState(), FakeImporter(broken={OLD})
    result = nothing_due(renewer(importer, state), [OLD])
    assert result.outcome.value == "skipped"
    assert f"kept {OLD} for a later run: could not retire it" in result.reason and state.saved == []


def test_nothing_on_the_list_costs_no_call():
    state, importer = FakeState(), FakeImporter()
    result = nothing_due(renewer(importer, state), [])
    assert importer.asked == [] and state.saved == [] and result.reason == "renews at later"


def test_the_current_arn_is_never_deleted_even_if_listed():
    state, importer = FakeState(), FakeImporter()
    nothing_due(renewer(importer, state), [NEW])
    assert importer.asked == [] and state.saved[-1].deployment.retiring == ()


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
    state, importer = FakeState(), FakeImporter()
    r = renewer(importer, state)

    def refused(distribution_id, arn, names):
        raise DeployError(f"cloudfront:{distribution_id}", "PreconditionFailed")

    def still_served(arn):
        return [f"cloudfront:{DIST}"] if arn == OLD else []
    r.cloudfront.attach, r.cloudfront.distributions_using = refused, still_served
    result = moved_to_a_new_arn(r)
    assert result.outcome.value == "failed" and "PreconditionFailed" in result.reason
    assert f"kept {OLD} for a later run: still used by cloudfront:{DIST}" in result.reason
    assert [x.arn for x in state.saved[-1].deployment.retiring] == [OLD] and importer.deleted == []
