"""CAA (RFC 8659) bound to an ACME account (RFC 8657): parse, judge, plan. Pure: no DNS, no AWS.

Records are handled in Route53's presentation, one string per record value:
`0 issue "letsencrypt.org; accounturi=https://ca/acct/1; validationmethods=dns-01"`.
Inside the quoted value `\\"` and `\\\\` stand for themselves and `\\DDD` is an octal byte, the
escape Route53 uses for TXT values (RFC 1035 master files use decimal; issue and iodef values are
plain ASCII, so the difference only shows for other tags).

Why here and not at the CA: a CAA set that names another CA, or our CA with another account,
fails every order at finalization; `judge` tells before we ask, and `plan_zone` writes the set that
binds the zone to our account without dropping what others put there.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import InputError, Problem

CRITICAL = 128  # the issuer-critical flag
ISSUE, ISSUEWILD, IODEF = "issue", "issuewild", "iodef"
KNOWN_TAGS = frozenset({ISSUE, ISSUEWILD, IODEF})

_RECORD = re.compile(r"\s*(\d{1,3})[ \t]+([A-Za-z0-9]+)[ \t]+(.*?)\s*", re.S)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PARAM_TAG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_PARAM_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")
_METHOD = re.compile(r"[A-Za-z0-9-]+")
_WSP = " \t"


class MalformedCaa(InputError):
    """A CAA record, an issue value or a wanted entry does not follow RFC 8659/8657."""

    kind = "malformed CAA"


def _malformed(text: str, why: str) -> MalformedCaa:
    return MalformedCaa(Problem(repr(text), why))


@dataclass(frozen=True)
class CaaRecord:
    """One CAA record: flags, tag (as written; compared case-insensitively) and value."""

    flags: int
    tag: str
    value: str

    @property
    def critical(self) -> bool:
        return bool(self.flags & CRITICAL)

    @property
    def kind(self) -> str:
        return self.tag.lower()

    def __str__(self) -> str:
        return format_record(self)


@dataclass(frozen=True)
class IssueValue:
    """An issue/issuewild value: the issuer domain name ("" names no CA) and its parameters."""

    issuer: str
    parameters: tuple[tuple[str, str], ...] = ()

    def parameter(self, name: str) -> str | None:
        return next((v for k, v in self.parameters if k.lower() == name), None)

    @property
    def accounturi(self) -> str | None:
        return self.parameter("accounturi")

    @property
    def validationmethods(self) -> tuple[str, ...] | None:
        """The methods allowed, None when the parameter is absent (any method)."""
        raw = self.parameter("validationmethods")
        return None if raw is None else tuple(m for m in raw.split(",") if m)


# --- parsing and formatting -------------------------------------------------------------------

def parse_record(text: str) -> CaaRecord:
    """`0 issue "letsencrypt.org; ..."` -> CaaRecord; MalformedCaa names the text otherwise."""
    match = _RECORD.fullmatch(text)
    if match is None:
        raise _malformed(text, "a CAA record is <flags 0-255> <tag> <value>, e.g. 0 issue \"letsencrypt.org\"")
    flags, tag, raw = int(match.group(1)), match.group(2), match.group(3)
    if flags > 255:
        raise _malformed(text, f"flags {flags} is more than 255")
    return CaaRecord(flags, tag, _unquote(raw, text))


def _unquote(raw: str, text: str) -> str:
    """The value of a record: a quoted string with escapes, or one bare word."""
    if not raw.startswith('"'):
        if not raw or any(c in raw for c in ' \t"\\'):
            raise _malformed(text, "the value must be one quoted string")
        return raw
    out, i = bytearray(), 1
    while i < len(raw):
        char = raw[i]
        if char == '"':
            if i != len(raw) - 1:
                raise _malformed(text, "text after the closing quote")
            return _decoded(out, text)
        if char == "\\":
            i = _escape(raw, i, out, text)
            continue
        out += char.encode()
        i += 1
    raise _malformed(text, "the quoted value has no closing quote")


def _escape(raw: str, i: int, out: bytearray, text: str) -> int:
    """Decode the escape at raw[i] (a backslash) into `out`; the index after it."""
    digits = raw[i + 1:i + 4]
    if len(digits) == 3 and all(c in "01234567" for c in digits):
        if int(digits, 8) > 255:
            raise _malformed(text, f"escape \\{digits} is not a byte")
        out.append(int(digits, 8))
        return i + 4
    if i + 1 >= len(raw):
        raise _malformed(text, "a backslash at the end of the value")
    out += raw[i + 1].encode()
    return i + 2


def _decoded(out: bytearray, text: str) -> str:
    try:
        return out.decode()
    except UnicodeDecodeError as exc:
        raise _malformed(text, "the value is not UTF-8") from exc


def format_record(record: CaaRecord) -> str:
    """The Route53 value of a record: flags, tag and the value quoted (`"` and `\\` escaped,
    bytes outside printable ASCII as octal escapes)."""
    value = "".join(_escaped_byte(b) for b in record.value.encode())
    return f'{record.flags} {record.tag} "{value}"'


def _escaped_byte(byte: int) -> str:
    char = chr(byte)
    if char in '"\\':
        return "\\" + char
    return char if 0x20 <= byte <= 0x7E else f"\\{byte:03o}"


def parse_issue_value(value: str) -> IssueValue:
    """An issue/issuewild value per RFC 8659 §4.2: `[issuer] [; tag=value [; tag=value]...]`.
    Duplicate parameters are malformed (which one would a CA believe?)."""
    head, semicolon, rest = value.partition(";")
    issuer = head.strip(_WSP)
    if issuer and not _DOMAIN.fullmatch(issuer):
        raise _malformed(value, f"issuer {issuer!r} is not a domain name")
    parameters = _parameters(rest.strip(_WSP), value) if semicolon else ()
    names = [k.lower() for k, _ in parameters]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise _malformed(value, f"parameter {duplicated[0]!r} appears more than once")
    return IssueValue(issuer.lower(), parameters)


def _parameters(text: str, value: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    out = []
    for part in text.split(";"):
        tag, equals, val = part.partition("=")
        tag, val = tag.strip(_WSP), val.strip(_WSP)
        if not equals or not _PARAM_TAG.fullmatch(tag):
            raise _malformed(value, f"parameter {part.strip(_WSP)!r} is not tag=value")
        if not _PARAM_VALUE.fullmatch(val):
            raise _malformed(value, f"parameter {tag!r} has a value with spaces or control characters")
        out.append((tag, val))
    return tuple(out)


def format_issue_value(issue: IssueValue) -> str:
    """`issuer; tag=value; ...` (the form RFC 8657's examples use)."""
    return "; ".join([issue.issuer, *(f"{k}={v}" for k, v in issue.parameters)])


def _issue_or_none(record: CaaRecord) -> IssueValue | None:
    """The issue value of an issue/issuewild record, None when it is malformed: such a record
    still counts as present but authorizes no CA (the conservative reading CAs apply)."""
    try:
        return parse_issue_value(record.value)
    except MalformedCaa:
        return None


# --- the relevant set (RFC 8659 §3) ----------------------------------------------------------

@dataclass(frozen=True)
class RelevantSet:
    """The CAA records that govern a name, and the name (no trailing dot) they were found at."""

    name: str
    records: tuple[CaaRecord, ...]


def relevant_set(name: str, lookup: Callable[[str], list[str] | None]) -> RelevantSet | None:
    """The first non-empty CAA set from `name` up to the root, or None (no CAA anywhere).

    `lookup(name)` gets a name without trailing dot ("." for the root) and returns the CAA values
    at exactly that name in Route53's presentation, or None/[] when there are none. A wildcard
    `*.example.com` is looked up as `example.com` (RFC 8659 §3). CNAME following (RFC 8659 §3:
    a CAA query is answered through CNAMEs like any other) is the lookup's business: a DNS
    resolver does it; a Route53 reader must chase aliases itself."""
    current = normalize(name)
    while True:
        values = lookup(current or ".")
        if values:
            return RelevantSet(current or ".", tuple(_parsed_at(current or ".", v) for v in values))
        if not current:
            return None
        current = current.partition(".")[2]


def _parsed_at(name: str, value: str) -> CaaRecord:
    try:
        return parse_record(value)
    except MalformedCaa as exc:
        raise MalformedCaa(Problem(f"CAA at {name}", str(exc.problems[0]))) from exc


def normalize(name: str) -> str:
    """Lowercase, no trailing dot, no wildcard label: the name whose CAA set governs `name`."""
    name = name.strip().lower().rstrip(".")
    return name[2:] if name.startswith("*.") else name


# --- the judgement ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """Would the CA issue? `reason` is for people; `found_at` the name of the deciding CAA set."""

    allowed: bool
    reason: str
    found_at: str | None = None


def judge(caa: RelevantSet | None, issuers: Sequence[str], account_url: str, method: str,
          name: str) -> Verdict:
    """Would a CA known by `issuers` (its CAA issuer domain names) issue for `name` (a `*.`
    name is a wildcard) to the account `account_url` validated by `method`? RFC 8659 §4 and
    RFC 8657 §3-4: a critical unknown tag blocks; for a wildcard, issuewild properties win when
    present; an issue/issuewild property with no issuer (`;`) authorizes nobody; accounturi must
    equal ours and validationmethods must list our method when present."""
    if caa is None:
        return Verdict(True, "no CAA: any CA may issue")
    where = f"CAA at {caa.name}"
    critical = sorted({r.tag for r in caa.records if r.critical and r.kind not in KNOWN_TAGS})
    if critical:
        return Verdict(False, f"blocked: {where} has critical tag {critical[0]!r} no CA is known to "
                       "understand (flag 128)", caa.name)
    kind = _governing_kind(caa, name)
    if kind is None:
        return Verdict(True, f"allowed: {where} has no issue property, any CA may issue", caa.name)
    ours = {normalize(i) for i in issuers}
    entries = [(r, _issue_or_none(r)) for r in caa.records if r.kind == kind]
    matching = [(r, v) for r, v in entries if v is not None and v.issuer in ours]
    if not matching:
        return Verdict(False, f"blocked: {where} {_allows_only(entries, kind)}", caa.name)
    refusals = [_refusal(v, account_url, method) for _, v in matching]
    if None in refusals:
        return Verdict(True, f"allowed: {where} authorizes {_name_of(matching, refusals)} for our account",
                       caa.name)
    return Verdict(False, "blocked: " + "; ".join(dict.fromkeys(r for r in refusals if r)), caa.name)


def _governing_kind(caa: RelevantSet, name: str) -> str | None:
    kinds = {r.kind for r in caa.records}
    if name.strip().startswith("*.") and ISSUEWILD in kinds:
        return ISSUEWILD
    return ISSUE if ISSUE in kinds else None


def _allows_only(entries: list[tuple[CaaRecord, IssueValue | None]], kind: str) -> str:
    named = sorted({v.issuer for _, v in entries if v is not None and v.issuer})
    if named:
        return f"allows only {', '.join(named)}" + (" (issuewild)" if kind == ISSUEWILD else "")
    return f'forbids every CA ({kind} ";")'


def _refusal(issue: IssueValue, account_url: str, method: str) -> str | None:
    """Why this entry of our CA does not authorize us, None when it does."""
    if issue.accounturi is not None and issue.accounturi != account_url:
        return f"accounturi is {issue.accounturi}, ours is {account_url}"
    methods = issue.validationmethods
    if methods is not None and (method not in methods or not all(_METHOD.fullmatch(m) for m in methods)):
        return f"validationmethods is {','.join(methods) or '(none)'}, we validate with {method}"
    return None


def _name_of(matching: list[tuple[CaaRecord, IssueValue]], refusals: list[str | None]) -> str:
    return matching[refusals.index(None)][1].issuer


# --- the plan for one zone --------------------------------------------------------------------

@dataclass(frozen=True)
class WantedIssuer:
    """An entry we want at a zone apex: one CA issuer name, bound to our account and methods;
    `wildcard` when a configured name of this CA in the zone is a wildcard (adds issuewild)."""

    issuer: str
    account_url: str
    methods: tuple[str, ...] = ("dns-01",)
    wildcard: bool = False


@dataclass(frozen=True)
class CaaPlan:
    """The whole new CAA set of a zone apex (write it in one UPSERT) and how it differs."""

    zone: str
    records: tuple[CaaRecord, ...]
    added: tuple[CaaRecord, ...]
    removed: tuple[CaaRecord, ...]
    kept: tuple[CaaRecord, ...]
    warnings: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)

    def values(self) -> list[str]:
        """The Route53 record values of the new set."""
        return [format_record(r) for r in self.records]


