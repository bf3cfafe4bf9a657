"""dns-persist-01 (draft-ietf-acme-dns-persist): the persistent `_validation-persist` TXT record.

Pure: builds the value we want, parses what is published, and judges the published set against
the wanted record. The time is an argument (`now`), never read here, so renewal planning can ask
"will this record still validate at the next run?" without a clock.

Two drafts are in the field: -01 (Pebble 2.10, Google Trust Services) puts the account URL in
clear; -02 (2026-09-20) puts a hashed URI there, keyed by the directory's `accountHashPrefix`
(§4.1: `<prefix>sha-256/<b64url(SHA-256(len(domain) || domain || thumbprint || account URL))>`).
A -01 record does not validate at a -02 CA, so the draft is always explicit.
"""
from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from .errors import CertrenewError

LABEL = "_validation-persist"
CHALLENGE_TYPE = "dns-persist-01"
HASH_ALG = "sha-256"  # the one algorithm -02 makes mandatory for clients and CAs
MAX_ISSUERS = 10  # -02 §3.1: a challenge with more (or none) is malformed
TXT_CHUNK = 255  # RFC 1035 character-string limit; -02 §9.1 wants longer RDATA split

_TAG = re.compile(r"[A-Za-z0-9](?:-*[A-Za-z0-9])*\Z")
_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*\Z")  # RFC 8659: printable, no ';', no space
_LABEL = re.compile(r"[A-Za-z0-9](?:-*[A-Za-z0-9])*\Z")
_WSP = " \t"


class Draft(enum.Enum):
    """Which revision of the draft the CA speaks."""

    D01 = "draft-ietf-acme-dns-persist-01"
    D02 = "draft-ietf-acme-dns-persist-02"


