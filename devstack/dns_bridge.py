"""A DNS server (UDP and TCP) that answers from the hosted zones in moto's Route53.

Run as `python -m devstack.dns_bridge --port P --moto-url URL [--accounts ID,...]`. Zones and
records are read fresh from moto for every query, so a record written a moment ago is answered
at once. Zones of every account in ACCOUNTS are served (moto keeps Route53 per account: a zone
created with credentials from STS AssumeRole of `arn:aws:iam::OTHER_ACCOUNT:role/...` lives in
that account), so cross-account DNS-01 validates like the real thing.
Authoritative answers (AA) for the longest-matching zone, CNAME chasing across our zones,
NXDOMAIN / NODATA with the zone's SOA in the authority section, REFUSED outside our zones.
CAA values are decoded by `caa_from_route53` and sent byte for byte (`caa check` and RFC 8657
bindings are tested through it); every other type goes through dnslib's zone-file parser.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import threading
import time
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from dnslib import CAA, QTYPE, RCODE, RR, DNSRecord
import dnslib.server
from dnslib.server import BaseResolver, DNSLogger, DNSServer

log = logging.getLogger("devstack.dns_bridge")

MAX_CNAME_CHAIN = 8
DEFAULT_ACCOUNT = "123456789012"  # moto's default account
OTHER_ACCOUNT = "111111111111"  # a second account for cross-account (role_arn) tests
ACCOUNTS = (DEFAULT_ACCOUNT, OTHER_ACCOUNT)
_MOTO_SOA_WRAPPED = re.compile(r"^\{'Value': '(.*)'\}$")  # moto 5.2 stores the default SOA like this
_OCTAL_ESCAPE = re.compile(r"\\(\d{3})")
_CAA_VALUE = re.compile(r"\s*(\d{1,3})[ \t]+([A-Za-z0-9]+)[ \t]+(.*?)\s*", re.S)


def normalize_name(name: str) -> str:
    """Lowercase, absolute (trailing dot), Route53 octal escapes decoded (`\\052` -> `*`)."""
    name = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), name.strip()).lower()
    return name if name.endswith(".") else name + "."


def is_within(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


@dataclass
class Zone:
    """A zone's records by owner name. Route53 record sets are parsed into RRs when their owner
    is first asked for: parsing every record of a zone for every query (a zone of 100 TXT
    records took ~60 ms) made a burst of validations wait longer than Pebble's 2 s DNS timeout."""

    name: str
    zone_id: str
    records: dict[str, list[RR]] = field(default_factory=dict)  # owner name -> RRs (all types)
    rrsets: dict[str, list[dict]] = field(default_factory=dict)  # owner name -> record sets not parsed yet
    _parsing: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def at(self, owner: str) -> list[RR] | None:
        """The RRs of `owner`, None when it has none (parsed on first use; queries share a Zone)."""
        with self._parsing:
            parsed = [rr for rrset in self.rrsets.pop(owner, ()) for rr in records_from_rrset(rrset)]
            if parsed:
                self.records.setdefault(owner, []).extend(parsed)
            return self.records.get(owner)

    def owners(self) -> set[str]:
        with self._parsing:
            return self.records.keys() | self.rrsets.keys()

    def soa(self) -> list[RR]:
        return [rr for rr in self.at(self.name) or [] if rr.rtype == QTYPE.SOA] or [_default_soa(self.name)]

    def name_exists(self, name: str) -> bool:
        """True for owners and for empty non-terminals (names with records below them)."""
        owners = self.owners()
        return name in owners or any(owner.endswith("." + name) for owner in owners)

    def lookup(self, name: str) -> list[RR] | None:
        """Records at `name` (synthesized from a wildcard if needed), or None if the name does not exist."""
        records = self.at(name)
        if records is not None:
            return records
        if self.name_exists(name):
            return []
        wildcard = self._wildcard_for(name)
        if wildcard is None:
            return None
        return [_renamed(rr, name) for rr in self.at(wildcard) or []]

    def _wildcard_for(self, name: str) -> str | None:
        """The `*.<closest encloser>` owner that covers `name` (RFC 4592), if any."""
        encloser = name
        while encloser != self.name:
            encloser = encloser.split(".", 1)[1]
            if self.name_exists(encloser):
                break
        candidate = "*." + encloser
        return candidate if self.at(candidate) is not None else None


def _default_soa(zone: str) -> RR:
    return RR.fromZone(f"{zone} 60 IN SOA ns-2048.awsdns-64.com. hostmaster.{zone} 1 7200 900 1209600 60")[0]


def _renamed(rr: RR, name: str) -> RR:
    return RR(rname=name, rtype=rr.rtype, rclass=rr.rclass, ttl=rr.ttl, rdata=rr.rdata)


def _absolute_target(rtype: str, value: str) -> str:
    """Route53 names in values are absolute even without the trailing dot."""
    if rtype in ("CNAME", "NS", "PTR") and not value.endswith("."):
        return value + "."
    return value


