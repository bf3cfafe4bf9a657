"""No private key, account key, EAB HMAC or JWS in any log line or return value.

The `secret_scan` plugin (tests/secret_scan.py) searches every devstack test's log records
(root and `certrenew` at DEBUG), CLI output, handler return values and subprocess output. Here:
the scanner finds what it must (and only that), a leak fails the leaking test loudly, and the
paths that handle the most secrets (EAB registration, issuance, export, revoke; the CLI with
-v and the Lambda handler) run with everything at DEBUG and leave nothing behind.
"""
from __future__ import annotations

import json
import logging

import boto3
import pytest

import secret_scan
from acme_flow import cli
from devstack import world
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world
from handler.local import LocalContext

EAB_HMAC = secret_scan.TEST_EAB_HMAC
JWS = ('{"protected": "eyJhbGciOiJFUzI1NiJ9", "payload": "e30", '
       '"signature": "MEUCIQDx3r9oYQ"}')


@pytest.mark.parametrize("line, what", [
    ("-----BEGIN PRIVATE KEY-----", "a PEM private key"),
    ("key: -----BEGIN EC PRIVATE KEY-----\\nMHcCAQEE", "a PEM private key"),
    (f"posting {JWS}", "a JWS protected header"),
    ('{"message": "body {\\"protected\\": \\"eyJh\\", \\"signature\\": \\"x\\"}"}', "a JWS protected header"),
    ('{"signature": "MEUCIQDx3r9oYQ"}', "a JWS signature"),
    ('jwk {"kty": "EC", "crv": "P-256", "d": "l5qzHCSjpYjTDwvsNFrCrwTjgi8", "x": "a"}', "a private JWK"),
    (f"hmac_key={EAB_HMAC}", "the EAB HMAC key"),
    ('params: {"PrivateKey": "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VBTUJN"}', "a base64 PEM private key"),
    ('"LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlF"', "a base64 PEM private key"),
])
def test_the_scanner_finds_each_kind_of_secret(line, what):
    assert secret_scan.find_secrets(f"before\n{line}\nafter") == [(what, line)]


@pytest.mark.parametrize("line", [
    "the stored private key does not match the certificate",
    "privkey.pem written with SSE-KMS",
    "-----BEGIN CERTIFICATE-----",
    '{"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}',
    "acme.eab.hmac_key: not a secret reference (value not shown)",
    "signature verified; protected by TLS",
])
def test_the_scanner_leaves_harmless_lines_alone(line):
    assert secret_scan.find_secrets(line) == []


