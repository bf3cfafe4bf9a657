"""Parse and validate the config document (`certificates.yaml`, or the same as JSON).

Pure: text in, frozen `Config` out. No I/O, no boto3, no clock; where the text comes from
(a file, `s3://`, `ssm:`) is the caller's business.

Every problem in the document is collected and raised at once as a `ConfigError`, each with
its path (`acme.directory`, `certificates[2].domains[0]`) and a message that says what is
wrong, shows the offending value (secrets excepted) and what would be accepted.
"""
from __future__ import annotations

import difflib
import json
import ipaddress
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import yaml
from yaml.composer import ComposerError
from yaml.events import (AliasEvent, MappingEndEvent, MappingStartEvent, SequenceEndEvent,
                         SequenceStartEvent)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError, Problem
from .models import (AcmeSettings, CertificateSpec, Config, DeploySpec, DnsSpec, Eab, KeyType,
                     NotifySpec, S3Export)

__all__ = ["LETSENCRYPT", "LETSENCRYPT_STAGING", "MAX_DOCUMENT_BYTES", "MAX_ALIASES", "MAX_DEPTH",
           "parse_config"]

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
DIRECTORY_ALIASES = {"letsencrypt": LETSENCRYPT, "letsencrypt-staging": LETSENCRYPT_STAGING}
MAX_DOCUMENT_BYTES = 1_000_000
MAX_ALIASES = 300  # YAML aliases per document: enough for shared blocks, too few for a bomb
MAX_DEPTH = 32  # nesting of YAML collections; the schema needs 6

MAX_NAMES = 100  # the `classic` profile's limit
PROFILE_MAX_NAMES = {"tlsserver": 25, "shortlived": 25}

TOP_KEYS = ("acme", "defaults", "certificates", "notify")
ACME_KEYS = ("directory", "email", "eab")
EAB_KEYS = ("kid", "hmac_key")
DEFAULT_KEYS = ("key", "profile", "renew_before_days", "preferred_chain")
CERT_KEYS = ("name", "domains") + DEFAULT_KEYS + ("dns", "deploy")
DNS_KEYS = ("hosted_zone_id", "role_arn")
DEPLOY_KEYS = ("acm", "cloudfront", "s3")
NOTIFY_KEYS = ("sns_topic_arn",)

REQUIRED = {
    "certificates": "a non-empty list of certificates, each with a name and domains",
    "name": "a certificate name like 'example-site'",
    "domains": "a non-empty list of DNS names like [example.com, '*.example.com']",
    "kid": "the EAB key id the CA gave you",
    "hmac_key": "a reference to the EAB HMAC key: 'ssm:/name' or 'secretsmanager:id'",
    "regions": "a non-empty list of AWS regions like [us-east-1]",
    "distributions": "a non-empty list of CloudFront distribution ids like [E2ABCDEF123456]",
    "bucket": "the S3 bucket to export the PEM files to",
}

SECRET_PREFIXES = ("ssm:/", "secretsmanager:")
KEY_TYPE_VALUES = frozenset(k.value for k in KeyType)
KEY_TYPES = ", ".join(k.value for k in KeyType)

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PROFILE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
LABEL_RE = re.compile(r"^[a-z0-9-]+$")
HTTPS_URL_RE = re.compile(r"^https://(?:[^@/?#\s]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
                          r"(?::(?P<port>\d{1,5}))?(?:[/?#]\S*)?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# AWS zone ids start with Z (Z0123456789); moto makes other uppercase ids: only the shape is checked.
ZONE_RE = re.compile(r"^[A-Z0-9]{1,32}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION_RE = re.compile(
    r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov|-iso[a-z]*)?-"
    r"(north|south|east|west|central|northeast|southeast|northwest|southwest)-\d$")