def plan_zone(zone: str, existing: Sequence[str], wanted: Sequence[WantedIssuer],
              exclusive: bool = False) -> CaaPlan:
    """The CAA set binding `zone` to our accounts. Adds an issue (and issuewild) entry per wanted
    issuer with accounturi and validationmethods; an entry of the same issuer, tag and account
    with other parameters is replaced; other CAs' entries are kept unless `exclusive` (which
    drops every issue/issuewild entry that is not ours, and keeps iodef and other tags)."""
    zone = normalize(zone)
    if not wanted:
        raise MalformedCaa(Problem(zone, "no CA to authorize"))
    current = [parse_record(v) for v in existing]
    desired = _desired(wanted)
    kept, removed, satisfied = _sorted_existing(current, desired, exclusive)
    added = tuple(r for r in desired if _key(r) not in satisfied)
    records = tuple(kept) + added
    warnings = _warnings(zone, current, records, wanted) + _dropped(zone, removed, records)
    return CaaPlan(zone, records, added, tuple(removed), tuple(kept), tuple(warnings))


def _dropped(zone: str, removed: list[CaaRecord], after: tuple[CaaRecord, ...]) -> list[str]:
    """CAAs whose every entry the plan takes away (exclusive): said out loud."""
    gone = sorted({_issuer_label(r) for r in removed} - {_issuer_label(r) for r in after})
    if not gone:
        return []
    return [f"exclusive: removing every entry of {', '.join(gone)} from {zone}: they may no longer issue there"]


