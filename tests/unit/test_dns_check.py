"""The propagation check against scripted name servers (no sockets)."""
from __future__ import annotations

import socket
import threading

import pytest

from acme_flow.adapters import dns_check
from acme_flow.adapters.dns_check import DnsAnswerError, DnsPropagation, host_addresses, parse_resolvers
from acme_flow.errors import PropagationTimeout
from acme_flow.deadline import Deadline
from acme_flow.ports import TxtRecord
from fakes import FakeClock



class Servers:
    """Scripted answers: server -> name -> the values it serves from a given round on."""

    def __init__(self, clock):
        self.clock = clock
        self.serving: dict[tuple, dict[str, tuple[set, float]]] = {}
        self.silent: set = set()
        self.refusing: set = set()
        self.asked: list[tuple] = []
        self.lock = threading.Lock()

    def serve(self, server, name, values, from_time=0.0):
        self.serving.setdefault(server, {})[name] = (set(values), from_time)

    def query(self, server, name, timeout):
        with self.lock:
            self.asked.append((server, name, self.clock.t))
        if server in self.silent:
            return None
        if server in self.refusing:
            raise DnsAnswerError("answered REFUSED")
        values, since = self.serving.get(server, {}).get(name, (set(), 0.0))
        return set(values) if self.clock.t >= since else set()


A, B, SILENT = ("192.0.2.1", 53), ("192.0.2.2", 53), ("192.0.2.9", 5353)
REC = TxtRecord("_acme-challenge.example.com", "value-1", "Z1")
WILD = TxtRecord("_acme-challenge.example.com", "value-2", "Z1")
OTHER = TxtRecord("_acme-challenge.www.example.org", "value-3", "Z2")


def check(clock, servers, resolvers=(A, B), addresses=None, name_servers=None):
    return DnsPropagation(list(resolvers), query=servers.query, addresses=addresses, name_servers=name_servers)


def test_values_already_served_everywhere_need_no_wait():
    clock = FakeClock()
    servers = Servers(clock)
    for s in (A, B):
        servers.serve(s, REC.name, {REC.value, WILD.value, "someone-else"})
    check(clock, servers).wait_visible([REC, WILD], Deadline(clock, 60))
    assert clock.sleeps == []
    # one query per name and server, whatever the number of values on the name
    assert sorted((s, n) for s, n, _ in servers.asked) == [(A, REC.name), (B, REC.name)]


def test_waits_with_backoff_until_every_server_serves_every_value():
    clock = FakeClock()
    servers = Servers(clock)
    servers.serve(A, REC.name, {REC.value})
    servers.serve(B, REC.name, {REC.value}, from_time=3.0)
    servers.serve(A, OTHER.name, {OTHER.value})
    servers.serve(B, OTHER.name, {OTHER.value})
    check(clock, servers).wait_visible([REC, OTHER], Deadline(clock, 60))
    assert clock.sleeps == [0.5, 1.0, 2.0]
    # what was seen is not asked again
    later = [(s, n) for s, n, t in servers.asked if t > 0]
    assert set(later) == {(B, REC.name)}


def test_a_server_that_never_answers_fails_with_the_record_and_the_server_named():
    clock = FakeClock()
    servers = Servers(clock)
    servers.serve(A, REC.name, {REC.value})
    servers.silent.add(SILENT)
    with pytest.raises(PropagationTimeout) as err:
        check(clock, servers, resolvers=(A, SILENT)).wait_visible([REC], Deadline(clock, 30))
    assert err.value.missing == {REC.name: ["192.0.2.9:5353 (no answer)"]}
    assert str(err.value) == ("DNS propagation not confirmed: _acme-challenge.example.com not seen by "
                              "192.0.2.9:5353 (no answer)")
    assert clock.t == pytest.approx(30)
    assert max(clock.sleeps) <= dns_check.MAX_POLL


