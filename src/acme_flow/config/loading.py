"""The hardened loader: the text of a YAML (or JSON) document to plain data, or the problems.

Bounded before anything is built: the size of the document, the number of aliases (no alias bomb)
and the nesting. Duplicate keys are reported, not silently overwritten; YAML errors name the line
and column.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import yaml
from yaml.composer import ComposerError
from yaml.events import (AliasEvent, Event, MappingEndEvent, MappingStartEvent, SequenceEndEvent,
                         SequenceStartEvent)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import Problem
from .kit import show

MAX_DOCUMENT_BYTES = 1_000_000
MAX_ALIASES = 300  # YAML aliases per document: enough for shared blocks, too few for a bomb
MAX_DEPTH = 32  # nesting of YAML collections; the schema needs 6

# libyaml when present (several times faster on big documents), else the pure Python loader.
# Both only build plain data (SafeLoader). libyaml's composer recurses in C, so `_scan` bounds the
# nesting (and the aliases) on the event stream first, before any node tree is built.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_START_EVENTS = (SequenceStartEvent, MappingStartEvent)
_END_EVENTS = (SequenceEndEvent, MappingEndEvent)


@dataclass(frozen=True)
class Loaded:
    """A parsed document: any plain data (a mapping, a list, a scalar or None)."""

    data: Any


def load_document(text: str | bytes) -> Loaded | list[Problem]:
    """The parsed document, or the problems that stopped parsing it."""
    if not isinstance(text, (str, bytes)):
        raise TypeError(f"config text must be str or bytes, not {type(text).__name__}")
    size = _size(text)
    if size > MAX_DOCUMENT_BYTES:
        return [Problem("", f"the document is {size:,} bytes; "
                            f"at most {MAX_DOCUMENT_BYTES:,} are accepted")]
    loaded = _load_yaml(text)
    if isinstance(loaded, list) and _looks_like_json(text):
        # JSON is YAML, except where PyYAML is stricter (a tab between tokens): try it as JSON
        as_json = _load_json(text)
        loaded = as_json if isinstance(as_json, Loaded) else loaded + as_json
    return loaded


def _scan(text: str | bytes) -> None:
    """Refuse alias bombs and absurd nesting; YAML syntax errors surface here too."""
    aliases = depth = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _refusal(f"more than {MAX_ALIASES} aliases (*name)", event)
        elif isinstance(event, _START_EVENTS):
            depth += 1
            if depth > MAX_DEPTH:
                raise _refusal(f"nested more than {MAX_DEPTH} levels deep", event)
        elif isinstance(event, _END_EVENTS):
            depth -= 1


def _refusal(why: str, event: Event) -> ComposerError:
    # libyaml's Mark is not yaml.error.Mark for the stubs; both have the line and column read
    mark: Any = event.start_mark
    return ComposerError(None, None, f"{why}: refusing the document", mark)


def _load_yaml(text: str | bytes) -> Loaded | list[Problem]:
    """The parsed document, or the problems that stopped parsing."""
    loader = None
    try:
        _scan(text)
        loader = _SafeLoader(text)
        node = loader.get_single_node()
        duplicates = list(_duplicate_keys(node))
        if duplicates:
            return duplicates
        return Loaded(loader.construct_document(node) if node is not None else None)
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


def _load_json(text: str | bytes) -> Loaded | list[Problem]:
    duplicates: list[Problem] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(Problem("", f"duplicate key {show(key)} in a JSON object"))
            out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return [Problem("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
    except (ValueError, RecursionError) as exc:
        return [Problem("", f"invalid JSON: {exc}")]
    return duplicates or Loaded(data)


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
                                      f"{show(key.value)} (first at line "
                                      f"{earlier.start_mark.line + 1})")
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
