"""CAA bound to the account: parsing Route53's values, the relevant set, the judgement of
RFC 8659/8657, and the plan that writes a zone's set without dropping other CAs' entries."""
from __future__ import annotations

import pytest

from acme_flow.caa import (
    CaaRecord, IssueValue, MalformedCaa, RelevantSet, WantedIssuer, format_issue_value, format_record,
    judge, parse_issue_value, parse_record, plan_zone, relevant_set,
)

LE = ("letsencrypt.org",)
ACCT = "https://acme-v02.api.letsencrypt.org/acme/acct/2"
OTHER_ACCT = "https://acme-v02.api.letsencrypt.org/acme/acct/1"
BOUND = f'0 issue "letsencrypt.org; accounturi={ACCT}; validationmethods=dns-01"'


def at(name: str, *values: str) -> RelevantSet:
    return RelevantSet(name, tuple(parse_record(v) for v in values))


def verdict(*values: str, name="www.example.com", method="dns-01", account=ACCT, issuers=LE):
    return judge(at("example.com", *values), issuers, account, method, name)


# --- parsing and formatting -------------------------------------------------------------------

def test_a_route53_value_parses_into_flags_tag_and_value():
    record = parse_record(BOUND)
    assert record == CaaRecord(0, "issue", f"letsencrypt.org; accounturi={ACCT}; validationmethods=dns-01")
    issue = parse_issue_value(record.value)
    assert issue.issuer == "letsencrypt.org"
    assert issue.accounturi == ACCT
    assert issue.validationmethods == ("dns-01",)


def test_escapes_inside_the_quotes_are_decoded_and_written_back_the_same():
    record = parse_record(r'128 tbs "a\"b\\c\303\251"')
    assert record == CaaRecord(128, "tbs", 'a"b\\cé')
    assert record.critical
    assert format_record(record) == r'128 tbs "a\"b\\c\303\251"'
    assert parse_record(format_record(record)) == record


def test_other_tags_are_kept_verbatim_and_tags_compare_case_insensitively():
    record = parse_record('0 IoDeF "mailto:security@example.com"')
    assert (record.tag, record.kind, record.value) == ("IoDeF", "iodef", "mailto:security@example.com")
    assert format_record(record) == '0 IoDeF "mailto:security@example.com"'


def test_a_bare_word_value_is_accepted():
    assert parse_record("0 issue letsencrypt.org") == CaaRecord(0, "issue", "letsencrypt.org")


@pytest.mark.parametrize("text, why", [
    ('issue "letsencrypt.org"', "<flags 0-255> <tag> <value>"),
    ('256 issue "x"', "flags 256 is more than 255"),
    ('0 is_sue "x"', "<flags 0-255> <tag> <value>"),
    ('0 issue "letsencrypt.org', "no closing quote"),
    ('0 issue "a" "b"', "text after the closing quote"),
    ("0 issue two words", "one quoted string"),
    ('0 issue "\\377"', "not UTF-8"),
    ("", "<flags 0-255> <tag> <value>"),
])
def test_a_malformed_record_is_refused_naming_the_value(text, why):
    with pytest.raises(MalformedCaa) as raised:
        parse_record(text)
    assert repr(text) in str(raised.value) and why in str(raised.value)


@pytest.mark.parametrize("value, issuer, parameters", [
    ("letsencrypt.org", "letsencrypt.org", ()),
    ("LetsEncrypt.ORG", "letsencrypt.org", ()),
    (";", "", ()),
    ("", "", ()),
    (" ca.example ; a = 1 ;b=2", "ca.example", (("a", "1"), ("b", "2"))),
    ("ca.example;", "ca.example", ()),
    ("; accounturi=https://x/1", "", (("accounturi", "https://x/1"),)),
])
def test_issue_values_follow_rfc_8659(value, issuer, parameters):
    assert parse_issue_value(value) == IssueValue(issuer, parameters)


@pytest.mark.parametrize("value, why", [
    ("under_score.org", "not a domain name"),
    ("-ca.org", "not a domain name"),
    ("ca.org; accounturi", "is not tag=value"),
    ("ca.org; accounturi=a b", "spaces or control characters"),
    ("ca.org; accounturi=1; AccountURI=2", "appears more than once"),
])
def test_malformed_issue_values_are_refused_naming_the_value(value, why):
    with pytest.raises(MalformedCaa) as raised:
        parse_issue_value(value)
    assert repr(value) in str(raised.value) and why in str(raised.value)


