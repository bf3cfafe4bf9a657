"""Strict mode of the devstack's AWS proxy: answer as AWS would where moto is lenient.

moto accepts calls that AWS refuses (see shared REFERENCE.md, "moto in server mode"). Each
module of this package holds the rules of one service; the proxy asks every rule about every
call it forwards (`before`, which may refuse it with AWS's own error code and message) and
lets every rule see or adjust moto's answer (`after`). Strict mode is on unless the proxy was
started with `--lenient` or told `{"strict": false}` through /_devstack/config.

A rule is an object with two methods, both optional:

    before(call: Call) -> None          # raise AwsError to answer as AWS would refuse
    after(call: Call, resp) -> Response # moto's answer as AWS would give it (default: unchanged),
                                        # or raise AwsError to withhold it (judged by what it shows)

`Call` carries the parsed request (service, region, operation, parameters, principal) and a
way to read moto's state directly (`call.moto(service, region, account=...)`: a boto3 client that bypasses
the proxy, with the devstack's admin credentials), for rules that compare with what is stored.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs

__all__ = ["AwsError", "Call", "Rules", "RULE_FACTORIES"]


class AwsError(Exception):
    """An error answer shaped by the proxy the way the service sends it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


@dataclass
class Call:
    """One request as a strict rule sees it."""

    service: str
    region: str
    operation: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # case-insensitive (email.message.Message)
    body: bytes
    principal: str  # "admin" (test set-up), "renewer" (the product) or an assumed role's ARN
    moto: Callable[..., Any]  # (service, region, account=, access_key=) -> boto3 client straight to moto
    memory: dict = field(default_factory=dict)  # the rule set's shared memory (guarded by Rules.lock)
    scratch: dict = field(default_factory=dict)  # this call's own: what one rule read for the others, before for after

    def json(self) -> dict:
        """Parameters of a JSON-protocol call (ACM, EventBridge, SSM, Secrets Manager)."""
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def form(self) -> dict[str, str]:
        """Parameters of a query-protocol call (SNS, STS): the first value of each field."""
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True) if self.body else {}
        fields = {**{k: v for k, v in self.query.items()}, **fields}
        return {k: v[0] for k, v in fields.items() if v}


# Factories of the rules strict mode applies, in order. Each service module appends its own.
RULE_FACTORIES: list[Callable[[], Any]] = []


class Rules:
    """The rule set of one proxy process; `memory` is shared state the rules keep between calls."""

    def __init__(self, factories: list[Callable[[], Any]] | None = None) -> None:
        _load_rule_modules()
        self.rules = [make() for make in (RULE_FACTORIES if factories is None else factories)]
        self.memory: dict = {}
        self.lock = threading.RLock()

    def before(self, call: Call) -> None:
        call.memory = self.memory
        for rule in self.rules:
            check = getattr(rule, "before", None)
            if check is not None:
                check(call)

    def after(self, call: Call, resp):
        call.memory = self.memory
        for rule in self.rules:
            adjust = getattr(rule, "after", None)
            if adjust is not None:
                resp = adjust(call, resp)
        return resp

    def reset(self) -> None:
        with self.lock:
            self.memory.clear()

    # Settings a rule takes through /_devstack/config: it declares `config_defaults` (a dict) and
    # may check new values in `validate(data)` (raise ValueError); it reads them from
    # `call.memory["config"]`. A config reset brings the defaults back.

    def config_defaults(self) -> dict:
        out: dict = {}
        for rule in self.rules:
            out.update(getattr(rule, "config_defaults", {}))
        return out

    def settings(self) -> dict:
        with self.lock:
            return {**self.config_defaults(), **self.memory.get("config", {})}

    def configure(self, data: dict) -> None:
        for rule in self.rules:
            validate = getattr(rule, "validate", None)
            if validate is not None:
                validate(data)
        with self.lock:
            self.memory.setdefault("config", {}).update(data)


def _load_rule_modules() -> None:
    """Import every service module of this package once (each registers its rules)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
