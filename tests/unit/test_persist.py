"""dns-persist-01 records: names, values (-01 and the -02 hashed URI), parsing and verdicts."""
from __future__ import annotations

import datetime as dt

import pytest

from acme_flow import persist
from acme_flow.persist import Draft, PersistError, Verdict, WantedRecord

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ACCOUNT = "https://acme.example/acme/acct/123456"
ISSUER = "letsencrypt.org"

# draft-ietf-acme-dns-persist-02 §10.2 (the thumbprint is RFC 7638 §3.1's example key)
VECTOR_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
VECTOR_ACCOUNT = "https://ca.example/acct/123"
VECTOR_PREFIX = "https://ca.example/account-hash/"
VECTOR_DOMAIN_HASH = "5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"
VECTOR_STAR_HASH = "NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug"


def wanted(**kw) -> WantedRecord:
    return WantedRecord(**{"issuer": ISSUER, "account_url": ACCOUNT, **kw})


def vector(**kw) -> WantedRecord:
    return WantedRecord(**{"issuer": "authority.example", "account_url": VECTOR_ACCOUNT, "domain": "example.com",
                           "account_thumbprint": VECTOR_THUMBPRINT, "account_hash_prefix": VECTOR_PREFIX, **kw})


# ---------------------------------------------------------------------------- names

@pytest.mark.parametrize("domain, name", [
    ("example.com", "_validation-persist.example.com"),
    ("*.example.com", "_validation-persist.example.com"),
    ("WWW.Example.COM.", "_validation-persist.www.example.com"),
    ("bücher.example", "_validation-persist.xn--bcher-kva.example"),
])
def test_record_name(domain, name):
    assert persist.record_name(domain) == name


@pytest.mark.parametrize("domain", ["", "*", "www.*.example.com"])
def test_record_name_refuses_names_without_a_base(domain):
    with pytest.raises(PersistError, match="domain"):
        persist.record_name(domain)


# ---------------------------------------------------------------------------- -01 values

def test_value_for_an_apex_name():
    assert wanted().value(Draft.D01) == f"letsencrypt.org; accounturi={ACCOUNT}"


def test_value_for_a_wildcard_carries_the_policy():
    assert wanted(wildcard=True).value(Draft.D01) == f"letsencrypt.org; accounturi={ACCOUNT}; policy=wildcard"


def test_value_with_persist_until_in_unix_seconds():
    until = dt.datetime(2027, 1, 1, tzinfo=UTC)
    got = wanted(wildcard=True, persist_until=until).value(Draft.D01)
    assert got == f"letsencrypt.org; accounturi={ACCOUNT}; policy=wildcard; persistUntil=1798761600"


def test_value_normalizes_the_issuer():
    assert wanted(issuer="LetsEncrypt.ORG.").value(Draft.D01).startswith("letsencrypt.org; ")


def test_a_naive_persist_until_is_refused():
    with pytest.raises(PersistError, match="persist_until"):
        wanted(persist_until=dt.datetime(2027, 1, 1))


@pytest.mark.parametrize("field, value", [("issuer", "not a name"), ("issuer", ""),
                                          ("account_url", ""), ("account_url", "https://a/b;c")])
def test_bad_wanted_fields_are_named(field, value):
    with pytest.raises(PersistError, match=field.split("_")[0]):
        wanted(**{field: value})


def test_the_value_round_trips_through_the_parser():
    until = dt.datetime(2027, 1, 1, tzinfo=UTC)
    record = persist.parse_value(wanted(wildcard=True, persist_until=until).value(Draft.D01))
    assert (record.issuer, record.accounturi, record.wildcard, record.persist_until) == (
        ISSUER, ACCOUNT, True, 1798761600)


# ---------------------------------------------------------------------------- -02 hashed URI

def test_draft_02_test_vector_domain_bound():
    uri = persist.hashed_account_uri(VECTOR_PREFIX, VECTOR_ACCOUNT, VECTOR_THUMBPRINT, "example.com")
    assert uri == f"{VECTOR_PREFIX}sha-256/{VECTOR_DOMAIN_HASH}"


def test_draft_02_test_vector_star_opt_out():
    uri = persist.hashed_account_uri(VECTOR_PREFIX, VECTOR_ACCOUNT, VECTOR_THUMBPRINT, None)
    assert uri == f"{VECTOR_PREFIX}sha-256/{VECTOR_STAR_HASH}"