def test_a_server_without_the_value_or_with_an_error_says_so():
    clock = FakeClock()
    servers = Servers(clock)
    servers.serve(A, REC.name, {"stale"})
    servers.refusing.add(B)
    with pytest.raises(PropagationTimeout) as err:
        check(clock, servers).wait_visible([REC], Deadline(clock, 5))
    assert err.value.missing == {REC.name: ["192.0.2.1:53 (answered without the value)",
                                            "192.0.2.2:53 (answered REFUSED)"]}


def test_only_the_records_not_seen_are_reported():
    clock = FakeClock()
    servers = Servers(clock)
    servers.serve(A, REC.name, {REC.value})
    with pytest.raises(PropagationTimeout) as err:
        check(clock, servers, resolvers=(A,)).wait_visible([REC, OTHER], Deadline(clock, 5))
    assert list(err.value.missing) == [OTHER.name]


def test_the_zones_name_servers_are_asked_when_no_resolvers_are_configured():
    clock = FakeClock()
    servers = Servers(clock)
    looked_up, zones_asked = [], []

    def addresses(host):
        looked_up.append(host)
        return {"ns1.awsdns.test": ["192.0.2.1"], "ns2.awsdns.test": ["192.0.2.2"]}[host]

    def name_servers(record):
        zones_asked.append(record.zone_id)
        return {"Z1": ["ns1.awsdns.test"], "Z2": ["ns1.awsdns.test", "ns2.awsdns.test"]}[record.zone_id]

    for s in (A, B):
        servers.serve(s, REC.name, {REC.value, WILD.value})
        servers.serve(s, OTHER.name, {OTHER.value})
    check(clock, servers, resolvers=(), addresses=addresses, name_servers=name_servers).wait_visible(
        [REC, WILD, OTHER], Deadline(clock, 60))
    assert sorted(zones_asked) == ["Z1", "Z2"], "each zone's name servers looked up once"
    assert sorted((s, n) for s, n, _ in servers.asked) == [(A, REC.name), (A, OTHER.name), (B, OTHER.name)]
    assert sorted(looked_up) == ["ns1.awsdns.test", "ns2.awsdns.test"], "each host resolved once"


def test_fixed_resolvers_are_asked_instead_of_the_zones_name_servers():
    clock = FakeClock()
    servers = Servers(clock)
    servers.serve(A, REC.name, {REC.value})

    def name_servers(record):
        raise AssertionError("the zone's name servers are not looked up when resolvers are configured")

    check(clock, servers, resolvers=(A,), name_servers=name_servers).wait_visible([REC], Deadline(clock, 60))
    assert [s for s, _, _ in servers.asked] == [A]


def test_no_server_address_skips_the_check():
    clock = FakeClock()
    servers = Servers(clock)
    check(clock, servers, resolvers=(), addresses=lambda host: [],
          name_servers=lambda record: ["ns.unresolvable.test"]).wait_visible([REC], Deadline(clock, 60))
    assert servers.asked == []


def test_name_server_addresses_prefer_ipv4(monkeypatch):
    def getaddrinfo(host, port, proto=0):
        return [(socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("2001:db8::1", 53, 0, 0)),
                (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.7", 53)),
                (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.7", 53))]
    monkeypatch.setattr(dns_check.socket, "getaddrinfo", getaddrinfo)
    assert host_addresses("ns.test") == ["192.0.2.7"]
    monkeypatch.setattr(dns_check.socket, "getaddrinfo", lambda *a, **k: getaddrinfo(*a, **k)[:1])
    assert host_addresses("ns.test") == ["2001:db8::1"]

    def fails(*_, **__):
        raise socket.gaierror("no such host")
    monkeypatch.setattr(dns_check.socket, "getaddrinfo", fails)
    assert host_addresses("ns.test") == []


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:5353", [("127.0.0.1", 5353)]),
    ("8.8.8.8, 1.1.1.1:53", [("8.8.8.8", 53), ("1.1.1.1", 53)]),
    ("[2001:db8::1]:5353,2001:db8::2", [("2001:db8::1", 5353), ("2001:db8::2", 53)]),
    ("", []), (None, []),
])
def test_parse_resolvers(text, expected):
    assert parse_resolvers(text) == expected