def _issuer_label(record: CaaRecord) -> str:
    issue = _issue_or_none(record)
    if issue is None:
        return format_record(record)
    return issue.issuer or f'{record.kind} ";"'


def _desired(wanted: Sequence[WantedIssuer]) -> list[CaaRecord]:
    out: dict[tuple, CaaRecord] = {}
    for entry in wanted:
        value = _bound_value(entry)
        for tag in (ISSUE, ISSUEWILD) if entry.wildcard else (ISSUE,):
            record = CaaRecord(0, tag, value)
            out.setdefault(_key(record), record)
    return list(out.values())


def _bound_value(entry: WantedIssuer) -> str:
    """`issuer; accounturi=U; validationmethods=M` after checking each part can be written."""
    issuer = normalize(entry.issuer)
    if not _DOMAIN.fullmatch(issuer):
        raise _malformed(entry.issuer, "the issuer is not a domain name")
    if not entry.account_url or not _PARAM_VALUE.fullmatch(entry.account_url):
        raise _malformed(entry.account_url, "the account URL is empty or has spaces or ';'")
    bad = [m for m in entry.methods if not _METHOD.fullmatch(m)]
    if bad or not entry.methods:
        raise _malformed(",".join(entry.methods), "validation methods are letters, digits and '-'")
    methods = ",".join(dict.fromkeys(entry.methods))
    return format_issue_value(IssueValue(issuer, (("accounturi", entry.account_url),
                                                  ("validationmethods", methods))))