class WireCAA(CAA):
    """A CAA rdata whose value is bytes, packed as they are: dnslib's own CAA drops every `"`
    of a zone-file value (escaped ones too) and cannot read `\\DDD` escapes."""

    def pack(self, buffer):
        buffer.pack("!BB", self.flags, len(self.tag))
        buffer.append(self.tag.encode())
        buffer.append(self.value)

    def __repr__(self):
        return '%d %s "%s"' % (self.flags, self.tag, self.value.decode("utf-8", "backslashreplace"))

    toZone = __repr__


def caa_from_route53(value: str) -> WireCAA:
    """`0 issue "ca.example; accounturi=..."` as Route53 stores it: in the quoted value `\\"` and
    `\\\\` stand for themselves and `\\DDD` is an octal byte (Route53's escape for TXT)."""
    match = _CAA_VALUE.fullmatch(value)
    if match is None or int(match.group(1)) > 255:
        raise ValueError("not <flags 0-255> <tag> <value>")
    flags, tag, raw = int(match.group(1)), match.group(2), match.group(3)
    if not raw.startswith('"'):
        if not raw or re.search(r'[\s"\\]', raw):
            raise ValueError("the value is not one quoted string")
        return WireCAA(flags, tag, raw.encode())
    body = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', raw, re.S)
    if body is None:
        raise ValueError("the quoted value is not closed, or text follows it")
    return WireCAA(flags, tag, _unescaped(body.group(1)))


def _unescaped(text: str) -> bytes:
    def byte(m: re.Match) -> bytes:
        escape = m.group(1)
        return bytes([int(escape, 8)]) if len(escape) == 3 else escape
    return re.sub(rb"\\([0-3][0-7]{2}|.)", byte, text.encode(), flags=re.S)


def _parse_value(owner: str, ttl: int, rtype: str, value: str) -> list[RR]:
    if rtype == "CAA":
        return [RR(owner, QTYPE.CAA, ttl=ttl, rdata=caa_from_route53(value))]
    return RR.fromZone(f"{owner} {ttl} IN {rtype} {value}")


def records_from_rrset(rrset: dict) -> list[RR]:
    """Turn one Route53 ResourceRecordSet into dnslib RRs (unparseable values are skipped)."""
    rtype, ttl = rrset["Type"], rrset.get("TTL", 300)
    owner = normalize_name(rrset["Name"])
    out: list[RR] = []
    for item in rrset.get("ResourceRecords", []):
        value = item["Value"]
        wrapped = _MOTO_SOA_WRAPPED.match(value)
        value = _absolute_target(rtype, wrapped.group(1) if wrapped else value)
        try:
            out.extend(_parse_value(owner, ttl, rtype, value))
        except Exception as exc:  # noqa: BLE001 - one bad value must not break the zone
            log.warning("skipping %s %s %r: %s", owner, rtype, value, exc)
    return out


class Route53Source:
    """Reads hosted zones and their records from moto, across `accounts`."""

    def __init__(self, moto_url: str, accounts: tuple[str, ...] = ACCOUNTS):
        self._clients = {account: self._client(moto_url, account) for account in accounts}
        self._account_of: dict[str, str] = {}  # zone id -> account

    @staticmethod
    def _client(moto_url: str, account: str):
        client = boto3.client(
            "route53",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=5),
        )

        def add_account(request, **_):
            request.headers["x-moto-account-id"] = account

        client.meta.events.register("before-sign.route53.*", add_account)
        return client

    def zone_names(self) -> list[tuple[str, str]]:
        """(normalized name, zone id) of every hosted zone in every account."""
        zones: list[tuple[str, str]] = []
        for account, client in self._clients.items():
            for page in client.get_paginator("list_hosted_zones").paginate():
                for z in page["HostedZones"]:
                    self._account_of[z["Id"]] = account
                    zones.append((normalize_name(z["Name"]), z["Id"]))
        return zones

    def load(self, name: str, zone_id: str) -> Zone:
        zone = Zone(name, zone_id)
        client = self._clients.get(self._account_of.get(zone_id, DEFAULT_ACCOUNT)) or next(iter(self._clients.values()))
        pages = client.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=zone_id, PaginationConfig={"PageSize": 300})  # Route53's largest page
        for page in pages:
            for rrset in page["ResourceRecordSets"]:
                zone.rrsets.setdefault(normalize_name(rrset["Name"]), []).append(rrset)
        return zone


