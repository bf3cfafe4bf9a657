"""pytest plugin: no private key, account key, EAB HMAC or JWS in any log line or output.

For every test on the devstack (tests/integration, tests/handler, tests/faults) and any test
marked `secret_scan`:

- the root logger and the `certrenew` logger are set to DEBUG for the test, and a handler on
  both keeps every record: its message, its exception text and its extra fields (the
  `acme` library's own loggers keep whatever level the code gives them: the ACME adapter pins
  them to WARNING because the library logs every JWS at DEBUG, and that pin is part of what
  is tested). botocore, boto3, urllib3 and s3transfer are held at WARNING, as the CLI does,
  because the tests' own boto3 calls read private keys back from S3 on purpose;
  `libraries_at_debug()` lifts that for a block (tests/integration/test_no_secrets_in_logs.py);
- `acme_flow.cli.main` is wrapped: what it prints on stdout and stderr (reports, JSON, errors)
  is kept as well as shown;
- the return values of the Lambda handler's `run_request` and `handle_batch` are kept;
- `subprocess.run` is wrapped: the stdout and stderr of every subprocess a test runs with
  captured output (the CLI and `certrenew invoke` as child processes) are kept;
- tests that read a child's output themselves hand it over with `record_output(where, text)`.

At the end of each test everything kept is searched for PEM private keys, JWS members
(`"protected"`, `"signature"`, `"payload"` next to them), private JWK members and the EAB HMAC
key the tests use; a hit fails the test loudly, naming it, where the line came from and the line.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest_plugins = ["pytester"]  # for the test that proves a leak fails its test

TEST_EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
_Q = r'\\*"'  # a JSON quote, maybe escaped once or more (JSON inside a JSON log line)
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("a PEM private key", re.compile(r"PRIVATE KEY")),
    # base64 of "-----BEGIN PRIVATE", "-----BEGIN EC PRIVATE", "-----BEGIN RSA PRIVATE": a PEM key
    # sent as a blob (ACM's ImportCertificate PrivateKey) and logged as JSON
    ("a base64 PEM private key", re.compile(r"LS0tLS1CRUdJTi(BQUklWQVRF|BFQyBQUklWQVRF|BSU0EgUFJJVkFURS)")),
    ("a JWS protected header", re.compile(_Q + "protected" + _Q + r"\s*:")),
    ("a JWS signature", re.compile(_Q + "signature" + _Q + r"\s*:")),
    ("a private JWK", re.compile(_Q + "d" + _Q + r"\s*:\s*" + _Q + r"[A-Za-z0-9_-]{16,}")),
    ("the EAB HMAC key", re.compile(re.escape(TEST_EAB_HMAC))),
]
LIBRARY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
_DEVSTACK_DIRS = ("integration", "handler", "faults")
_TESTS = Path(__file__).resolve().parent
_STANDARD_ATTRS = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime"}


def find_secrets(text: str) -> list[tuple[str, str]]:
    """(what, line) for every line of `text` that shows a secret."""
    hits = []
    for line in text.splitlines():
        for what, pattern in PATTERNS:
            if pattern.search(line):
                hits.append((what, line))
                break
    return hits


@dataclass
class Capture:
    """Everything one test produced that must hold no secret: (where, text) pairs."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)
    paused: bool = False
    _seen: set[int] = field(default_factory=set)

    def add(self, where: str, text: Any) -> None:
        if self.paused or text is None:
            return
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.texts.append((where, text if isinstance(text, str) else str(text)))

    def add_record(self, record: logging.LogRecord) -> None:
        if self.paused or id(record) in self._seen:
            return
        self._seen.add(id(record))
        self.records.append(record)

    def violations(self) -> list[tuple[str, str, str]]:
        """(where, what, line) for every secret found so far."""
        found = []
        for record in self.records:
            where = f"log record {record.name} {record.levelname} ({record.pathname}:{record.lineno})"
            for what, line in find_secrets(_record_text(record)):
                found.append((where, what, line))
        for where, text in self.texts:
            for what, line in find_secrets(text):
                found.append((where, what, line))
        return found


def _record_text(record: logging.LogRecord) -> str:
    try:
        parts = [record.getMessage()]
    except Exception as exc:  # noqa: BLE001 - a malformed record still gets searched
        parts = [f"{record.msg!r} % {record.args!r} ({exc})"]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            parts.append(f"{key}={value!r}")
    return "\n".join(parts)


class _Keep(logging.Handler):
    def __init__(self, capture: Capture) -> None:
        super().__init__(logging.DEBUG)
        self.capture = capture

    def emit(self, record: logging.LogRecord) -> None:
        self.capture.add_record(record)


_CURRENT: list[Capture] = []