def test_an_issue_value_formats_as_rfc_8657_writes_it():
    issue = IssueValue("letsencrypt.org", (("accounturi", ACCT), ("validationmethods", "dns-01,http-01")))
    assert format_issue_value(issue) == f"letsencrypt.org; accounturi={ACCT}; validationmethods=dns-01,http-01"
    assert parse_issue_value(format_issue_value(issue)) == issue
    assert issue.validationmethods == ("dns-01", "http-01")
    assert IssueValue("ca.org").validationmethods is None and IssueValue("ca.org").accounturi is None


# --- the relevant set ---------------------------------------------------------------------------

def lookup_from(zone: dict[str, list[str]], asked: list[str]):
    def lookup(name):
        asked.append(name)
        return zone.get(name)
    return lookup


def test_the_set_at_the_name_itself_wins():
    asked: list[str] = []
    found = relevant_set("www.example.com.", lookup_from({"www.example.com": [BOUND], "example.com": ['0 issue ";"']}, asked))
    assert found == at("www.example.com", BOUND)
    assert asked == ["www.example.com"]


def test_climbing_finds_the_set_at_the_parent_only():
    asked: list[str] = []
    zone = {"example.com": ['0 issue "sectigo.com"'], "a.b.example.com": []}
    found = relevant_set("X.a.b.Example.com", lookup_from(zone, asked))
    assert found == at("example.com", '0 issue "sectigo.com"')
    assert asked == ["x.a.b.example.com", "a.b.example.com", "b.example.com", "example.com"]


def test_no_caa_anywhere_climbs_to_the_root_and_finds_none():
    asked: list[str] = []
    assert relevant_set("www.example.com", lookup_from({}, asked)) is None
    assert asked == ["www.example.com", "example.com", "com", "."]


def test_a_wildcard_name_is_looked_up_without_its_wildcard_label():
    asked: list[str] = []
    relevant_set("*.example.com", lookup_from({}, asked))
    assert asked[0] == "example.com"


def test_a_malformed_record_in_dns_names_where_it_was_found():
    with pytest.raises(MalformedCaa) as raised:
        relevant_set("www.example.com", lambda name: ['0 issue "open'] if name == "example.com" else None)
    assert "CAA at example.com" in str(raised.value) and "'0 issue \"open'" in str(raised.value)


# --- the judgement ------------------------------------------------------------------------------

def test_no_caa_lets_any_ca_issue():
    result = judge(None, LE, ACCT, "dns-01", "example.com")
    assert result.allowed and result.reason == "no CAA: any CA may issue"


def test_our_bound_entry_allows_us():
    result = verdict(BOUND)
    assert result.allowed and result.reason.startswith("allowed") and result.found_at == "example.com"


def test_a_set_naming_only_another_ca_blocks_us():
    result = verdict('0 issue "sectigo.com"', '0 issue "digicert.com"', '0 iodef "mailto:x@example.com"')
    assert not result.allowed
    assert result.reason == "blocked: CAA at example.com allows only digicert.com, sectigo.com"


def test_a_ca_with_several_issuer_names_is_allowed_by_any_of_them():
    result = judge(at("example.com", '0 issue "pebble.letsencrypt.org"'), ("letsencrypt.org", "pebble.letsencrypt.org"),
                   ACCT, "dns-01", "example.com")
    assert result.allowed


def test_another_accounturi_blocks_our_account():
    result = verdict(f'0 issue "letsencrypt.org; accounturi={OTHER_ACCT}"')
    assert not result.allowed
    assert result.reason == f"blocked: accounturi is {OTHER_ACCT}, ours is {ACCT}"


def test_one_of_several_entries_of_our_ca_that_fits_is_enough():
    result = verdict(f'0 issue "letsencrypt.org; accounturi={OTHER_ACCT}"', BOUND)
    assert result.allowed


def test_validationmethods_without_our_method_blocks():
    result = verdict(f'0 issue "letsencrypt.org; accounturi={ACCT}; validationmethods=http-01,tls-alpn-01"')
    assert not result.allowed
    assert result.reason == "blocked: validationmethods is http-01,tls-alpn-01, we validate with dns-01"
    assert verdict('0 issue "letsencrypt.org; validationmethods=http-01,dns-01"').allowed


def test_an_empty_issue_forbids_every_ca():
    result = verdict('0 issue ";"')
    assert not result.allowed and result.reason == 'blocked: CAA at example.com forbids every CA (issue ";")'


