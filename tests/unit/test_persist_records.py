"""`persist plan|apply|check` over fakes: which records, their verdicts, what apply writes (and
keeps), the account from the state, the draft the CA speaks, CloudFormation output."""
from __future__ import annotations

import datetime as dt

import pytest

from acme_flow import persist
from acme_flow.deadline import Deadline
from acme_flow.errors import ConfigError, DnsError, InputError
from acme_flow.models import Challenge
from acme_flow.records_report import persist_cloudformation, render_persist
from records_fakes import DIRECTORY, ISSUER, THUMBPRINT, MetaCa, World, spec

NAME = "_validation-persist.example.com"
OTHER_ISSUER = '"other-ca.example; accounturi=https://other-ca.example/acct/9"'


def quoted(value: str) -> str:
    return persist.txt_rdata(value)


def ours(w: World, *, wildcard: bool = True, until: int | None = None) -> str:
    value = f"{ISSUER}; accounturi={w.account_url}" + ("; policy=wildcard" if wildcard else "")
    return value + (f"; persistUntil={until}" if until else "")


def test_plan_names_one_record_per_base_domain_with_the_wildcard_policy_and_registers_the_account():
    w = World(spec("site", "example.com", "*.example.com"), spec("legacy", "shop.test", challenge=Challenge.DNS01))

    report = w.persist().plan()

    assert w.ca.registered == [w.account_url], "the account is registered (and kept in the state) first"
    (record,) = report.records
    assert (record.name, record.zone, record.zone_id, record.status) == (NAME, "example.com", "Z001", "missing")
    assert record.value == f"{ISSUER}; accounturi=https://ca.test/acct/1; policy=wildcard"
    assert record.domains == ("example.com", "*.example.com") and record.certificates == ("site",)
    assert record.values == (quoted(record.value),)
    assert (report.issuer, report.account_url, report.draft) == (ISSUER, w.account_url, persist.Draft.D01.value)
    assert report.exit_code == 0 and not w.zones.writes, "plan writes nothing"


def test_check_fails_before_apply_and_passes_after_and_apply_keeps_other_values_and_their_ttl():
    w = World(spec("site", "example.com", "*.example.com"))
    w.zones.put(NAME, "TXT", [OTHER_ISSUER], ttl=120)

    before = w.persist().check()
    applied = w.persist().apply(Deadline(w.clock, 60))
    after = w.persist().check()

    assert before.exit_code == 1 and before.records[0].status == "missing"
    assert applied.exit_code == 0 and applied.records[0].written
    assert w.zones.sets[(NAME, "TXT")] == ((OTHER_ISSUER, quoted(ours(w))), 120)
    assert after.exit_code == 0 and after.records[0].status == "present" and after.in_place
    assert w.persist().apply(Deadline(w.clock, 60)).records[0].written is False
    assert len(w.zones.writes) == 1, "a record in place is not written again"


def test_a_stale_record_of_ours_is_replaced_and_another_account_at_our_issuer_is_kept():
    w = World(spec("site", "example.com", "*.example.com"))
    w.persist().plan()  # registers the account
    theirs = quoted(f"{ISSUER}; accounturi=https://ca.test/acct/77")
    w.zones.put(NAME, "TXT", [quoted(ours(w, wildcard=False)), theirs])

    report = w.persist().apply(Deadline(w.clock, 60))

    assert report.records[0].status == "stale" and "policy=wildcard" in report.records[0].reason
    assert w.zones.values(NAME, "TXT") == (theirs, quoted(ours(w)))


def test_persist_until_passing_within_the_margin_is_stale_and_a_later_one_is_reported():
    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    w = World(spec("site", "example.com"), now=now)
    w.persist().plan()
    soon, later = int((now + dt.timedelta(days=3)).timestamp()), int((now + dt.timedelta(days=90)).timestamp())

    w.zones.put(NAME, "TXT", [quoted(ours(w, wildcard=False, until=soon))])
    stale = w.persist(margin=dt.timedelta(days=7)).check().records[0]
    w.zones.put(NAME, "TXT", [quoted(ours(w, wildcard=False, until=later))])
    fine = w.persist(margin=dt.timedelta(days=7)).check().records[0]

    assert stale.status == "stale" and "persistUntil" in stale.reason and "passes within" in stale.reason
    assert fine.status == "present" and fine.persist_until == dt.datetime.fromtimestamp(later, dt.timezone.utc)


