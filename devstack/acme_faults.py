"""A TLS front for a Pebble that answers chosen ACME requests with an error, or refuses to connect.

Why: a CA that fails (503 on every new order, rate limits, a CA that is down) cannot be asked of
Pebble; the fallback-CA tests (issue 12) need exactly that from the primary CA while everything
else works. The front passes every request through to Pebble unchanged, except those matching
a `FaultRule`, which it answers itself with an RFC 8555 problem document (application/problem+json,
a fresh Replay-Nonce from Pebble, Retry-After when the rule says) without forwarding.

Like bench/acme_gate.py it passes the Host header on, so every URL Pebble hands out points at the
front, and it presents the devstack's own TLS certificate (CERTRENEW_ACME_CA_BUNDLE trusts it).
It serves from threads of the test process; a test drives it through its Python API:

    front = AcmeFaultFront.for_stack(stack).start()     # or `with ... as front:`
    front.fail("/order-plz", status=503, count=None)    # every newOrder fails
    front.hits("/order-plz"); front.clear()
    front.go_down(); front.come_up()                    # connection refused, then serving again
    front.stop()
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["FaultRule", "Exchange", "AcmeFaultFront", "SERVER_INTERNAL", "RATE_LIMITED"]

SERVER_INTERNAL = "urn:ietf:params:acme:error:serverInternal"
RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
NOT_COPIED = HOP_BY_HOP | {"content-length", "date", "server"}


@dataclass(frozen=True)
class FaultRule:
    """Answer requests whose path starts with `path` (and whose method is `method`, when given)
    with this problem; `count` requests at most (None: every one), then pass them through."""
    path: str
    status: int = 503
    type: str = SERVER_INTERNAL
    detail: str = "injected by the devstack's ACME fault front"
    count: int | None = None
    method: str | None = None
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return path.split("?", 1)[0].startswith(self.path) and self.method in (None, method)

    def problem(self) -> bytes:
        return json.dumps({"type": self.type, "detail": self.detail, "status": self.status}).encode()


@dataclass(frozen=True)
class Exchange:
    """One request the front saw: what it answered and whether a rule answered it."""
    method: str
    path: str
    status: int
    injected: bool


def exchange(conn: http.client.HTTPSConnection, method: str, path: str, headers: list[tuple[str, str]],
             body: bytes | None) -> tuple[tuple[int, str, list[tuple[str, str]], bytes], bool]:
    """One request on `conn` passed through as is (the Host header given, so the CA builds its
    URLs for the front); ((status, reason, headers, body), whether the server closes the connection).
    Shared with bench/acme_gate.py."""
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    return (response.status, response.reason, response.getheaders(), data), response.will_close


class _Upstream:
    """HTTPS to Pebble, one persistent connection per serving thread."""

    def __init__(self, directory: str, ca_bundle: str):
        parts = urlsplit(directory)
        self.host, self.port, self.directory_path = parts.hostname, parts.port, parts.path
        self.context = ssl.create_default_context(cafile=ca_bundle)
        self.local = threading.local()
        self.nonce_path: str | None = None

    def send(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None):
        """(status, reason, headers, body) of Pebble's answer; a dropped connection is opened again once."""
        try:
            return self._send_once(method, path, headers, body)
        except (http.client.HTTPException, OSError):
            self.close()
            return self._send_once(method, path, headers, body)

    def _send_once(self, method, path, headers, body):
        conn = getattr(self.local, "connection", None)
        if conn is None:
            conn = self.local.connection = http.client.HTTPSConnection(self.host, self.port, context=self.context,
                                                                       timeout=60)
        answer, will_close = exchange(conn, method, path, headers, body)
        if will_close:
            self.close()
        return answer

    def fresh_nonce(self, host: str) -> str | None:
        """A nonce from Pebble's newNonce (an error answer should carry one: RFC 8555 section 6.5)."""
        asking = [("Host", host), ("User-Agent", "certrenew-devstack-acme-faults")]  # Pebble wants one
        try:
            if self.nonce_path is None:
                _, _, _, data = self.send("GET", self.directory_path, asking, None)
                self.nonce_path = urlsplit(json.loads(data)["newNonce"]).path
            _, _, headers, _ = self.send("HEAD", self.nonce_path, asking, None)
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            return None
        return next((v for k, v in headers if k.lower() == "replay-nonce"), None)

    def close(self) -> None:
        conn = getattr(self.local, "connection", None)
        if conn is not None:
            conn.close()
            self.local.connection = None


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection frees its thread
    front: AcmeFaultFront  # set on the subclass the front builds

    def log_message(self, fmt: str, *args) -> None:  # quiet: Pebble logs every request itself
        pass

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else (b"" if self.command == "POST" else None)
        rule = self.front._take(self.command, self.path)
        if rule is not None:
            self._answer_problem(rule)
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        try:
            status, reason, answer_headers, data = self.front._upstream.send(self.command, self.path, headers, body)
        except (OSError, http.client.HTTPException) as exc:
            self._answer_problem(FaultRule(self.path, 502, detail=f"the fault front cannot reach Pebble: {exc}"),
                                 injected=False)
            return
        self.front._record(Exchange(self.command, self.path, status, False))
        self.send_response(status, reason)
        for name, value in answer_headers:
            if name.lower() not in NOT_COPIED:
                self.send_header(name, value)
        self._send_body(data)

    do_POST = do_HEAD = do_GET

    def _answer_problem(self, rule: FaultRule, injected: bool = True) -> None:
        nonce = self.front._upstream.fresh_nonce(self.headers.get("Host", ""))
        self.front._record(Exchange(self.command, self.path, rule.status, injected))
        self.send_response(rule.status)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Cache-Control", "no-store")
        if nonce:
            self.send_header("Replay-Nonce", nonce)
        if rule.retry_after is not None:
            self.send_header("Retry-After", str(rule.retry_after))
        self._send_body(rule.problem())

    def _send_body(self, data: bytes) -> None:
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class _TrackingServer(ThreadingHTTPServer):
    """Remembers its open connections, so going down can cut the keep-alive ones too."""
    daemon_threads = True

    def __init__(self, address, handler, context: ssl.SSLContext):
        super().__init__(address, handler)
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class AcmeFaultFront:
    """The front on a loopback port of its own; `directory` is what a client should use."""

    def __init__(self, upstream_directory: str, ca_bundle: str, tls_cert: Path, tls_key: Path):
        self._upstream = _Upstream(upstream_directory, ca_bundle)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(tls_cert, tls_key)
        self._handler = type("BoundFrontHandler", (_FrontHandler,), {"front": self})
        self._lock = threading.Lock()
        self._rules: list[list] = []  # [FaultRule, hits]
        self._exchanges: list[Exchange] = []
        self._server: _TrackingServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.directory = ""

    @classmethod
    def for_stack(cls, stack, upstream=None) -> AcmeFaultFront:
        """A front for the stack's Pebble, or for `upstream` (anything with `acme_directory`,
        e.g. the FallbackCa), presenting the stack's TLS certificate."""
        tls = Path(stack.state_dir) / "tls"
        target = upstream if upstream is not None else stack
        return cls(target.acme_directory, stack.ca_bundle, tls / "pebble-cert.pem", tls / "pebble-key.pem")

    # ------------------------------------------------------------------ serving

    def start(self) -> AcmeFaultFront:
        """Listen on a free port (the first time) or on the same port again; returns self."""
        if self._server is not None:
            return self
        self._server = _TrackingServer(("127.0.0.1", self.port), self._handler, self._context)
        self.port = self._server.server_address[1]
        self.directory = f"https://127.0.0.1:{self.port}{self._upstream.directory_path}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="acme-fault-front", daemon=True)
        self._thread.start()
        return self

    def go_down(self) -> None:
        """The CA is down: the port refuses connections and open connections are cut."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.cut_connections()

    def come_up(self) -> None:
        """Serve again on the same port (and so at the same directory URL)."""
        self.start()

    @property
    def is_down(self) -> bool:
        return self._server is None

    def stop(self) -> None:
        self.go_down()
        self._upstream.close()

    def __enter__(self) -> AcmeFaultFront:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ rules

    def add_rule(self, rule: FaultRule | dict) -> FaultRule:
        """Add a rule (a FaultRule or a dict of its fields); the first matching rule answers."""
        rule = rule if isinstance(rule, FaultRule) else FaultRule(**rule)
        with self._lock:
            self._rules.append([rule, 0])
        return rule

    def fail(self, path: str, **fields) -> FaultRule:
        """`add_rule(FaultRule(path, **fields))`: e.g. fail("/order-plz", status=503, count=2)."""
        return self.add_rule(FaultRule(path, **fields))

    def clear(self) -> None:
        """No more rules (hit counts go with them; `exchanges` stays)."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict]:
        """Every rule as a dict of its fields plus `hits`."""
        with self._lock:
            return [{**asdict(rule), "hits": hits} for rule, hits in self._rules]

    def hits(self, path: str | None = None) -> int:
        """Requests answered by the rules (for `path`: by the rules of that path)."""
        with self._lock:
            return sum(hits for rule, hits in self._rules if path is None or rule.path == path)

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request so far, in order, forwarded or answered by a rule."""
        with self._lock:
            return list(self._exchanges)

    def _take(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for entry in self._rules:
                rule, hits = entry
                if rule.matches(method, path) and (rule.count is None or hits < rule.count):
                    entry[1] = hits + 1
                    return rule
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)
