"""The DNS names a certificate asks for: how many a profile allows, and what makes one invalid.

Each problem says what to write instead where there is one answer (a trailing dot, uppercase
letters, an internationalized name that must be punycode).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from .kit import BAD, Invalid, Validator, show

MAX_NAMES = 100  # the `classic` profile's limit
PROFILE_MAX_NAMES = {"tlsserver": 25, "shortlived": 25}
LABEL_RE = re.compile(r"^[a-z0-9-]+$")
MAX_LABEL_PROBLEMS = 3  # per name: enough to explain it, not a wall of text


def domains(v: Validator, value: Any, path: str, profile: object) -> tuple[str | Invalid, ...]:
    if value is None:
        return ()  # "required" is reported by the mapping check
    limit, by = MAX_NAMES, "a certificate"
    if isinstance(profile, str) and profile in PROFILE_MAX_NAMES:
        limit, by = PROFILE_MAX_NAMES[profile], f"the {profile!r} profile"
    if isinstance(value, list) and len(value) > limit:
        v.add(path, f"{len(value)} names: {by} allows at most {limit}")
        value = value[:MAX_NAMES]  # check the first ones; do not amplify a huge list
    return v.unique_list(value, path, "DNS names", lambda raw, p: _domain(v, raw, p))


def _domain(v: Validator, value: Any, path: str) -> str | Invalid:
    text = v.string(value, path, "a DNS name (like example.com or *.example.com)")
    if text is BAD:
        return BAD
    problems = domain_problems(text)
    for message in problems:
        v.add(path, message)
    return BAD if problems else text


def domain_problems(name: str) -> list[str]:
    """What is wrong with one requested name; an empty list if it is fine."""
    shown = show(name)
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
        return [f"{shown} {' and '.join(fixes)}: write {show(candidate)}"]
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
    if is_ip(name):
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
        out.append(f"{shown}: the top-level label {show(labels[-1])} is all digits")
    return out


def _label_problem(label: str, shown: str) -> str | None:
    if not label:
        return f"{shown} has an empty label ('..', or a leading dot)"
    if len(label) > 63:
        return f"{shown}: label {show(label)} is {len(label)} characters long; at most 63"
    if not LABEL_RE.match(label):
        return f"{shown}: label {show(label)} may contain only a-z, 0-9 and '-'"
    if label.startswith("-") or label.endswith("-"):
        return f"{shown}: label {show(label)} must not start or end with '-'"
    if label[2:4] == "--":
        if not label.startswith("xn--"):
            return (f"{shown}: label {show(label)} has '--' in positions 3-4, which is reserved for "
                    "IDN labels (xn--); CAs refuse it")
        try:
            label.encode("ascii").decode("idna")
        except UnicodeError:
            return f"{shown}: label {show(label)} is not valid punycode"
    return None


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