def test_certificates_sharing_a_name_share_one_record_and_a_wildcard_in_either_sets_the_policy():
    w = World(spec("apex", "example.com"), spec("wild", "*.example.com", "www.shop.test"))

    records = {r.name: r for r in w.persist().plan().records}

    assert sorted(records) == [NAME, "_validation-persist.www.shop.test"]
    assert records[NAME].certificates == ("apex", "wild") and "policy=wildcard" in records[NAME].value
    assert records["_validation-persist.www.shop.test"].zone == "shop.test"


def test_only_selects_certificates_and_an_unknown_name_is_bad_input():
    w = World(spec("site", "example.com"), spec("shop", "shop.test"))

    assert [r.certificates for r in w.persist().plan(only=["shop"]).records] == [("shop",)]
    with pytest.raises(InputError, match=r"unknown certificate name\(s\) \['nope'\]"):
        w.persist().plan(only=["nope"])


def test_no_certificate_that_may_persist_needs_no_record_and_no_ca():
    w = World(spec("legacy", "example.com", challenge=Challenge.DNS01))

    report = w.persist().check()

    assert report.records == () and report.exit_code == 0 and w.ca.made == 0
    assert "challenge: dns-persist-01" in render_persist(report)


def test_a_name_in_no_zone_is_an_error_row_and_the_other_records_are_still_written():
    w = World(spec("site", "example.com"), spec("lost", "nowhere.invalid", challenge=Challenge.AUTO))

    report = w.persist().apply(Deadline(w.clock, 60))

    rows = {r.name: r for r in report.records}
    assert rows["_validation-persist.nowhere.invalid"].status == "error"
    assert "no Route53 hosted zone" in rows["_validation-persist.nowhere.invalid"].reason
    assert rows[NAME].written and report.exit_code == 1


def test_a_zone_that_changed_since_it_was_read_is_reported_not_overwritten():
    w = World(spec("site", "example.com"), spec("shop", "shop.test"))
    w.zones.before_write = lambda zone_id: zone_id == "Z001" and w.zones.put(NAME, "TXT", ['"someone"'])

    report = w.persist().apply(Deadline(w.clock, 60))

    rows = {r.name: r for r in report.records}
    assert rows[NAME].status == "error" and "changed since" in rows[NAME].reason
    assert w.zones.values(NAME, "TXT") == ('"someone"',)
    assert rows["_validation-persist.shop.test"].written and report.exit_code == 1


def test_values_that_do_not_parse_as_txt_are_kept_exactly():
    w = World(spec("site", "example.com"))
    w.zones.put(NAME, "TXT", ['"unterminated'])

    w.persist().apply(Deadline(w.clock, 60))

    assert w.zones.values(NAME, "TXT")[0] == '"unterminated'


def test_a_ca_without_caa_identities_is_a_config_error_naming_the_directory():
    w = World(spec("site", "example.com"), ca=MetaCa(caa_identities=()))

    with pytest.raises(ConfigError, match=f"acme.directory: the CA at {DIRECTORY} advertises no caaIdentities"):
        w.persist().plan()


def test_draft_02_when_the_directory_has_an_account_hash_prefix():
    w = World(spec("site", "example.com"), ca=MetaCa(account_hash_prefix="urn:acme:hash:"))

    report = w.persist().plan()

    expected = persist.hashed_account_uri("urn:acme:hash:", w.account_url, THUMBPRINT, "example.com")
    assert report.draft == persist.Draft.D02.value
    assert report.records[0].value == f"{ISSUER}; accounturi={expected}"


def test_cloudformation_has_one_record_set_per_record_in_route53_form():
    w = World(spec("site", "example.com", "*.example.com"), spec("shop", "shop.test"))
    w.zones.put(NAME, "TXT", [OTHER_ISSUER], ttl=120)

    template = persist_cloudformation(w.persist().plan())

    resources = template["Resources"]
    assert sorted(resources) == ["ValidationPersistExampleCom", "ValidationPersistShopTest"]
    props = resources["ValidationPersistExampleCom"]["Properties"]
    assert resources["ValidationPersistExampleCom"]["Type"] == "AWS::Route53::RecordSet"
    assert (props["HostedZoneId"], props["Name"], props["Type"], props["TTL"]) == ("Z001", NAME + ".", "TXT", "120")
    assert props["ResourceRecords"] == [OTHER_ISSUER, quoted(ours(w))]


def test_dns_errors_while_writing_do_not_hide_the_other_zones():
    w = World(spec("site", "example.com"), spec("shop", "shop.test"))
    w.zones.fail["Z002"] = DnsError("AccessDenied")

    report = w.persist().apply(Deadline(w.clock, 60))

    assert [(r.zone, r.status, r.written) for r in report.records] == [
        ("example.com", "missing", True), ("shop.test", "error", False)]
    assert "AccessDenied" in report.records[1].reason
