"""`caa plan|apply|check` over fakes: each zone's set bound to our account and methods, other
CAs kept unless exclusive, one write per changed zone, and the check of every configured name."""
from __future__ import annotations

import pytest

from acme_flow.deadline import Deadline
from acme_flow.errors import ConfigError
from acme_flow.models import Challenge
from acme_flow.records_report import render_caa
from records_fakes import ISSUER, MetaCa, World, spec

OTHER_CA = '0 issue "sectigo.com"'


def bound(w: World, tag: str = "issue", methods: str = "dns-01") -> str:
    return f'0 {tag} "{ISSUER}; accounturi={w.account_url}; validationmethods={methods}"'


def test_plan_binds_each_zone_to_our_account_with_the_methods_its_certificates_use():
    w = World(spec("site", "example.com", "*.example.com", challenge=Challenge.DNS01),
              spec("www", "www.example.com", challenge=Challenge.DNS_PERSIST01),
              spec("shop", "shop.test", challenge=Challenge.DNS_PERSIST01))
    w.zones.put("example.com", "CAA", [OTHER_CA])

    report = w.caa().plan()

    zones = {z.zone: z for z in report.zones}
    assert sorted(zones) == ["example.com", "shop.test"]
    example = zones["example.com"]
    assert example.methods == ("dns-01", "dns-persist-01") and example.wildcard
    assert example.plan.values() == [OTHER_CA, bound(w, methods="dns-01,dns-persist-01"),
                                     bound(w, "issuewild", "dns-01,dns-persist-01")]
    assert any("issuewild" in warning for warning in example.plan.warnings), "sectigo loses wildcards: said"
    assert zones["shop.test"].plan.values() == [bound(w, methods="dns-persist-01")]
    assert report.exit_code == 0 and not w.zones.writes


def test_auto_allows_both_methods():
    w = World(spec("site", "example.com", challenge=Challenge.AUTO))

    (zone,) = w.caa().plan().zones

    assert zone.plan.values() == [bound(w, methods="dns-01,dns-persist-01")]


def test_apply_writes_each_changed_zone_once_keeps_other_cas_and_a_second_apply_writes_nothing():
    w = World(spec("site", "example.com", challenge=Challenge.DNS01), spec("shop", "shop.test"))
    w.zones.put("example.com", "CAA", [OTHER_CA, '0 iodef "mailto:sec@example.com"'], ttl=900)

    report = w.caa().apply(Deadline(w.clock, 60))

    assert [z.written for z in report.zones] == [True, True] and report.exit_code == 0
    assert [sorted({old.zone_id for old, _ in batch}) for batch in w.zones.writes] == [["Z001"], ["Z002"]]
    assert w.zones.sets[("example.com", "CAA")] == (
        (OTHER_CA, '0 iodef "mailto:sec@example.com"', bound(w)), 900)
    again = w.caa().apply(Deadline(w.clock, 60))
    assert not any(z.written or z.changed for z in again.zones) and len(w.zones.writes) == 2


def test_exclusive_drops_other_cas_and_keeps_iodef():
    w = World(spec("site", "example.com", challenge=Challenge.DNS01))
    w.zones.put("example.com", "CAA", [OTHER_CA, '0 iodef "mailto:sec@example.com"'])

    report = w.caa().apply(Deadline(w.clock, 60), exclusive=True)

    assert w.zones.values("example.com", "CAA") == ('0 iodef "mailto:sec@example.com"', bound(w))
    assert [str(r) for r in report.zones[0].plan.removed] == [OTHER_CA]
    assert "caa apply --exclusive" in render_caa(report)


