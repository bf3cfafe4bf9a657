import datetime as dt

import pytest

from acme_flow import planning
from acme_flow.models import (Action, CertificateInfo, CertificateMaterial, CertificateSpec, DeploySpec,
                              Deployment, KeyType, Placement, RenewalWindow, S3Export, StoredCertificate)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
DIRECTORY = "https://ca.test/dir"
DAY = dt.timedelta(days=1)


def spec(**kw):
    base = dict(name="site", domains=("example.com", "*.example.com"))
    base.update(kw)
    return CertificateSpec(**base)


def stored(*, issued=NOW - 10 * DAY, lifetime=90 * DAY, domains=("example.com", "*.example.com"),
           key=KeyType.EC_P256, profile=None, directory=DIRECTORY, deployment=Deployment(), serial="0a",
           revoked=None):
    info = CertificateInfo(serial=serial, not_before=issued, not_after=issued + lifetime, names=domains,
                           issuer="Test", key_type=key)
    return StoredCertificate(name="site", version="v1", domains=domains, key_type=key, profile=profile,
                             directory=directory, info=info, material=CertificateMaterial("c", "ch", "k"),
                             issued_at=issued, deployment=deployment, revoked=revoked)


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


def window(start_days, end_days, chosen_days=None):
    start, end = NOW + start_days * DAY, NOW + end_days * DAY
    chosen = NOW + (chosen_days if chosen_days is not None else start_days) * DAY
    return RenewalWindow(start=start, end=end, chosen=chosen, next_check=NOW + DAY)


ARI_CASES = [
    # (id, window, lookahead days, action, reason fragment)
    ("window passed", window(-3, -1, -2), 0, Action.ISSUE, "(ARI window 2026-11-19T12:00Z to 2026-11-21T12:00Z) passed"),
    ("inside window, chosen time passed", window(-1, 2, -0.5), 0, Action.ISSUE, "passed"),
    ("inside window, chosen time ahead", window(-1, 2, 1), 0, Action.NONE, "renews at 2026-11-23T12:00Z (ARI window"),
    ("window in the future", window(10, 12, 11), 0, Action.NONE, "ARI window opens 2026-12-02T12:00Z"),
    ("window opens before the next weekly run", window(3, 4, 3.5), 7, Action.ISSUE, "falls before the next check"),
    ("window after the next weekly run", window(10, 12, 11), 7, Action.NONE, "ARI window opens"),
    ("ARI overrides the 2/3 rule", window(30, 32, 31), 0, Action.NONE, "ARI window opens 2026-12-22"),
]


@pytest.mark.parametrize("case", ARI_CASES, ids=[c[0] for c in ARI_CASES])
def test_decide_with_ari(case):
    _, win, lookahead_days, action, reason = case
    current = stored(issued=NOW - 70 * DAY) if "overrides" in case[0] else stored()
    decision = planning.decide(spec(), current, NOW, DIRECTORY, lookahead=dt.timedelta(days=lookahead_days),
                               window=win)
    assert decision.action is action, decision.reason
    assert reason in decision.reason


def test_revoked_certificate_is_reissued():
    decision = planning.decide(spec(), stored(revoked="keyCompromise"), NOW, DIRECTORY)
    assert decision.action is Action.ISSUE and "revoked (keyCompromise)" in decision.reason


def test_lookahead_longer_than_lifetime_says_to_schedule_more_often():
    current = stored(issued=NOW - DAY, lifetime=6 * DAY)
    decision = planning.decide(spec(), current, NOW, DIRECTORY, lookahead=7 * DAY)
    assert decision.action is Action.ISSUE and "schedule more often" in decision.reason


def test_choose_in_window_is_uniform_over_the_window():
    start, end = NOW, NOW + 2 * DAY
    assert planning.choose_in_window(start, end, 0.0) == start
    assert planning.choose_in_window(start, end, 1.0) == end
    assert planning.choose_in_window(start, end, 0.25) == start + dt.timedelta(hours=12)


def test_updated_window_keeps_the_chosen_time_until_the_window_moves():
    first = planning.updated_window(None, NOW, NOW + DAY, dt.timedelta(hours=6), NOW, 0.5)
    assert first.chosen == NOW + dt.timedelta(hours=12) and first.next_check == NOW + dt.timedelta(hours=6)
    later = NOW + dt.timedelta(hours=7)
    same = planning.updated_window(first, NOW, NOW + DAY, dt.timedelta(hours=6), later, 0.9)
    assert same.chosen == first.chosen and same.next_check == later + dt.timedelta(hours=6)
    moved = planning.updated_window(first, NOW - DAY, NOW, dt.timedelta(hours=6), later, 0.9)
    assert moved.chosen == NOW - DAY + dt.timedelta(hours=21.6)