def test_a_leak_fails_the_test_naming_it_and_the_line(pytester):
    """A test that logs a key, prints a JWS or runs a child that does, fails at teardown."""
    pytester.makepyfile(test_leaky='''
        import logging, subprocess, sys
        import pytest

        @pytest.mark.secret_scan
        def test_logs_a_key_at_debug():
            logging.getLogger("certrenew.renewal").debug("material: -----BEGIN PRIVATE KEY-----")

        @pytest.mark.secret_scan
        def test_a_child_prints_a_jws():
            subprocess.run([sys.executable, "-c", "print(chr(34) + 'protected' + chr(34) + ': 1')"],
                           capture_output=True, text=True)

        @pytest.mark.secret_scan
        def test_clean():
            logging.getLogger("certrenew").debug("nothing to see")
    ''')
    with secret_scan.paused():  # this test's own capture would see the inner leaks too
        result = pytester.runpytest_inprocess("-p", "secret_scan", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines([
        "*SECRET LEAK in test_leaky.py::test_logs_a_key_at_debug*",
        "*log record certrenew.renewal DEBUG*a PEM private key*BEGIN PRIVATE KEY*",
        "*SECRET LEAK in test_leaky.py::test_a_child_prints_a_jws*",
        "*subprocess*stdout: a JWS protected header*",
    ])


@pytest.fixture
def w(aws, tmp_path, monkeypatch, restart_pebble):
    # EAB required (the HMAC goes into every registration) and a share of nonces rejected (so
    # the ACME adapter logs at DEBUG while the `acme` library would log each JWS it posts)
    restart_pebble(pebble_env={"PEBBLE_WFE_NONCEREJECT": "30"},
                   pebble_config={"externalAccountBindingRequired": True,
                                  "externalAccountMACKeys": {"kid-1": EAB_HMAC}})
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    w = make_world(aws, tmp_path, zones=("example.test",))
    boto3.client("ssm").put_parameter(Name="/certrenew/eab-hmac", Value=EAB_HMAC, Type="SecureString")
    return w


def _config(w, distribution: str):
    return w.write_config(
        [{"name": "site", "domains": ["example.test", "*.example.test"],
          "deploy": {"acm": {"regions": ["us-east-1", "eu-west-1"]}, "cloudfront": {"distributions": [distribution]},
                     "s3": {"bucket": EXPORT_BUCKET, "prefix": "site/"}}}],
        acme={"directory": w.stack.acme_directory, "email": "ops@example.test",
              "eab": {"kid": "kid-1", "hmac_key": "ssm:/certrenew/eab-hmac"}})


def test_cli_at_debug_logs_and_prints_no_secret(w, capsys):
    distribution = world.create_distribution(boto3.client("cloudfront"), ["www.example.test"])
    config = _config(w, distribution)
    scan = secret_scan.current()
    assert cli.main(["-v", "run", "--config", str(config), "--json"]) == 0
    assert cli.main(["-v", "run", "--config", str(config), "--json", "--force"]) == 0
    assert cli.main(["-v", "status", "--config", str(config), "--json"]) == 0
    assert cli.main(["-v", "plan", "--config", str(config)]) == 0
    assert cli.main(["-v", "revoke", "site", "--reason", "superseded", "--config", str(config)]) == 0
    outputs = capsys.readouterr()
    assert '"outcome": "renewed"' in outputs.out

    debug = [r for r in scan.records if r.levelno == logging.DEBUG and r.name.startswith("certrenew")]
    assert any("badNonce" in r.getMessage() for r in debug), "the capture really ran at DEBUG"
    assert {r.name for r in scan.records} >= {"certrenew.issuance", "certrenew.state", "certrenew.acm"}
    assert not [r for r in scan.records if r.name.startswith("acme")], "the acme library is kept quiet"
    assert scan.texts, "the CLI's output was kept"
    assert scan.violations() == []


def test_lambda_handler_at_debug_logs_and_returns_no_secret(w, tmp_path, monkeypatch):
    """The handler as Lambda runs it, with the root logger at DEBUG (a function whose log level
    is DEBUG) and no CLI to quiet botocore, whose DEBUG lines carry request and response bodies."""
    from handler.app import lambda_handler

    distribution = world.create_distribution(boto3.client("cloudfront"), ["www.example.test"])
    monkeypatch.setenv("CERTRENEW_CONFIG", str(_config(w, distribution)))
    scan = secret_scan.current()
    with secret_scan.libraries_at_debug():
        assert logging.getLogger("botocore").getEffectiveLevel() == logging.DEBUG, "botocore starts at DEBUG"
        result = lambda_handler({"action": "renew"}, LocalContext(300))
        again = lambda_handler({"action": "renew", "force": True}, LocalContext(300))
        held = logging.getLogger("botocore").getEffectiveLevel()
    secret_scan.record_output("lambda_handler return values", [result, again])
    assert [c["outcome"] for c in result["certificates"]] == ["issued"], result
    assert [c["outcome"] for c in again["certificates"]] == ["renewed"], again
    # botocore's DEBUG lines carry request and response bodies (the private key sent to ACM, the
    # EAB HMAC read from SSM): the composition root holds it at WARNING whatever the root level.
    assert held == logging.WARNING
    assert not any(r.name.startswith("botocore") and r.levelno == logging.DEBUG for r in scan.records)
    assert scan.violations() == []
    assert "PRIVATE KEY" not in json.dumps([result, again])
