"""APIs the devstack's AWS proxy answers itself, where moto lacks them, with AWS's documented
request and response shapes (botocore's service models are the reference), so the product's
calls and the tests go over real sockets as at AWS.

Each module here defines a class with
    answer(req, ctx) -> Response | None
where `req` is the proxy's `Request` (service, region, operation from botocore's model, method,
path, query, headers, body) and `ctx` a `ServedContext`; None means "not mine": moto answers.
A served call passes the strict rules first (strict IAM judges it like any other), is recorded
like any other, and its state lives in `ctx.memory` (per account), forgotten on a proxy reset.
Register a class in SERVED_MODULES below (module name, class name).
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

SERVED_MODULES: tuple[tuple[str, str], ...] = (
    ("devstack.served.apigateway", "ApiGatewayDomains"),
    ("devstack.served.cloudfront_tenants", "DistributionTenants"),
)


@dataclass
class Response:
    """An answer as the proxy sends it. Defined here, not in aws_proxy (which runs as __main__
    and cannot be imported back), so the proxy and the served APIs share it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    reason: str = ""


@dataclass
class ServedContext:
    """What a served API may use: its memory (guarded by `lock`), moto's state (a boto3 client
    straight to moto: `moto(service, region, account=..., access_key=...)`), and the account of
    the caller (`account_of(req)`: the default account, or an assumed role's)."""

    moto: Callable[..., Any]
    account_of: Callable[[Any], str]
    memory: dict = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


class Served:
    """Every served API, asked in turn."""

    def __init__(self, moto: Callable[..., Any], account_of: Callable[[Any], str]) -> None:
        self.ctx = ServedContext(moto, account_of)
        self.apis = [getattr(module, name)() for module, name in _modules()]

    def answer(self, req: Any) -> Any | None:
        for api in self.apis:
            resp = api.answer(req, self.ctx)
            if resp is not None:
                return resp
        return None

    def reset(self) -> None:
        with self.ctx.lock:
            self.ctx.memory.clear()


def _modules():
    for module_name, class_name in SERVED_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # not written yet
        yield module, class_name
