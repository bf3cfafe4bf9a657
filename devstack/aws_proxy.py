"""A recording HTTP reverse proxy in front of moto (the devstack's AWS_ENDPOINT_URL).

Run as `python -m devstack.aws_proxy --port P --moto-url URL [--route53-delay N]`.

- Forwards every request to moto unchanged (method, path, query, headers incl. Host, body) and
  returns moto's status, headers and body.
- Records each call: service, region, operation, method, path, status, time (+ Route53 change batches).
- Route53: gives every change a unique id and answers PENDING until `route53_delay` seconds after it.
- Fault injection: `faults` rules answer an AWS-shaped error instead of forwarding (all, every
  Nth, or a seeded share of the matching calls), or delay them, or (`entries`) fail some entries
  of a PutEvents call inside its 200 answer.
- Strict mode (on unless `--lenient`): the rules of devstack/strict answer as AWS would where
  moto is lenient (a refused call is recorded with `strict: <code>`).
- Control endpoints under /_devstack/ (never forwarded): see `ControlApi`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import random
import re
import secrets
import signal
import threading
import time
from copy import deepcopy
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack import aws_ops
from devstack.served import Response, Served
from devstack.strict import AwsError, Call, Rules
from devstack.strict import iam as strict_iam

log = logging.getLogger("devstack.aws_proxy")

CONTROL_PREFIX = "/_devstack/"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect"}
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass
class Fault:
    """Answer matching calls with an AWS error (or delay them) instead of forwarding them.

    Matching: `service` and `operation` are a name, a list of names, or None / "*" for any.
    Which matching calls are hit: every one (default), every `every`-th one (the Nth, 2Nth, ...
    matching call), or each with `probability` (a random draw from a generator seeded with
    `seed`, so a run of calls in the same order sees the same faults). `count` caps the calls
    hit (None: no cap). `delay` sleeps that many seconds before answering; with `error: false`
    the call is then forwarded to moto (a slow call rather than a failed one).

    With `entries: true` (EventBridge PutEvents) a hit call is answered 200 with some entries
    failed inside it, as PutEvents does: each entry fails with `code` (ThrottlingException,
    InternalFailure) and `message`, without an EventId, and FailedEntryCount counts them; the other
    entries go to moto. `every` / `probability` then choose the failed ENTRIES (every Nth entry
    seen by the rule, or each with the seeded probability; neither: every entry of a hit call).
    """

    service: str | list[str] | None = None
    operation: str | list[str] | None = None
    status: int = 400
    code: str = "Throttling"
    message: str = "Rate exceeded"
    count: int | None = 1
    every: int | None = None
    probability: float | None = None
    seed: int | None = None
    delay: float = 0.0
    error: bool = True
    after: bool = False  # forward the call first, then answer the error: a response lost after AWS acted
    entries: bool = False  # fail entries inside a 200 answer (PutEvents) instead of the whole call
    entries_seen: int = 0  # entries of hit calls seen so far (for `every` with `entries`)
    entries_failed: int = 0  # entries this rule failed
    matched: int = 0  # matching calls seen so far (for `every`)
    hits: int = 0  # calls this rule answered or delayed
    _random: random.Random | None = field(default=None, repr=False, compare=False)
    _source: Fault | None = field(default=None, repr=False, compare=False)  # the rule a hit was copied from

    def __post_init__(self) -> None:
        if self.every is not None and (not isinstance(self.every, int) or self.every < 1):
            raise ValueError(f"every must be a whole number >= 1, got {self.every!r}")
        if self.probability is not None and not 0.0 <= float(self.probability) <= 1.0:
            raise ValueError(f"probability must be between 0 and 1, got {self.probability!r}")
        if self.every is not None and self.probability is not None:
            raise ValueError("a fault takes `every` or `probability`, not both")
        if float(self.delay) < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay!r}")
        if self.probability is not None:
            self._random = random.Random(self.seed)
        if self.entries and self.after:
            raise ValueError("a fault takes `entries` or `after`, not both")

    def matches(self, service: str, operation: str) -> bool:
        return (_name_matches(self.service, service) and _name_matches(self.operation, operation)
                and (self.count is None or self.count > 0))

    def fires(self) -> bool:
        """Called once per matching call (under the state lock): is this one hit?"""
        self.matched += 1
        if self.entries:
            return True  # `every` / `probability` choose entries, not calls
        if self.every is not None:
            return self.matched % self.every == 0
        if self._random is not None:
            return self._random.random() < float(self.probability)
        return True

    def entry_fails(self) -> bool:
        """Called once per entry of a hit call (under the state lock): does this entry fail?"""
        self.entries_seen += 1
        if self.every is not None:
            failed = self.entries_seen % self.every == 0
        elif self._random is not None:
            failed = self._random.random() < float(self.probability)
        else:
            failed = True
        self.entries_failed += failed
        return failed

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    @classmethod
    def from_json(cls, data: dict) -> Fault:
        known = {k for k in cls.__dataclass_fields__ if not k.startswith("_")} - {
            "matched", "hits", "entries_seen", "entries_failed"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        return cls(**data)


def _name_matches(wanted: str | list[str] | None, name: str) -> bool:
    if wanted is None or wanted == "*":
        return True
    if isinstance(wanted, (list, tuple)):
        return "*" in wanted or name in wanted
    return wanted == name


@dataclass
class ProxyState:
    """Everything the proxy remembers; guarded by `lock`."""

    default_delay: float = 0.0
    route53_delay: float = 0.0
    default_strict: bool = True
    strict: bool = True
    faults: list[Fault] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)
    changes: dict[str, float] = field(default_factory=dict)  # change id -> monotonic time it turns INSYNC
    lock: threading.Lock = field(default_factory=threading.Lock)
    rules: Rules = field(default_factory=Rules)  # strict mode's rules and what they remember
    served: Any = None  # devstack/served: the APIs the proxy answers itself (moto lacks them)

    def config(self) -> dict:
        with self.rules.lock:
            deployment = strict_iam.deployment(self.rules.memory)
        return {"route53_delay": self.route53_delay, "faults": [f.to_json() for f in self.faults],
                "strict": self.strict, "deployment": deployment, **self.rules.settings()}

    def update_config(self, data: dict) -> None:
        rule_keys = set(self.rules.config_defaults())  # settings of the strict rules (devstack/strict)
        unknown = set(data) - {"route53_delay", "faults", "strict", "deployment"} - rule_keys
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        self.rules.configure({k: v for k, v in data.items() if k in rule_keys})
        faults = [Fault.from_json(f) for f in data["faults"]] if "faults" in data else None
        delay = float(data["route53_delay"]) if "route53_delay" in data else None
        if delay is not None and delay < 0:
            raise ValueError("route53_delay must be >= 0")
        if "strict" in data and not isinstance(data["strict"], bool):
            raise ValueError(f"strict must be true or false, got {data['strict']!r}")
        if "deployment" in data:  # the template parameters strict IAM resolves the renewer's policy with
            deployment = strict_iam.check_deployment(data["deployment"])
            with self.rules.lock:
                strict_iam.set_deployment(self.rules.memory, deployment)
        with self.lock:
            if delay is not None:
                self.route53_delay = delay
            if faults is not None:
                self.faults = faults
            if "strict" in data:
                self.strict = data["strict"]

    def reset_config(self) -> None:
        with self.lock:
            self.route53_delay, self.faults, self.strict = self.default_delay, [], self.default_strict
            self.changes.clear()
        self.rules.reset()
        if self.served is not None:
            self.served.reset()

    def take_fault(self, service: str, operation: str) -> Fault | None:
        """The first rule that hits this call, if any (every matching rule counts the call)."""
        hit = None
        with self.lock:
            for fault in self.faults:
                if fault.matches(service, operation) and fault.fires() and hit is None:
                    if fault.count is not None:
                        fault.count -= 1
                    fault.hits += 1
                    hit = deepcopy(fault)
                    hit._source = fault
        return hit

    def failed_entries(self, hit: Fault, count: int) -> list[int]:
        """Which of a hit call's `count` entries fail (counted on the rule the hit came from)."""
        with self.lock:
            rule = hit._source or hit
            return [index for index in range(count) if rule.entry_fails()]

    def record(self, call: dict) -> None:
        with self.lock:
            self.calls.append(call)

    def new_change(self) -> str:
        change_id = "C" + secrets.token_hex(8).upper()
        with self.lock:
            self.changes[change_id] = time.monotonic() + self.route53_delay
        return change_id

    def change_pending(self, change_id: str) -> bool:
        with self.lock:
            ready_at = self.changes.get(change_id)
        return ready_at is not None and time.monotonic() < ready_at