class PersistError(CertrenewError):
    """A dns-persist-01 input cannot be used: a malformed record, challenge or wanted record."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"dns-persist-01 {what}: {reason}")


# ---------------------------------------------------------------------------- names

def normalize_domain(name: str) -> str:
    """-02 §9.2: lowercase, A-labels, no trailing dot (str.lower stands in for case-folding)."""
    name = name.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError as error:
        raise PersistError(f"domain {name!r}", f"not a valid IDN ({error})") from None


def base_domain(domain: str) -> str:
    """The FQDN a record is published at: a wildcard `*.example.com` is validated at `example.com`."""
    name = normalize_domain(domain)
    return name[2:] if name.startswith("*.") else name


def record_name(domain: str) -> str:
    """`_validation-persist.<domain>`, the wildcard label dropped (no trailing dot)."""
    base = base_domain(domain)
    if not base or "*" in base:
        raise PersistError(f"domain {domain!r}", "needs a name (a wildcard only as the first label)")
    return f"{LABEL}.{base}"


# ---------------------------------------------------------------------------- -02 hashed URI

def hashed_account_uri(prefix: str, account_url: str, thumbprint: str, domain: str | None) -> str:
    """-02 §4.1 hashed URI: `domain` None uses the `*` opt-out (valid for every domain).

    `thumbprint` is the 43-character unpadded base64url SHA-256 JWK thumbprint of the account key.
    """
    if not prefix:
        raise PersistError("accountHashPrefix", "missing: the CA's directory meta must advertise it for -02")
    if len(thumbprint) != 43 or not re.fullmatch(r"[A-Za-z0-9_-]+", thumbprint):
        raise PersistError("account key thumbprint", "want 43 characters of unpadded base64url (RFC 7638 SHA-256)")
    name = "*" if domain is None else base_domain(domain)
    raw = name.encode("ascii")
    digest = hashlib.sha256(bytes([len(raw)]) + raw + thumbprint.encode("ascii") + account_url.encode("ascii"))
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")
    return f"{prefix}{HASH_ALG}/{encoded}"


# ---------------------------------------------------------------------------- the wanted record

@dataclass(frozen=True)
class WantedRecord:
    """What we want published at `record_name(domain)` for one CA and one account.

    -01 needs issuer and account_url; -02 also needs the account key thumbprint and the
    directory's accountHashPrefix (and hashes `domain` unless `domain_bound` is False).
    """

    issuer: str
    account_url: str
    wildcard: bool = False
    persist_until: dt.datetime | None = None
    domain: str = ""
    account_thumbprint: str = ""
    account_hash_prefix: str = ""
    domain_bound: bool = True

    def __post_init__(self) -> None:
        if self.persist_until is not None and self.persist_until.tzinfo is None:
            raise PersistError("persist_until", "must be timezone-aware (UTC seconds go into the record)")
        _check_issuer(self.issuer, "issuer")
        if not self.account_url or not _VALUE.match(self.account_url):
            raise PersistError("account URL", f"{self.account_url!r} is empty or has spaces or ';'")

    def accounturi(self, draft: Draft) -> str:
        """The accounturi the record carries under `draft`."""
        if draft is Draft.D01:
            return self.account_url
        if self.domain_bound and not self.domain:
            raise PersistError("wanted record", "-02 hashes the domain: set `domain` (or domain_bound=False)")
        return hashed_account_uri(self.account_hash_prefix, self.account_url, self.account_thumbprint,
                                  self.domain if self.domain_bound else None)

    def value(self, draft: Draft) -> str:
        """The TXT value: `<issuer>; accounturi=<uri>[; policy=wildcard][; persistUntil=<unix s>]`."""
        parts = [normalize_domain(self.issuer), f"accounturi={self.accounturi(draft)}"]
        if self.wildcard:
            parts.append("policy=wildcard")
        if self.persist_until is not None:
            parts.append(f"persistUntil={int(self.persist_until.timestamp())}")
        return "; ".join(parts)

    def our_accounturis(self) -> frozenset[str]:
        """Every accounturi that names our account: cleartext, and hashed when -02 inputs are set."""
        uris = {self.account_url}
        if self.account_hash_prefix and self.account_thumbprint:
            uris.add(hashed_account_uri(self.account_hash_prefix, self.account_url, self.account_thumbprint, None))
            if self.domain:
                uris.add(hashed_account_uri(self.account_hash_prefix, self.account_url,
                                            self.account_thumbprint, self.domain))
        return frozenset(uris)


@dataclass(frozen=True)
class PersistIdentity:
    """Who a certificate's records name: the CA's issuer domain name and our account, in the
    draft the CA speaks (with what -02 hashes the account URL with)."""

    issuer: str
    account_url: str
    draft: Draft
    account_thumbprint: str = ""
    account_hash_prefix: str = ""


def wanted_records(domains: Sequence[str], who: PersistIdentity,
                   persist_until: dt.datetime | None = None) -> dict[str, WantedRecord]:
    """Record name -> the record a certificate's names need: one per base domain, with
    `policy=wildcard` when a wildcard of that domain is among the names."""
    out: dict[str, WantedRecord] = {}
    for domain in domains:
        base = base_domain(normalize_domain(domain))
        name = record_name(base)
        wildcard = domain.startswith("*.") or (name in out and out[name].wildcard)
        out[name] = WantedRecord(issuer=who.issuer, account_url=who.account_url, wildcard=wildcard,
                                 persist_until=persist_until, domain=base,
                                 account_thumbprint=who.account_thumbprint,
                                 account_hash_prefix=who.account_hash_prefix)
    return out


def _check_issuer(name: str, what: str) -> None:
    labels = name.rstrip(".").split(".")
    if not name or not all(_LABEL.match(label) for label in labels):
        raise PersistError(what, f"{name!r} is not a domain name")


# ---------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class ParsedRecord:
    """One published value: issuer and parameters (tags lowercased; values as written)."""

    issuer: str
    params: Mapping[str, str]
    raw: str

    @property
    def accounturi(self) -> str | None:
        return self.params.get("accounturi")

    @property
    def wildcard(self) -> bool:
        return self.params.get("policy", "").lower() == "wildcard"

    @property
    def persist_until(self) -> int | None:
        """persistUntil in Unix seconds (parse_value has checked it is an integer)."""
        text = self.params.get("persistuntil")
        return None if text is None else int(text)


def issuer_of(value: str) -> str:
    """The issuer part of a value (before the first ';'), normalized; "" if there is none."""
    head = value.split(";", 1)[0].strip(_WSP)
    return head.rstrip(".").lower()


def parse_value(value: str) -> ParsedRecord:
    """Parse an RFC 8659 issue-value; raise PersistError naming what is malformed.

    Tags are case-insensitive and may not repeat; whitespace around ';' and '=' is allowed.
    """
    head, sep, rest = value.partition(";")
    issuer = head.strip(_WSP)
    if not issuer:
        raise PersistError(f"record {value!r}", "no issuer domain name before ';'")
    _check_record_issuer(issuer, value)
    params: dict[str, str] = {}
    if sep and rest.strip(_WSP):
        for part in rest.split(";"):
            tag, value_ = _parse_parameter(part, value)
            if tag in params:
                raise PersistError(f"record {value!r}", f"duplicate tag {tag!r}")
            params[tag] = value_
    if "persistuntil" in params and not re.fullmatch(r"[0-9]+", params["persistuntil"]):
        raise PersistError(f"record {value!r}", "persistUntil is not a base-10 integer")
    return ParsedRecord(issuer.rstrip(".").lower(), params, value)


def _check_record_issuer(issuer: str, value: str) -> None:
    try:
        _check_issuer(issuer, f"record {value!r}")
    except PersistError:
        raise PersistError(f"record {value!r}", f"issuer {issuer!r} is not a domain name") from None


def _parse_parameter(part: str, value: str) -> tuple[str, str]:
    tag, eq, text = part.partition("=")
    tag, text = tag.strip(_WSP), text.strip(_WSP)
    if not eq or not _TAG.match(tag):
        raise PersistError(f"record {value!r}", f"parameter {part.strip(_WSP)!r} is not tag=value")
    if not _VALUE.match(text):
        raise PersistError(f"record {value!r}", f"value of {tag!r} has spaces or non-printable characters")
    return tag.lower(), text


# ---------------------------------------------------------------------------- judging

class Verdict(enum.Enum):
    PRESENT = "present"  # a record of ours will validate (and, with the margin, keep validating)
    MISSING = "missing"  # no record for our issuer and account
    STALE = "stale"  # ours is there but will not validate: rewrite it


@dataclass(frozen=True)
class Judgement:
    """The verdict, a reason a person can act on, and how the published values divide.

    `ours`: values for our issuer naming our account (a rewrite replaces them);
    `others`: every other value at the name (other issuers, other accounts): leave them alone.
    """

    verdict: Verdict
    reason: str
    ours: tuple[str, ...] = ()
    others: tuple[str, ...] = ()

    def desired_values(self, wanted_value: str) -> tuple[str, ...]:
        """The record set to publish: the others kept, ours replaced by the wanted value."""
        return (*self.others, wanted_value)


def judge(values: Iterable[str], wanted: WantedRecord, draft: Draft, *, now: dt.datetime,
          margin: dt.timedelta = dt.timedelta(0)) -> Judgement:
    """Judge the TXT values at `record_name(domain)` against `wanted` at `now` (+ `margin`)."""
    if now.tzinfo is None:
        raise PersistError("now", "must be timezone-aware")
    issuer = normalize_domain(wanted.issuer)
    ours_ids = wanted.our_accounturis()
    expected = wanted.accounturi(draft)
    ours: list[str] = []
    others: list[str] = []
    problems: list[str] = []
    for value in values:
        if issuer_of(value) != issuer:
            others.append(value)
            continue
        try:
            record = parse_value(value)
        except PersistError as error:
            ours.append(value)
            problems.append(f"malformed ({error.reason})")
            continue
        (ours if record.accounturi in ours_ids else others).append(value)
        problem = _problem(record, wanted, expected, now, margin)
        if problem is None:
            return Judgement(Verdict.PRESENT, f"{value!r} validates", tuple(ours), tuple(others))
        problems.append(problem)
    if not problems:
        return Judgement(Verdict.MISSING, f"no record for issuer {issuer}", (), tuple(others))
    return Judgement(Verdict.STALE, "; ".join(problems), tuple(ours), tuple(others))


def _problem(record: ParsedRecord, wanted: WantedRecord, expected: str, now: dt.datetime,
             margin: dt.timedelta) -> str | None:
    """Why this record (of our issuer) will not do, or None."""
    if record.accounturi is None:
        return "no accounturi"
    if record.accounturi != expected:
        return f"accounturi is {record.accounturi}, want {expected}"
    if wanted.wildcard and not record.wildcard:
        return "no policy=wildcard, which a wildcard name needs"
    until = record.persist_until
    if until is not None and until <= now.timestamp():
        return f"persistUntil {_when(until)} has passed"
    if until is not None and until <= (now + margin).timestamp():
        return f"persistUntil {_when(until)} passes within {margin}"
    return None


def _when(seconds: int) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat()
    except (OverflowError, ValueError, OSError):
        return str(seconds)


# ---------------------------------------------------------------------------- what the CA offers

def offered_issuers(challenge: Mapping[str, Any]) -> tuple[str, ...]:
    """The issuer domain names of a challenge object (-02 `issuerDomainNames`, -01 `issuer-domain-names`)."""
    names = challenge.get("issuerDomainNames", challenge.get("issuer-domain-names"))
    if not isinstance(names, (list, tuple)) or not names or len(names) > MAX_ISSUERS:
        raise PersistError("challenge", f"issuer domain names must be 1 to {MAX_ISSUERS} names, got {names!r}")
    if not all(isinstance(n, str) and n for n in names):
        raise PersistError("challenge", f"issuer domain names must be strings, got {names!r}")
    return tuple(normalize_domain(n) for n in names)


def pick_draft(challenge: Mapping[str, Any] | None = None,
               directory_meta: Mapping[str, Any] | None = None) -> Draft:
    """-02 when the CA shows a -02 field (directory `accountHashPrefix` or `issuerDomainNames`,
    challenge `issuerDomainNames`); otherwise -01 (what Pebble 2.10 and GTS speak)."""
    meta = directory_meta or {}
    chall = challenge or {}
    if "accountHashPrefix" in meta or "issuerDomainNames" in meta or "issuerDomainNames" in chall:
        return Draft.D02
    return Draft.D01


def pick_issuer(offered: Sequence[str], caa_identities: Sequence[str] | None = None) -> str:
    """The first offered name that is also in the directory's caaIdentities, else the first offered."""
    if not offered:
        raise PersistError("challenge", "offers no issuer domain name")
    names = [normalize_domain(n) for n in offered]
    caa = {normalize_domain(n) for n in caa_identities or ()}
    return next((n for n in names if n in caa), names[0])