def test_check_reports_a_set_blocking_our_ca_and_one_blocking_our_account_then_passes_after_apply():
    w = World(spec("site", "www.example.com", challenge=Challenge.DNS01),
              spec("shop", "shop.test", challenge=Challenge.DNS01))
    w.caa().plan()  # registers the account
    w.zones.put("example.com", "CAA", [OTHER_CA])
    w.zones.put("shop.test", "CAA", [f'0 issue "{ISSUER}; accounturi=https://ca.test/acct/999"'])

    before = w.caa().check()
    w.caa().apply(Deadline(w.clock, 60), exclusive=True)
    after = w.caa().check()

    rows = {n.name: n for n in before.names}
    assert not rows["www.example.com"].allowed and "allows only sectigo.com" in rows["www.example.com"].reason
    assert rows["www.example.com"].found_at == "example.com", "the set is found by climbing from the name"
    assert not rows["shop.test"].allowed and "accounturi is https://ca.test/acct/999" in rows["shop.test"].reason
    assert before.exit_code == 1 and "BLOCKED" in render_caa(before)
    assert after.exit_code == 0 and all(n.allowed for n in after.names)


def test_check_judges_every_method_a_certificate_may_use():
    w = World(spec("site", "example.com", challenge=Challenge.AUTO))
    w.caa().plan()
    w.zones.put("example.com", "CAA", [bound(w, methods="dns-01")])

    rows = {n.method: n for n in w.caa().check().names}

    assert rows["dns-01"].allowed
    assert not rows["dns-persist-01"].allowed and "validationmethods is dns-01" in rows["dns-persist-01"].reason


def test_a_name_without_any_caa_may_be_issued_by_any_ca():
    w = World(spec("site", "*.example.com", challenge=Challenge.DNS01))

    (row,) = w.caa().check().names

    assert row.allowed and row.reason == "no CAA: any CA may issue"
    assert w.dns.asked == ["example.com", "com", "."]


def test_a_malformed_set_in_a_zone_is_an_error_not_a_rewrite():
    w = World(spec("site", "example.com", challenge=Challenge.DNS01))
    w.zones.put("example.com", "CAA", ['0 issue "unterminated'])

    report = w.caa().apply(Deadline(w.clock, 60))

    assert "fix it by hand" in report.zones[0].error and not w.zones.writes and report.exit_code == 1


def test_a_name_in_no_zone_is_an_error():
    w = World(spec("lost", "nowhere.invalid", challenge=Challenge.DNS01))

    (zone,) = w.caa().plan().zones

    assert "no Route53 hosted zone found for nowhere.invalid" in zone.error


def test_a_ca_without_caa_identities_is_a_config_error():
    w = World(spec("site", "example.com"), ca=MetaCa(caa_identities=()))

    with pytest.raises(ConfigError, match="advertises no caaIdentities"):
        w.caa().check()


def test_plan_allows_every_configured_ca_each_with_its_own_account():
    """acme.fallback: the fallback CA's entry (its issuer, its account) beside the primary's."""
    from acme_flow.account import CaAccess

    w = World(spec("site", "example.com", challenge=Challenge.DNS01))
    fallback = MetaCa(caa_identities=("fallback.test",))
    fallback.directory = "https://fallback.test/dir"
    use_case = w.caa()
    use_case.fallbacks = (CaAccess(fallback, w.state, fallback.directory, None),)
    (zone,) = use_case.plan().zones
    fallback_url = w.state.accounts[fallback.directory].url
    assert zone.plan.values() == [bound(w), f'0 issue "fallback.test; accounturi={fallback_url}; validationmethods=dns-01"']


def test_check_judges_every_configured_ca_and_apply_makes_room_for_the_fallback_too():
    from acme_flow.account import CaAccess

    w = World(spec("site", "www.example.com", challenge=Challenge.DNS01))
    fallback = MetaCa(caa_identities=("fallback.test",))
    fallback.directory = "https://fallback.test/dir"

    def use_case():
        made = w.caa()
        made.fallbacks = (CaAccess(fallback, w.state, fallback.directory, None),)
        return made
    w.zones.put("example.com", "CAA", [f'0 issue "{ISSUER}"'])  # only the primary CA may issue
    before = use_case().check()
    by_ca = {(n.issuer, n.name): n for n in before.names}
    assert by_ca[(ISSUER, "www.example.com")].allowed
    assert not by_ca[("fallback.test", "www.example.com")].allowed and before.exit_code == 1
    assert "fallback.test" in render_caa(before)
    use_case().apply(Deadline(w.clock, 60))
    assert use_case().check().exit_code == 0
