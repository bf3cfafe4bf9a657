"""DNS queries: the propagation check, the CNAME lookups of challenge-name delegation, and the
CAA sets a CA would find (DnsCaa, the CaaLookup port).

After Route53 says INSYNC, every (name, server) pair is queried (concurrently, one query per
name and server whatever the number of values on the name) until each server serves each of
our values, bounded by the deadline. The servers are the fixed resolvers when configured, else
the authoritative name servers of each record's zone (looked up once per zone). The error names
every record and the servers that did not see it, and why: no answer at all, or an answer
without the value.
"""
from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from ..caa import CaaRecord, format_record
from ..deadline import Deadline
from ..errors import DeadlineExceeded, DnsError, PropagationTimeout
from ..ports import NO_PROGRESS, Progress, TxtRecord

log = logging.getLogger("certrenew.dns")

QUERY_TIMEOUT = 2.0
FIRST_POLL = 0.5
MAX_POLL = 5.0
MAX_PARALLEL_QUERIES = 16
FINAL_LOOK = 0.5  # query timeout of the look taken when the deadline has come

Server = tuple[str, int]
# A query: the TXT strings a server answers for a name, None when it did not answer in time;
# it raises (with the reason as message) when the answer is an error.
Query = Callable[[Server, str, float], "set[str] | None"]
# The authoritative name servers (host names) of a record's zone.
NameServers = Callable[[TxtRecord], "list[str]"]


def parse_resolvers(text: str | None) -> list[tuple[str, int]]:
    """`ip[:port],...` (IPv6 as `[addr]:port`) into (ip, port) pairs."""
    out = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, port = item[1:].partition("]")
            port = port.lstrip(":")
        elif item.count(":") == 1:
            host, port = item.split(":")
        else:
            host, port = item, ""
        out.append((host, int(port) if port else 53))
    return out


class DnsPropagation:
    """The PropagationCheck port. `name_servers(record)` gives a zone's name servers when no
    fixed resolvers are configured (bootstrap: the DNS provider's); `query` and `addresses` are
    swappable for tests; `progress` hears of each record seen on all its servers."""

    def __init__(self, resolvers: list[tuple[str, int]] | None = None, *, name_servers: NameServers | None = None,
                 query: Query | None = None, addresses: Callable[[str], list[str]] | None = None,
                 query_timeout: float = QUERY_TIMEOUT, progress: Progress = NO_PROGRESS) -> None:
        self.resolvers = list(resolvers or [])
        self._progress = progress
        self._name_servers = name_servers
        self._query = query or query_txt
        self._addresses = addresses or host_addresses
        self._query_timeout = query_timeout
        self._address_cache: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def wait_visible(self, records: list[TxtRecord], deadline: Deadline) -> None:
        # (name, server) -> our values not yet seen there; why: what the last look got instead
        pending: dict[tuple[str, Server], set[str]] = {}
        servers = self._servers_by_name(records)
        for record in records:
            for server in servers[record.name]:
                pending.setdefault((record.name, server), set()).add(record.value)
        why: dict[tuple[str, Server], str] = {}
        rounds = []
        seen = [0]

        def all_seen() -> bool | None:
            rounds.append(1)
            self._look(pending, why, min(self._query_timeout, max(FINAL_LOOK, deadline.remaining())))
            now_seen = _records_seen(records, servers, pending)
            self._progress.advance(now_seen - seen[0])
            seen[0] = now_seen
            return not pending or None
        try:
            deadline.poll(all_seen, "DNS propagation", interval=FIRST_POLL, max_interval=MAX_POLL, backoff=2.0,
                          last_look=True)
        except DeadlineExceeded:
            raise _timeout(pending, why) from None
        log.info("%d TXT values seen on every server (%d round(s) of queries)", len(records), len(rounds))

    def _look(self, pending: dict[tuple[str, Server], set[str]], why: dict[tuple[str, Server], str],
              timeout: float) -> None:
        """One query per pending (name, server), concurrently; drop what is now fully seen."""
        keys = list(pending)

        def ask(key: tuple[str, Server]) -> set[str] | str:
            name, server = key
            try:
                answer = self._query(server, name, timeout)
            except Exception as exc:  # a broken answer is no answer
                log.debug("query %s TXT @%s:%d failed: %s", name, server[0], server[1], exc)
                return str(exc) or type(exc).__name__
            return "no answer" if answer is None else answer

        if len(keys) <= 1:
            answers = [ask(k) for k in keys]
        else:
            with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_QUERIES, len(keys))) as pool:
                answers = list(pool.map(ask, keys))
        for key, answer in zip(keys, answers):
            if isinstance(answer, str):
                why[key] = answer
                continue
            pending[key] -= answer
            if pending[key]:
                why[key] = "answered without the value"
            else:
                del pending[key]
                why.pop(key, None)

    def _servers_by_name(self, records: list[TxtRecord]) -> dict[str, list[Server]]:
        """The servers to ask about each record's name: the fixed resolvers, else the addresses
        of its zone's name servers (asked once per zone)."""
        if self.resolvers:
            return {r.name: list(self.resolvers) for r in records}
        by_zone: dict[str, list[Server]] = {}
        out: dict[str, list[Server]] = {}
        for record in records:
            if record.zone_id not in by_zone:
                hosts = self._name_servers(record) if self._name_servers else []
                by_zone[record.zone_id] = [(ip, 53) for host in hosts for ip in self._cached_addresses(host)]
            out[record.name] = by_zone[record.zone_id]
            if not out[record.name]:
                log.warning("no name server address for %s: skipping its propagation check", record.name)
        return out

    def _cached_addresses(self, host: str) -> list[str]:
        with self._lock:
            if host not in self._address_cache:
                self._address_cache[host] = self._addresses(host)
            return self._address_cache[host]


