"""The schema: which keys the document has, what each holds, and how settings are inherited.

Builds the frozen `Config` from the models, or returns every problem found.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from ..errors import Problem
from ..models import AcmeSettings, CertificateSpec, Challenge, Config, Eab, KeyType
from .kit import BAD, Invalid, Validator, all_valid, at, describe, kind, show
from .names import domains
from .targets import DEPLOY_KEYS, DNS_KEYS, Targets, deploy_targets, dns_spec, notify_spec

T = TypeVar("T")

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
LETSENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
DIRECTORY_ALIASES = {"letsencrypt": LETSENCRYPT, "letsencrypt-staging": LETSENCRYPT_STAGING}

TOP_KEYS = ("acme", "defaults", "certificates", "notify")
ACME_KEYS = ("directory", "email", "eab", "fallback", "rehearsal_directory")
FALLBACK_KEYS = ("directory", "email", "eab")
MAX_FALLBACKS = 3
EAB_KEYS = ("kid", "hmac_key")
DEFAULT_KEYS = ("key", "profile", "renew_before_days", "preferred_chain", "challenge")
CHALLENGES = ", ".join(c.value for c in Challenge)
CERT_KEYS = ("name", "domains") + DEFAULT_KEYS + ("dns", "deploy", "deploy_role_arn")

REQUIRED = {
    "certificates": "a non-empty list of certificates, each with a name and domains",
    "name": "a certificate name like 'example-site'",
    "domains": "a non-empty list of DNS names like [example.com, '*.example.com']",
    "directory": "the fallback CA's directory: letsencrypt, letsencrypt-staging or an https:// URL",
    "kid": "the EAB key id the CA gave you",
    "hmac_key": "a reference to the EAB HMAC key: 'ssm:/name' or 'secretsmanager:id'",
    "regions": "a non-empty list of AWS regions like [us-east-1]",
    "distributions": "a non-empty list of CloudFront distribution ids like [E2ABCDEF123456]",
    "bucket": "the S3 bucket to export the PEM files to",
    "listeners": "a non-empty list of ELBv2 HTTPS or TLS listener ARNs",
    "secrets": "a non-empty list of secrets like [{name: certrenew/shop, region: eu-west-1}]",
    "parameters": "a non-empty list of parameter prefixes like [{prefix: /certrenew/shop/, region: eu-west-1}]",
}

SECRET_PREFIXES = ("ssm:/", "secretsmanager:")
KEY_TYPE_VALUES = frozenset(k.value for k in KeyType)
KEY_TYPES = ", ".join(k.value for k in KeyType)

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PROFILE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
HTTPS_URL_RE = re.compile(r"^https://(?:[^@/?#\s]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)"
                          r"(?::(?P<port>\d{1,5}))?(?:[/?#]\S*)?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# ---- the document ----------------------------------------------------------------------------


def build_config(data: Any, source: str) -> Config | list[Problem]:
    """The `Config` the parsed document describes, or every problem in it."""
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{kind(data)} {show(data)}"
        return [Problem("", f"the document is {what}; expected a mapping with the "
                            f"keys {', '.join(TOP_KEYS)}")]
    v = Validator(REQUIRED)
    config = _config(v, data, source)
    if v.problems:
        return v.problems
    if config is BAD:
        raise AssertionError("config: a value was marked BAD but no problem was reported")
    return config


def _config(v: Validator, data: dict[str, Any], source: str) -> Config | Invalid:
    v.mapping(data, "", TOP_KEYS, required=("certificates",))
    acme = _acme(v, data)
    defaults = _settings(v, v.optional_mapping(data, "defaults", "", DEFAULT_KEYS), "defaults")
    certificates = all_valid(_certificates(v, data.get("certificates"), defaults))
    notify = notify_spec(v, data)
    if acme is BAD or certificates is BAD or notify is BAD:
        return BAD
    return Config(acme=acme, certificates=certificates, notify=notify, source=source)


# ---- acme ------------------------------------------------------------------------------------


def _acme(v: Validator, data: dict[str, Any]) -> AcmeSettings | Invalid:
    acme = v.optional_mapping(data, "acme", "", ACME_KEYS)
    if acme is None:
        return AcmeSettings(directory=LETSENCRYPT)
    directory = _directory(v, acme.get("directory"), "acme.directory")
    email = None if acme.get("email") is None else _email(v, acme["email"], "acme.email")
    eab = _eab(v, acme.get("eab"), "acme.eab")
    fallback = _fallbacks(v, acme.get("fallback"), directory, email)
    rehearsal = _rehearsal_directory(v, acme.get("rehearsal_directory"), directory)
    if BAD in (directory, email, eab, fallback, rehearsal):
        return BAD
    return AcmeSettings(directory=directory, email=email, eab=eab, fallback=fallback,
                        rehearsal_directory=rehearsal)  # type: ignore[arg-type]


def _rehearsal_directory(v: Validator, value: Any, primary: str | Invalid) -> str | None | Invalid:
    """The staging directory `certrenew rehearse` issues from (for a CA other than Let's
    Encrypt): an https:// URL that is not a production CA, or a rehearsal would spend the
    production rate limits it exists to protect."""
    if value is None:
        return None
    path = "acme.rehearsal_directory"
    if not isinstance(value, str) or "://" not in value:
        return v.add(path, f"expected the https:// URL of the CA's staging (test) directory; got {describe(value)}")
    directory = _directory(v, value, path)
    if directory == primary or directory == LETSENCRYPT:
        return v.add(path, f"{show(value)} is a production directory: a rehearsal must use the CA's staging "
                           "(test) directory, or it counts against the production rate limits")
    return directory


def _fallbacks(v: Validator, value: Any, primary: str | Invalid,
               email: str | None | Invalid) -> tuple[AcmeSettings, ...] | Invalid:
    """The CAs tried in order when the primary cannot issue: each its own directory (none twice,
    not the primary), email (the primary's unless set) and EAB."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value or len(value) > MAX_FALLBACKS:
        return v.add("acme.fallback", f"expected a list of 1 to {MAX_FALLBACKS} CAs, each "
                                      f"{{directory, email, eab}}; got {describe(value)}")
    seen = {primary: "acme.directory"}
    out: list[AcmeSettings | Invalid] = []
    for i, item in enumerate(value):
        path = f"acme.fallback[{i}]"
        ca = v.mapping(item, path, FALLBACK_KEYS, required=("directory",))
        if ca is None:
            out.append(BAD)
            continue
        directory = BAD if ca.get("directory") is None else _directory(v, ca["directory"], f"{path}.directory")
        if isinstance(directory, str) and directory in seen:
            directory = v.add(f"{path}.directory", f"{show(directory)} is already {seen[directory]}: a fallback "
                                                   f"must be another CA")
        elif isinstance(directory, str):
            seen[directory] = f"{path}.directory"
        own = email if ca.get("email") is None else _email(v, ca["email"], f"{path}.email")
        eab = _eab(v, ca.get("eab"), f"{path}.eab")
        out.append(BAD if BAD in (directory, own, eab) else AcmeSettings(directory=directory, email=own, eab=eab))
    return BAD if BAD in out else tuple(out)  # type: ignore[return-value]


def _email(v: Validator, value: Any, path: str) -> str | Invalid:
    email = v.string(value, path, "an email address")
    if email is not BAD and not EMAIL_RE.match(email):
        return v.add(path, f"{show(email)} is not an email address (like ops@example.com)")
    return email


def _directory(v: Validator, value: Any, path: str) -> str | Invalid:
    if value is None:
        return LETSENCRYPT
    accepted = "use letsencrypt, letsencrypt-staging or the https:// URL of an ACME directory"
    text = v.string(value, path, f"a directory: {accepted}")
    if text is BAD:
        return BAD
    if text in DIRECTORY_ALIASES:
        return DIRECTORY_ALIASES[text]
    if "://" not in text:
        close = difflib.get_close_matches(text, list(DIRECTORY_ALIASES), n=1, cutoff=0.6)
        hint = f" (did you mean {show(close[0])}?)" if close else ""
        return v.add(path, f"{show(text)} is not a known CA{hint}: {accepted}")
    if text.lower().startswith("http://"):
        return v.add(path, f"{show(text)} must use https:// (ACME requires TLS): {accepted}")
    url = HTTPS_URL_RE.match(text)
    if not url or int(url.group("port") or 443) > 65535:
        return v.add(path, f"{show(text)} is not a valid https:// URL: {accepted}")
    return text


def _secret_ref(v: Validator, value: Any, path: str) -> str | Invalid:
    """A reference to a secret. The value is never echoed: it may be the secret itself."""
    accepted = ("secrets must be references, not literal values: use 'ssm:/parameter-name' "
                "(SecureString) or 'secretsmanager:secret-id'")
    if not isinstance(value, str):
        return v.add(path, f"expected a secret reference; got {kind(value)}: {accepted}")
    for prefix in SECRET_PREFIXES:
        if value.startswith(prefix) and value[len(prefix):].strip(" /") \
                and not any(c.isspace() for c in value):
            return value
    if value.startswith(("ssm:", "secretsmanager:")):  # a malformed reference: safe to show
        return v.add(path, f"{show(value)} is not a valid reference: {accepted}")
    return v.add(path, f"not a secret reference (value not shown): {accepted}")


def _eab(v: Validator, value: Any, path: str) -> Eab | None | Invalid:
    if value is None:
        return None
    eab = v.mapping(value, path, EAB_KEYS, required=EAB_KEYS)
    if eab is None:
        return BAD
    # a missing kid or hmac_key is reported by the mapping check
    kid = BAD if eab.get("kid") is None else v.string(
        eab["kid"], f"{path}.kid", "the EAB key id (a non-empty string)")
    ref = BAD if eab.get("hmac_key") is None else _secret_ref(v, eab["hmac_key"],
                                                              f"{path}.hmac_key")
    if kid is BAD or ref is BAD:
        return BAD
    return Eab(kid=kid, hmac_ref=ref)


# ---- defaults and per-certificate settings -------------------------------------------------


@dataclass(frozen=True)
class _Setting(Generic[T]):
    value: T | Invalid
    path: str  # where the value came from ("" for the built-in default)


@dataclass(frozen=True)
class _Settings:
    """The inheritable settings."""

    key: _Setting[KeyType]
    profile: _Setting[str | None]
    renew_before_days: _Setting[int | None]
    preferred_chain: _Setting[str | None]
    challenge: _Setting[Challenge]


_BUILTIN = _Settings(key=_Setting(KeyType.EC_P256, ""), profile=_Setting(None, ""),
                     renew_before_days=_Setting(None, ""), preferred_chain=_Setting(None, ""),
                     challenge=_Setting(Challenge.DNS01, ""))


def _settings(v: Validator, section: dict[str, Any] | None, path: str,
              inherited: _Settings = _BUILTIN) -> _Settings:
    """The inheritable settings: a key present here wins, else the inherited one."""
    if section is None:  # reported already; keep the inherited values
        return inherited
    return _Settings(
        key=_setting(v, section, path, "key", _key_type, inherited.key),
        profile=_setting(v, section, path, "profile", _profile, inherited.profile),
        renew_before_days=_setting(v, section, path, "renew_before_days", _renew_before_days,
                                   inherited.renew_before_days),
        preferred_chain=_setting(v, section, path, "preferred_chain", _preferred_chain,
                                 inherited.preferred_chain),
        challenge=_setting(v, section, path, "challenge", _challenge, inherited.challenge))


def _setting(v: Validator, section: dict[str, Any], path: str, key: str,
             check: Callable[[Validator, Any, str], T | Invalid],
             inherited: _Setting[T]) -> _Setting[T]:
    if key not in section:
        return inherited
    return _Setting(check(v, section[key], at(path, key)), at(path, key))


def _key_type(v: Validator, value: Any, path: str) -> KeyType | Invalid:
    if isinstance(value, str) and value in KEY_TYPE_VALUES:
        return KeyType(value)
    shown = show(value) if isinstance(value, str) else describe(value)
    return v.add(path, f"{shown} is not a key type: use one of {KEY_TYPES}")


def _challenge(v: Validator, value: Any, path: str) -> Challenge | Invalid:
    if isinstance(value, str) and value in {c.value for c in Challenge}:
        return Challenge(value)
    shown = show(value) if isinstance(value, str) else describe(value)
    return v.add(path, f"{shown} is not a challenge: use one of {CHALLENGES}")


def _profile(v: Validator, value: Any, path: str) -> str | None | Invalid:
    if value is None:
        return None
    what = ("an ACME profile name (like classic, tlsserver or shortlived: lowercase letters, "
            "digits, '.', '_' and '-', at most 64) or null for the CA's default")
    return v.matching(value, path, PROFILE_RE, what)


def _renew_before_days(v: Validator, value: Any, path: str) -> int | None | Invalid:
    if value is None:
        return None
    what = "a whole number of days from 1 to 365, or null"
    if isinstance(value, bool) or not isinstance(value, int):
        quoted = isinstance(value, str) and value.strip().isdigit()
        hint = " (write it without quotes)" if quoted else ""
        return v.add(path, f"expected {what}; got {describe(value)}{hint}")
    if not 1 <= value <= 365:
        return v.add(path, f"{value} is out of range: expected {what}")
    return value


def _preferred_chain(v: Validator, value: Any, path: str) -> str | None | Invalid:
    if value is None:
        return None
    what = ("the issuer common name of a root (a non-empty string of at most 200 characters), "
            "or null")
    text = v.string(value, path, what)
    if text is not BAD and len(text) > 200:
        return v.add(path, f"{show(text)} is too long: expected {what}")
    return text


# ---- certificates ---------------------------------------------------------------------------


def _certificates(v: Validator, value: Any,
                  defaults: _Settings) -> tuple[CertificateSpec | Invalid, ...]:
    if value is None:
        return ()  # "required" is reported by the top-level mapping check
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else describe(value)
        v.add("certificates", f"expected a non-empty list of certificates "
                              f"(each with name and domains); got {got}")
        return ()
    first_use: dict[str, int] = {}
    out = []
    for i, item in enumerate(value):
        checked = _certificate(v, item, f"certificates[{i}]", defaults)
        if checked is None:
            continue
        name, spec = checked
        if isinstance(name, str):
            if name in first_use:
                v.add(f"certificates[{i}].name", f"duplicate name {show(name)} (first "
                                                 f"used by certificates[{first_use[name]}])")
            else:
                first_use[name] = i
        out.append(spec)
    return tuple(out)


def _certificate(v: Validator, value: Any, path: str, defaults: _Settings
                 ) -> tuple[str | Invalid, CertificateSpec | Invalid] | None:
    """The certificate's name and spec; None if it is not a mapping."""
    cert = v.mapping(value, path, CERT_KEYS, required=("name", "domains"))
    if cert is None:
        return None
    name = _name(v, cert.get("name"), f"{path}.name")
    settings = _settings(v, cert, path, defaults)
    dns_names = domains(v, cert.get("domains"), f"{path}.domains", settings.profile.value)
    dns = dns_spec(v, v.optional_mapping(cert, "dns", path, DNS_KEYS), f"{path}.dns")
    deploy = deploy_targets(v, v.optional_mapping(cert, "deploy", path, DEPLOY_KEYS),
                            f"{path}.deploy", name, cert.get("deploy_role_arn"), f"{path}.deploy_role_arn")
    _check_key_for_targets(v, settings.key, deploy, path, name)
    valid_names = all_valid(dns_names)
    deploy_spec = deploy if deploy is BAD else deploy.spec()
    chosen = _chosen(settings)
    if name is BAD or valid_names is BAD or dns is BAD or deploy_spec is BAD or chosen is BAD:
        return name, BAD
    key, profile, renew_before_days, preferred_chain, challenge = chosen
    return name, CertificateSpec(name=name, domains=valid_names, key=key, profile=profile,
                                 renew_before_days=renew_before_days, preferred_chain=preferred_chain,
                                 dns=dns, deploy=deploy_spec, challenge=challenge)


def _chosen(settings: _Settings) -> tuple[KeyType, str | None, int | None, str | None, Challenge] | Invalid:
    """The settings' values, or BAD if one of them is."""
    key, profile = settings.key.value, settings.profile.value
    days, chain, challenge = settings.renew_before_days.value, settings.preferred_chain.value, settings.challenge.value
    if key is BAD or profile is BAD or days is BAD or chain is BAD or challenge is BAD:
        return BAD
    return key, profile, days, chain, challenge


def _name(v: Validator, value: Any, path: str) -> str | Invalid:
    if value is None:
        return BAD  # "required" is reported by the mapping check
    rule = ("use 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'")
    text = v.string(value, path, f"a certificate name: {rule}")
    if text is BAD or NAME_RE.match(text):
        return text
    fixed = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    hint = f" (for example {show(fixed)})" if fixed and NAME_RE.match(fixed) else ""
    return v.add(path, f"{show(text)} is not a valid name: {rule}{hint}")


def _check_key_for_targets(v: Validator, key: _Setting[KeyType], deploy: Targets | Invalid,
                           path: str, name: str | Invalid) -> None:
    if key.value is BAD or deploy is BAD or not deploy.uses_cloudfront:
        return
    if key.value.cloudfront_compatible:
        return
    why = (f"{key.value.value} cannot be used with CloudFront (RSA 1024-4096 or EC P-256 only): "
           f"use ec-p256 or an rsa-* key")
    if key.path.startswith("defaults."):
        who = f"{path} ({show(name)})" if isinstance(name, str) else path
        v.add(key.path, f"{why}; {who} inherits this key and deploys to CloudFront "
                        f"(set key on that certificate or change the default)")
    else:
        v.add(key.path or f"{path}.key", why)
