"""`certrenew discover`: what in the account uses a certificate, whether certrenew can cover it, and
the config that would (issue 14).

Pure: the inventory adapter reads AWS into `Found` and `CertificateFacts`; here they are judged
(`assess`: the certificate's source, days left, coverable and why), turned into proposed
certificate entries (`propose`: one per coverable resource no existing certificate deploys to,
names never reused) and merged into the text of an existing config (`merge_text`: appended as
YAML text when the document's `certificates:` is a block list, so the user's comments stay; else
rewritten). Whether a name can be validated is asked of `locate` (the DNS provider's zone lookup,
CNAME delegation included), given as a callable: no DNS or AWS here.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from .errors import CertrenewError, ZoneNotFound

DISTRIBUTION = "cloudfront-distribution"
TENANT = "cloudfront-tenant"
LISTENER = "elb-listener"
API_DOMAIN = "apigateway-domain"
KINDS = (DISTRIBUTION, TENANT, LISTENER, API_DOMAIN)

# Where a resource's certificate comes from.
ACM_ISSUED, ACM_PRIVATE, CERTRENEW, IMPORTED = "acm-issued", "acm-private", "certrenew", "imported"
CLOUDFRONT_DEFAULT, IAM, DISTRIBUTIONS, NONE, UNKNOWN = "cloudfront-default", "iam", "distribution", "none", "unknown"
MANAGED_TAG, NAME_TAG = "certrenew:managed", "certrenew:name"
MAX_NAMES = 100  # the most names a certificate takes (config rule; 25 with some profiles)
KEY_TYPES = {"RSA_1024": "rsa-1024", "RSA_2048": "rsa-2048", "RSA_3072": "rsa-3072", "RSA_4096": "rsa-4096",
             "EC_prime256v1": "ec-p256", "EC_secp384r1": "ec-p384", "EC_secp521r1": "ec-p521"}
NAMES_FROM = {DISTRIBUTION: "aliases", TENANT: "domains", LISTENER: "certificates", API_DOMAIN: "domain"}

# locate(record_name) -> the record name the TXT value would go to (after CNAMEs); raises a
# CertrenewError (ZoneNotFound, DnsError) when no hosted zone of ours can hold it.
Locate = Callable[[str], str]


@dataclass(frozen=True)
class CertificateFacts:
    """What ACM says of one certificate (DescribeCertificate and its tags)."""

    arn: str
    type: str | None = None  # AMAZON_ISSUED | IMPORTED | PRIVATE; None when it could not be read
    not_after: dt.datetime | None = None
    key_algorithm: str | None = None  # ACM's spelling: RSA_2048, EC_prime256v1, ...
    names: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    error: str | None = None  # why it could not be read


@dataclass(frozen=True)
class Found:
    """A resource that serves TLS, as the inventory read it."""

    kind: str
    id: str
    arn: str
    region: str
    names: tuple[str, ...]  # aliases / tenant domains / the API domain; () for a listener
    certificates: tuple[str, ...] = ()  # ACM ARNs it uses, its default first
    certificate_source: str | None = None  # cloudfront-default | iam | distribution when not ACM
    edge: bool = False  # an EDGE API domain (its certificate in us-east-1)
    parent: str | None = None  # a tenant's distribution


@dataclass(frozen=True)
class Resource:
    """A found resource judged: its names, its certificate and whether certrenew can cover it."""

    found: Found
    names: tuple[str, ...]
    source: str
    certificate: CertificateFacts | None
    days_left: int | None
    coverable: bool
    reason: str
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.found.kind} {self.found.id}" + (f" ({self.found.region})" if self.found.kind in
                                                          (LISTENER, API_DOMAIN) else "")

    def to_dict(self) -> dict[str, Any]:
        cert = self.certificate
        out: dict[str, Any] = {
            "kind": self.found.kind, "id": self.found.id, "arn": self.found.arn, "region": self.found.region,
            "names": list(self.names), "names_from": NAMES_FROM[self.found.kind],
            "certificate": {
                "arn": cert.arn if cert else None, "source": self.source,
                "not_after": cert.not_after.isoformat() if cert and cert.not_after else None,
                "days_left": self.days_left, "key_type": key_type(cert)},
            "coverable": self.coverable, "reason": self.reason}
        if self.found.kind == API_DOMAIN:
            out["endpoint"] = "edge" if self.found.edge else "regional"
        if self.found.parent:
            out["distribution"] = self.found.parent
        if len(self.found.certificates) > 1:
            out["other_certificates"] = list(self.found.certificates[1:])
        return out


def key_type(cert: CertificateFacts | None) -> str | None:
    if cert is None or not cert.key_algorithm:
        return None
    return KEY_TYPES.get(cert.key_algorithm, cert.key_algorithm.lower())


def source_of(found: Found, cert: CertificateFacts | None) -> str:
    """Where the certificate a resource uses comes from."""
    if cert is None:
        return found.certificate_source or NONE
    if cert.type is None:
        return UNKNOWN
    if cert.type == "AMAZON_ISSUED":
        return ACM_ISSUED
    if cert.type == "PRIVATE":
        return ACM_PRIVATE
    return CERTRENEW if dict(cert.tags).get(MANAGED_TAG) == "true" else IMPORTED


def days_left(not_after: dt.datetime | None, now: dt.datetime) -> int | None:
    return None if not_after is None else int((not_after - now).total_seconds() // 86400)


def _bare(name: str) -> str:
    return name.strip().rstrip(".").lower()


def names_of(found: Found, facts: dict[str, CertificateFacts]) -> tuple[str, ...]:
    """A resource's names: its own, or (a listener has none) the names of its certificates."""
    if found.kind != LISTENER:
        return tuple(dict.fromkeys(_bare(n) for n in found.names if n.strip()))
    names = [n for arn in found.certificates for n in (facts[arn].names if arn in facts else ())]
    return tuple(dict.fromkeys(_bare(n) for n in names if n.strip()))


