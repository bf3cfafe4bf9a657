"""The Route53 adapter against an in-memory Route53: zones, CNAME delegation, batching, waits, hygiene."""
from __future__ import annotations

import itertools
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters import route53
from acme_flow.adapters.route53 import Route53Dns
from acme_flow.adapters.route53.calls import change as _change, split as _split, weight as _weight
from acme_flow.errors import DeadlineExceeded, DnsError, DnsRoleError, ZoneNotFound
from acme_flow.deadline import Deadline
from acme_flow.models import CertificateSpec, DnsSpec
from acme_flow.ports import TxtRecord
from fakes import FakeClock



def _order(name: str, rtype: str) -> tuple:
    return (tuple(reversed(name.split("."))), rtype)


class FakeRoute53:
    """Enough of Route53's API for the adapter, with Route53's rules where they matter: a batch
    is atomic and checked change by change; a DELETE must name the exact current values and
    TTL; a CREATE must name a set that does not exist; listings come in pages."""

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
        weight = sum(_weight(c)[0] for c in changes)
        chars = sum(_weight(c)[1] for c in changes)
        assert weight <= 1000 and chars <= 32000, "over Route53's per-request limits"
        staged = dict(self.records[HostedZoneId])
        for change in changes:
            rrset = change["ResourceRecordSet"]
            key = (rrset["Name"].lower().rstrip("."), rrset["Type"])
            described = f"[name='{key[0]}.', type='{key[1]}']"
            if change["Action"] == "DELETE":
                there = staged.get(key)
                if there is None:
                    raise _invalid(f"Tried to delete resource record set {described} but it was not found")
                if (there["TTL"], Counter(r["Value"] for r in there["ResourceRecords"])) != (
                        rrset["TTL"], Counter(r["Value"] for r in rrset["ResourceRecords"])):
                    raise _invalid(f"Tried to delete resource record set {described} "
                                   "but the values provided do not match the current values")
                del staged[key]
            elif change["Action"] == "CREATE" and key in staged:
                raise _invalid(f"Tried to create resource record set {described} but it already exists")
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


def _invalid(message):
    return ClientError({"Error": {"Code": "InvalidChangeBatch", "Message": message}}, "ChangeResourceRecordSets")


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
    names = [f"h{i}.example.com" for i in range(800)]
    records = [dns.locate(f"_acme-challenge.{n}", "x" * 43, spec(n)) for n in names]
    dns.present(records, deadline())
    # a quoted 43-character value is 45 characters, a CREATE counts once: 711 names fit in 32,000
    assert [len(changes) for _, changes in r53.batches] == [711, 89]
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
    kept = [(c["Action"], c["ResourceRecordSet"]["TTL"]) for c in r53.batches[0][1]
            if c["ResourceRecordSet"]["Name"] == "_acme-challenge.www.example.com"]
    assert kept == [("DELETE", 60), ("CREATE", 60)], "exactly what was read goes, the rest comes back"


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


# ---- concurrent writers: optimistic concurrency on atomic change batches ---------------------

class Interleaving:
    """A Route53 client that lets another writer act between our read and our next change."""

    def __init__(self, r53: FakeRoute53, other_writer, times: int = 1):
        self._r53, self._other_writer, self._times = r53, other_writer, times

    def change_resource_record_sets(self, **kwargs):
        if self._times:
            self._times -= 1
            self._other_writer()
        return self._r53.change_resource_record_sets(**kwargs)

    def __getattr__(self, name):
        return getattr(self._r53, name)


def test_publishing_on_a_name_with_values_keeps_them_and_their_ttl():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    r53.put(zone, "_acme-challenge.www.example.com", "TXT", ['"someone-else"'], ttl=120)
    dns, _ = adapter(r53)
    dns.present(_records(r53, dns, ["www.example.com", "api.example.com"]), deadline())
    www = r53.records[zone][("_acme-challenge.www.example.com", "TXT")]
    assert www["TTL"] == 120, "another client's TTL is kept"
    assert r53.txt(zone, "_acme-challenge.www.example.com") == ['"someone-else"', '"value-for-www.example.com"']
    (_, changes), = r53.batches
    assert [(c["Action"], c["ResourceRecordSet"]["Name"], c["ResourceRecordSet"]["TTL"],
             [r["Value"] for r in c["ResourceRecordSet"]["ResourceRecords"]]) for c in changes] == [
        ("DELETE", "_acme-challenge.www.example.com", 120, ['"someone-else"']),
        ("CREATE", "_acme-challenge.www.example.com", 120, ['"someone-else"', '"value-for-www.example.com"']),
        ("CREATE", "_acme-challenge.api.example.com", route53.TTL, ['"value-for-api.example.com"']),
    ]