@dataclass
class Request:
    method: str
    path: str  # without the query
    raw_path: str  # with the query, as received
    query: dict[str, list[str]]
    headers: object  # email.message.Message (case-insensitive)
    body: bytes
    service: str = "unknown"
    region: str = ""
    operation: str = ""


def error_response(req: Request, fault: Fault) -> Response:
    """An error shaped the way the service's protocol sends it."""
    request_id = secrets.token_hex(16)
    protocol = aws_ops.protocol(req.service, req.query, req.headers, req.body)
    if protocol == "json":
        body = json.dumps({"__type": fault.code, "message": fault.message}).encode()
        headers = [("Content-Type", JSON_CONTENT_TYPE), ("x-amzn-RequestId", request_id)]
    elif protocol == "rest-json":
        body = json.dumps({"message": fault.message}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", fault.code),
                   ("x-amzn-RequestId", request_id)]
    elif req.service == "s3":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{fault.code}</Code>"
                f"<Message>{fault.message}</Message><RequestId>{request_id}</RequestId></Error>").encode()
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:  # query protocol, route53, cloudfront
        kind = "Sender" if fault.status < 500 else "Receiver"
        body = (f"<?xml version=\"1.0\"?>\n<ErrorResponse><Error><Type>{kind}</Type><Code>{fault.code}</Code>"
                f"<Message>{fault.message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return Response(fault.status, headers, body)


def _entries(body: bytes) -> list:
    """The `Entries` of a JSON-protocol batch call (PutEvents), [] when there are none."""
    try:
        entries = json.loads(body or b"{}").get("Entries")
    except (ValueError, AttributeError):
        return []
    return entries if isinstance(entries, list) else []


def forward_failing_entries(forwarder: MotoForwarder, req: Request, fault: Fault, failed: list[int]) -> Response:
    """Forward the entries that do not fail; answer 200 with the `failed` ones failed in place."""
    if not failed:
        return forwarder.forward(req)
    params = json.loads(req.body)
    entries = params["Entries"]
    kept = [e for i, e in enumerate(entries) if i not in failed]
    if kept:
        sent = Request(req.method, req.path, req.raw_path, req.query, req.headers,
                       json.dumps({**params, "Entries": kept}).encode(), req.service, req.region, req.operation)
        resp = forwarder.forward(sent)
        if resp.status != 200:
            return resp
        answered = iter(json.loads(resp.body).get("Entries", []))
        headers = resp.headers
    else:
        answered = iter(())
        headers = [("Content-Type", JSON_CONTENT_TYPE), ("x-amzn-RequestId", secrets.token_hex(16))]
    failure = {"ErrorCode": fault.code, "ErrorMessage": fault.message}
    results = [dict(failure) if i in failed else next(answered, {}) for i in range(len(entries))]
    count = sum(1 for r in results if "ErrorCode" in r)
    body = json.dumps({"FailedEntryCount": count, "Entries": results}).encode()
    return Response(200, headers, body)


class MotoForwarder:
    """Sends a request to moto and reads the whole response."""

    def __init__(self, moto_url: str, timeout: float = 60.0):
        parts = urlsplit(moto_url)
        self.host, self.port, self.timeout = parts.hostname, parts.port or 80, timeout

    def forward(self, req: Request) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.putrequest(req.method, req.raw_path, skip_host=True, skip_accept_encoding=True)
            for name, value in req.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    conn.putheader(name, value)
            if req.body or req.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(req.body)))
            conn.endheaders(req.body or None)
            resp = conn.getresponse()
            body = resp.read()
            return Response(resp.status, list(resp.getheaders()), body, resp.reason)
        finally:
            conn.close()