def _key(record: CaaRecord) -> tuple:
    """What makes two records the same entry: tag, issuer and parameters (methods as a set)."""
    issue = _issue_or_none(record) if record.kind in (ISSUE, ISSUEWILD) else None
    if issue is None:
        return (record.flags, record.kind, record.value)
    params = {k.lower(): v for k, v in issue.parameters}
    if "validationmethods" in params:
        params["validationmethods"] = frozenset(issue.validationmethods or ())
    return (record.flags, record.kind, issue.issuer, frozenset(params.items()))


def _sorted_existing(current: list[CaaRecord], desired: list[CaaRecord],
                     exclusive: bool) -> tuple[list[CaaRecord], list[CaaRecord], set[tuple]]:
    """Split the existing records into kept and removed; the keys of desired entries already there."""
    desired_keys = {_key(r) for r in desired}
    ours = {_owner(r) for r in desired}
    kept: list[CaaRecord] = []
    removed: list[CaaRecord] = []
    seen: set[tuple] = set()
    for record in current:
        key = _key(record)
        if key in seen:
            removed.append(record)  # a second copy of an entry: never duplicate
        elif key in desired_keys:
            kept.append(record)
        elif record.kind in (ISSUE, ISSUEWILD) and (exclusive or _is_ours(record, ours)):
            removed.append(record)
        else:
            kept.append(record)
        seen.add(key)
    return kept, removed, seen & desired_keys


def _owner(record: CaaRecord) -> tuple[str, str, str | None] | None:
    issue = _issue_or_none(record)
    return None if issue is None else (record.kind, issue.issuer, issue.accounturi)


def _is_ours(record: CaaRecord, ours: set) -> bool:
    """An entry we want (same tag, issuer and account) whose other parameters differ: replaced."""
    owner = _owner(record)
    return owner is not None and owner in ours


def _warnings(zone: str, before: list[CaaRecord], after: tuple[CaaRecord, ...],
              wanted: Sequence[WantedIssuer]) -> list[str]:
    out = []
    issuers = sorted({normalize(w.issuer) for w in wanted})
    kinds_before = {r.kind for r in before}
    if not kinds_before & {ISSUE, ISSUEWILD}:
        out.append(f"{zone} has no CAA issue property today, so every CA may issue for it; after this "
                   f"change ONLY {', '.join(issuers)} may issue for {zone} and every name below it "
                   "without its own CAA: add the other CAs you use first")
    others = sorted({v.issuer for r in after if r.kind == ISSUE and (v := _issue_or_none(r))
                     and v.issuer and v.issuer not in issuers})
    if ISSUEWILD not in kinds_before and others and any(r.kind == ISSUEWILD for r in after):
        out.append(f"adding issuewild to {zone}: {', '.join(others)} (allowed by issue) may no longer "
                   "issue wildcard certificates unless they get an issuewild entry too")
    out += [f"{zone} still authorizes any account of {v.issuer} ({format_record(r)}): the accounturi "
            "binding protects nothing until that entry goes (use exclusive)"
            for r in after if r.kind in (ISSUE, ISSUEWILD) and (v := _issue_or_none(r))
            and v.issuer in issuers and v.accounturi is None]
    return out