# ---------------------------------------------------------------------------- TXT presentation

def txt_rdata(value: str) -> str:
    """The value as zone-file TXT RDATA (Route53's form): quoted 255-octet strings, escaped."""
    raw = value.encode("ascii")
    chunks = [raw[i:i + TXT_CHUNK] for i in range(0, len(raw), TXT_CHUNK)] or [b""]
    quoted = (c.decode("ascii").replace("\\", "\\\\").replace('"', '\\"') for c in chunks)
    return " ".join(f'"{c}"' for c in quoted)


def txt_value(rdata: str) -> str:
    """The inverse of `txt_rdata`: join the quoted strings of a TXT RDATA, undoing escapes."""
    out, i, inside = [], 0, False
    while i < len(rdata):
        char = rdata[i]
        if char == '"':
            inside = not inside
        elif char == "\\" and inside:
            decimal = rdata[i + 1:i + 4]
            if decimal.isdigit() and len(decimal) == 3:
                out.append(chr(int(decimal)))
                i += 3
            else:
                out.append(rdata[i + 1:i + 2])
                i += 1
        elif inside:
            out.append(char)
        elif char not in _WSP:
            raise PersistError(f"TXT {rdata!r}", "text outside quotes")
        i += 1
    if inside:
        raise PersistError(f"TXT {rdata!r}", "unterminated quote")
    return "".join(out)
