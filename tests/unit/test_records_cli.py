"""`certrenew persist ...` and `certrenew caa ...`: arguments, output (table, --json,
CloudFormation) and exit codes, over the fakes of the record commands; and DnsCaa's answers."""
from __future__ import annotations

import json
from dataclasses import replace

import dns.message
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest
import yaml

from acme_flow import bootstrap, cli, persist
from acme_flow.adapters import dns_check
from acme_flow.errors import DnsError
from acme_flow.models import Challenge
from fakes import make_adapters
from records_fakes import ISSUER, World, spec

NAME = "_validation-persist.example.com"
QUERY = dns.message.make_query("example.com.", "CAA")


@pytest.fixture
def w(monkeypatch):
    world = World(spec("site", "example.com", "*.example.com"), spec("shop", "shop.test", challenge=Challenge.DNS01))
    adapters = replace(make_adapters(ca=world.ca, state=world.state, clock=world.clock),
                       records=world.zones, caa=world.dns)
    settings = bootstrap.Settings.from_env({}, config_ref="certificates.yaml")
    monkeypatch.setattr(cli, "_record_adapters", lambda args: (world.config, settings, adapters))
    return world


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_persist_check_exits_1_before_apply_and_0_after(w, capsys):
    code, out, _ = run(capsys, "persist", "check")
    assert code == 1 and "missing" in out and "1 record(s) missing or stale" in out

    code, out, _ = run(capsys, "persist", "apply")
    assert code == 0 and "missing -> written" in out and "1 record(s) written" in out

    code, out, _ = run(capsys, "persist", "check", "--json")
    report = json.loads(out)
    assert code == 0 and report["in_place"] and report["records"][0]["status"] == "present"
    assert report["records"][0]["value"] == f"{ISSUER}; accounturi={w.account_url}; policy=wildcard"


def test_persist_plan_prints_the_record_and_changes_nothing(w, capsys):
    code, out, _ = run(capsys, "persist", "plan", "--only", "site")

    assert code == 0 and NAME in out and "example.com" in out
    assert f'{NAME} TXT "{ISSUER}; accounturi={w.account_url}; policy=wildcard"' in out
    assert "persist plan: 1 record(s) to write (certrenew persist apply)" in out and not w.zones.writes


def test_persist_plan_cloudformation_parses_as_yaml_and_as_json(w, capsys):
    code, out, _ = run(capsys, "persist", "plan", "--format", "cloudformation")
    assert code == 0
    props = yaml.safe_load(out)["Resources"]["ValidationPersistExampleCom"]["Properties"]
    assert props["Name"] == NAME + "." and props["Type"] == "TXT" and props["HostedZoneId"] == "Z001"
    assert [persist.txt_value(v) for v in props["ResourceRecords"]] == [
        f"{ISSUER}; accounturi={w.account_url}; policy=wildcard"]

    code, out, _ = run(capsys, "persist", "plan", "--format", "cloudformation", "--json")
    assert code == 0 and json.loads(out)["Resources"]["ValidationPersistExampleCom"]["Properties"] == props


def test_cloudformation_goes_with_plan_only_and_an_unknown_name_is_bad_input(w, capsys):
    code, _, err = run(capsys, "persist", "apply", "--format", "cloudformation")
    assert code == 2 and "--format cloudformation goes with `persist plan`" in err and not w.zones.writes

    code, _, err = run(capsys, "persist", "check", "--only", "nope")
    assert code == 2 and "unknown certificate name(s) ['nope']" in err


def test_bad_actions_and_options_are_usage_errors(w, capsys):
    for argv in (["persist", "delete"], ["caa", "plan", "--only", "site"], ["persist", "plan", "--format", "xml"]):
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == 2, argv
    capsys.readouterr()


def test_caa_plan_apply_check(w, capsys):
    w.zones.put("example.com", "CAA", ['0 issue "sectigo.com"'])

    code, out, _ = run(capsys, "caa", "check")
    assert code == 1 and "BLOCKED" in out and "allows only sectigo.com" in out

    code, out, _ = run(capsys, "caa", "plan")
    assert code == 0 and "zone example.com (Z001): changes" in out and '+ 0 issue "ca.test; accounturi=' in out
    assert "caa plan: 2 zone(s) to change" in out and not w.zones.writes

    code, out, _ = run(capsys, "caa", "apply", "--exclusive", "--json")
    report = json.loads(out)
    assert code == 0 and [z["written"] for z in report["zones"]] == [True, True] and report["exclusive"]
    assert report["zones"][0]["removed"] == ['0 issue "sectigo.com"']

    code, out, _ = run(capsys, "caa", "check")
    assert code == 0 and "our CA and account may issue for every name" in out


# -- DnsCaa ---------------------------------------------------------------------------------------


def caa_rdata(text: str):
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, text)


def test_caa_values_are_rebuilt_in_route53s_octal_form_not_dnspythons_decimal():
    rdata = caa_rdata('128 tbs "caf\\195\\169 \\"q\\""')

    assert rdata.to_text() != dns_check._caa_text(rdata)
    assert dns_check._caa_text(rdata) == '128 tbs "caf\\303\\251 \\"q\\""'
    assert dns_check._caa_text(caa_rdata('0 issue "ca.test; accounturi=https://a/1"')) == \
        '0 issue "ca.test; accounturi=https://a/1"'


class Answer:
    def __init__(self, *texts: str):
        rrset = dns.rrset.from_text("example.com.", 60, "IN", "CAA", *texts)
        self.response = type("Response", (), {"answer": [rrset]})()


def lookup_with(monkeypatch, outcome):
    def resolve(self, qname, rdtype, **kwargs):
        assert qname.endswith(".") and kwargs.get("search") is False
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    monkeypatch.setattr(dns.resolver.Resolver, "resolve", resolve)
    return dns_check.DnsCaa([("192.0.2.53", 5353)])


def test_dns_caa_answers_and_absences(monkeypatch):
    assert lookup_with(monkeypatch, Answer('0 issue "ca.test"', '0 iodef "mailto:x@example.com"')).caa(
        "example.com") == ['0 issue "ca.test"', '0 iodef "mailto:x@example.com"']
    assert lookup_with(monkeypatch, dns.resolver.NXDOMAIN()).caa("nowhere.example") is None
    refused = dns.resolver.NoNameservers(request=QUERY, errors=[("192.0.2.53", False, 5353, "REFUSED", None)])
    assert lookup_with(monkeypatch, refused).caa("com") is None, "outside the server's zones: no CAA there"


def test_dns_caa_failures_are_errors_naming_the_name(monkeypatch):
    servfail = dns.resolver.NoNameservers(request=QUERY, errors=[("192.0.2.53", False, 5353, "SERVFAIL", None)])
    with pytest.raises(DnsError, match="cannot look up CAA at example.com"):
        lookup_with(monkeypatch, servfail).caa("example.com")
    with pytest.raises(DnsError, match="cannot look up CAA at example.com"):
        lookup_with(monkeypatch, dns.resolver.LifetimeTimeout(timeout=3.0, errors=[])).caa("example.com")
