"""Propagation check: ask the zone's authoritative servers (or fixed resolvers) for our values."""
from __future__ import annotations

import logging
import socket

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from ..errors import PropagationTimeout
from ..models import Deadline
from ..ports import TxtRecord

log = logging.getLogger("certrenew.dns")

QUERY_TIMEOUT = 2.0
FIRST_POLL = 0.5
MAX_POLL = 5.0


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
    def __init__(self, resolvers: list[tuple[str, int]] | None = None) -> None:
        self.resolvers = list(resolvers or [])

    @property
    def uses_fixed_resolvers(self) -> bool:
        return bool(self.resolvers)

    def wait_visible(self, records: list[TxtRecord], name_servers: dict[str, list[str]],
                     deadline: Deadline) -> None:
        pending = {(r.name, r.value): self._servers_for(r, name_servers) for r in records}
        interval = FIRST_POLL
        while True:
            for key in list(pending):
                pending[key] = [s for s in pending[key] if not _serves(s, *key)]
                if not pending[key]:
                    del pending[key]
            if not pending:
                return
            if deadline.remaining() <= interval:
                missing: dict[str, list[str]] = {}
                for (name, _), servers in pending.items():
                    missing.setdefault(name, []).extend(f"{h}:{p}" for h, p in servers)
                raise PropagationTimeout(missing)
            deadline.sleep(interval, "DNS propagation")
            interval = min(interval * 2, MAX_POLL)

    def _servers_for(self, record: TxtRecord, name_servers: dict[str, list[str]]) -> list[tuple[str, int]]:
        if self.resolvers:
            return list(self.resolvers)
        addresses = []
        for host in name_servers.get(record.name, []):
            addresses += [(ip, 53) for ip in _addresses(host)]
        if not addresses:
            log.warning("no name server address for %s: skipping its propagation check", record.name)
        return addresses


def _addresses(host: str) -> list[str]:
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, 53, proto=socket.IPPROTO_UDP)})
    except OSError:
        return []


def _serves(server: tuple[str, int], name: str, value: str) -> bool:
    """Whether `server` answers `value` among the TXT strings of `name`."""
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    host, port = server
    try:
        response, _ = dns.query.udp_with_fallback(query, host, timeout=QUERY_TIMEOUT, port=port)
    except (dns.exception.DNSException, OSError) as exc:
        log.debug("query %s TXT @%s:%d failed: %s", name, host, port, exc)
        return False
    for rrset in response.answer:
        if rrset.rdtype != dns.rdatatype.TXT:
            continue
        for rdata in rrset:
            if b"".join(rdata.strings).decode("ascii", "replace") == value:
                return True
    return False