def test_draft_02_record_value_matches_the_draft_example():
    """-02 §10.2 Figure 5, and §10.6 Figure 10 with wildcard and persistUntil."""
    assert vector().value(Draft.D02) == (
        f"authority.example; accounturi={VECTOR_PREFIX}sha-256/{VECTOR_DOMAIN_HASH}")
    until = dt.datetime.fromtimestamp(1721952000, UTC)
    assert vector(wildcard=True, persist_until=until).value(Draft.D02) == (
        f"authority.example; accounturi={VECTOR_PREFIX}sha-256/{VECTOR_DOMAIN_HASH}; "
        "policy=wildcard; persistUntil=1721952000")


def test_draft_02_hashes_the_base_of_a_wildcard_and_the_opt_out():
    assert vector(domain="*.Example.com.").accounturi(Draft.D02).endswith(VECTOR_DOMAIN_HASH)
    assert vector(domain="", domain_bound=False).accounturi(Draft.D02).endswith(VECTOR_STAR_HASH)


def test_draft_02_hash_depends_on_the_domain():
    assert not vector(domain="www.example.com").accounturi(Draft.D02).endswith(VECTOR_DOMAIN_HASH)


@pytest.mark.parametrize("change, message", [
    ({"account_hash_prefix": ""}, "accountHashPrefix"),
    ({"account_thumbprint": ""}, "thumbprint"),
    ({"account_thumbprint": VECTOR_THUMBPRINT + "="}, "thumbprint"),
    ({"domain": ""}, "domain"),
])
def test_draft_02_needs_its_inputs(change, message):
    with pytest.raises(PersistError, match=message):
        vector(**change).value(Draft.D02)


# ---------------------------------------------------------------------------- parsing

def test_parse_is_case_insensitive_for_tags_and_tolerates_whitespace():
    record = persist.parse_value(f"  LetsEncrypt.org ;AccountURI = {ACCOUNT} ;\tPOLICY=Wildcard ; persistuntil=5 ")
    assert record.issuer == ISSUER
    assert record.accounturi == ACCOUNT
    assert record.wildcard is True
    assert record.persist_until == 5


def test_parse_issuer_alone_and_with_empty_parameters():
    assert persist.parse_value("letsencrypt.org").params == {}
    assert persist.parse_value("letsencrypt.org;").params == {}


def test_parse_keeps_unknown_tags_and_ignores_other_policies():
    record = persist.parse_value(f"{ISSUER}; accounturi={ACCOUNT}; policy=exact; future-tag=1")
    assert record.wildcard is False
    assert record.params["future-tag"] == "1"


@pytest.mark.parametrize("value, message", [
    (f"{ISSUER}; accounturi={ACCOUNT}; AccountUri={ACCOUNT}", "duplicate tag 'accounturi'"),
    (f"{ISSUER}; accounturi={ACCOUNT}; persistUntil=soon", "persistUntil is not a base-10 integer"),
    (f"{ISSUER}; accounturi={ACCOUNT}; persistUntil=-5", "persistUntil is not a base-10 integer"),
    (f"; accounturi={ACCOUNT}", "no issuer"),
    (f"lets encrypt.org; accounturi={ACCOUNT}", "issuer"),
    (f"{ISSUER}; accounturi", "not tag=value"),
    (f"{ISSUER}; accounturi={ACCOUNT};", "not tag=value"),
    (f"{ISSUER}; -bad=1", "not tag=value"),
    (f"{ISSUER}; accounturi=a b", "value of 'accounturi'"),
])
def test_parse_names_what_is_malformed(value, message):
    with pytest.raises(PersistError, match=message):
        persist.parse_value(value)


# ---------------------------------------------------------------------------- verdicts

def test_missing_when_the_name_is_empty():
    judgement = persist.judge([], wanted(), Draft.D01, now=NOW)
    assert judgement.verdict is Verdict.MISSING
    assert "letsencrypt.org" in judgement.reason


def test_present_when_the_record_matches():
    value = wanted().value(Draft.D01)
    judgement = persist.judge([value], wanted(), Draft.D01, now=NOW)
    assert (judgement.verdict, judgement.ours, judgement.others) == (Verdict.PRESENT, (value,), ())