def _set_status(body: bytes, status: str) -> bytes:
    return re.sub(rb"<Status>[A-Z]+</Status>", f"<Status>{status}</Status>".encode(), body, count=1)


class Route53Propagation:
    """Unique change ids and PENDING-until-delay for ChangeResourceRecordSets / GetChange."""

    def __init__(self, state: ProxyState):
        self.state = state

    def after_change(self, resp: Response) -> tuple[Response, str | None]:
        if resp.status != 200:
            return resp, None
        change_id = self.state.new_change()
        body = re.sub(rb"<Id>/change/[^<]*</Id>", f"<Id>/change/{change_id}</Id>".encode(), resp.body, count=1)
        status = "PENDING" if self.state.change_pending(change_id) else "INSYNC"
        return Response(resp.status, resp.headers, _set_status(body, status), resp.reason), change_id

    def after_get_change(self, req: Request, resp: Response) -> Response:
        change_id = aws_ops.route53_change_id(req.path)
        if resp.status != 200 or not change_id or not self.state.change_pending(change_id):
            return resp
        return Response(resp.status, resp.headers, _set_status(resp.body, "PENDING"), resp.reason)


class ControlApi:
    """GET /_devstack/calls[?service=&operation=], POST /_devstack/calls/reset,
    GET|POST /_devstack/config, POST /_devstack/config/reset, POST /_devstack/reset (both),
    GET /_devstack/health. The config's `deployment` is what strict IAM resolves the renewer's
    policy with (devstack/strict/iam.py); a reset forgets it."""

    def __init__(self, state: ProxyState):
        self.state = state

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, object]:
        route = (method, path[len(CONTROL_PREFIX):].rstrip("/"))
        try:
            return self._dispatch(route, query, body)
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            return 400, {"error": str(exc)}

    def _dispatch(self, route, query, body) -> tuple[int, object]:
        state = self.state
        if route == ("GET", "health"):
            return 200, {"ok": True}
        if route == ("GET", "calls"):
            with state.lock:
                calls = list(state.calls)
            return 200, [c for c in calls if _call_matches(c, query)]
        if route == ("POST", "calls/reset"):
            with state.lock:
                state.calls.clear()
            return 200, {"ok": True}
        if route == ("GET", "config"):
            with state.lock:
                return 200, state.config()
        if route == ("POST", "config"):
            state.update_config(json.loads(body or b"{}"))
            with state.lock:
                return 200, state.config()
        if route == ("POST", "config/reset"):
            state.reset_config()
            return 200, state.config()
        if route == ("POST", "reset"):
            state.reset_config()
            with state.lock:
                state.calls.clear()
            return 200, state.config()
        return 404, {"error": f"no control endpoint {route[0]} {CONTROL_PREFIX}{route[1]}"}


