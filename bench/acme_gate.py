"""A TLS front for Pebble's ACME listener that hands Pebble one request at a time.

Why: Pebble's in-memory store deadlocks under concurrent requests of one account. A new order
scans every authorization under the store's read lock and waits on each authorization's own
lock; a POST-as-GET of an authorization holds that lock and waits for the store's read lock,
which Go's RWMutex withholds while a writer (the new order's AddChallenge) waits for the
scanner. Seen in the fleet benchmark after ~570 orders with the product's 16 workers: every
request then hangs until the client's 30 s timeout. A real CA has no such lock; so the fleet
benchmark puts this gate between the product and Pebble (`with AcmeGate(stack) as gate:` and
`gate.directory` in the config). One request at a time costs little: Pebble answers in
milliseconds, and `busy_seconds` says how long the gate held the line.

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
    """One persistent HTTPS connection to Pebble, used by one request at a time."""

    def __init__(self, url: str, ca_bundle: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.context = ssl.create_default_context(cafile=ca_bundle)
        self.lock = threading.Lock()
        self.connection: http.client.HTTPSConnection | None = None
        self.requests = 0
        self.busy_seconds = 0.0

    def send(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None):
        """(status, reason, headers, body) of Pebble's answer; a dropped connection is opened again once."""
        with self.lock:
            started = time.monotonic()
            try:
                return self._send_once(method, path, headers, body)
            except (http.client.HTTPException, OSError):
                self._close()
                return self._send_once(method, path, headers, body)
            finally:
                self.requests += 1
                self.busy_seconds += time.monotonic() - started

    def _send_once(self, method, path, headers, body):
        if self.connection is None:
            self.connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=60)
        answer, will_close = exchange(self.connection, method, path, headers, body)
        if will_close:
            self._close()
        return answer

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


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