class FreshReads:
    """Reads from moto shared by concurrent queries, never older than the query that asks.

    A query arriving at time T takes a read that *started* at or after T (so every write done
    before the query is seen); queries arriving while such a read runs wait for it instead of
    reading again. Under a burst (Pebble validating 100 names at once) moto is read a few times,
    not once per query. Each key has its own condition: a read that ends wakes only the queries
    waiting for it (a thousand queries in flight all woken at the end of every read kept the
    bridge busy waking threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conditions: dict[str, threading.Condition] = {}
        self._done: dict[str, tuple[float, object]] = {}  # key -> (started, value)
        self._running: dict[str, float] = {}  # key -> started

    def get(self, key: str, arrival: float, read):
        with self._lock:
            condition = self._conditions.setdefault(key, threading.Condition(self._lock))
            while True:
                done = self._done.get(key)
                if done is not None and done[0] >= arrival:
                    return done[1]
                if key not in self._running:
                    started = time.monotonic()
                    self._running[key] = started
                    break
                condition.wait()
        try:
            value = read()
        except BaseException:
            with self._lock:
                del self._running[key]
                condition.notify_all()
            raise
        with self._lock:
            self._done[key] = (started, value)
            del self._running[key]
            condition.notify_all()
        return value


class QueryView:
    """The zones as seen by one query: the zone list is read once, each zone's records on first use."""

    def __init__(self, source: Route53Source, reads: FreshReads | None = None):
        self._source = source
        self._reads = reads or FreshReads()
        self._arrival = time.monotonic()
        self._zones = self._reads.get("\0zones", self._arrival, source.zone_names)
        self._loaded: dict[str, Zone] = {}

    def zone_for(self, name: str) -> Zone | None:
        matches = [(zname, zid) for zname, zid in self._zones if is_within(name, zname)]
        if not matches:
            return None
        zname, zid = max(matches, key=lambda m: len(m[0]))
        if zid not in self._loaded:
            self._loaded[zid] = self._reads.get(zid, self._arrival, lambda: self._source.load(zname, zid))
        return self._loaded[zid]


@dataclass
class Answer:
    rcode: int = RCODE.NOERROR
    authoritative: bool = True
    answer: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)


def resolve_name(view: QueryView, name: str, qtype: int) -> Answer:
    """Answer `qtype` for `name` from our zones, chasing CNAMEs that stay within them."""
    result = Answer()
    seen: set[str] = set()
    first = True
    while True:
        zone = view.zone_for(name)
        if zone is None:
            if first:
                result.rcode, result.authoritative = RCODE.REFUSED, False
            return result  # a CNAME leaving our zones: the client chases it
        records = zone.lookup(name)
        if records is None:
            result.rcode, result.authority = RCODE.NXDOMAIN, zone.soa()
            return result
        cname = [rr for rr in records if rr.rtype == QTYPE.CNAME]
        if cname and qtype not in (QTYPE.CNAME, QTYPE.ANY):
            result.answer.extend(cname)
            seen.add(name)
            name = str(cname[0].rdata.label).lower()
            first = False
            if name in seen or len(seen) >= MAX_CNAME_CHAIN:
                return result
            continue
        matching = [rr for rr in records if qtype == QTYPE.ANY or rr.rtype == qtype]
        result.answer.extend(matching)
        if not matching:
            result.authority = zone.soa()
        return result


class Route53Resolver(BaseResolver):
    """dnslib resolver backed by moto's Route53."""

    def __init__(self, source: Route53Source):
        self._source = source
        self._reads = FreshReads()

    def resolve(self, request: DNSRecord, handler) -> DNSRecord:
        reply = request.reply()
        reply.header.aa, reply.header.ra = 0, 0  # authoritative only, no recursion
        qname = str(request.q.qname).lower()
        qtype = request.q.qtype
        try:
            result = resolve_name(QueryView(self._source, self._reads), qname, qtype)
        except Exception:  # noqa: BLE001 - moto unreachable or broken
            log.exception("lookup of %s %s failed", qname, QTYPE.get(qtype))
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        reply.header.rcode = result.rcode
        reply.header.aa = int(result.authoritative)
        for rr in result.answer:
            reply.add_answer(rr)
        for rr in result.authority:
            reply.add_auth(rr)
        log.info(
            "%s %s %s -> %s %s",
            handler.protocol,
            qname,
            QTYPE.get(qtype),
            RCODE.get(result.rcode),
            [f"{rr.rname} {QTYPE.get(rr.rtype)} {rr.rdata}" for rr in result.answer],
        )
        return reply


class BurstTCPServer(dnslib.server.TCPServer):
    """Pebble validates over TCP, one connection per lookup: 100 certificates validated at once
    overflow socketserver's listen backlog of 5 and its connects time out."""

    request_queue_size = 512


def serve(port: int, moto_url: str, host: str = "127.0.0.1", accounts: tuple[str, ...] = ACCOUNTS) -> list[DNSServer]:
    """Start the UDP and TCP servers in background threads and return them."""
    resolver = Route53Resolver(Route53Source(moto_url, accounts))
    quiet = DNSLogger("-recv,-send,-request,-reply,-truncated,+error,-data", prefix=False)
    servers = [DNSServer(resolver, port=port, address=host, tcp=tcp, logger=quiet,
                         server=BurstTCPServer if tcp else None) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    return servers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--accounts", default=",".join(ACCOUNTS),
                        help="moto account ids whose zones are served (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    accounts = tuple(a.strip() for a in args.accounts.split(",") if a.strip())
    servers = serve(args.port, args.moto_url, args.host, accounts)
    log.info("DNS bridge on %s:%d (UDP+TCP), zones from %s", args.host, args.port, args.moto_url)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.stop()


if __name__ == "__main__":
    main()
