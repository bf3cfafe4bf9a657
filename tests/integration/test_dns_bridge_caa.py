"""The DNS bridge answers CAA from moto's Route53 exactly as written (flags, tag, value bytes),
over UDP and TCP, and `caa.relevant_set` climbs through it to the parent zone's set."""
from __future__ import annotations

import time

import boto3
import pytest
from botocore.exceptions import ClientError
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from acme_flow import caa

ACCT = "https://127.0.0.1:14000/my-account/1"
BOUND = f'0 issue "pebble.letsencrypt.org; accounturi={ACCT}; validationmethods=dns-01"'
ROUTE53_VALUES = [
    BOUND,
    '0 issuewild "sectigo.com"',
    '0 iodef "mailto:security@example.test"',
    '0 issue ";"',
    r'128 tbs "say \"hi\" \\ caf\303\251"',
]
ON_THE_WIRE = [
    (0, b"issue", f"pebble.letsencrypt.org; accounturi={ACCT}; validationmethods=dns-01".encode()),
    (0, b"issuewild", b"sectigo.com"),
    (0, b"iodef", b"mailto:security@example.test"),
    (0, b"issue", b";"),
    (128, b"tbs", 'say "hi" \\ café'.encode()),
]


def create_zone(name: str) -> str:
    route53 = boto3.client("route53")  # the tests' own set-up: the devstack's administrator
    return route53.create_hosted_zone(Name=name, CallerReference=f"{name}-{time.time()}")["HostedZone"]["Id"]


def upsert(zone_id: str, name: str, rtype: str, values: list[str], endpoint: str | None = None) -> None:
    rrset = {"Name": name, "Type": rtype, "TTL": 60, "ResourceRecords": [{"Value": v} for v in values]}
    boto3.client("route53", endpoint_url=endpoint).change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": rrset}]})


def query(stack, name: str, rtype: str, tcp: bool) -> dns.message.Message:
    send = dns.query.tcp if tcp else dns.query.udp
    return send(dns.message.make_query(name, rtype), stack.dns_host, port=stack.dns_port, timeout=3)


def caa_fields(response: dns.message.Message) -> list[tuple[int, bytes, bytes]]:
    return [(r.flags, r.tag, r.value) for rrset in response.answer if rrset.rdtype == dns.rdatatype.CAA
            for r in rrset]


def dns_lookup(stack, asked: list[str]):
    """A `relevant_set` lookup over the bridge (TCP, as Pebble asks): the CAA values at exactly
    `name` in Route53's presentation; a name outside the devstack's zones (REFUSED) has none."""
    def lookup(name: str) -> list[str] | None:
        asked.append(name)
        response = query(stack, name if name.endswith(".") else name + ".", "CAA", tcp=True)
        if response.rcode() != dns.rcode.NOERROR:
            return None
        return [caa.format_record(caa.CaaRecord(flags, tag.decode(), value.decode()))
                for flags, tag, value in caa_fields(response)]
    return lookup


def test_caa_records_are_answered_exactly_over_udp_and_tcp(aws):
    zone = create_zone("example.test")
    upsert(zone, "example.test", "CAA", ROUTE53_VALUES)
    upsert(zone, "_acme-challenge.example.test", "TXT", ['"token"'])

    for tcp in (False, True):
        response = query(aws, "example.test.", "CAA", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert sorted(caa_fields(response)) == sorted(ON_THE_WIRE)
        txt = query(aws, "_acme-challenge.example.test.", "TXT", tcp=tcp)
        assert [list(r.strings) for rrset in txt.answer for r in rrset] == [[b"token"]]


def test_what_the_bridge_answers_reads_back_as_route53_wrote_it(aws):
    zone = create_zone("example.test")
    upsert(zone, "example.test", "CAA", ROUTE53_VALUES)

    assert sorted(dns_lookup(aws, [])("example.test")) == sorted(ROUTE53_VALUES)


def test_a_name_without_caa_has_none_and_a_malformed_value_is_left_out(aws):
    zone = create_zone("example.test")
    with pytest.raises(ClientError, match="InvalidChangeBatch"):  # Route53 (the strict proxy) refuses it
        upsert(zone, "example.test", "CAA", ['0 issue "open', '0 issue "sectigo.com"'])
    # moto alone stores both: the bridge must still not serve the malformed one
    upsert(zone, "example.test", "CAA", ['0 issue "open', '0 issue "sectigo.com"'], endpoint=aws.moto_url)
    upsert(zone, "www.example.test", "TXT", ['"x"'])

    assert caa_fields(query(aws, "www.example.test.", "CAA", tcp=False)) == []
    assert caa_fields(query(aws, "example.test.", "CAA", tcp=False)) == [(0, b"issue", b"sectigo.com")]


def test_relevant_set_climbs_to_the_parent_zone(aws):
    create_zone("sub.example.test")  # a delegated child zone with no CAA
    upsert(create_zone("example.test"), "example.test", "CAA", [BOUND, '0 issuewild "sectigo.com"'])
    asked: list[str] = []

    found = caa.relevant_set("www.sub.example.test", dns_lookup(aws, asked))

    assert found == caa.RelevantSet("example.test", (caa.parse_record(BOUND), caa.parse_record('0 issuewild "sectigo.com"')))
    assert asked == ["www.sub.example.test", "sub.example.test", "example.test"]
    issuers = ("pebble.letsencrypt.org",)
    assert caa.judge(found, issuers, ACCT, "dns-01", "www.sub.example.test").allowed
    assert not caa.judge(found, issuers, ACCT + "0", "dns-01", "www.sub.example.test").allowed
    wild = caa.judge(caa.relevant_set("*.sub.example.test", dns_lookup(aws, [])), issuers, ACCT, "dns-01",
                     "*.sub.example.test")
    assert not wild.allowed and "allows only sectigo.com" in wild.reason


def test_relevant_set_finds_nothing_when_no_zone_has_caa(aws):
    create_zone("example.test")
    asked: list[str] = []

    assert caa.relevant_set("www.example.test", dns_lookup(aws, asked)) is None
    assert asked == ["www.example.test", "example.test", "test", "."]
