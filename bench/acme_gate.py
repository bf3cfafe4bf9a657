"""A TLS front for Pebble's ACME listener that hands Pebble one POST at a time.

Why: Pebble's in-memory store deadlocks under concurrent requests of one account. A new order
scans every authorization under the store's read lock and waits on each authorization's own
lock; a POST-as-GET of an authorization holds that lock and waits for the store's read lock,
which Go's RWMutex withholds while a writer (the new order's AddChallenge) waits for the
scanner. Seen in the fleet benchmark after ~570 orders with the product's 16 workers: every
request then hangs until the client's 30 s timeout. A real CA has no such lock; so the fleet
benchmark puts this gate between the product and Pebble (`with AcmeGate(stack) as gate:` and
`gate.directory` in the config). One POST at a time costs little: Pebble answers in
milliseconds, and `busy_seconds` says how long the gate held the line. GETs (the directory and
ARI's renewalInfo, which a run asks for every certificate it surveys) go to Pebble side by side,
each on a connection of its own, but never while a POST is in: Pebble 2.10 also deadlocks when a
renewalInfo lookup meets an order being finalized, and a POST waits for the GETs in flight.

Pebble builds its URLs from the Host header, which the gate passes on: every URL Pebble hands
out points at the gate. The gate presents the devstack's own TLS certificate (the product
trusts its CA through CERTRENEW_ACME_CA_BUNDLE) and reuses one connection to Pebble.
"""
from __future__ import annotations

import http.client
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from devstack.acme_faults import exchange

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


class Upstream:
    """Persistent HTTPS connections to Pebble: a POST (or HEAD) alone on the line, GETs side by
    side (a readers-writer gate: a waiting POST holds back new GETs)."""

    def __init__(self, url: str, ca_bundle: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.context = ssl.create_default_context(cafile=ca_bundle)
        self.gate = threading.Condition()
        self.readers, self.writing, self.writers_waiting = 0, False, 0
        self.idle: list[http.client.HTTPSConnection] = []
        self.requests = 0
        self.busy_seconds = 0.0  # time some request was in Pebble's hands
        self._busy_since: float | None = None

    def send(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None):
        """(status, reason, headers, body) of Pebble's answer; a dropped connection is opened again once."""
        shared = method == "GET"
        self._enter(shared)
        connection = self._take()
        try:
            try:
                answer, will_close = exchange(connection, method, path, headers, body)
            except (http.client.HTTPException, OSError):
                connection.close()
                connection = self._connect()
                answer, will_close = exchange(connection, method, path, headers, body)
            if will_close:
                connection.close()
            else:
                self._give_back(connection)
            return answer
        finally:
            self._leave(shared)

    def _enter(self, shared: bool) -> None:
        with self.gate:
            if shared:
                self.gate.wait_for(lambda: not self.writing and not self.writers_waiting)
                self.readers += 1
            else:
                self.writers_waiting += 1
                self.gate.wait_for(lambda: not self.writing and not self.readers)
                self.writers_waiting -= 1
                self.writing = True
            if self._busy_since is None:
                self._busy_since = time.monotonic()

    def _leave(self, shared: bool) -> None:
        with self.gate:
            self.requests += 1
            if shared:
                self.readers -= 1
            else:
                self.writing = False
            if not self.readers and not self.writing and self._busy_since is not None:
                self.busy_seconds += time.monotonic() - self._busy_since
                self._busy_since = None
            self.gate.notify_all()

    def _take(self) -> http.client.HTTPSConnection:
        with self.gate:
            if self.idle:
                return self.idle.pop()
        return self._connect()

    def _give_back(self, connection: http.client.HTTPSConnection) -> None:
        with self.gate:
            self.idle.append(connection)

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=60)

    def _close(self) -> None:
        with self.gate:
            idle, self.idle = self.idle, []
        for connection in idle:
            connection.close()


class GateHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    upstream: Upstream  # set on the subclass AcmeGate builds

    def log_message(self, fmt: str, *args) -> None:  # quiet: Pebble logs every request itself
        pass

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else (b"" if self.command == "POST" else None)
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}]
        status, reason, answer_headers, data = self.upstream.send(self.command, self.path, headers, body)
        self.send_response(status, reason)
        for name, value in answer_headers:
            if name.lower() not in HOP_BY_HOP | {"content-length", "date", "server"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_POST = do_HEAD = do_GET


class AcmeGate:
    """The gate on a free loopback port, serving from a thread of this process while in use."""

    def __init__(self, stack):
        tls = Path(stack.state_dir) / "tls"
        self.upstream = Upstream(stack.acme_directory, stack.ca_bundle)
        handler = type("BoundGateHandler", (GateHandler,), {"upstream": self.upstream})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls / "pebble-cert.pem", tls / "pebble-key.pem")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        port = self.server.server_address[1]
        self.directory = f"https://127.0.0.1:{port}{urlsplit(stack.acme_directory).path}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="acme-gate", daemon=True)

    def __enter__(self) -> AcmeGate:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.upstream._close()