def _records_seen(records: list[TxtRecord], servers: dict[str, list[Server]],
                  pending: dict[tuple[str, Server], set[str]]) -> int:
    """How many of `records` every one of their servers serves now."""
    return sum(not any(r.value in pending.get((r.name, s), ()) for s in servers[r.name]) for r in records)


def _timeout(pending: dict[tuple[str, Server], set[str]], why: dict[tuple[str, Server], str]) -> PropagationTimeout:
    missing: dict[str, list[str]] = {}
    for (name, (host, port)) in sorted(pending):
        missing.setdefault(name, []).append(f"{host}:{port} ({why.get((name, (host, port)), 'not asked')})")
    return PropagationTimeout(missing)


class DnsAnswerError(Exception):
    """A server answered, but with an error code (REFUSED, SERVFAIL, ...)."""


def host_addresses(host: str) -> list[str]:
    """A name server's IPv4 addresses (a Lambda outside a VPC has no IPv6), else its IPv6 ones."""
    found: dict[int, set[str]] = {socket.AF_INET: set(), socket.AF_INET6: set()}
    try:
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, 53, proto=socket.IPPROTO_UDP):
            if family in found:
                found[family].add(sockaddr[0])
    except OSError as exc:
        log.warning("cannot resolve name server %s: %s", host, exc)
    return sorted(found[socket.AF_INET]) or sorted(found[socket.AF_INET6])


def _dnspython() -> Any:
    """dnspython, imported on first use: a run that checks no propagation and looks up no CNAME
    (a plan, a run with nothing due) never loads it."""
    import dns.exception
    import dns.message
    import dns.nameserver
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.resolver

    return dns


def query_txt(server: Server, name: str, timeout: float) -> set[str] | None:
    """The TXT strings `server` answers for `name` (empty for NXDOMAIN/NODATA); None if no answer."""
    dns = _dnspython()
    query = dns.message.make_query(name, dns.rdatatype.TXT)  # RD set: fixed resolvers may be recursive
    host, port = server
    try:
        response, _ = dns.query.udp_with_fallback(query, host, timeout=timeout, port=port)
    except (dns.exception.DNSException, OSError) as exc:
        log.debug("query %s TXT @%s:%d failed: %s", name, host, port, exc)
        return None
    if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DnsAnswerError(f"answered {dns.rcode.to_text(response.rcode())}")
    values = set()
    for rrset in response.answer:
        if rrset.rdtype != dns.rdatatype.TXT:
            continue
        for rdata in rrset:
            values.add(b"".join(rdata.strings).decode("ascii", "replace"))
    return values


# -- CNAMEs in public DNS -----------------------------------------------------------------------


