"""`certrenew run` in a child process on the devstack: with stderr a terminal (a pseudo-terminal)
it shows a status line while Route53 is not INSYNC, redrawn in place and erased at the end, and
its log lines come through whole; with stderr a pipe, the logs alone, as before."""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading

import pytest

from devstack import proxy_client
from devstack_world import STATE_BUCKET, make_world

STATUS = "waiting for Route53 INSYNC"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) +[\w.]+: ")


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    w = make_world(aws, tmp_path, zones=("example.test",))
    proxy_client.configure(w.stack.aws_endpoint_url, route53_delay=2)  # changes PENDING: a wait to show
    return w


def _config(w):
    return w.write_config([{"name": "site", "domains": ["example.test", "*.example.test"],
                            "deploy": {"acm": {"regions": ["us-east-1"]}}}])


def _command(config) -> list[str]:
    return [sys.executable, "-m", "acme_flow.cli", "run", "--config", str(config)]


def _env() -> dict[str, str]:
    return dict(os.environ, TERM="xterm")


def _run_on_a_terminal(config) -> tuple[int, str, str]:
    """The run with stderr on a pseudo-terminal: (exit code, stdout, all the terminal got)."""
    master, slave = pty.openpty()
    got: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not chunk:
                return
            got.append(chunk)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        child = subprocess.Popen(_command(config), stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                                 env=_env(), text=True)
        os.close(slave)
        out, _ = child.communicate(timeout=300)
        reader.join(timeout=30)
    finally:
        os.close(master)
    return child.returncode, out, b"".join(got).decode("utf-8", "replace")


def screen(output: str) -> list[str]:
    """What a terminal shows after `output` (\\r, \\n and ESC [K; enough to see garbling)."""
    lines, col, i = [""], 0, 0
    while i < len(output):
        if output.startswith("\x1b[K", i):
            lines[-1] = lines[-1][:col]
            i += 3
            continue
        ch = output[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("")
            col = 0
        else:
            lines[-1] = lines[-1][:col] + ch + lines[-1][col + 1:]
            col += 1
        i += 1
    return lines


def test_on_a_terminal_a_status_line_shows_the_insync_wait_and_is_erased_at_the_end(w):
    code, out, tty = _run_on_a_terminal(_config(w))
    assert code == 0, tty[-3000:]
    assert "site" in out and "issued" in out
    assert f"\r{STATUS}: 0 of 1 changes" in tty, tty[-3000:]
    assert "\x1b[K" in tty
    shown = screen(tty)
    assert shown[-1] == "", "the status line is erased when the run ends"
    assert not any(STATUS in line for line in shown), "no status line is left among the log lines"
    logs = [line for line in shown if line]
    assert logs and all(LOG_LINE.match(line) for line in logs), \
        [line for line in logs if not LOG_LINE.match(line)]  # every line a whole log record
    assert any("Route53 is INSYNC for" in line for line in logs)


def test_with_stderr_a_pipe_only_the_logs_are_written(w):
    done = subprocess.run(_command(_config(w)), capture_output=True, text=True, timeout=300, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Route53 is INSYNC for" in done.stderr, "the wait happened"
    assert STATUS not in done.stderr
    assert "\r" not in done.stderr and "\x1b[" not in done.stderr