def _call_matches(call: dict, query: dict[str, list[str]]) -> bool:
    return all(call.get(key) in values for key, values in query.items() if key in ("service", "operation"))


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "certrenew-devstack-aws-proxy"
    # Headers and body go out in separate writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK (~40 ms a response), which made every proxied GET 10x slower than moto.
    disable_nagle_algorithm = True
    # set on the subclass built by make_server
    state: ProxyState
    forwarder: MotoForwarder
    moto: MotoClients

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _handle(self) -> None:
        started = time.time()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        body = self._read_body()
        if parts.path.startswith(CONTROL_PREFIX):
            status, payload = ControlApi(self.state).handle(self.command, parts.path, query, body)
            data = json.dumps(payload, indent=1).encode()
            self._send(Response(status, [("Content-Type", "application/json")], data))
            return
        req = Request(self.command, parts.path, self.path, query, self.headers, body)
        req.service, req.region = aws_ops.service_and_region(self.headers, query)
        req.operation = aws_ops.operation_name(req.service, req.method, req.path, query, self.headers, body)
        try:
            resp, extra = self._answer(req)
        except Exception as exc:  # noqa: BLE001 - a proxy bug must show as a clear 500, not a dropped connection
            log.exception("proxy failure on %s %s", req.method, req.raw_path)
            resp, extra = Response(500, [("Content-Type", "application/json")],
                                   json.dumps({"message": f"devstack proxy error: {exc!r}"}).encode()), {}
        # Recorded before the answer goes out, so a test sees the call as soon as boto3 returns.
        self.state.record({
            "service": req.service, "region": req.region, "operation": req.operation, "method": req.method,
            "path": req.path, "status": resp.status, "time": started,
            "duration_ms": round((time.time() - started) * 1000, 1), **extra,
        })
        self._send(resp, head=req.method == "HEAD")

    def _answer(self, req: Request) -> tuple[Response, dict]:
        extra: dict = {}
        is_change = req.service == "route53" and req.operation == "ChangeResourceRecordSets"
        if is_change:
            extra = {"zone_id": aws_ops.route53_zone_id(req.path), "changes": aws_ops.parse_change_batch(req.body)}
        fault = self.state.take_fault(req.service, req.operation)
        if fault and fault.delay:
            time.sleep(fault.delay)
            extra["delayed"] = fault.delay
        if fault and fault.error and not fault.after and not fault.entries:
            return error_response(req, fault), {**extra, "fault": fault.code}
        call = self._strict_call(req)
        if call is not None:
            extra["principal"] = call.principal
            try:
                self.state.rules.before(call)
            except AwsError as refused:
                log.info("strict: %s %s refused: %s", req.service, req.operation, refused)
                answer = Fault(status=refused.status, code=refused.code, message=refused.message)
                return error_response(req, answer), {**extra, "strict": refused.code}
        try:
            served = self.state.served.answer(req) if self.state.served is not None else None
            if served is not None:
                resp, extra["served"] = served, True
            elif fault and fault.entries:
                failed = self.state.failed_entries(fault, len(_entries(req.body)))
                extra["failed_entries"] = failed
                resp = forward_failing_entries(self.forwarder, req, fault, failed)
            else:
                forwarded = time.monotonic()
                resp = self.forwarder.forward(req)
                extra["moto_ms"] = round((time.monotonic() - forwarded) * 1000, 1)  # the rest is the proxy's
        except OSError as exc:
            log.error("moto unreachable for %s %s: %s", req.method, req.raw_path, exc)
            body = json.dumps({"message": f"devstack proxy: moto unreachable: {exc}"}).encode()
            return Response(502, [("Content-Type", "application/json")], body), extra
        propagation = Route53Propagation(self.state)
        if is_change:
            resp, change_id = propagation.after_change(resp)
            extra["change_id"] = change_id
        elif req.service == "route53" and req.operation == "GetChange":
            resp = propagation.after_get_change(req, resp)
        if call is not None:
            try:
                resp = self.state.rules.after(call, resp)
            except AwsError as refused:  # judged by what the answer shows (e.g. a read's KMS key)
                log.info("strict: %s %s refused after the answer: %s", req.service, req.operation, refused)
                answer = Fault(status=refused.status, code=refused.code, message=refused.message)
                return error_response(req, answer), {**extra, "strict": refused.code}
        if fault and fault.error and fault.after:
            return error_response(req, fault), {**extra, "fault": fault.code, "applied_status": resp.status}
        return resp, {**extra, **_encryption(req, resp)}

    def _strict_call(self, req: Request) -> Call | None:
        """The request as strict rules see it; None when strict mode is off."""
        with self.state.lock:
            strict = self.state.strict
        if not strict:
            return None
        return Call(service=req.service, region=req.region, operation=req.operation, method=req.method,
                    path=req.path, query=req.query, headers=req.headers, body=req.body,
                    principal=principal_of(req.headers), moto=self.moto.client)

    def _send(self, resp: Response, head: bool = False) -> None:
        self.send_response(resp.status, resp.reason or None)
        for name, value in resp.headers:
            lower = name.lower()
            if lower in HOP_BY_HOP or (lower == "content-length" and not head) or lower in ("server", "date"):
                continue
            self.send_header(name, value)
        if not head:
            self.send_header("Content-Length", str(len(resp.body)))
        elif not any(n.lower() == "content-length" for n, _ in resp.headers):
            self.send_header("Content-Length", "0")
        self.end_headers()
        if not head and resp.body:
            self.wfile.write(resp.body)


