"""The validation kit: collect problems, check one value at one path, show values in messages.

A check returns the checked value, or `BAD` once it has reported a problem for it: `str | Invalid`
says so in the type. Dependent checks skip a `BAD` value, and a model is built only from values
that are not `BAD` (every `BAD` comes with a problem, so the document is refused anyway).
"""
from __future__ import annotations

import difflib
import re
import reprlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Final, Mapping, TypeVar

from ..errors import Problem

T = TypeVar("T")


class Invalid(Enum):
    """The type of `BAD`: a value that was reported as a problem."""

    BAD = "BAD"


BAD: Final = Invalid.BAD


def all_valid(items: tuple[T | Invalid, ...]) -> tuple[T, ...] | Invalid:
    """The items, or BAD if any of them is BAD."""
    valid = tuple(item for item in items if not isinstance(item, Invalid))
    return valid if len(valid) == len(items) else BAD


@dataclass
class Validator:
    """Collects problems; the helpers below check one value at one path.

    `required` says what each required key holds, for the message when it is missing.
    """

    required: Mapping[str, str]
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: str, message: str) -> Invalid:
        self.problems.append(Problem(path, message))
        return BAD

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """A mapping with only `allowed` keys and every `required` one; None if not a mapping."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping with keys {', '.join(allowed)}; "
                           f"got {describe(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.add(at(path, key), unknown_key(key, allowed))
        for key in required:
            if value.get(key) is None:
                self.add(at(path, key), f"required: {self.required[key]}")
        return value

    def optional_mapping(self, parent: dict[str, Any], key: str, path: str,
                         allowed: tuple[str, ...]) -> dict[str, Any] | None:
        """An optional section: absent or null is an empty mapping; None if it is invalid."""
        value = parent.get(key)
        if value is None:
            return {}
        return self.mapping(value, at(path, key), allowed)

    def string(self, value: Any, path: str, what: str) -> str | Invalid:
        """A non-empty string, or BAD (reported)."""
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, (int, float, bool)) else ""
            return self.add(path, f"expected {what}; got {describe(value)}{hint}")
        if not value.strip():
            return self.add(path, f"expected {what}; got an empty string")
        return value

    def matching(self, value: Any, path: str, pattern: re.Pattern[str],
                 what: str) -> str | Invalid:
        text = self.string(value, path, what)
        if text is BAD:
            return BAD
        if not pattern.match(text):
            return self.add(path, f"{show(text)} is not {what}")
        return text

    def unique_list(self, value: Any, path: str, what: str,
                    item: Callable[[Any, str], T]) -> tuple[T, ...]:
        """A non-empty list, each item checked by `item(value, path)`, no duplicates."""
        if not isinstance(value, list):
            self.add(path, f"expected a non-empty list of {what}; got {describe(value)}")
            return ()
        if not value:
            self.add(path, f"expected a non-empty list of {what}; got an empty list")
            return ()
        out: list[T] = []
        first: dict[Any, int] = {}
        for i, raw in enumerate(value):
            checked = item(raw, index(path, i))
            key = raw if isinstance(raw, str) else (checked if checked is not BAD else None)  # entries: as checked
            if key is not None and key in first:
                self.add(index(path, i),
                         f"duplicate of {leaf(path)}[{first[key]}] ({show(raw) if isinstance(raw, str) else key})")
                continue
            if key is not None:
                first[key] = i
            out.append(checked)
        return tuple(out)


# ---- paths ----------------------------------------------------------------------------------


def at(path: str, key: object) -> str:
    name = key if isinstance(key, str) else show(key)
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def unknown_key(key: object, allowed: tuple[str, ...]) -> str:
    if isinstance(key, str):
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown key {show(key)} (did you mean {show(close[0])}?)"
    return f"unknown key {show(key)}: expected one of {', '.join(allowed)}"


# ---- showing values in messages -------------------------------------------------------------

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60
MAX_SHOWN_CHARS = 80


def show(value: object) -> str:
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


def kind(value: object) -> str:
    if value is None:
        return "null"
    kinds = [(bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
             (list, "a list"), (dict, "a mapping")]
    for typ, name in kinds:
        if isinstance(value, typ):
            return name
    return f"a {type(value).__name__}"


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict) and not value:
        return "an empty mapping"
    return f"{kind(value)} {show(value)}"