def test_two_interleaving_publishers_on_one_name_both_end_published():
    """Run B publishes between run A's read and A's change: A's batch is refused, A reads again."""
    clock = FakeClock()
    r53 = FakeRoute53(clock)
    zone = r53.add_zone("example.com")
    name = "_acme-challenge.example.com"
    run_b, _ = adapter(r53)
    b_records = [run_b.locate(name, "from-run-b", spec("example.com"))]
    run_a = Route53Dns(lambda role: Interleaving(r53, lambda: run_b.present(b_records, deadline(clock))),
                       lookup_cname=lambda n: None)
    a_records = [run_a.locate(name, "from-run-a", spec("*.example.com"))]
    run_a.present(a_records, deadline(clock))
    assert r53.txt(zone, name) == ['"from-run-b"', '"from-run-a"']
    assert [[c["Action"] for c in changes] for _, changes in r53.batches] == [
        ["CREATE"],  # B: the name held nothing
        ["DELETE", "CREATE"],  # A, second try: exactly B's set out, the union in
    ]
    assert len(clock.sleeps) == 1 and route53.RETRY_BASE <= clock.sleeps[0] <= 2 * route53.RETRY_BASE

    # cleanup interleaves the same way: A removes while B publishes again, B's value stays
    b_again = [run_b.locate(name, "b-second-order", spec("example.com"))]
    run_a_cleanup = Route53Dns(lambda role: Interleaving(r53, lambda: run_b.present(b_again, deadline(clock))),
                               lookup_cname=lambda n: None)
    run_a_cleanup.remove(a_records)
    assert r53.txt(zone, name) == ['"from-run-b"', '"b-second-order"']


def test_a_publisher_that_keeps_losing_gives_up_after_a_few_attempts_within_the_deadline():
    clock = FakeClock()
    r53 = FakeRoute53(clock)
    zone = r53.add_zone("example.com")
    dns, _ = adapter(r53)
    records = _records(r53, dns, ["www.example.com"])
    bump = iter(range(1000))
    r53.before_change = lambda zone_id, changes: r53.put(zone, "_acme-challenge.www.example.com", "TXT",
                                                         [f'"other-{next(bump)}"'])
    with pytest.raises(DnsError, match=f"zone {zone}.*do not match the current values.*gave up after {route53.WRITE_ATTEMPTS} attempts"):
        dns.present(records, deadline(clock))
    assert r53.calls["ChangeResourceRecordSets"] == route53.WRITE_ATTEMPTS
    assert len(clock.sleeps) == route53.WRITE_ATTEMPTS - 1, "waits go through the deadline's clock"

    clock2 = FakeClock()
    dns2, _ = adapter(r53)
    with pytest.raises(DeadlineExceeded, match="retry of the Route53 change"):
        dns2.present(_records(r53, dns2, ["www.example.com"]), deadline(clock2, seconds=0.3))


# ---- cross-account roles ----------------------------------------------------------------------

ROLE = "arn:aws:iam::222222222222:role/certrenew-dns"


def refusing_client_for(r53):
    def client_for(role):
        if role == ROLE:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: "
                                         f"sts:AssumeRole on resource: {ROLE}"}}, "AssumeRole")
        return r53
    return client_for


@pytest.mark.parametrize("zone_pinned", [False, True])
def test_a_role_that_cannot_be_assumed_fails_that_certificate_naming_the_role(zone_pinned):
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    dns = Route53Dns(refusing_client_for(r53), lookup_cname=lambda n: None)
    with pytest.raises(DnsRoleError) as caught:
        dns.locate("_acme-challenge.example.com", "v", spec("example.com", role=ROLE,
                                                            zone=zone if zone_pinned else None))
    assert caught.value.role_arn == ROLE
    assert ROLE in str(caught.value) and "AccessDenied" in str(caught.value)
    assert "trust policy" in str(caught.value) and "DnsRoleArns" in str(caught.value)
    # the renewer's own zones still work
    assert dns.locate("_acme-challenge.example.com", "v", spec("example.com")).zone_id == zone


def test_present_and_remove_through_a_refused_role_raise_dns_errors_not_client_errors():
    r53 = FakeRoute53()
    zone = r53.add_zone("example.com")
    dns = Route53Dns(refusing_client_for(r53), lookup_cname=lambda n: None)
    record = TxtRecord("_acme-challenge.example.com", "v", zone, ROLE)
    with pytest.raises(DnsRoleError, match="certrenew-dns"):
        dns.name_servers(record)
    with pytest.raises(DnsRoleError, match="certrenew-dns"):
        dns.present([record], deadline())
    mine = TxtRecord("_acme-challenge.example.com", "w", zone)
    dns.present([mine], deadline())
    with pytest.raises(DnsError, match="could not remove every challenge record.*certrenew-dns"):
        dns.remove([record, mine])
    assert r53.txt(zone, "_acme-challenge.example.com") is None, "the other zone's cleanup still ran"


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


def test_a_part_that_went_through_before_a_later_part_lost_a_race_is_still_waited_for():
    """A zone's changes over Route53's per-request limit go in two batches; when the second
    loses a race and is retried, the first one's change is still polled until INSYNC."""
    clock = FakeClock()
    r53 = FakeRoute53(clock, insync_after=2)
    zone = r53.add_zone("example.com")
    dns, _ = adapter(r53)
    names = [f"h{i}.example.com" for i in range(route53.MAX_VALUES_PER_BATCH + 10)]
    records = _records(r53, dns, names)
    raced = []

    def other_writer_once(zone_id, changes):
        last = changes[-1]["ResourceRecordSet"]["Name"]
        if len(r53.batches) == 1 and not raced:  # the second batch: someone writes one of its names
            raced.append(last)
            r53.put(zone, last, "TXT", ['"other"'])
    r53.before_change = other_writer_once
    dns.present(records, deadline(clock))
    first_change = next(iter(r53.polls))
    assert raced and len(r53.batches) == 2, "the first part, then the raced name again (the refused batch changed nothing)"
    assert r53.calls["ChangeResourceRecordSets"] == 3
    assert r53.polls[first_change] >= 2, "the first part's change was polled until INSYNC"
    assert r53.txt(zone, raced[0]) == ['"other"', f'"value-for-{raced[0].removeprefix("_acme-challenge.")}"']