def coverage(names: tuple[str, ...], locate: Locate) -> tuple[bool, str]:
    """Can certrenew validate every name (DNS-01 in one of our public zones, or through a CNAME
    on its `_acme-challenge` into one)? With why, naming each name that cannot."""
    nowhere: list[str] = []
    failed: list[str] = []
    delegated: list[str] = []
    for base in dict.fromkeys(n.removeprefix("*.") for n in names):
        record = f"_acme-challenge.{base}"
        try:
            target = _bare(locate(record))
        except ZoneNotFound as exc:
            (nowhere if exc.name == base else failed).append(base if exc.name == base else f"{base}: {exc}")
            continue
        except CertrenewError as exc:
            failed.append(f"{base}: {exc}")
            continue
        if target != record:
            delegated.append(f"{record} -> {target}")
    if nowhere or failed:
        why = [f"in no public hosted zone of the account, and no CNAME on _acme-challenge delegates "
               f"{'it' if len(nowhere) == 1 else 'them'} into one: {', '.join(nowhere)}"] if nowhere else []
        return False, "; ".join(why + failed)
    if delegated:
        return True, ("every name is in a public hosted zone of the account or delegated by CNAME into one: "
                      + ", ".join(delegated))
    return True, "every name is in a public hosted zone of the account"


def assess(found: list[Found], facts: dict[str, CertificateFacts], locate: Locate,
           now: dt.datetime) -> list[Resource]:
    """Judge every found resource (in the order found)."""
    return [_assess(f, facts, locate, now) for f in found]


def _assess(found: Found, facts: dict[str, CertificateFacts], locate: Locate, now: dt.datetime) -> Resource:
    cert = facts.get(found.certificates[0]) if found.certificates else None
    if found.certificates and cert is None:
        cert = CertificateFacts(found.certificates[0], error="not read")
    names = names_of(found, facts)
    source = source_of(found, cert)
    notes = []
    if found.kind == LISTENER:
        notes.append("a listener has no aliases of its own: its names are those of its certificates")
    if cert is not None and cert.error:
        notes.append(f"certificate {cert.arn} could not be read: {cert.error}")
    if source == ACM_ISSUED:
        notes.append("its ACM-issued certificate is renewed by ACM itself")
    if not names:
        coverable, reason = False, _no_names(found)
    elif len(names) > MAX_NAMES:
        coverable, reason = False, f"{len(names)} names: a certificate takes at most {MAX_NAMES}"
    else:
        coverable, reason = coverage(names, locate)
    return Resource(found, names, source, cert, days_left(cert.not_after if cert else None, now),
                    coverable, reason, tuple(notes))