def _encryption(req: Request, resp: Response) -> dict:
    """`sse`: how S3 says the object of the answer is encrypted (x-amz-server-side-encryption,
    e.g. aws:kms: a GetObject of it costs a KMS Decrypt at AWS); nothing when it does not say."""
    if req.service != "s3":
        return {}
    sse = next((value for name, value in resp.headers if name.lower() == "x-amz-server-side-encryption"), None)
    return {"sse": sse} if sse else {}


# botocore's user_agent_appid as the renewer's clients set it (a whole token: a person's
# commands, `app/certrenew-operator`, are an administrator's)
APP_ID = re.compile(r"(?:^|\s)app/certrenew(?:\s|$)")


def principal_of(headers) -> str:
    """Who makes a call: the product (its clients name themselves in the User-Agent, as
    CloudTrail would show), else the tests', the demo's and a person's own calls ("admin")."""
    return "renewer" if APP_ID.search(headers.get("User-Agent", "")) else "admin"


class MotoClients:
    """boto3 clients straight to moto (not through the proxy), for rules that read moto's state.

    moto keeps state per account: `account` reads another account's (moto's x-moto-account-id
    header), `access_key` reads as that key's owner (moto maps an assumed role's key to the
    role's account). Without either, the clients are the default account's administrator."""

    def __init__(self, moto_url: str) -> None:
        self.moto_url = moto_url
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None, *, account: str | None = None,
               access_key: str | None = None):
        key = (service, region or "us-east-1", account, access_key)
        with self._lock:  # a botocore session is not thread-safe for creating clients
            if key not in self._clients:
                self._clients[key] = self._make(*key)
            return self._clients[key]

    def _make(self, service: str, region: str, account: str | None, access_key: str | None):
        import boto3
        session = boto3.session.Session(aws_access_key_id=access_key or "devstack-admin",
                                        aws_secret_access_key="devstack-admin")
        client = session.client(service, region_name=region, endpoint_url=self.moto_url)
        if account:
            client.meta.events.register(f"before-sign.{client.meta.service_model.service_id.hyphenize()}.*",
                                        lambda request, **_: request.headers.__setitem__("x-moto-account-id",
                                                                                         account))
        return client


