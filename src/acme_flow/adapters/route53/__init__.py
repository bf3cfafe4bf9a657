"""Route53: the DNS-01 provider (dns01.py), the record sets a person manages through certrenew
(records.py: dns-persist-01 and CAA), and the Route53 calls both make (calls.py)."""
from __future__ import annotations

from .calls import MAX_CHARS_PER_BATCH, MAX_POLL, MAX_VALUES_PER_BATCH, PAGE_SIZE, TTL, Zone
from .dns01 import LOCATE_LISTING_PAGES, MAX_CNAME_HOPS, RETRY_BASE, WRITE_ATTEMPTS, Route53Dns
from .records import NEW_SET_TTL, Route53Records

__all__ = ["Route53Dns", "Route53Records", "Zone", "NEW_SET_TTL", "TTL", "MAX_VALUES_PER_BATCH", "MAX_CHARS_PER_BATCH", "MAX_POLL", "PAGE_SIZE",
           "LOCATE_LISTING_PAGES", "MAX_CNAME_HOPS", "RETRY_BASE", "WRITE_ATTEMPTS"]