def _no_names(found: Found) -> str:
    if found.kind == DISTRIBUTION:
        return "no aliases: it serves only its *.cloudfront.net name, with CloudFront's certificate"
    if found.kind == LISTENER:
        return ("no certificate names known: a listener has no aliases of its own, and none of its "
                "certificates could be read from ACM (an IAM server certificate, or another account's)")
    return "no domain names"


# ---- the proposed config -----------------------------------------------------------------------


@dataclass
class Proposal:
    """The certificate entries to add, what each covers, and what was left out and why."""

    certificates: list[dict[str, Any]] = field(default_factory=list)
    covers: list[str] = field(default_factory=list)  # one label per entry, same order
    left_out: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def deployed_targets(document: Any) -> dict[tuple, str]:
    """(kind, id[, region]) -> the name of the existing certificate that deploys there."""
    out: dict[tuple, str] = {}
    certs = document.get("certificates") if isinstance(document, dict) else None
    for cert in certs if isinstance(certs, list) else []:
        if not isinstance(cert, dict) or not isinstance(cert.get("deploy"), dict):
            continue
        name, deploy = str(cert.get("name")), cert["deploy"]
        cloudfront, elb, api = (deploy.get(k) if isinstance(deploy.get(k), dict) else {}
                                for k in ("cloudfront", "elb", "apigateway"))
        for dist in cloudfront.get("distributions") or []:
            out.setdefault((DISTRIBUTION, str(dist)), name)
        for tenant in cloudfront.get("tenants") or []:
            out.setdefault((TENANT, str(tenant)), name)
        for listener in elb.get("listeners") or []:
            out.setdefault((LISTENER, str(listener)), name)
        for domain in api.get("domains") or []:
            if isinstance(domain, dict):
                out.setdefault((API_DOMAIN, _bare(str(domain.get("name"))), str(domain.get("region"))), name)
    return out


def _target_key(found: Found) -> tuple:
    if found.kind == LISTENER:
        return (LISTENER, found.arn)
    if found.kind == API_DOMAIN:
        return (API_DOMAIN, _bare(found.id), found.region)
    return (found.kind, found.id)


def certificate_name(first: str, taken: set[str]) -> str:
    """`a-b-c` from the first name `a.b.c` (`*.` as `wildcard-`), unique among `taken`."""
    base = re.sub(r"[^a-z0-9]+", "-", first.lower().replace("*.", "wildcard.", 1)).strip("-")[:63].strip("-")
    base = base or "site"
    name, n = base, 2
    while name in taken:
        suffix = f"-{n}"
        name, n = base[:63 - len(suffix)].rstrip("-") + suffix, n + 1
    return name


def _deploy(found: Found) -> dict[str, Any]:
    if found.kind == DISTRIBUTION:
        return {"cloudfront": {"distributions": [found.id]}}
    if found.kind == TENANT:
        return {"cloudfront": {"tenants": [found.id]}}
    if found.kind == LISTENER:
        return {"elb": {"listeners": [found.arn]}}
    domain: dict[str, Any] = {"name": _bare(found.id), "region": found.region}
    if found.edge:
        domain["endpoint"] = "edge"
    return {"apigateway": {"domains": [domain]}}


def propose(resources: list[Resource], existing: Any = None) -> Proposal:
    """One new certificate per coverable resource that no existing certificate deploys to."""
    out = Proposal()
    deployed = deployed_targets(existing)
    certs = existing.get("certificates") if isinstance(existing, dict) else None
    taken = {str(c.get("name")) for c in certs if isinstance(c, dict)} if isinstance(certs, list) else set()
    for res in resources:
        owner = deployed.get(_target_key(res.found))
        if owner is not None:
            out.notes.append(f"{res.label}: already deployed to by certificate {owner!r}; left as it is")
            continue
        if not res.coverable:
            out.left_out.append(f"{res.label}: {res.reason}")
            continue
        name = certificate_name(res.names[0], taken)
        taken.add(name)
        out.certificates.append({"name": name, "domains": list(res.names), "deploy": _deploy(res.found)})
        out.covers.append(res.label)
        if res.source == ACM_ISSUED:
            out.notes.append(f"{res.label}: proposed as {name!r}, though its ACM-issued certificate renews by "
                             "itself; remove the entry to keep ACM's")
    return out


