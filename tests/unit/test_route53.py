"""The Route53 adapter against an in-memory Route53: zones, CNAME delegation, batching, waits, hygiene."""
from __future__ import annotations

import itertools
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters import route53
from acme_flow.adapters.route53 import Route53Dns, _change, _split
from acme_flow.errors import DeadlineExceeded, DnsError, ZoneNotFound
from acme_flow.models import CertificateSpec, Deadline, DnsSpec
from acme_flow.ports import TxtRecord
from fakes import FakeClock



def _order(name: str, rtype: str) -> tuple:
    return (tuple(reversed(name.split("."))), rtype)


class FakeRoute53:
    """Enough of Route53's API for the adapter, with Route53's rules where they matter:
    a DELETE must name the exact current values; listings come in pages."""

    class exceptions:
        class NoSuchHostedZone(Exception):
            pass

        ClientError = ClientError

    def __init__(self, clock: FakeClock | None = None, insync_after: int = 0):
        self.zones: dict[str, dict] = {}
        self.records: dict[str, dict[tuple[str, str], dict]] = {}
        self.calls: Counter = Counter()
        self.batches: list[tuple[str, list[dict]]] = []
        self.polls: dict[str, int] = {}
        self.insync_after = insync_after  # GetChange answers PENDING this many times
        self.clock = clock
        self.before_change = None  # hook: called before each change is applied
        self._ids = itertools.count(1)

    # -- set-up -------------------------------------------------------------------------------
    def add_zone(self, name: str, private=False, zone_id=None, extra_records=0) -> str:
        zone_id = zone_id or f"Z{next(self._ids):04d}"
        self.zones[zone_id] = {"Id": f"/hostedzone/{zone_id}", "Name": name + ".", "Config": {"PrivateZone": private}}
        self.records[zone_id] = {}
        self.put(zone_id, name, "SOA", ["ns-1.awsdns-1.com. hostmaster 1 7200 900 1209600 86400"])
        for i in range(extra_records):
            self.put(zone_id, f"host{i}.{name}", "A", ["192.0.2.1"])
        return zone_id

    def put(self, zone_id, name, rtype, values, ttl=300):
        self.records[zone_id][(name.lower().rstrip("."), rtype)] = {
            "Name": name.rstrip(".") + ".", "Type": rtype, "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}

    def txt(self, zone_id, name) -> list[str] | None:
        got = self.records[zone_id].get((name, "TXT"))
        return [r["Value"] for r in got["ResourceRecords"]] if got else None

    # -- API ----------------------------------------------------------------------------------
    def get_paginator(self, op):
        assert op == "list_hosted_zones"
        fake = self

        class Paginator:
            def paginate(self):
                fake.calls["ListHostedZones"] += 1
                zones = [dict(z, ResourceRecordSetCount=len(fake.records[zid])) for zid, z in fake.zones.items()]
                return [{"HostedZones": zones[:2]}, {"HostedZones": zones[2:]}]
        return Paginator()

    def get_hosted_zone(self, Id):
        self.calls["GetHostedZone"] += 1
        if Id not in self.zones:
            raise self.exceptions.NoSuchHostedZone(Id)
        zone = dict(self.zones[Id], ResourceRecordSetCount=len(self.records[Id]))
        return {"HostedZone": zone, "DelegationSet": {"NameServers": [f"ns-{Id}-1.awsdns.test", f"ns-{Id}-2.awsdns.test"]}}

    def list_resource_record_sets(self, HostedZoneId, StartRecordName=None, StartRecordType=None, MaxItems="300",
                                  **_):
        self.calls["ListResourceRecordSets"] += 1
        items = sorted(self.records[HostedZoneId].items(), key=lambda kv: _order(*kv[0]))
        if StartRecordName:
            start = _order(StartRecordName.lower().rstrip("."), StartRecordType or "")
            items = [kv for kv in items if _order(*kv[0]) >= start]
        page = items[:int(MaxItems)]
        out = {"ResourceRecordSets": [v for _, v in page], "IsTruncated": len(items) > len(page)}
        if out["IsTruncated"]:
            (name, rtype), _ = items[len(page)]
            out["NextRecordName"], out["NextRecordType"] = name, rtype
        return out

    def change_resource_record_sets(self, HostedZoneId, ChangeBatch):
        self.calls["ChangeResourceRecordSets"] += 1
        changes = ChangeBatch["Changes"]
        if self.before_change:
            self.before_change(HostedZoneId, changes)
        weight = sum(route53._weight(c)[0] for c in changes)
        chars = sum(route53._weight(c)[1] for c in changes)
        assert weight <= 1000 and chars <= 32000, "over Route53's per-request limits"
        staged = dict(self.records[HostedZoneId])
        for change in changes:
            rrset = change["ResourceRecordSet"]
            key = (rrset["Name"].lower().rstrip("."), rrset["Type"])
            if change["Action"] == "DELETE":
                if staged.get(key, {}).get("ResourceRecords") != rrset["ResourceRecords"]:
                    raise ClientError({"Error": {"Code": "InvalidChangeBatch", "Message": "values do not match"}},
                                      "ChangeResourceRecordSets")
                del staged[key]
            else:
                staged[key] = dict(rrset, Name=rrset["Name"].rstrip(".") + ".")
        self.records[HostedZoneId] = staged
        self.batches.append((HostedZoneId, changes))
        change_id = f"C{next(self._ids)}"
        self.polls[change_id] = 0
        return {"ChangeInfo": {"Id": f"/change/{change_id}", "Status": "PENDING" if self.insync_after else "INSYNC"}}

    def get_change(self, Id):
        self.calls["GetChange"] += 1
        self.polls[Id] += 1
        return {"ChangeInfo": {"Id": Id, "Status": "INSYNC" if self.polls[Id] >= self.insync_after else "PENDING"}}


def spec(*domains, zone=None, role=None) -> CertificateSpec:
    return CertificateSpec(name="c", domains=tuple(domains), dns=DnsSpec(hosted_zone_id=zone, role_arn=role))


def adapter(r53: FakeRoute53, cnames: dict[str, str] | None = None, clients: dict | None = None):
    asked = []

    def lookup(name):
        asked.append(name)
        return (cnames or {}).get(name)

    dns = Route53Dns(lambda role: (clients or {}).get(role, r53), lookup_cname=lookup)
    return dns, asked


def deadline(clock=None, seconds=600.0):
    return Deadline(clock or FakeClock(), seconds)


# ---- zones ------------------------------------------------------------------------------------

def test_longest_public_zone_wins_and_private_zones_are_skipped():
    r53 = FakeRoute53()
    r53.add_zone("example.com")
    sub = r53.add_zone("sub.example.com")
    r53.add_zone("deep.sub.example.com", private=True)
    dns, _ = adapter(r53)
    got = dns.locate("_acme-challenge.www.deep.sub.example.com", "v", spec("www.deep.sub.example.com"))
    assert got == TxtRecord("_acme-challenge.www.deep.sub.example.com", "v", sub)


def test_zone_list_is_read_once_per_role_for_the_whole_run():
    r53, other = FakeRoute53(), FakeRoute53()
    r53.add_zone("example.com")
    other.add_zone("example.net", zone_id="ZOTHER")
    role = "arn:aws:iam::111111111111:role/dns"
    dns, _ = adapter(r53, clients={None: r53, role: other})
    for i in range(20):
        dns.locate(f"_acme-challenge.h{i}.example.com", "v", spec(f"h{i}.example.com"))
        rec = dns.locate(f"_acme-challenge.h{i}.example.net", "v", spec(f"h{i}.example.net", role=role))
        assert rec.zone_id == "ZOTHER" and rec.role_arn == role
    assert r53.calls["ListHostedZones"] == 1 and other.calls["ListHostedZones"] == 1
    # small zones are read whole once; then every name is answered from that read
    assert r53.calls["ListResourceRecordSets"] == 1 and other.calls["ListResourceRecordSets"] == 1


def test_a_zone_of_another_account_is_invisible_without_its_role():
    r53, other = FakeRoute53(), FakeRoute53()
    other.add_zone("example.net")
    dns, _ = adapter(r53, clients={None: r53, "arn:role": other})
    with pytest.raises(ZoneNotFound, match="no Route53 hosted zone found for www.example.net"):
        dns.locate("_acme-challenge.www.example.net", "v", spec("www.example.net"))


def test_big_zones_are_asked_name_by_name():
    r53 = FakeRoute53()
    r53.add_zone("example.com", extra_records=2000)
    dns, _ = adapter(r53)
    for i in range(3):
        dns.locate(f"_acme-challenge.h{i}.example.com", "v", spec(f"h{i}.example.com"))
    assert r53.calls["ListResourceRecordSets"] == 3


def test_hosted_zone_id_overrides_discovery():
    r53 = FakeRoute53()
    r53.add_zone("example.com")
    pinned = r53.add_zone("example.com")  # a second zone of the same name: discovery would refuse
    dns, _ = adapter(r53)
    got = dns.locate("_acme-challenge.example.com", "v", spec("example.com", zone=pinned))
    assert got.zone_id == pinned
    assert r53.calls["ListHostedZones"] == 0


def test_hosted_zone_id_that_does_not_hold_the_name_is_refused():
    r53 = FakeRoute53()
    other = r53.add_zone("example.org")
    dns, _ = adapter(r53)
    with pytest.raises(ZoneNotFound, match=f"hosted zone {other} is example.org"):
        dns.locate("_acme-challenge.example.com", "v", spec("example.com", zone=other))
    with pytest.raises(ZoneNotFound, match="does not exist"):
        dns.locate("_acme-challenge.example.com", "v", spec("example.com", zone="ZNOPE"))


def test_two_public_zones_of_one_name_ask_for_an_override():
    r53 = FakeRoute53()
    a, b = r53.add_zone("example.com"), r53.add_zone("example.com")
    dns, _ = adapter(r53)
    with pytest.raises(DnsError, match=f"2 public hosted zones are named example.com \\({a}, {b}\\).*hosted_zone_id"):
        dns.locate("_acme-challenge.www.example.com", "v", spec("www.example.com"))


def test_no_zone_names_the_domain():
    r53 = FakeRoute53()
    r53.add_zone("example.com")
    dns, asked = adapter(r53)
    with pytest.raises(ZoneNotFound, match="no Route53 hosted zone found for www.nowhere.test;"):
        dns.locate("_acme-challenge.www.nowhere.test", "v", spec("www.nowhere.test"))
    assert asked == ["_acme-challenge.www.nowhere.test"]


def test_name_servers_come_from_the_zone_and_are_cached():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    dns, _ = adapter(r53)
    record = dns.locate("_acme-challenge.example.com", "v", spec("example.com"))
    assert dns.name_servers(record) == [f"ns-{zone}-1.awsdns.test", f"ns-{zone}-2.awsdns.test"]
    dns.name_servers(record)
    assert r53.calls["GetHostedZone"] == 1


# ---- CNAME delegation -------------------------------------------------------------------------

def test_cname_in_our_zone_is_followed_into_the_target_zone():
    r53 = FakeRoute53()
    site = r53.add_zone("example.com")
    target = r53.add_zone("acme.example.net")
    r53.put(site, "_acme-challenge.www.example.com", "CNAME", ["www-example-com.acme.example.net"])
    dns, asked = adapter(r53)
    got = dns.locate("_acme-challenge.www.example.com", "v", spec("www.example.com"))
    assert got == TxtRecord("www-example-com.acme.example.net", "v", target)
    assert asked == [], "a name in our zones is never looked up in public DNS"


def test_cname_chain_is_followed_and_loops_are_refused():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    r53.put(zone, "_acme-challenge.a.example.com", "CNAME", ["hop.example.com."])
    r53.put(zone, "hop.example.com", "CNAME", ["final.example.com"])
    r53.put(zone, "_acme-challenge.loop.example.com", "CNAME", ["_acme-challenge.loop.example.com"])
    dns, _ = adapter(r53)
    assert dns.locate("_acme-challenge.a.example.com", "v", spec("a.example.com")).name == "final.example.com"
    with pytest.raises(DnsError, match="loops or is too long"):
        dns.locate("_acme-challenge.loop.example.com", "v", spec("loop.example.com"))


def test_cname_to_a_name_in_no_zone_names_the_chain():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    r53.put(zone, "_acme-challenge.www.example.com", "CNAME", ["x.elsewhere.test"])
    dns, _ = adapter(r53)
    with pytest.raises(ZoneNotFound, match="x.elsewhere.test.*_acme-challenge.www.example.com -> CNAME x.elsewhere.test"):
        dns.locate("_acme-challenge.www.example.com", "v", spec("www.example.com"))


def test_name_outside_our_zones_is_followed_through_public_dns():
    r53 = FakeRoute53()
    target = r53.add_zone("acme.example.net")
    dns, asked = adapter(r53, cnames={"_acme-challenge.shop.example.org": "shop.acme.example.net."})
    got = dns.locate("_acme-challenge.shop.example.org", "v", spec("shop.example.org"))
    assert got == TxtRecord("shop.acme.example.net", "v", target)
    dns.locate("_acme-challenge.shop.example.org", "w", spec("*.shop.example.org"))
    assert asked == ["_acme-challenge.shop.example.org"], "looked up once per run"


# ---- publishing and waiting -------------------------------------------------------------------

def _records(r53, dns, names, zone_spec=None):
    return [dns.locate(f"_acme-challenge.{n}", f"value-for-{n}", zone_spec or spec(n)) for n in names]


def test_one_change_batch_per_zone_keeps_other_values_and_waits_all_zones_together():
    clock = FakeClock()
    r53 = FakeRoute53(clock, insync_after=3)
    a, b = r53.add_zone("example.com"), r53.add_zone("example.org")
    r53.put(a, "_acme-challenge.www.example.com", "TXT", ['"someone-else"'], ttl=60)
    dns, _ = adapter(r53)
    names = [f"h{i}.example.com" for i in range(10)] + ["www.example.com"] + [f"h{i}.example.org" for i in range(5)]
    records = _records(r53, dns, names)
    dns.present(records, deadline(clock))
    assert Counter(zone for zone, _ in r53.batches) == {a: 1, b: 1}
    assert r53.txt(a, "_acme-challenge.www.example.com") == ['"someone-else"', '"value-for-www.example.com"']
    assert r53.txt(b, "_acme-challenge.h4.example.org") == ['"value-for-h4.example.org"']
    # both changes polled in the same rounds: 0.5, then x1.5
    assert clock.sleeps == [0.5, 0.75, 1.125]
    assert r53.calls["GetChange"] == 6


def test_apex_and_wildcard_values_share_one_name():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    dns, _ = adapter(r53)
    records = [dns.locate("_acme-challenge.example.com", v, spec("example.com", "*.example.com")) for v in ("a", "b")]
    dns.present(records, deadline())
    assert r53.txt(zone, "_acme-challenge.example.com") == ['"a"', '"b"']
    assert len(r53.batches) == 1 and len(r53.batches[0][1]) == 1


def test_insync_polling_backs_off_to_a_cap():
    clock = FakeClock()
    r53 = FakeRoute53(clock, insync_after=12)
    r53.add_zone("example.com")
    dns, _ = adapter(r53)
    dns.present(_records(r53, dns, ["example.com"]), deadline(clock))
    assert clock.sleeps[:4] == [0.5, 0.75, 1.125, 1.688]
    assert max(clock.sleeps) == route53.MAX_POLL and clock.sleeps[-3:] == [5.0, 5.0, 5.0]


def test_insync_wait_is_bounded_by_the_deadline():
    clock = FakeClock()
    r53 = FakeRoute53(clock, insync_after=10_000)
    r53.add_zone("example.com")
    dns, _ = adapter(r53)
    with pytest.raises(DeadlineExceeded, match="Route53 change.*INSYNC"):
        dns.present(_records(r53, dns, ["example.com"]), deadline(clock, seconds=20))
    assert clock.t == pytest.approx(20)


def test_a_change_insync_on_submission_is_not_polled():
    r53 = FakeRoute53()
    r53.add_zone("example.com")
    dns, _ = adapter(r53)
    dns.present(_records(r53, dns, ["example.com"]), deadline())
    assert r53.calls["GetChange"] == 0


def test_many_names_are_split_only_at_route53_limits():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    dns, _ = adapter(r53)
    names = [f"h{i}.example.com" for i in range(400)]
    records = [dns.locate(f"_acme-challenge.{n}", "x" * 43, spec(n)) for n in names]
    dns.present(records, deadline())
    # a quoted 43-character value is 45 characters, 90 in an UPSERT: 355 names fit in 32,000
    assert [len(changes) for _, changes in r53.batches] == [355, 45]
    assert all(r53.txt(zone, f"_acme-challenge.{n}") for n in names)


def test_reading_current_values_lists_small_zones_whole_and_big_zones_name_by_name():
    small, big = FakeRoute53(), FakeRoute53()
    small.add_zone("example.com")
    big.add_zone("example.com", extra_records=3000)
    for r53 in (small, big):
        dns, _ = adapter(r53)
        records = _records(r53, dns, [f"h{i}.example.com" for i in range(8)])
        r53.calls.clear()
        dns.present(records, deadline())
        dns.remove(records)
    assert small.calls["ListResourceRecordSets"] == 2  # one listing each for present and remove
    assert big.calls["ListResourceRecordSets"] == 16  # 3,000 record sets would take 11 pages: 8 lookups


# ---- cleanup ----------------------------------------------------------------------------------

def test_cleanup_removes_only_our_values():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    dns, _ = adapter(r53)
    records = _records(r53, dns, ["www.example.com", "api.example.com"])
    dns.present(records, deadline())
    # another client adds its value to one of our names while we validate
    values = r53.txt(zone, "_acme-challenge.www.example.com")
    r53.put(zone, "_acme-challenge.www.example.com", "TXT", values + ['"other-client"'], ttl=60)
    r53.batches.clear()
    dns.remove(records)
    assert r53.txt(zone, "_acme-challenge.www.example.com") == ['"other-client"']
    assert r53.txt(zone, "_acme-challenge.api.example.com") is None
    assert len(r53.batches) == 1
    kept = next(c for c in r53.batches[0][1] if c["ResourceRecordSet"]["Name"] == "_acme-challenge.www.example.com")
    assert kept["Action"] == "UPSERT" and kept["ResourceRecordSet"]["TTL"] == 60


def test_cleanup_of_values_already_gone_changes_nothing():
    r53 = FakeRoute53()
    r53.add_zone("example.com")
    dns, _ = adapter(r53)
    records = _records(r53, dns, ["www.example.com"])
    dns.remove(records)
    assert r53.batches == []


def test_cleanup_that_races_another_writer_reads_again():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    dns, _ = adapter(r53)
    records = _records(r53, dns, ["www.example.com"])
    dns.present(records, deadline())
    raced = []

    def other_writer(zone_id, changes):
        if not raced:  # between our read and our change, another client adds a value
            raced.append(1)
            values = r53.txt(zone, "_acme-challenge.www.example.com")
            r53.put(zone, "_acme-challenge.www.example.com", "TXT", values + ['"late"'])
    r53.before_change = other_writer
    dns.remove(records)
    assert r53.txt(zone, "_acme-challenge.www.example.com") == ['"late"']


def test_cleanup_failure_is_reported_per_zone():
    r53 = FakeRoute53()
    r53.add_zone("example.com")
    dns, _ = adapter(r53)
    records = _records(r53, dns, ["www.example.com"])
    dns.present(records, deadline())

    def refuse(zone_id, changes):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ChangeResourceRecordSets")
    r53.before_change = refuse
    with pytest.raises(DnsError, match="could not remove every challenge record.*AccessDenied"):
        dns.remove(records)


# ---- _split at Route53's limits ---------------------------------------------------------------

def _changes(action, count, value_len=10, values_each=1):
    return [_change(action, f"n{i}.example.com", ["x" * value_len] * values_each) for i in range(count)]


@pytest.mark.parametrize("action,fits", [("DELETE", 1000), ("UPSERT", 500)])
def test_split_at_1000_values_with_upsert_counting_twice(action, fits):
    assert [len(p) for p in _split(_changes(action, fits))] == [fits]
    assert [len(p) for p in _split(_changes(action, fits + 1))] == [fits, 1]


@pytest.mark.parametrize("action,fits", [("DELETE", 100), ("UPSERT", 50)])
def test_split_at_32000_characters_with_upsert_counting_twice(action, fits):
    assert [len(p) for p in _split(_changes(action, fits, value_len=320))] == [fits]
    assert [len(p) for p in _split(_changes(action, fits + 1, value_len=320))] == [fits, 1]


def test_split_counts_every_value_of_a_change_and_keeps_order():
    batch = _changes("UPSERT", 300, values_each=2)  # 4 per change: 250 changes fit
    parts = _split(batch)
    assert [len(p) for p in parts] == [250, 50]
    assert [c for p in parts for c in p] == batch
    assert _split([]) == []