# AWS ids start with E (E2ABCDEF123456); moto makes other uppercase ids, so only the shape is checked.
DISTRIBUTION_RE = re.compile(r"^[A-Z0-9]{10,20}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
MAX_LABEL_PROBLEMS = 3  # per name: enough to explain it, not a wall of text
MAX_PREFIX_CHARS = 900  # S3 keys are at most 1024 bytes; leave room for the file names

_BAD: Any = object()  # a value that was reported as a problem; dependent checks skip it


# ---- the public entry point ----------------------------------------------------------------


def parse_config(text: str | bytes, source: str = "certificates.yaml") -> Config:
    """Parse and validate a config document (YAML or JSON).

    Raises ConfigError listing every problem found, each with its path.
    """
    data = _load(text, source)
    v = _Validator()
    config = _config(v, data, source)
    if v.problems:
        raise ConfigError(v.problems, source)
    return config


# ---- YAML loading ----------------------------------------------------------------------------


# libyaml when present (several times faster on big documents), else the pure Python loader.
# Both only build plain data (SafeLoader). libyaml's composer recurses in C, so `_scan` bounds the
# nesting (and the aliases) on the event stream first, before any node tree is built.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_START_EVENTS = (SequenceStartEvent, MappingStartEvent)
_END_EVENTS = (SequenceEndEvent, MappingEndEvent)


def _scan(text: str | bytes) -> None:
    """Refuse alias bombs and absurd nesting; YAML syntax errors surface here too."""
    aliases = depth = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ComposerError(None, None, f"more than {MAX_ALIASES} aliases (*name): "
                                    "refusing the document", event.start_mark)
        elif isinstance(event, _START_EVENTS):
            depth += 1
            if depth > MAX_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep: "
                                    "refusing the document", event.start_mark)
        elif isinstance(event, _END_EVENTS):
            depth -= 1


def _load(text: str | bytes, source: str) -> Any:
    if not isinstance(text, (str, bytes)):
        raise TypeError(f"config text must be str or bytes, not {type(text).__name__}")
    size = _size(text)
    if size > MAX_DOCUMENT_BYTES:
        raise ConfigError([Problem("", f"the document is {size:,} bytes; "
                                       f"at most {MAX_DOCUMENT_BYTES:,} are accepted")], source)
    loaded = _load_yaml(text)
    if isinstance(loaded, list) and _looks_like_json(text):
        # JSON is YAML, except where PyYAML is stricter (a tab between tokens): try it as JSON
        as_json = _load_json(text)
        loaded = as_json if isinstance(as_json, _Loaded) else loaded + as_json
    if isinstance(loaded, list):
        raise ConfigError(loaded, source)
    data = loaded.data
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{_kind(data)} {_show(data)}"
        raise ConfigError([Problem("", f"the document is {what}; expected a mapping with the "
                                       f"keys {', '.join(TOP_KEYS)}")], source)
    return data


@dataclass(frozen=True)
class _Loaded:
    data: Any


def _load_yaml(text: str | bytes) -> _Loaded | list[Problem]:
    """The parsed document, or the problems that stopped parsing."""
    loader = None
    try:
        _scan(text)
        loader = _SafeLoader(text)
        node = loader.get_single_node()
        duplicates = list(_duplicate_keys(node))
        if duplicates:
            return duplicates
        return _Loaded(loader.construct_document(node) if node is not None else None)
    except yaml.MarkedYAMLError as exc:
        return [Problem("", _yaml_message(exc))]
    except yaml.YAMLError as exc:  # reader errors: bad bytes or control characters
        return [Problem("", "not readable as YAML: " + " ".join(str(exc).split()))]
    except RecursionError:
        return [Problem("", "the document is nested too deeply")]
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an impossible date 2024-13-45
        return [Problem("", f"a value cannot be read: {exc}")]
    finally:
        if loader is not None:
            loader.dispose()


def _looks_like_json(text: str | bytes) -> bool:
    head = text[:64] if isinstance(text, str) else text[:64].decode("utf-8", "ignore")
    return head.lstrip("\ufeff \t\r\n").startswith("{")


