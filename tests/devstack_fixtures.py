"""Fixtures for tests against the devstack (Pebble, moto server behind the AWS proxy, DNS bridge).

- `stack` (session): one devstack for the whole run, always stopped at the end.
- `aws` (function): moto wiped, proxy calls/config reset, the stack's environment set; returns the stack.
  Strict IAM judges the product's calls as a deployment whose state bucket is STATE_BUCKET
  (tests/devstack_world.py); a test with other resources tells the proxy
  (`proxy_client.update_deployment`).
- `restart_pebble` (function): restart Pebble with other settings; restored to the defaults afterwards.
- `fallback_ca` (function): a fresh second Pebble that requires EAB (devstack.stack.FallbackCa; its
  HMAC is secret_scan.TEST_EAB_HMAC, so the secret scan looks for it); stopped after the test.
- `acme_faults` (function): (directory URL, devstack.acme_faults.AcmeFaultFront) in front of the
  primary Pebble, passing everything through until the test adds a rule; stopped after the test.
Every test in tests/integration, tests/handler and tests/faults is marked `integration`.
"""

from __future__ import annotations

import atexit
import logging
import os
import urllib.request
from pathlib import Path

import boto3
import pytest

from devstack import proxy_client
from devstack import stack as devstack
from devstack.acme_faults import AcmeFaultFront
from devstack_world import STATE_BUCKET

_TESTS = Path(__file__).resolve().parent
_ON_DEVSTACK = [_TESTS / d for d in ("integration", "handler", "faults")]

# Variables that would send boto3 elsewhere or make it read a developer's profile.
_AWS_VARS_TO_DROP = (
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        parents = Path(item.path).resolve().parents
        if any(d in parents for d in _ON_DEVSTACK):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The running devstack (started once per session, stopped at teardown even on failure)."""
    state_dir = tmp_path_factory.mktemp("devstack")
    atexit.register(devstack.down, state_dir)  # belt and braces if the session dies hard
    started = devstack.up(state_dir)
    try:
        yield started
    finally:
        devstack.down(state_dir)


def _reset_moto(moto_url: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(moto_url + "/moto-api/reset", data=b"", method="POST"), timeout=10):
        pass


@pytest.fixture
def aws(stack, monkeypatch, tmp_path):
    """A clean moto and proxy, and the stack's environment variables; returns the stack."""
    _reset_moto(stack.moto_url)
    proxy_client.reset(stack.aws_endpoint_url)
    proxy_client.configure(stack.aws_endpoint_url, deployment={"StateBucket": STATE_BUCKET})
    for name in list(os.environ):
        if name in _AWS_VARS_TO_DROP or name.startswith("AWS_ENDPOINT_URL_"):
            monkeypatch.delenv(name)
    missing = tmp_path / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing))
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # no session cached with another environment
    return stack


@pytest.fixture
def restart_pebble(stack):
    """`restart_pebble(pebble_env=..., pebble_config=...)` -> the stack (updated in place).
    Pebble comes back with the default settings after the test."""
    restarted = False

    def _restart(**settings):
        nonlocal restarted
        restarted = True
        return devstack.restart_pebble(stack, **settings)

    yield _restart
    if restarted:
        devstack.restart_pebble(stack)


@pytest.fixture
def fallback_ca(stack):
    """A fresh fallback CA (new root, no accounts): devstack.stack.FallbackCa."""
    from secret_scan import TEST_EAB_HMAC  # lazily: pytest must import the plugin first to rewrite it

    started = devstack.start_fallback_pebble(stack, eab_hmac=TEST_EAB_HMAC)
    try:
        yield started
    finally:
        devstack.stop_fallback_pebble(stack)


@pytest.fixture
def acme_faults(stack):
    """(front directory URL, AcmeFaultFront) in front of the primary Pebble; no rules yet."""
    with AcmeFaultFront.for_stack(stack) as front:
        yield front.directory, front


@pytest.fixture
def quiet_acme_library():
    """The `acme` library logs every JWS at DEBUG; the secret scan (tests/secret_scan.py) rightly
    fails on that, so tests that use the library directly hold it at WARNING, as the product's
    ACME adapter does."""
    logger = logging.getLogger("acme")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)