def test_other_issuers_are_left_alone_and_do_not_confuse_the_verdict():
    foreign = ["pki.goog; accounturi=https://dv.acme-v02.api.pki.goog/account/x",
               "sectigo.com; accounturi=https://acme.sectigo.com/acct/1; policy=wildcard",
               "some other; junk ;;", "v=spf1 -all"]
    missing = persist.judge(foreign, wanted(), Draft.D01, now=NOW)
    assert (missing.verdict, missing.ours, missing.others) == (Verdict.MISSING, (), tuple(foreign))
    ours = wanted().value(Draft.D01)
    present = persist.judge([*foreign, ours], wanted(), Draft.D01, now=NOW)
    assert present.verdict is Verdict.PRESENT
    assert present.desired_values(ours) == (*foreign, ours)


def test_stale_when_another_account_is_named_and_that_record_is_kept():
    other = f"{ISSUER}; accounturi=https://acme.example/acme/acct/999"
    judgement = persist.judge([other], wanted(), Draft.D01, now=NOW)
    assert judgement.verdict is Verdict.STALE
    assert "acct/999" in judgement.reason and ACCOUNT in judgement.reason
    assert judgement.others == (other,) and judgement.ours == ()


def test_stale_when_a_wildcard_lacks_the_policy():
    value = wanted().value(Draft.D01)
    judgement = persist.judge([value], wanted(wildcard=True), Draft.D01, now=NOW)
    assert judgement.verdict is Verdict.STALE
    assert "policy=wildcard" in judgement.reason
    assert judgement.ours == (value,)


def test_a_wildcard_record_serves_an_apex_wish():
    value = wanted(wildcard=True).value(Draft.D01)
    assert persist.judge([value], wanted(), Draft.D01, now=NOW).verdict is Verdict.PRESENT


def test_stale_when_persist_until_has_passed():
    value = wanted(persist_until=NOW - dt.timedelta(seconds=1)).value(Draft.D01)
    judgement = persist.judge([value], wanted(), Draft.D01, now=NOW)
    assert judgement.verdict is Verdict.STALE
    assert "has passed" in judgement.reason


def test_stale_when_persist_until_passes_within_the_margin():
    value = wanted(persist_until=NOW + dt.timedelta(days=3)).value(Draft.D01)
    assert persist.judge([value], wanted(), Draft.D01, now=NOW).verdict is Verdict.PRESENT
    judgement = persist.judge([value], wanted(), Draft.D01, now=NOW, margin=dt.timedelta(days=7))
    assert judgement.verdict is Verdict.STALE
    assert "passes within 7 days" in judgement.reason


def test_a_huge_persist_until_is_far_future_not_a_crash():
    value = f"{ISSUER}; accounturi={ACCOUNT}; persistUntil={10**30}"
    assert persist.judge([value], wanted(), Draft.D01, now=NOW).verdict is Verdict.PRESENT


def test_a_malformed_record_of_our_issuer_is_stale_and_replaced():
    bad = f"{ISSUER}; accounturi={ACCOUNT}; accounturi={ACCOUNT}"
    judgement = persist.judge([bad], wanted(), Draft.D01, now=NOW)
    assert judgement.verdict is Verdict.STALE
    assert "malformed" in judgement.reason and "duplicate" in judgement.reason
    assert judgement.ours == (bad,)


def test_one_good_record_is_enough_among_bad_ones_of_ours():
    bad = f"{ISSUER}; accounturi={ACCOUNT}; persistUntil=1"
    good = wanted().value(Draft.D01)
    judgement = persist.judge([bad, good], wanted(), Draft.D01, now=NOW)
    assert judgement.verdict is Verdict.PRESENT
    assert set(judgement.ours) == {bad, good}


def test_the_issuer_compares_case_insensitively():
    value = f"LetsEncrypt.ORG.; accounturi={ACCOUNT}"
    assert persist.judge([value], wanted(), Draft.D01, now=NOW).verdict is Verdict.PRESENT


def test_accounturi_compares_exactly():
    value = f"{ISSUER}; accounturi={ACCOUNT.upper()}"
    assert persist.judge([value], wanted(), Draft.D01, now=NOW).verdict is Verdict.STALE


def test_a_draft_01_record_is_stale_at_a_draft_02_ca_and_is_ours():
    cleartext = vector().value(Draft.D01)
    judgement = persist.judge([cleartext], vector(), Draft.D02, now=NOW)
    assert judgement.verdict is Verdict.STALE
    assert judgement.ours == (cleartext,)
    assert persist.judge([vector().value(Draft.D02)], vector(), Draft.D02, now=NOW).verdict is Verdict.PRESENT