def test_issuewild_takes_precedence_for_a_wildcard_name():
    values = ('0 issue "letsencrypt.org"', '0 issuewild "sectigo.com"')
    wild = verdict(*values, name="*.example.com")
    assert not wild.allowed and wild.reason == "blocked: CAA at example.com allows only sectigo.com (issuewild)"
    assert verdict(*values, name="www.example.com").allowed


def test_a_wildcard_name_falls_back_to_issue_without_issuewild():
    assert verdict('0 issue "letsencrypt.org"', name="*.example.com").allowed
    assert not verdict('0 issue "sectigo.com"', name="*.example.com").allowed


def test_issuewild_does_not_apply_to_a_name_that_is_not_a_wildcard():
    result = verdict('0 issuewild "letsencrypt.org"', '0 issue ";"')
    assert not result.allowed


def test_an_unknown_critical_tag_blocks_even_our_own_entry():
    result = verdict(BOUND, '128 tbs "whatever"')
    assert not result.allowed and "critical tag 'tbs'" in result.reason
    assert verdict(BOUND, '0 tbs "whatever"').allowed  # not critical: ignored


def test_a_set_without_issue_properties_lets_any_ca_issue():
    result = verdict('0 iodef "mailto:x@example.com"')
    assert result.allowed and "no issue property" in result.reason


def test_a_malformed_issue_value_authorizes_nobody_but_still_closes_the_set():
    result = verdict('0 issue "letsencrypt.org; accounturi"')
    assert not result.allowed and "forbids every CA" in result.reason


def test_issuer_names_compare_case_insensitively_and_without_a_trailing_dot():
    assert judge(at("example.com", '0 issue "LetsEncrypt.org"'), ("letsencrypt.org.",), ACCT, "dns-01", "a.example.com").allowed


# --- the plan -----------------------------------------------------------------------------------

WANT = WantedIssuer("letsencrypt.org", ACCT)
WANT_WILD = WantedIssuer("letsencrypt.org", ACCT, wildcard=True)
SECTIGO = '0 issue "sectigo.com"'
IODEF = '0 iodef "mailto:security@example.com"'


def test_a_zone_without_caa_gets_our_entry_and_a_loud_warning():
    plan = plan_zone("example.com.", [], [WANT])
    assert plan.values() == [BOUND]
    assert plan.added == (parse_record(BOUND),) and not plan.removed and not plan.kept
    assert plan.changed and plan.zone == "example.com"
    assert len(plan.warnings) == 1 and "ONLY letsencrypt.org may issue" in plan.warnings[0]


def test_a_zone_with_only_iodef_is_open_too_and_gets_the_warning():
    plan = plan_zone("example.com", [IODEF], [WANT])
    assert plan.values() == [IODEF, BOUND] and "ONLY" in plan.warnings[0]


def test_the_merge_keeps_other_cas_and_other_tags():
    plan = plan_zone("example.com", [SECTIGO, IODEF], [WANT])
    assert plan.values() == [SECTIGO, IODEF, BOUND]
    assert plan.kept == (parse_record(SECTIGO), parse_record(IODEF)) and not plan.removed
    assert plan.warnings == ()


def test_exclusive_drops_other_cas_and_keeps_iodef():
    unbound = '0 issue "letsencrypt.org"'
    plan = plan_zone("example.com", [SECTIGO, IODEF, '0 issuewild "digicert.com"', unbound], [WANT], exclusive=True)
    assert plan.values() == [IODEF, BOUND]
    assert {format_record(r) for r in plan.removed} == {SECTIGO, '0 issuewild "digicert.com"', unbound}
    assert plan.warnings == ("exclusive: removing every entry of digicert.com, sectigo.com from example.com: "
                             "they may no longer issue there",)


def test_a_wildcard_adds_issuewild_and_warns_that_other_cas_lose_wildcards():
    plan = plan_zone("example.com", [SECTIGO], [WANT_WILD])
    wild = BOUND.replace(" issue ", " issuewild ")
    assert plan.values() == [SECTIGO, BOUND, wild]
    assert any("sectigo.com (allowed by issue) may no longer issue wildcard" in w for w in plan.warnings)


def test_our_entry_with_other_methods_is_replaced_not_duplicated():
    old = f'0 issue "letsencrypt.org; accounturi={ACCT}; validationmethods=http-01"'
    plan = plan_zone("example.com", [SECTIGO, old], [WANT])
    assert plan.values() == [SECTIGO, BOUND]
    assert plan.removed == (parse_record(old),) and plan.added == (parse_record(BOUND),)