def _load_json(text: str | bytes) -> _Loaded | list[Problem]:
    duplicates: list[Problem] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(Problem("", f"duplicate key {_show(key)} in a JSON object"))
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return [Problem("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    except (ValueError, RecursionError) as exc:
        return [Problem("", f"invalid JSON: {exc}")]
    return duplicates or _Loaded(data)


def _size(text: str | bytes) -> int:
    if isinstance(text, bytes):
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    what = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem:
        what = f"{exc.context}: {exc.problem}"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"invalid YAML at {where}{what}"


def _duplicate_keys(root: Node | None) -> Iterator[Problem]:
    """YAML silently keeps the last of two equal keys: report them instead (merge keys aside)."""
    seen_nodes: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                stack.append(value)
                if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                earlier = first.setdefault((key.tag, key.value), key)
                if earlier is not key:
                    yield Problem("", f"line {key.start_mark.line + 1}, column "
                                      f"{key.start_mark.column + 1}: duplicate key "
                                      f"{_show(key.value)} (first at line "
                                      f"{earlier.start_mark.line + 1})")
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


# ---- the validation context ------------------------------------------------------------------


@dataclass
class _Validator:
    """Collects problems; the helpers below check one value at one path."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, path: str, message: str) -> Any:
        self.problems.append(Problem(path, message))
        return _BAD

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """A mapping with only `allowed` keys and every `required` one; None if not a mapping."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping with keys {', '.join(allowed)}; "
                           f"got {_describe(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.add(_at(path, key), _unknown_key(key, allowed))
        for key in required:
            if value.get(key) is None:
                self.add(_at(path, key), f"required: {REQUIRED[key]}")
        return value

    def optional_mapping(self, parent: dict[str, Any], key: str, path: str,
                         allowed: tuple[str, ...]) -> dict[str, Any] | None:
        """An optional section: absent or null is an empty mapping; None if it is invalid."""
        value = parent.get(key)
        if value is None:
            return {}
        return self.mapping(value, _at(path, key), allowed)

    def string(self, value: Any, path: str, what: str) -> Any:
        """A non-empty string, or _BAD (reported)."""
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, (int, float, bool)) else ""
            return self.add(path, f"expected {what}; got {_describe(value)}{hint}")
        if not value.strip():
            return self.add(path, f"expected {what}; got an empty string")
        return value

    def matching(self, value: Any, path: str, pattern: re.Pattern[str], what: str) -> Any:
        text = self.string(value, path, what)
        if text is _BAD:
            return _BAD
        if not pattern.match(text):
            return self.add(path, f"{_show(text)} is not {what}")
        return text

    def unique_list(self, value: Any, path: str, what: str,
                    item: Callable[[Any, str], Any]) -> tuple[Any, ...]:
        """A non-empty list, each item checked by `item(value, path)`, no duplicates."""
        if not isinstance(value, list):
            self.add(path, f"expected a non-empty list of {what}; got {_describe(value)}")
            return ()
        if not value:
            self.add(path, f"expected a non-empty list of {what}; got an empty list")
            return ()
        out: list[Any] = []
        first: dict[str, int] = {}
        for i, raw in enumerate(value):
            checked = item(raw, _index(path, i))
            if isinstance(raw, str) and raw in first:
                self.add(_index(path, i),
                         f"duplicate of {_leaf(path)}[{first[raw]}] ({_show(raw)})")
                continue
            if isinstance(raw, str):
                first[raw] = i
            out.append(checked)
        return tuple(out)


def _at(path: str, key: Any) -> str:
    key = key if isinstance(key, str) else _show(key)
    return f"{path}.{key}" if path else key


def _index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _unknown_key(key: Any, allowed: tuple[str, ...]) -> str:
    if isinstance(key, str):
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown key {_show(key)} (did you mean {_show(close[0])}?)"
    return f"unknown key {_show(key)}: expected one of {', '.join(allowed)}"


# ---- showing values in messages -------------------------------------------------------------

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60
MAX_SHOWN_CHARS = 80


def _show(value: Any) -> str:
    """The value as it should appear in a message, bounded in size."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > MAX_SHOWN_CHARS:
            return repr(value[:MAX_SHOWN_CHARS]) + f"... ({len(value)} characters)"
        return repr(value)
    return _REPR.repr(value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    kinds = [(bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
             (list, "a list"), (dict, "a mapping")]
    for typ, name in kinds:
        if isinstance(value, typ):
            return name
    return f"a {type(value).__name__}"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict) and not value:
        return "an empty mapping"
    return f"{_kind(value)} {_show(value)}"


# ---- the document ----------------------------------------------------------------------------


def _config(v: _Validator, data: dict[str, Any], source: str) -> Config:
    v.mapping(data, "", TOP_KEYS, required=("certificates",))
    acme = _acme(v, data)
    defaults = _settings(v, v.optional_mapping(data, "defaults", "", DEFAULT_KEYS), "defaults")
    certificates = _certificates(v, data.get("certificates"), defaults)
    notify = _notify(v, data)
    return Config(acme=acme, certificates=certificates, notify=notify, source=source)


# ---- acme ------------------------------------------------------------------------------------


def _acme(v: _Validator, data: dict[str, Any]) -> AcmeSettings:
    acme = v.optional_mapping(data, "acme", "", ACME_KEYS)
    if acme is None:
        return AcmeSettings(directory=LETSENCRYPT)
    directory = _directory(v, acme.get("directory"), "acme.directory")
    email = acme.get("email")
    if email is not None:
        email = v.string(email, "acme.email", "an email address")
        if email is not _BAD and not EMAIL_RE.match(email):
            v.add("acme.email", f"{_show(email)} is not an email address (like ops@example.com)")
    eab = _eab(v, acme.get("eab"), "acme.eab")
    return AcmeSettings(directory=directory, email=email, eab=eab)


def _directory(v: _Validator, value: Any, path: str) -> str:
    if value is None:
        return LETSENCRYPT
    accepted = "use letsencrypt, letsencrypt-staging or the https:// URL of an ACME directory"
    text = v.string(value, path, f"a directory: {accepted}")
    if text is _BAD:
        return _BAD
    if text in DIRECTORY_ALIASES:
        return DIRECTORY_ALIASES[text]
    if "://" not in text:
        close = difflib.get_close_matches(text, list(DIRECTORY_ALIASES), n=1, cutoff=0.6)
        hint = f" (did you mean {_show(close[0])}?)" if close else ""
        return v.add(path, f"{_show(text)} is not a known CA{hint}: {accepted}")
    if text.lower().startswith("http://"):
        return v.add(path, f"{_show(text)} must use https:// (ACME requires TLS): {accepted}")
    url = HTTPS_URL_RE.match(text)
    if not url or int(url.group("port") or 443) > 65535:
        return v.add(path, f"{_show(text)} is not a valid https:// URL: {accepted}")
    return text


def _eab(v: _Validator, value: Any, path: str) -> Eab | None:
    if value is None:
        return None
    eab = v.mapping(value, path, EAB_KEYS, required=EAB_KEYS)
    if eab is None:
        return _BAD
    kid = eab.get("kid")
    if kid is not None:
        kid = v.string(kid, f"{path}.kid", "the EAB key id (a non-empty string)")
    ref = eab.get("hmac_key")
    if ref is not None:
        ref = _secret_ref(v, ref, f"{path}.hmac_key")
    return Eab(kid=kid, hmac_ref=ref)


def _secret_ref(v: _Validator, value: Any, path: str) -> str:
    """A reference to a secret. The value is never echoed: it may be the secret itself."""
    accepted = ("secrets must be references, not literal values: use 'ssm:/parameter-name' "
                "(SecureString) or 'secretsmanager:secret-id'")
    if not isinstance(value, str):
        return v.add(path, f"expected a secret reference; got {_kind(value)}: {accepted}")
    for prefix in SECRET_PREFIXES:
        if value.startswith(prefix) and value[len(prefix):].strip(" /") \
                and not any(c.isspace() for c in value):
            return value
    if value.startswith(("ssm:", "secretsmanager:")):  # a malformed reference: safe to show
        return v.add(path, f"{_show(value)} is not a valid reference: {accepted}")
    return v.add(path, f"not a secret reference (value not shown): {accepted}")


# ---- defaults and per-certificate settings -------------------------------------------------


@dataclass(frozen=True)
class _Setting:
    value: Any
    path: str  # where the value came from ("" for the built-in default)


_BUILTIN = {"key": KeyType.EC_P256, "profile": None, "renew_before_days": None,
            "preferred_chain": None}


def _settings(v: _Validator, section: dict[str, Any] | None, path: str,
              inherited: dict[str, _Setting] | None = None) -> dict[str, _Setting]:
    """The four inheritable settings: a key present here wins, else the inherited one."""
    if inherited is None:
        inherited = {k: _Setting(b, "") for k, b in _BUILTIN.items()}
    out = dict(inherited)
    if section is None:  # reported already; keep the inherited values
        return out
    checks = {"key": _key_type, "profile": _profile, "renew_before_days": _renew_before_days,
              "preferred_chain": _preferred_chain}
    for key, check in checks.items():
        if key in section:
            out[key] = _Setting(check(v, section[key], _at(path, key)), _at(path, key))
    return out


def _key_type(v: _Validator, value: Any, path: str) -> KeyType:
    if isinstance(value, str) and value in KEY_TYPE_VALUES:
        return KeyType(value)
    shown = _show(value) if isinstance(value, str) else _describe(value)
    return v.add(path, f"{shown} is not a key type: use one of {KEY_TYPES}")


def _profile(v: _Validator, value: Any, path: str) -> str | None:
    if value is None:
        return None
    what = ("an ACME profile name (like classic, tlsserver or shortlived: lowercase letters, "
            "digits, '.', '_' and '-', at most 64) or null for the CA's default")
    return v.matching(value, path, PROFILE_RE, what)


def _renew_before_days(v: _Validator, value: Any, path: str) -> int | None:
    if value is None:
        return None
    what = "a whole number of days from 1 to 365, or null"
    if isinstance(value, bool) or not isinstance(value, int):
        quoted = isinstance(value, str) and value.strip().isdigit()
        hint = " (write it without quotes)" if quoted else ""
        return v.add(path, f"expected {what}; got {_describe(value)}{hint}")
    if not 1 <= value <= 365:
        return v.add(path, f"{value} is out of range: expected {what}")
    return value


def _preferred_chain(v: _Validator, value: Any, path: str) -> str | None:
    if value is None:
        return None
    what = ("the issuer common name of a root (a non-empty string of at most 200 characters), "
            "or null")
    text = v.string(value, path, what)
    if text is not _BAD and len(text) > 200:
        return v.add(path, f"{_show(text)} is too long: expected {what}")
    return text


# ---- certificates ---------------------------------------------------------------------------


def _certificates(v: _Validator, value: Any,
                  defaults: dict[str, _Setting]) -> tuple[CertificateSpec, ...]:
    if value is None:
        return ()  # "required" is reported by the top-level mapping check
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else _describe(value)
        v.add("certificates", f"expected a non-empty list of certificates "
                              f"(each with name and domains); got {got}")
        return ()
    first_use: dict[str, int] = {}
    out = []
    for i, item in enumerate(value):
        spec = _certificate(v, item, f"certificates[{i}]", defaults)
        if spec is None:
            continue
        if isinstance(spec.name, str):
            if spec.name in first_use:
                v.add(f"certificates[{i}].name", f"duplicate name {_show(spec.name)} (first "
                                                 f"used by certificates[{first_use[spec.name]}])")
            else:
                first_use[spec.name] = i
        out.append(spec)
    return tuple(out)


def _certificate(v: _Validator, value: Any, path: str,
                 defaults: dict[str, _Setting]) -> CertificateSpec | None:
    cert = v.mapping(value, path, CERT_KEYS, required=("name", "domains"))
    if cert is None:
        return None
    name = _name(v, cert.get("name"), f"{path}.name")
    settings = _settings(v, cert, path, defaults)
    profile = settings["profile"].value
    domains = _domains(v, cert.get("domains"), f"{path}.domains", profile)
    dns = _dns(v, v.optional_mapping(cert, "dns", path, DNS_KEYS), f"{path}.dns")
    deploy = _deploy(v, v.optional_mapping(cert, "deploy", path, DEPLOY_KEYS),
                     f"{path}.deploy", name)
    _check_key_for_targets(v, settings["key"], deploy, path, name)
    return CertificateSpec(name=name, domains=domains, key=settings["key"].value, profile=profile,
                           renew_before_days=settings["renew_before_days"].value,
                           preferred_chain=settings["preferred_chain"].value,
                           dns=dns, deploy=deploy)


def _name(v: _Validator, value: Any, path: str) -> str:
    if value is None:
        return _BAD  # "required" is reported by the mapping check
    rule = ("use 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'")
    text = v.string(value, path, f"a certificate name: {rule}")
    if text is _BAD or NAME_RE.match(text):
        return text
    fixed = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    hint = f" (for example {_show(fixed)})" if fixed and NAME_RE.match(fixed) else ""
    return v.add(path, f"{_show(text)} is not a valid name: {rule}{hint}")


def _check_key_for_targets(v: _Validator, key: _Setting, deploy: DeploySpec | None,
                           path: str, name: Any) -> None:
    if key.value is _BAD or not isinstance(deploy, DeploySpec) or not deploy.cloudfront:
        return
    if key.value.cloudfront_compatible:
        return
    why = (f"{key.value.value} cannot be used with CloudFront (RSA 1024-4096 or EC P-256 only): "
           f"use ec-p256 or an rsa-* key")
    if key.path.startswith("defaults."):
        who = f"{path} ({_show(name)})" if isinstance(name, str) else path
        v.add(key.path, f"{why}; {who} inherits this key and deploys to CloudFront "
                        f"(set key on that certificate or change the default)")
    else:
        v.add(key.path or f"{path}.key", why)


# ---- domains ---------------------------------------------------------------------------------


def _domains(v: _Validator, value: Any, path: str, profile: Any) -> tuple[str, ...]:
    if value is None:
        return ()  # "required" is reported by the mapping check
    limit, by = MAX_NAMES, "a certificate"
    if isinstance(profile, str) and profile in PROFILE_MAX_NAMES:
        limit, by = PROFILE_MAX_NAMES[profile], f"the {profile!r} profile"
    if isinstance(value, list) and len(value) > limit:
        v.add(path, f"{len(value)} names: {by} allows at most {limit}")
        value = value[:MAX_NAMES]  # check the first ones; do not amplify a huge list
    return v.unique_list(value, path, "DNS names", lambda raw, p: _domain(v, raw, p))


def _domain(v: _Validator, value: Any, path: str) -> str:
    text = v.string(value, path, "a DNS name (like example.com or *.example.com)")
    if text is _BAD:
        return _BAD
    problems = _domain_problems(text)
    for message in problems:
        v.add(path, message)
    return _BAD if problems else text


def _domain_problems(name: str) -> list[str]:
    """What is wrong with one requested name; an empty list if it is fine."""
    shown = _show(name)
    fixes, candidate = [], name
    if candidate.endswith("."):
        fixes.append("has a trailing dot")
        candidate = candidate[:-1]
    if not candidate.isascii():
        punycode = _punycode(candidate)
        if punycode is None:
            return [f"{shown} is not ASCII and has no valid punycode (IDNA) form: write "
                    f"internationalized names as xn-- labels"]
        fixes.append("is not ASCII (write internationalized names in punycode)")
        candidate = punycode
    if candidate != candidate.lower():
        fixes.append("has uppercase letters")
        candidate = candidate.lower()
    structural = _structure_problems(candidate, shown)
    if fixes and not structural:
        return [f"{shown} {' and '.join(fixes)}: write {_show(candidate)}"]
    if fixes:
        return [f"{shown} {' and '.join(fixes)}"] + structural
    return structural


def _punycode(name: str) -> str | None:
    labels = []
    for label in name.split("."):
        if label.isascii():
            labels.append(label)
            continue
        try:
            labels.append(label.encode("idna").decode("ascii"))
        except UnicodeError:
            return None
    return ".".join(labels)


def _structure_problems(name: str, shown: str) -> list[str]:
    """Checks on a lowercase ASCII name without a trailing dot."""
    if not name:
        return ["an empty name: expected a DNS name like example.com"]
    if _is_ip(name):
        return [f"{shown} is an IP address: only DNS names can be validated with DNS-01"]
    if len(name) > 253:
        return [f"{shown} is {len(name)} characters long; a DNS name has at most 253"]
    labels = name.split(".")
    out = []
    if "*" in name:
        wildcard = labels[0] == "*" and "*" not in ".".join(labels[1:])
        if not wildcard:
            out.append(f"{shown}: a wildcard is allowed only as the whole first label "
                       f"(like '*.example.com')")
        elif len(labels) < 3:
            out.append(f"{shown}: a wildcard needs at least two labels after '*.' "
                       f"(like '*.example.com')")
        labels = [label for label in (labels[1:] if wildcard else labels) if "*" not in label]
    elif len(labels) < 2:
        out.append(f"{shown} is a single label: a DNS name needs at least two labels "
                   f"(like 'example.com')")
    label_problems = dict.fromkeys(m for label in labels if (m := _label_problem(label, shown)))
    out += list(label_problems)[:MAX_LABEL_PROBLEMS]
    if len(labels) >= 2 and labels[-1].isdigit():
        out.append(f"{shown}: the top-level label {_show(labels[-1])} is all digits")
    return out


def _label_problem(label: str, shown: str) -> str | None:
    if not label:
        return f"{shown} has an empty label ('..', or a leading dot)"
    if len(label) > 63:
        return f"{shown}: label {_show(label)} is {len(label)} characters long; at most 63"
    if not LABEL_RE.match(label):
        return f"{shown}: label {_show(label)} may contain only a-z, 0-9 and '-'"
    if label.startswith("-") or label.endswith("-"):
        return f"{shown}: label {_show(label)} must not start or end with '-'"
    if label[2:4] == "--":
        if not label.startswith("xn--"):
            return (f"{shown}: label {_show(label)} has '--' in positions 3-4, which is reserved for "
                    "IDN labels (xn--); CAs refuse it")
        try:
            label.encode("ascii").decode("idna")
        except UnicodeError:
            return f"{shown}: label {_show(label)} is not valid punycode"
    return None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


# ---- dns, deploy, notify -----------------------------------------------------------------


def _dns(v: _Validator, dns: dict[str, Any] | None, path: str) -> DnsSpec:
    if dns is None:
        return _BAD
    zone = dns.get("hosted_zone_id")
    if zone is not None:
        zone = _zone_id(v, zone, f"{path}.hosted_zone_id")
    role = dns.get("role_arn")
    if role is not None:
        role = v.matching(role, f"{path}.role_arn", ROLE_ARN_RE,
                          "an IAM role ARN (like arn:aws:iam::111111111111:role/dns)")
    return DnsSpec(hosted_zone_id=zone, role_arn=role)


def _zone_id(v: _Validator, value: Any, path: str) -> str:
    what = "a Route53 hosted zone id (like Z0123456789ABC)"
    text = v.string(value, path, what)
    if text is _BAD:
        return _BAD
    zone = text.removeprefix("/hostedzone/")
    if not ZONE_RE.match(zone):
        hint = f" (did you mean {_show(zone.upper())}?)" if ZONE_RE.match(zone.upper()) else ""
        return v.add(path, f"{_show(text)} is not {what}{hint}")
    return zone


def _deploy(v: _Validator, deploy: dict[str, Any] | None, path: str, name: Any) -> DeploySpec:
    if deploy is None:
        return _BAD
    regions = _target_list(v, deploy, path, "acm", "regions", "AWS regions", REGION_RE,
                           "an AWS region (like us-east-1)")
    distributions = _target_list(v, deploy, path, "cloudfront", "distributions", "distribution ids",
                                 DISTRIBUTION_RE, "a CloudFront distribution id (like E2ABCDEF123456)")
    s3 = _s3_export(v, deploy.get("s3"), f"{path}.s3", name)
    return DeploySpec(acm_regions=regions, cloudfront=distributions, s3=s3)


def _target_list(v: _Validator, deploy: dict[str, Any], path: str, target: str, key: str, plural: str,
                 pattern: re.Pattern, what: str) -> tuple[str, ...]:
    """`deploy.<target>: {<key>: [...]}`: a unique list of ids matching `pattern`."""
    if deploy.get(target) is None:
        return ()
    section = v.mapping(deploy[target], f"{path}.{target}", (key,), required=(key,))
    if section is None or section.get(key) is None:
        return ()
    return v.unique_list(section[key], f"{path}.{target}.{key}", plural,
                         lambda raw, p: v.matching(raw, p, pattern, what))


def _s3_export(v: _Validator, value: Any, path: str, name: Any) -> S3Export | None:
    if value is None:
        return None
    s3 = v.mapping(value, path, ("bucket", "prefix"), required=("bucket",))
    if s3 is None:
        return _BAD
    bucket = s3.get("bucket")
    if bucket is not None:
        bucket = _bucket(v, bucket, f"{path}.bucket")
    prefix = s3.get("prefix")
    if prefix is None:
        prefix = f"{name}/" if isinstance(name, str) else _BAD
    else:
        prefix = _prefix(v, prefix, f"{path}.prefix")
    return S3Export(bucket=bucket, prefix=prefix)


def _bucket(v: _Validator, value: Any, path: str) -> str:
    rule = ("an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-', starting and "
            "ending with a letter or digit")
    text = v.string(value, path, rule)
    if text is _BAD:
        return _BAD
    if not BUCKET_RE.match(text):
        return v.add(path, f"{_show(text)} is not {rule}")
    if ".." in text:
        return v.add(path, f"{_show(text)} is not a valid S3 bucket name: no '..' allowed")
    if _is_ip(text):
        return v.add(path, f"{_show(text)} is not a valid S3 bucket name: it looks like an "
                           f"IP address")
    if text.startswith(BUCKET_RESERVED_PREFIXES) or text.endswith(BUCKET_RESERVED_SUFFIXES):
        return v.add(path, f"{_show(text)} is not a valid S3 bucket name: it uses a prefix "
                           f"or suffix that AWS reserves")
    return text


def _prefix(v: _Validator, value: Any, path: str) -> str:
    rule = "a key prefix like 'example.com/' (no leading '/', no '..' segments)"
    if not isinstance(value, str):
        return v.add(path, f"expected {rule}; got {_describe(value)}")
    if value.startswith("/"):
        return v.add(path, f"{_show(value)} starts with '/': expected {rule}")
    if ".." in value.split("/"):
        return v.add(path, f"{_show(value)} has a '..' segment: expected {rule}")
    if len(value) > MAX_PREFIX_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return v.add(path, f"{_show(value)} is too long or has control characters: "
                           f"expected {rule}")
    return value


def _notify(v: _Validator, data: dict[str, Any]) -> NotifySpec:
    notify = v.optional_mapping(data, "notify", "", NOTIFY_KEYS)
    if notify is None:
        return _BAD
    arn = notify.get("sns_topic_arn")
    if arn is not None:
        arn = v.matching(arn, "notify.sns_topic_arn", SNS_ARN_RE,
                         "an SNS topic ARN (like arn:aws:sns:us-east-1:111111111111:certrenew)")
    return NotifySpec(sns_topic_arn=arn)