def test_judge_wants_an_aware_now():
    with pytest.raises(PersistError, match="now"):
        persist.judge([], wanted(), Draft.D01, now=dt.datetime(2026, 1, 1))


# ---------------------------------------------------------------------------- what the CA offers

PEBBLE_CHALLENGE = {"type": "dns-persist-01", "url": "https://127.0.0.1:14000/chalZ/x", "status": "pending",
                    "issuer-domain-names": ["pebble.letsencrypt.org"]}


def test_pick_draft_from_the_challenge_and_the_directory():
    assert persist.pick_draft(PEBBLE_CHALLENGE, {"caaIdentities": ["pebble.letsencrypt.org"]}) is Draft.D01
    assert persist.pick_draft({"issuerDomainNames": ["a.example"]}) is Draft.D02
    assert persist.pick_draft(None, {"accountHashPrefix": "https://ca.example/h/"}) is Draft.D02
    assert persist.pick_draft(PEBBLE_CHALLENGE, {"accountHashPrefix": "https://ca.example/h/"}) is Draft.D02
    assert persist.pick_draft(None, {"issuerDomainNames": ["a.example"]}) is Draft.D02
    assert persist.pick_draft() is Draft.D01


def test_offered_issuers_from_either_field():
    assert persist.offered_issuers(PEBBLE_CHALLENGE) == ("pebble.letsencrypt.org",)
    assert persist.offered_issuers({"issuerDomainNames": ["Authority.Example.", "ca.example.net"]}) == (
        "authority.example", "ca.example.net")


@pytest.mark.parametrize("names", [None, [], [f"ca{i}.example" for i in range(11)], [""], [3], "ca.example"])
def test_offered_issuers_refuses_malformed_lists(names):
    with pytest.raises(PersistError, match="challenge"):
        persist.offered_issuers({"issuerDomainNames": names} if names is not None else {})


def test_pick_issuer_prefers_one_in_caa_identities():
    offered = ["ca.example.net", "authority.example"]
    assert persist.pick_issuer(offered, ["Authority.Example"]) == "authority.example"
    assert persist.pick_issuer(offered, None) == "ca.example.net"
    assert persist.pick_issuer(offered, []) == "ca.example.net"
    assert persist.pick_issuer(offered, ["elsewhere.example"]) == "ca.example.net"
    with pytest.raises(PersistError, match="no issuer"):
        persist.pick_issuer([], ["authority.example"])


# ---------------------------------------------------------------------------- TXT presentation

def test_txt_rdata_splits_long_values_into_255_octet_strings():
    value = "letsencrypt.org; accounturi=https://ca.example/" + "a" * 300
    rdata = persist.txt_rdata(value)
    assert rdata.count('"') == 4
    assert len(rdata.split('" "')[0]) == 1 + 255
    assert persist.txt_value(rdata) == value


def test_txt_value_undoes_escapes_and_joins_strings():
    assert persist.txt_value('"a\\"b" "c\\\\d" "\\059e"') == 'a"bc\\d;e'
    assert persist.txt_rdata('x"y') == '"x\\"y"'


@pytest.mark.parametrize("rdata", ['"open', 'bare'])
def test_txt_value_refuses_bad_rdata(rdata):
    with pytest.raises(PersistError, match="TXT"):
        persist.txt_value(rdata)


def test_wanted_records_are_one_per_base_domain_with_the_wildcard_policy_when_a_wildcard_is_named():
    who = persist.PersistIdentity("pebble.letsencrypt.org", "https://ca.test/acct/1", persist.Draft.D01)
    wanted = persist.wanted_records(("example.com", "*.example.com", "www.example.com"), who)
    assert sorted(wanted) == ["_validation-persist.example.com", "_validation-persist.www.example.com"]
    assert wanted["_validation-persist.example.com"].value(persist.Draft.D01) == \
        "pebble.letsencrypt.org; accounturi=https://ca.test/acct/1; policy=wildcard"
    assert not wanted["_validation-persist.www.example.com"].wildcard
    wildcard_first = persist.wanted_records(("*.example.com", "example.com"), who)
    assert wildcard_first["_validation-persist.example.com"].wildcard
