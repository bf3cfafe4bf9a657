"""Tracing as in Lambda: the handler runs with the X-Ray SDK on (LAMBDA_TASK_ROOT and a trace id
set, as the Lambda runtime sets them) and sends its subsegments to a UDP "daemon" this test
listens on. Each phase and port call is a subsegment; nothing in any of them is key material."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devstack_world import STATE_BUCKET, make_world

REPO = Path(__file__).resolve().parents[2]
TRACE_ID = "Root=1-6740e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


class Daemon:
    """Collects the X-Ray SDK's UDP datagrams: a JSON header line, then one (sub)segment."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.raw: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self.sock.getsockname()[1]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            self.raw.append(data.decode())

    def close(self) -> list[dict]:
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return [json.loads(d.split("\n", 1)[1]) for d in self.raw]


def names(segments: list[dict]) -> list[str]:
    out = []

    def walk(segment: dict) -> None:
        out.append(segment["name"])
        for child in segment.get("subsegments", []):
            walk(child)

    for segment in segments:
        walk(segment)
    return out


@pytest.fixture
def traced(aws, tmp_path, monkeypatch):
    w = make_world(aws, tmp_path, zones=("example.test",))
    config = w.write_config([{"name": "site", "domains": ["example.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}}])
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    monkeypatch.setenv("CERTRENEW_CONFIG", str(config))
    return w


def test_phases_and_port_calls_are_subsegments_without_key_material(traced, tmp_path):
    daemon = Daemon()
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(REPO / "src"), "_X_AMZN_TRACE_ID": TRACE_ID,
           "AWS_LAMBDA_FUNCTION_NAME": "certrenew-trace-test", "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
           "POWERTOOLS_TRACE_DISABLED": "false"}
    event = tmp_path / "renew.json"
    event.write_text('{"action": "renew"}')
    try:
        done = subprocess.run([sys.executable, "-m", "acme_flow.cli", "invoke", str(event)], env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        segments = daemon.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["certificates"][0]["outcome"] == "issued"
    assert "tracing is off" not in done.stderr

    seen = names(segments)
    for phase in ("## handler", "## run", "## state.save_certificate", "## dns.present",
                  "## importer.import_certificate", "## notifier.notify"):
        assert phase in seen, (phase, sorted(set(seen)))
    assert {"s3", "acm", "route53"} <= set(seen), "AWS calls are traced by the patched botocore"
    assert any(n.startswith("127.0.0.1") for n in seen), "ACME calls are traced by the patched requests"
    assert all(s["trace_id"] == "1-6740e988-bd862e3fe1be46a994272793" for s in segments)

    # the private key, the account key and the CSR never reach a trace
    key_pem = traced.material("site")["key_pem"]
    everything = "\n".join(daemon.raw)
    assert "PRIVATE KEY" not in everything and "CERTIFICATE REQUEST" not in everything
    body = "".join(key_pem.strip().splitlines()[1:-1])
    assert body[:40] not in everything
    assert not any("response" in json.dumps(s.get("metadata", {})) for s in segments)
