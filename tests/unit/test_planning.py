import datetime as dt

import pytest

from acme_flow import planning
from acme_flow.models import (Action, CertificateInfo, CertificateMaterial, CertificateSpec, DeploySpec,
                              Deployment, KeyType, Placement, S3Export, StoredCertificate)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
DIRECTORY = "https://ca.test/dir"
DAY = dt.timedelta(days=1)


def spec(**kw):
    base = dict(name="site", domains=("example.com", "*.example.com"))
    base.update(kw)
    return CertificateSpec(**base)


def stored(*, issued=NOW - 10 * DAY, lifetime=90 * DAY, domains=("example.com", "*.example.com"),
           key=KeyType.EC_P256, profile=None, directory=DIRECTORY, deployment=Deployment(), serial="0a"):
    info = CertificateInfo(serial=serial, not_before=issued, not_after=issued + lifetime, names=domains,
                           issuer="Test", key_type=key)
    return StoredCertificate(name="site", version="v1", domains=domains, key_type=key, profile=profile,
                             directory=directory, info=info, material=CertificateMaterial("c", "ch", "k"),
                             issued_at=issued, deployment=deployment)


CASES = [
    # (id, spec kwargs, stored kwargs or None, now, lookahead, force, action, reason fragment)
    ("missing", {}, None, NOW, 0, False, Action.ISSUE, "no certificate yet"),
    ("fresh", {}, {}, NOW, 0, False, Action.NONE, "renews at 2027-01-11T12:00Z (2/3 of lifetime)"),
    ("forced", {}, {}, NOW, 0, True, Action.ISSUE, "forced"),
    ("two thirds passed", {}, {"issued": NOW - 61 * DAY}, NOW, 0, False, Action.ISSUE, "(2/3 of lifetime) passed"),
    ("just before two thirds", {}, {"issued": NOW - 59 * DAY}, NOW, 0, False, Action.NONE, "2/3 of lifetime"),
    ("weekly look-ahead", {}, {"issued": NOW - 55 * DAY}, NOW, 7, False, Action.ISSUE, "falls before the next check"),
    ("look-ahead too short", {}, {"issued": NOW - 55 * DAY}, NOW, 4, False, Action.NONE, "renews at"),
    ("short-lived half", {}, {"issued": NOW - 3 * DAY - dt.timedelta(hours=1), "lifetime": 6 * DAY}, NOW, 0, False,
     Action.ISSUE, "1/2 of lifetime"),
    ("short-lived before half", {}, {"issued": NOW - 2 * DAY, "lifetime": 6 * DAY}, NOW, 0, False, Action.NONE,
     "1/2 of lifetime"),
    ("45-day two thirds", {}, {"issued": NOW - 31 * DAY, "lifetime": 45 * DAY}, NOW, 0, False, Action.ISSUE, "2/3"),
    ("renew_before_days", {"renew_before_days": 30}, {"issued": NOW - 61 * DAY}, NOW, 0, False, Action.ISSUE,
     "30 days before expiry"),
    ("renew_before_days not yet", {"renew_before_days": 20}, {"issued": NOW - 61 * DAY}, NOW, 0, False,
     Action.NONE, "20 days before expiry"),
    ("expired", {}, {"issued": NOW - 100 * DAY}, NOW, 0, False, Action.ISSUE, "expired"),
    ("names added", {"domains": ("example.com", "*.example.com", "api.example.com")}, {}, NOW, 0, False,
     Action.ISSUE, "names changed: +api.example.com"),
    ("names removed", {"domains": ("example.com",)}, {}, NOW, 0, False, Action.ISSUE, "-*.example.com"),
    ("names reordered is not a change", {"domains": ("*.example.com", "example.com")}, {}, NOW, 0, False,
     Action.NONE, "renews at"),
    ("key type changed", {"key": KeyType.RSA_2048}, {}, NOW, 0, False, Action.ISSUE,
     "key type changed: ec-p256 -> rsa-2048"),
    ("profile changed", {"profile": "shortlived"}, {}, NOW, 0, False, Action.ISSUE,
     "profile changed: CA default -> shortlived"),
    ("CA changed", {}, {"directory": "https://other.test/dir"}, NOW, 0, False, Action.ISSUE, "CA changed"),
    ("target missing", {"deploy": DeploySpec(acm_regions=("us-west-2",))}, {}, NOW, 0, False, Action.DEPLOY,
     "not deployed to acm:us-west-2"),
    ("cloudfront implies us-east-1", {"deploy": DeploySpec(cloudfront=("E2ABCDEF123456",))},
     {"deployment": Deployment((Placement("cloudfront:E2ABCDEF123456", "0a", "arn"),))}, NOW, 0, False,
     Action.DEPLOY, "acm:us-east-1"),
    ("target holds an older serial", {"deploy": DeploySpec(acm_regions=("us-east-1",))},
     {"deployment": Deployment((Placement("acm:us-east-1", "09", "arn"),))}, NOW, 0, False, Action.DEPLOY,
     "not deployed to acm:us-east-1"),
    ("all deployed", {"deploy": DeploySpec(acm_regions=("us-east-1",), s3=S3Export("b", "site/"))},
     {"deployment": Deployment((Placement("acm:us-east-1", "0a", "arn"), Placement("s3://b/site/", "0a")))},
     NOW, 0, False, Action.NONE, "renews at"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_decide(case):
    _, spec_kw, stored_kw, now, lookahead_days, force, action, reason = case
    current = stored(**stored_kw) if stored_kw is not None else None
    decision = planning.decide(spec(**spec_kw), current, now, DIRECTORY, force=force,
                               lookahead=dt.timedelta(days=lookahead_days))
    assert decision.action is action, decision.reason
    assert reason in decision.reason


def test_fallback_two_thirds_and_half():
    start = NOW
    assert planning.fallback_renewal_time(start, start + 90 * DAY) == start + 60 * DAY
    assert planning.fallback_renewal_time(start, start + 45 * DAY) == start + 30 * DAY
    assert planning.fallback_renewal_time(start, start + 6 * DAY) == start + 3 * DAY
    assert planning.fallback_renewal_time(start, start + 90 * DAY, renew_before_days=14) == start + 76 * DAY


def test_renewal_decision_marks_renewals():
    assert planning.decide(spec(), None, NOW, DIRECTORY).is_renewal is False
    assert planning.decide(spec(), stored(), NOW, DIRECTORY, force=True).is_renewal is True