def test_an_entry_of_another_account_of_our_ca_is_kept_unless_exclusive():
    other = f'0 issue "letsencrypt.org; accounturi={OTHER_ACCT}"'
    assert plan_zone("example.com", [other], [WANT]).values() == [other, BOUND]
    assert plan_zone("example.com", [other], [WANT], exclusive=True).values() == [BOUND]


def test_an_unbound_entry_of_our_ca_is_kept_with_a_warning_that_it_defeats_the_binding():
    plan = plan_zone("example.com", ['0 issue "letsencrypt.org"'], [WANT])
    assert plan.values() == ['0 issue "letsencrypt.org"', BOUND]
    assert any("still authorizes any account of letsencrypt.org" in w for w in plan.warnings)


def test_an_equivalent_entry_written_differently_counts_as_ours():
    same = f'0 issue "LetsEncrypt.org;validationmethods=dns-01 ; accounturi={ACCT}"'
    plan = plan_zone("example.com", [same], [WANT])
    assert not plan.changed and plan.values() == [same]


def test_copies_of_one_entry_written_differently_are_merged_into_one():
    ours_again = f'0 issue "letsencrypt.org;accounturi={ACCT};validationmethods=dns-01"'
    plan = plan_zone("example.com", [SECTIGO, '0 issue "Sectigo.com"', BOUND, ours_again], [WANT])
    assert plan.values() == [SECTIGO, BOUND]
    assert plan.removed == (parse_record('0 issue "Sectigo.com"'), parse_record(ours_again))


def test_several_cas_each_get_their_entry():
    other_ca = WantedIssuer("pki.goog", "https://dv.acme-v02.api.pki.goog/account/9", ("dns-01", "dns-persist-01"))
    plan = plan_zone("example.com", [], [WANT, other_ca, WANT])
    assert plan.values() == [BOUND, '0 issue "pki.goog; accounturi=https://dv.acme-v02.api.pki.goog/account/9; '
                                    'validationmethods=dns-01,dns-persist-01"']


@pytest.mark.parametrize("existing, wanted, exclusive", [
    ([], [WANT], False),
    ([SECTIGO, IODEF], [WANT_WILD], False),
    ([SECTIGO, IODEF, '0 issue "letsencrypt.org"'], [WANT_WILD], True),
    ([f'0 issue "letsencrypt.org; accounturi={ACCT}; validationmethods=http-01"', '128 tbs "x"'], [WANT], False),
])
def test_applying_the_planned_set_again_changes_nothing(existing, wanted, exclusive):
    first = plan_zone("example.com", existing, wanted, exclusive=exclusive)
    again = plan_zone("example.com", first.values(), wanted, exclusive=exclusive)
    assert not again.changed
    assert again.values() == first.values()
    assert again.kept == first.records and not again.added and not again.removed


def test_the_planned_set_lets_our_account_issue():
    plan = plan_zone("example.com", [SECTIGO, '0 issuewild "digicert.com"'], [WANT_WILD])
    for name in ("example.com", "*.example.com", "www.example.com"):
        assert judge(at("example.com", *plan.values()), LE, ACCT, "dns-01", name).allowed, name


@pytest.mark.parametrize("wanted, bad", [
    (WantedIssuer("not a domain", ACCT), "'not a domain'"),
    (WantedIssuer("letsencrypt.org", "https://x/acct 1"), "'https://x/acct 1'"),
    (WantedIssuer("letsencrypt.org", "https://x/acct;1"), "'https://x/acct;1'"),
    (WantedIssuer("letsencrypt.org", ACCT, ("dns 01",)), "'dns 01'"),
    (WantedIssuer("letsencrypt.org", ACCT, ()), "''"),
])
def test_a_wanted_entry_that_cannot_be_written_is_refused_naming_it(wanted, bad):
    with pytest.raises(MalformedCaa) as raised:
        plan_zone("example.com", [], [wanted])
    assert bad in str(raised.value)


def test_a_malformed_existing_record_stops_the_plan_naming_it():
    with pytest.raises(MalformedCaa) as raised:
        plan_zone("example.com", ['0 issue "open'], [WANT])
    assert "'0 issue \"open'" in str(raised.value)


def test_a_plan_needs_at_least_one_ca():
    with pytest.raises(MalformedCaa, match="no CA to authorize"):
        plan_zone("example.com", [], [])
