"""Unit tests open no socket: every test here runs with network sockets refused.

Connecting, sending a datagram and resolving a host name raise `SocketRefused` (not an OSError,
so no retry loop mistakes it for a flaky network), and a test that tried fails at teardown
even if the code under test swallowed the error. Unix-domain sockets stay allowed (local IPC);
subprocesses (the SAM CLI of test_sam_validate.py) are not affected by this in-process guard.
"""
from __future__ import annotations

import ipaddress
import socket

import pytest


class SocketRefused(RuntimeError):
    """A unit test tried to use the network."""


def _is_literal(host) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
        return True
    except (ValueError, TypeError, AttributeError):
        return host is None


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    """The attempts made so far (a test that expects one clears the list)."""
    attempts: list[str] = []

    def refuse(what: str):
        attempts.append(what)
        raise SocketRefused(f"unit tests open no socket: {what}")

    def guard(method: str):
        original = getattr(socket.socket, method)

        def guarded(self, *args, **kwargs):
            if self.family == socket.AF_UNIX:
                return original(self, *args, **kwargs)
            return refuse(f"socket.{method}{args!r}")
        return guarded

    for method in ("connect", "connect_ex", "sendto", "sendmsg"):
        monkeypatch.setattr(socket.socket, method, guard(method))
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(f"create_connection{address!r}"))
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if _is_literal(host):  # no lookup: just the address parsed
            return real_getaddrinfo(host, *args, **kwargs)
        return refuse(f"getaddrinfo({host!r})")
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"a unit test tried to use the network: {attempts}"