def _lazy_resolver(nameservers: list[Server] | None, timeout: float, purpose: str) -> Callable[[], Any]:
    """A dnspython Resolver made on first use: one asking `nameservers` ((ip, port) pairs), else
    the system's; None when there is no resolver to ask (no /etc/resolv.conf)."""
    state: dict[str, Any] = {}

    def resolver() -> Any:
        dns = _dnspython()
        if "resolver" not in state:
            try:
                made = dns.resolver.Resolver(configure=not nameservers)
            except Exception as exc:  # no /etc/resolv.conf: nothing to ask
                log.warning("no DNS resolver configured for %s: %s", purpose, exc)
                made = None
            if made is not None:
                if nameservers:
                    made.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers]
                made.lifetime = timeout
            state["resolver"] = made
        return state["resolver"]

    return resolver


def dns_cname_lookup(nameservers: list[Server] | None = None,
                     timeout: float = 3.0) -> Callable[[str], "str | None"]:
    """A CNAME lookup for challenge-name delegation (the DNS provider's `lookup_cname`) that
    asks `nameservers` ((ip, port) pairs), else the system's resolver.

    Any failure (no such name, no answer, no resolver, time-out) reads as "no CNAME"; the
    caller then reports that no hosted zone holds the name."""
    resolver = _lazy_resolver(nameservers, timeout, "CNAME lookups")

    def lookup(name: str) -> str | None:
        dns = _dnspython()
        made = resolver()
        if made is None:
            return None
        try:
            answer = made.resolve(name, dns.rdatatype.CNAME, raise_on_no_answer=False)
        except dns.exception.DNSException as exc:
            log.debug("CNAME lookup of %s: %s", name, exc)
            return None
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.CNAME and _bare(rrset.name.to_text()) == _bare(name):
                return rrset[0].target.to_text()
        return None

    return lookup


# -- CAA in public DNS --------------------------------------------------------------------------


class DnsCaa:
    """The CaaLookup port: the CAA set public DNS serves at a name, as a CA would see it,
    through `nameservers` ((ip, port) pairs: CERTRENEW_DNS_RESOLVERS) or the system's resolver.

    A name with no CAA (NXDOMAIN, no answer, or REFUSED by every server: an authoritative-only
    server outside its zones) has none. A lookup that fails otherwise (SERVFAIL, time-out) is a
    DnsError: a CA that cannot read the CAA set does not issue either."""

    def __init__(self, nameservers: list[Server] | None = None, timeout: float = 3.0) -> None:
        self._resolver = _lazy_resolver(nameservers, timeout, "CAA lookups")

    def caa(self, name: str) -> list[str] | None:
        """The CAA values at exactly `name` (CNAMEs followed by the resolver), in Route53's
        presentation (`0 issue "..."`), or None."""
        dns = _dnspython()
        made = self._resolver()
        if made is None:
            raise DnsError(f"cannot look up CAA at {name}: no DNS resolver is configured "
                           "(set CERTRENEW_DNS_RESOLVERS)")
        qname = name if name.endswith(".") else name + "."
        try:
            answer = made.resolve(qname, dns.rdatatype.CAA, raise_on_no_answer=False, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.resolver.NoNameservers as exc:
            if _all_refused(exc):
                log.debug("CAA lookup of %s: every server refused (outside their zones)", name)
                return None
            raise DnsError(f"cannot look up CAA at {name}: {exc}") from None
        except dns.exception.DNSException as exc:
            raise DnsError(f"cannot look up CAA at {name}: {exc}") from None
        values = [_caa_text(rdata) for rrset in answer.response.answer
                  if rrset.rdtype == dns.rdatatype.CAA for rdata in rrset]
        return values or None


def _all_refused(exc: Exception) -> bool:
    errors = getattr(exc, "kwargs", {}).get("errors") or []
    return bool(errors) and all(len(e) > 3 and e[3] == "REFUSED" for e in errors)


def _caa_text(rdata: Any) -> str:
    """Rebuilt from the wire fields: dnspython's to_text escapes bytes in decimal, Route53 (and
    caa.parse_record) in octal."""
    return format_record(CaaRecord(rdata.flags, rdata.tag.decode("ascii", "replace"),
                                   rdata.value.decode("utf-8", "replace")))


def _bare(name: str) -> str:
    return name.rstrip(".").lower()
