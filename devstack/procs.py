"""Start, probe and stop the devstack's background processes (one process group each)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

_CHILDREN: dict[int, subprocess.Popen] = {}  # keeps Popen objects alive so they do not warn; reaped in stop()


class StackError(RuntimeError):
    """The devstack could not be started or used."""


def free_tcp_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_udp_tcp_port(avoid: set[int] = frozenset(), attempts: int = 50) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the DNS bridge serves both)."""
    for _ in range(attempts):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            if port in avoid:
                continue
            tcp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
    raise StackError("found no port free for both UDP and TCP on 127.0.0.1")


def tcp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without AWS, Pebble and proxy settings (children only talk to 127.0.0.1)."""
    dropped = ("AWS_", "PEBBLE_")
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped) and k.lower() not in proxies}
    env.update(extra or {})
    return env


def start(name: str, argv: list[str], state_dir: Path, env: dict[str, str], cwd: Path | None = None) -> int:
    """Start `argv` in its own session, output to state_dir/<name>.log; returns the PID (= process group)."""
    log_path = log_file(state_dir, name)
    with open(log_path, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=str(cwd or state_dir), start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def log_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.log"


def log_tail(state_dir: Path, name: str, lines: int = 25) -> str:
    try:
        text = log_file(state_dir, name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_running(pid: int, argv: list[str] | None = None) -> bool:
    """True if `pid` is alive, not a zombie, and (when given) still runs `argv` (guards against PID reuse)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours
    proc_dir = Path(f"/proc/{pid}")
    if not proc_dir.exists():
        return True  # no procfs: trust the signal probe
    try:
        if (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = (proc_dir / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except (OSError, IndexError):
        return False
    return argv is None or [c.decode(errors="replace") for c in cmdline] == argv


def stop(processes: dict[str, tuple[int, list[str] | None]], timeout: float = 5.0) -> bool:
    """SIGTERM each live process group, wait up to `timeout`, then SIGKILL; returns whether any ran."""
    live = {name: pid for name, (pid, argv) in processes.items() if is_running(pid, argv)}
    for pid in live.values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(is_running(pid) for pid in live.values()):
        time.sleep(0.05)
    for pid in live.values():
        if is_running(pid):
            _signal_group(pid, signal.SIGKILL)
    for pid in live.values():
        _wait_gone(pid, 2.0)
    return bool(live)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session made the PID its group's id
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pid: int, timeout: float) -> None:
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_running(pid):
        time.sleep(0.05)


def wait_until(name: str, probe, state_dir: Path, pid: int, timeout: float) -> None:
    """Call `probe()` until it returns True; fail early if the process died, else after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while True:
        if not is_running(pid):
            raise StackError(f"{name} exited during start-up\n--- {log_file(state_dir, name)} ---\n"
                             f"{log_tail(state_dir, name)}")
        try:
            if probe():
                return
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise StackError(f"{name} did not become ready within {timeout:.0f}s ({last_error})\n"
                             f"--- {log_file(state_dir, name)} ---\n{log_tail(state_dir, name)}")
        time.sleep(0.1)