class AccountOf:
    """The account a request is made in: moto's answer to GetCallerIdentity for its access key
    (the default account, or an assumed role's), asked once per key."""

    def __init__(self, moto: MotoClients) -> None:
        self._moto, self._known, self._lock = moto, {}, threading.Lock()

    def of(self, req: Request) -> str:
        key = aws_ops.access_key_id(req.headers) or "testing"
        with self._lock:
            if key in self._known:
                return self._known[key]
        account = self._moto.client("sts", access_key=key).get_caller_identity()["Account"]
        with self._lock:
            self._known[key] = account
        return account


def make_server(port: int, moto_url: str, route53_delay: float = 0.0, host: str = "127.0.0.1",
                strict: bool = True) -> ThreadingHTTPServer:
    state = ProxyState(default_delay=route53_delay, route53_delay=route53_delay, default_strict=strict,
                       strict=strict)
    moto = MotoClients(moto_url)
    state.served = Served(moto.client, AccountOf(moto).of)
    handler = type("BoundProxyHandler", (ProxyHandler,), {"state": state, "forwarder": MotoForwarder(moto_url),
                                                          "moto": moto})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--route53-delay", type=float, default=0.0)
    parser.add_argument("--lenient", action="store_true", help="answer as moto does (strict mode off)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = make_server(args.port, args.moto_url, args.route53_delay, args.host, strict=not args.lenient)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("AWS proxy on %s:%d -> %s (route53 delay %.1fs)", args.host, args.port, args.moto_url, args.route53_delay)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