# ---- writing it into the config text -----------------------------------------------------------

NEW_HEADER = ("# Proposed by `certrenew discover`: one certificate per resource it can cover.\n"
              "# Try it with `certrenew plan`, then `certrenew rehearse` (the CA's staging directory)\n"
              "# before the first `certrenew run`.\n")


@dataclass(frozen=True)
class Merged:
    """The new text of the config and how it was made: `new` (no file before), `appended` (the
    entries added as YAML text, the rest byte for byte), `rewritten` (dumped again: comments and
    layout lost; the caller keeps a `.bak`)."""

    text: str
    how: str


def merge_text(existing: str | None, proposal: Proposal) -> Merged:
    """The config text with the proposal's certificates added; nothing of the existing document lost."""
    entries = proposal.certificates
    if existing is None or not existing.strip():
        doc = {"acme": {"directory": "letsencrypt"}, "certificates": entries}
        return Merged(NEW_HEADER + _dump(doc, proposal.covers), "new")
    data = yaml.safe_load(existing)
    if not isinstance(data, dict):
        raise CertrenewError("the existing config is not a mapping: cannot add certificates to it")
    wanted = {**data, "certificates": list(data.get("certificates") or []) + entries}
    if existing.lstrip().startswith("{"):  # JSON: no comments to keep
        return Merged(json.dumps(wanted, indent=2) + "\n", "rewritten")
    appended = _append(existing, entries, proposal.covers)
    if appended is not None and _loads_as(appended, wanted):
        return Merged(appended, "appended")
    return Merged(yaml.safe_dump(wanted, sort_keys=False, width=1000), "rewritten")


def _dump(doc: Any, covers: list[str]) -> str:
    """YAML with a comment above each certificate saying what it covers."""
    text = yaml.safe_dump(doc, sort_keys=False, width=1000)
    lines, i = [], 0
    for line in text.splitlines(keepends=True):
        if line.startswith("- name: ") and i < len(covers):  # a certificate, not a nested API domain
            lines.append(f"# {covers[i]}\n")
            i += 1
        lines.append(line)
    return "".join(lines)


def _entries_text(entries: list[dict[str, Any]], covers: list[str], indent: int) -> str:
    text = _dump(entries, covers)
    return "".join(" " * indent + line if line.strip() else line for line in text.splitlines(keepends=True))


def _append(text: str, entries: list[dict[str, Any]], covers: list[str]) -> str | None:
    """`text` with the entries inserted after the last item of its block `certificates:` list
    (or a `certificates:` block added at the end); None when the document has another shape."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        return None
    value = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "certificates"), None)
    if value is None:
        return text + ("" if text.endswith("\n") else "\n") + "certificates:\n" + _entries_text(entries, covers, 2)
    if not isinstance(value, yaml.SequenceNode) or value.flow_style or not value.value:
        return None
    first = value.value[0].start_mark
    line = text.splitlines()[first.line]
    dash = line.rfind("-", 0, first.column)
    if dash < 0:
        return None
    at = _after(text, _last_leaf(value.value[-1]).end_mark.index)
    before = text[:at] + ("" if at == 0 or text[at - 1] == "\n" else "\n")
    return before + _entries_text(entries, covers, dash) + text[at:]


def _last_leaf(node: yaml.Node) -> yaml.Node:
    while not getattr(node, "flow_style", True) and node.value:
        node = node.value[-1][1] if isinstance(node, yaml.MappingNode) else node.value[-1]
    return node


def _after(text: str, index: int) -> int:
    """The start of the line after the one `index` is on (a block scalar ends at a line start)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _loads_as(text: str, wanted: Any) -> bool:
    try:
        return yaml.safe_load(text) == wanted
    except yaml.YAMLError:
        return False