def current() -> Capture:
    """The capture of the running test (raises when the test is not scanned)."""
    if not _CURRENT:
        raise RuntimeError("this test is not scanned for secrets (not on the devstack, not marked secret_scan)")
    return _CURRENT[-1]


def record_output(where: str, text: Any) -> None:
    """Hand over output the test read itself (a child's stderr, a return value)."""
    if _CURRENT:
        _CURRENT[-1].add(where, text if isinstance(text, (str, bytes)) else json.dumps(text, default=str))


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Keep nothing inside the block (a test that leaks on purpose to test this plugin)."""
    capture = current()
    capture.paused = True
    try:
        yield
    finally:
        capture.paused = False


@contextlib.contextmanager
def libraries_at_debug() -> Iterator[None]:
    """botocore, boto3, urllib3 and s3transfer at their own level (so DEBUG from the root) inside
    the block, as in a Lambda whose log level is DEBUG and no code quiets them."""
    saved = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


class _Tee(io.TextIOBase):
    def __init__(self, target: Any, where: str, capture: Capture) -> None:
        self._target, self._where, self._capture = target, where, capture

    def write(self, text: str) -> int:
        self._capture.add(self._where, text)
        with contextlib.suppress(ValueError, OSError):  # a stream of an earlier test, closed since
            self._target.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._target.flush()

    def isatty(self) -> bool:
        return False


def _wrap_cli(monkeypatch: pytest.MonkeyPatch, capture: Capture) -> None:
    from acme_flow import cli

    real_main = cli.main

    def main(argv=None):
        out = _Tee(sys.stdout, f"certrenew {' '.join(map(str, argv or []))[:120]} stdout", capture)
        err = _Tee(sys.stderr, f"certrenew {' '.join(map(str, argv or []))[:120]} stderr", capture)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return real_main(argv)

    monkeypatch.setattr(cli, "main", main)


def _wrap_handler(monkeypatch: pytest.MonkeyPatch, capture: Capture) -> None:
    try:
        from handler import app
    except ImportError:  # the handler package is optional for the core's tests
        return
    for name in ("run_request", "handle_batch"):
        real = getattr(app, name, None)
        if real is None:
            continue

        def wrapped(*args, _real=real, _name=name, **kwargs):
            result = _real(*args, **kwargs)
            capture.add(f"handler {_name} return value", json.dumps(result, default=str))
            return result

        monkeypatch.setattr(app, name, wrapped)


def _wrap_subprocess(monkeypatch: pytest.MonkeyPatch, capture: Capture) -> None:
    real_run = subprocess.run

    def run(*args, **kwargs):
        result = real_run(*args, **kwargs)
        argv = args[0] if args else kwargs.get("args")
        label = " ".join(map(str, argv))[:120] if isinstance(argv, (list, tuple)) else str(argv)[:120]
        capture.add(f"subprocess `{label}` stdout", getattr(result, "stdout", None))
        capture.add(f"subprocess `{label}` stderr", getattr(result, "stderr", None))
        return result

    monkeypatch.setattr(subprocess, "run", run)


def _scanned(item: pytest.Item) -> bool:
    if item.get_closest_marker("secret_scan"):
        return True
    parents = Path(item.path).resolve().parents
    return any(_TESTS / d in parents for d in _DEVSTACK_DIRS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "secret_scan: search this test's logs and outputs for secrets "
                                       "(automatic for tests on the devstack)")


@pytest.fixture(autouse=True)
def _secret_scan(request: pytest.FixtureRequest) -> Iterator[Capture | None]:
    if not _scanned(request.node):
        yield None
        return
    capture = Capture()
    keep = _Keep(capture)
    root, ours = logging.getLogger(), logging.getLogger("certrenew")
    levels = {logger: logger.level for logger in (root, ours)}
    libraries = {name: logging.getLogger(name).level for name in LIBRARY_LOGGERS}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for logger in (root, ours):
            logger.addHandler(keep)
            logger.setLevel(logging.DEBUG)
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        _wrap_cli(monkeypatch, capture)
        _wrap_handler(monkeypatch, capture)
        _wrap_subprocess(monkeypatch, capture)
        _CURRENT.append(capture)
        try:
            yield capture
        finally:
            _CURRENT.remove(capture)
            for logger, level in levels.items():
                logger.removeHandler(keep)
                logger.setLevel(level)
            for name, level in libraries.items():
                logging.getLogger(name).setLevel(level)
    found = capture.violations()
    if found:
        lines = [f"  {where}: {what}: {line.strip()[:300]}" for where, what, line in found[:20]]
        more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
        pytest.fail(f"SECRET LEAK in {request.node.nodeid}: {len(found)} line(s) show key material or a "
                    f"JWS:\n" + "\n".join(lines) + more, pytrace=False)
