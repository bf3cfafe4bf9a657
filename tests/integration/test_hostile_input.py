"""Hostile and broken input, table-driven, through the real CLI on the devstack.

Every case is a bad config document, Lambda event or command line. Each must end with exit
status 2 and a message naming the field (or, for targets that only AWS can judge, a `failed`
outcome whose reason names the target), and NOTHING may be written anywhere: the proxy in
front of moto records every AWS call, and every one of them must be a read (Get*, List*, Head*,
Describe*). The state bucket stays empty, no ACME order is placed.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
import yaml

from acme_flow import cli
from devstack import proxy_client, world
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

READ_PREFIXES = ("Get", "List", "Head", "Describe")
EAB_HMAC = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


@dataclass
class Case:
    id: str
    kind: str  # config | event | cli
    payload: Any  # config: a document (dict) or raw text/bytes; event: an object or raw text; cli: argv
    names: tuple[str, ...]  # what the error must mention (the field, the value, the target)
    code: int = 2  # 1: a `failed` outcome in the report (targets that only AWS can judge)
    env: dict[str, str | None] = field(default_factory=dict)
    setup: Callable | None = None  # setup(world) -> extra format values for payload strings
    absent: tuple[str, ...] = ()  # what the output must NOT contain (secrets)
    deployment: dict = field(default_factory=dict)  # the stack's parameters strict IAM judges by, if not the world's


def cert(**extra) -> dict:
    return {"name": "site", "domains": ["example.test", "*.example.test"],
            "deploy": {"acm": {"regions": ["us-east-1"]}}, **extra}


def doc(*certs: dict, **top) -> dict:
    return {"acme": {"directory": "{directory}", "email": "ops@example.test"}, "certificates": list(certs) or [cert()],
            **top}


def with_acme(**acme) -> dict:
    d = doc()
    d["acme"].update(acme)
    return d


def names(n: int) -> list[str]:
    return [f"n{i}.example.test" for i in range(n)]


def alias_bomb() -> str:
    """A "billion laughs": 40 ** 9 strings if expanded, from 360 aliases."""
    lines = ["a: &a [" + ", ".join(['"lol"'] * 40) + "]"]
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        lines.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + prev] * 40)}]")
    return "\n".join(lines) + "\ncertificates: *j\n"


def _distribution(w) -> dict:
    return {"dist": world.create_distribution(boto3.client("cloudfront"), ["www.example.test"])}


CONFIG_CASES = [
    Case("uppercase-name", "config", doc(cert(name="Site")), ("certificates[0].name", "'Site'")),
    Case("underscore-name", "config", doc(cert(name="my_site")), ("certificates[0].name",)),
    Case("name-too-long", "config", doc(cert(name="a" * 64)), ("certificates[0].name",)),
    Case("duplicate-names", "config", doc(cert(), cert(domains=["shop.test"])), ("certificates[1].name", "duplicate")),
    Case("idn-not-punycode", "config", doc(cert(domains=["bücher.example.test"])),
         ("certificates[0].domains[0]", "xn--bcher-kva.example.test")),
    Case("idn-uppercase", "config", doc(cert(domains=["Bücher.Example.test"])), ("certificates[0].domains[0]", "punycode")),
    Case("invalid-punycode", "config", doc(cert(domains=["xn--a.example.test"])), ("certificates[0].domains[0]", "xn--a")),
    Case("reserved-hyphens", "config", doc(cert(domains=["ab--cd.example.test"])), ("certificates[0].domains[0]", "ab--cd")),
    Case("punycode-trailing-hyphen", "config", doc(cert(domains=["xn--zz-.example.test"])),
         ("certificates[0].domains[0]",)),
    Case("uppercase-domain", "config", doc(cert(domains=["Example.test"])), ("certificates[0].domains[0]", "uppercase")),
    Case("trailing-dot", "config", doc(cert(domains=["example.test."])), ("certificates[0].domains[0]", "trailing dot")),
    Case("wildcard-in-the-middle", "config", doc(cert(domains=["www.*.example.test"])), ("certificates[0].domains[0]", "wildcard")),
    Case("wildcard-partial-label", "config", doc(cert(domains=["*www.example.test"])), ("certificates[0].domains[0]", "wildcard")),
    Case("double-wildcard", "config", doc(cert(domains=["*.*.example.test"])), ("certificates[0].domains[0]", "wildcard")),
    Case("wildcard-on-a-tld", "config", doc(cert(domains=["*.test"])), ("certificates[0].domains[0]", "wildcard")),
    Case("duplicate-domains", "config", doc(cert(domains=["example.test", "www.example.test", "example.test"])),
         ("certificates[0].domains[2]", "duplicate")),
    Case("101-names", "config", doc(cert(domains=names(101))), ("certificates[0].domains", "101 names")),
    Case("26-names-shortlived", "config", doc(cert(domains=names(26), profile="shortlived")),
         ("certificates[0].domains", "26 names", "shortlived")),
    Case("ip-address", "config", doc(cert(domains=["10.0.0.1"])), ("certificates[0].domains[0]", "IP address")),
    Case("empty-label", "config", doc(cert(domains=["www..example.test"])), ("certificates[0].domains[0]", "empty label")),
    Case("label-too-long", "config", doc(cert(domains=["a" * 64 + ".example.test"])), ("certificates[0].domains[0]", "63")),
    Case("underscore-label", "config", doc(cert(domains=["_dmarc.example.test"])), ("certificates[0].domains[0]",)),
    Case("single-label", "config", doc(cert(domains=["localhost"])), ("certificates[0].domains[0]", "single label")),
    Case("no-domains", "config", doc({"name": "site"}), ("certificates[0].domains", "required")),
    Case("no-certificates", "config", {"acme": {"directory": "{directory}"}, "certificates": []}, ("certificates",)),
    Case("unknown-top-key", "config", {**doc(), "certificate": []}, ("'certificate'", "did you mean")),
    Case("unknown-certificate-key", "config", doc(cert(domain="example.test")), ("certificates[0].domain",)),
    Case("unknown-acme-key", "config", with_acme(directry="x"), ("acme.directry",)),
    Case("domains-a-string", "config", doc(cert(domains="example.test")), ("certificates[0].domains", "list")),
    Case("renew-before-days-quoted", "config", doc(cert(renew_before_days="30")), ("certificates[0].renew_before_days",)),
    Case("renew-before-days-out-of-range", "config", doc(cert(renew_before_days=400)), ("certificates[0].renew_before_days",)),
    Case("key-a-number", "config", doc(cert(key=256)), ("certificates[0].key",)),
    Case("unknown-key-type", "config", doc(cert(key="ec-p521")), ("certificates[0].key", "ec-p521")),
    Case("p384-with-cloudfront", "config", doc(cert(key="ec-p384", deploy={"cloudfront": {"distributions": ["E2ABCDEF123456"]}})),
         ("certificates[0].key", "CloudFront")),
    Case("http-directory", "config", with_acme(directory="http://127.0.0.1/dir"), ("acme.directory", "https")),
    Case("unknown-ca-alias", "config", with_acme(directory="letsencrypt-prod"), ("acme.directory", "letsencrypt")),
    Case("bad-email", "config", with_acme(email="ops-at-example"), ("acme.email",)),
    Case("literal-eab-secret", "config", with_acme(eab={"kid": "kid-1", "hmac_key": EAB_HMAC}),
         ("acme.eab.hmac_key", "value not shown"), absent=(EAB_HMAC,)),
    Case("region-shape", "config", doc(cert(deploy={"acm": {"regions": ["US-EAST-1"]}})),
         ("certificates[0].deploy.acm.regions[0]",)),
    Case("distribution-shape", "config", doc(cert(deploy={"cloudfront": {"distributions": ["e123"]}})),
         ("certificates[0].deploy.cloudfront.distributions[0]",)),
    Case("zone-id-shape", "config", doc(cert(dns={"hosted_zone_id": "zone-1"})), ("certificates[0].dns.hosted_zone_id",)),
    Case("role-arn-shape", "config", doc(cert(dns={"role_arn": "role/dns"})), ("certificates[0].dns.role_arn",)),
    Case("export-bucket-name", "config", doc(cert(deploy={"s3": {"bucket": "My_Bucket"}})), ("certificates[0].deploy.s3.bucket",)),
    Case("export-prefix-dotdot", "config", doc(cert(deploy={"s3": {"bucket": EXPORT_BUCKET, "prefix": "../etc/"}})),
         ("certificates[0].deploy.s3.prefix", "..")),
    Case("sns-arn-shape", "config", {**doc(), "notify": {"sns_topic_arn": "certrenew-topic"}}, ("notify.sns_topic_arn",)),
    Case("profile-not-offered", "config", doc(cert(profile="tlsserver")), ("certificates[0].profile", "tlsserver")),
    Case("huge-document", "config", "# " + "x" * 1_100_000 + "\n", ("bytes",)),
    Case("alias-bomb", "config", alias_bomb(), ("aliases",)),
    Case("deep-nesting", "config", "certificates: " + "[" * 100 + "]" * 100 + "\n", ("nested",)),
    Case("yaml-syntax", "config", "certificates: [\n  - name: site\n   domains: x\n", ("invalid YAML",)),
    Case("json-duplicate-keys", "config", '{"certificates": [], "certificates": []}', ("duplicate key",)),
    Case("not-utf8", "config", b"certificates:\n  - name: \xff\xfe\n", ("YAML",)),
    Case("empty-document", "config", "", ("empty",)),
    Case("document-is-a-list", "config", "- example.test\n", ("a list",)),
    # Shapes are fine, only AWS knows these do not exist: checked read-only before anything is written.
    Case("zone-does-not-exist", "config", doc(cert(dns={"hosted_zone_id": "Z0NOSUCHZONE0000"})),
         ("Z0NOSUCHZONE0000", "does not exist"), code=1,
         deployment={"HostedZoneIds": ["auto", "Z0NOSUCHZONE0000"]}),  # listed in the stack, deleted since
    Case("name-in-no-zone", "config", doc(cert(domains=["www.nowhere.test"])),
         ("no Route53 hosted zone found for www.nowhere.test",), code=1),
    Case("region-does-not-exist", "config", doc(cert(deploy={"acm": {"regions": ["us-east-9"]}})),
         ("acm:us-east-9", "not an AWS region"), code=1),
    Case("distribution-does-not-exist", "config", doc(cert(deploy={"cloudfront": {"distributions": ["E2ABCDEF123456"]}})),
         ("cloudfront:E2ABCDEF123456", "no such distribution"), code=1,
         deployment={"DistributionIds": ["auto", "E2ABCDEF123456"]}),
    Case("distribution-exists-other-is-missing", "config",
         doc(cert(deploy={"cloudfront": {"distributions": ["{dist}", "E3NOSUCHDIST000"]}})),
         ("cloudfront:E3NOSUCHDIST000",), code=1, setup=_distribution),
    Case("eab-reference-does-not-resolve", "config", with_acme(eab={"kid": "kid-1", "hmac_key": "ssm:/nope"}),
         ("acme.eab.hmac_key", "ssm:/nope")),
    Case("eab-secret-does-not-exist", "config", with_acme(eab={"kid": "kid-1", "hmac_key": "secretsmanager:certrenew/nope"}),
         ("acme.eab.hmac_key", "secretsmanager:certrenew/nope")),
]

EVENT_CASES = [
    Case("event-unknown-action", "event", {"action": "destroy"}, ("action", "'destroy'")),
    Case("event-force-a-string", "event", {"action": "renew", "force": "yes"}, ("force", "true or false")),
    Case("event-dry-run-a-number", "event", {"action": "plan", "dry_run": 1}, ("dry_run",)),
    Case("event-certificates-a-string", "event", {"action": "renew", "certificates": "site"}, ("certificates", "list")),
    Case("event-unknown-key", "event", {"action": "renew", "certs": ["site"]}, ("certs", "unknown key")),
    Case("event-unknown-certificate", "event", {"action": "renew", "certificates": ["nope"]}, ("nope",)),
    Case("event-a-list", "event", [{"action": "renew"}], ("JSON object",)),
    Case("event-a-string", "event", "renew", ("JSON object",)),
    Case("event-oversized", "event", {"action": "renew", "certificates": ["x" * 300_000]}, ("larger than",)),
    Case("event-not-json", "event", "{action: renew", ("cannot read the event file",)),
    Case("event-s3-records", "event", {"Records": [{"eventSource": "aws:s3", "s3": {}}]}, ("Records", "aws:sqs")),
    Case("event-empty-records", "event", {"Records": []}, ("Records",)),
]

CLI_CASES = [
    Case("cli-unknown-flag", "cli", ["run", "--config", "{config}", "--bogus"], ("--bogus",)),
    Case("cli-timeout-not-a-number", "cli", ["run", "--config", "{config}", "--timeout", "soon"], ("--timeout",)),
    Case("cli-timeout-negative", "cli", ["run", "--config", "{config}", "--timeout", "-5"], ("--timeout",)),
    Case("cli-timeout-zero", "cli", ["run", "--config", "{config}", "--timeout", "0"], ("--timeout",)),
    Case("cli-no-command", "cli", [], ("COMMAND",)),
    Case("cli-unknown-command", "cli", ["frobnicate"], ("frobnicate",)),
    Case("cli-revoke-without-name", "cli", ["revoke", "--config", "{config}"], ("name",)),
    Case("cli-revoke-bad-reason", "cli", ["revoke", "site", "--reason", "because", "--config", "{config}"], ("because",)),
    Case("cli-only-without-name", "cli", ["plan", "--config", "{config}", "--only"], ("--only",)),
    Case("cli-devstack-bad-action", "cli", ["devstack", "sideways"], ("sideways",)),
    Case("cli-unknown-only-name", "cli", ["run", "--config", "{config}", "--only", "nope"], ("nope", "site")),
    Case("cli-revoke-unknown-name", "cli", ["revoke", "nope", "--config", "{config}"], ("nope",)),
    Case("cli-revoke-nothing-stored", "cli", ["revoke", "site", "--config", "{config}"], ("site", "no stored certificate")),
    Case("cli-missing-config-file", "cli", ["run", "--config", "/nonexistent/certificates.yaml"],
         ("/nonexistent/certificates.yaml", "cannot read the config")),
    Case("cli-config-s3-missing-key", "cli", ["run", "--config", f"s3://{STATE_BUCKET}/nope.yaml"],
         (f"s3://{STATE_BUCKET}/nope.yaml", "cannot read the config")),
    Case("cli-config-s3-missing-bucket", "cli", ["plan", "--config", "s3://no-such-bucket-here/certificates.yaml"],
         ("s3://no-such-bucket-here/certificates.yaml",)),
    Case("cli-config-ssm-missing", "cli", ["run", "--config", "ssm:/certrenew/nope"], ("ssm:/certrenew/nope",)),
    Case("cli-state-bucket-unset", "cli", ["run", "--config", "{config}"], ("CERTRENEW_STATE_BUCKET",),
         env={"CERTRENEW_STATE_BUCKET": None}),
    Case("cli-state-bucket-missing", "cli", ["run", "--config", "{config}"], ("no-such-state-bucket", "does not exist"),
         env={"CERTRENEW_STATE_BUCKET": "no-such-state-bucket"},
         deployment={"StateBucket": "no-such-state-bucket"}),  # the stack's bucket, deleted
    Case("cli-check-interval-bad", "cli", ["run", "--config", "{config}"], ("CERTRENEW_CHECK_INTERVAL", "soon"),
         env={"CERTRENEW_CHECK_INTERVAL": "soon"}),
    Case("cli-status-bad-config", "cli", ["status", "--config", "{bad_config}"], ("certificates[0].domains[0]",)),
]

CASES = CONFIG_CASES + EVENT_CASES + CLI_CASES
RESULTS: dict[str, int] = {}  # case id -> number of write calls it made (must be 0)

@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path)


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in values.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {_fill(k, values): _fill(v, values) for k, v in value.items()}
    return value


def _write(path: Path, payload: Any) -> Path:
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    elif isinstance(payload, str):
        path.write_text(payload)
    else:
        path.write_text(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))
    return path


def _run(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse
        return int(exc.code)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_naming_the_problem_and_writes_nothing(w, case, capsys, caplog, monkeypatch, tmp_path):
    values = {"directory": w.stack.acme_directory, "shop_zone": w.zones["shop.test"]}
    if case.setup:
        values.update(case.setup(w))
    good = _write(tmp_path / "good.yaml", _fill(doc(), values))
    values.update(config=str(good), bad_config=str(_write(tmp_path / "bad.yaml", _fill(doc(cert(domains=["Bad..name"])), values))))
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("CERTRENEW_CONFIG", str(good))
    if case.deployment:
        proxy_client.update_deployment(w.stack.aws_endpoint_url, case.deployment)
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    caplog.set_level(logging.INFO)

    if case.kind == "config":
        payload = _fill(case.payload, values) if not isinstance(case.payload, (str, bytes)) else case.payload
        config = _write(tmp_path / "certificates.yaml", payload)
        code = _run(["run", "--config", str(config), "--json"])
    elif case.kind == "event":
        payload = case.payload if isinstance(case.payload, str) and case.id == "event-not-json" else json.dumps(case.payload)
        code = _run(["invoke", str(_write(tmp_path / "event.json", payload))])
    else:
        code = _run(_fill(case.payload, values))
    out, err = capsys.readouterr()
    text = out + err + "\n".join(r.getMessage() for r in caplog.records)

    calls = proxy_client.calls(w.stack.aws_endpoint_url)
    writes = [f"{c['service']}.{c['operation']}" for c in calls if not c["operation"].startswith(READ_PREFIXES)]
    RESULTS[case.id] = len(writes)
    assert code == case.code, f"exit status {code}, wanted {case.code}:\n{text[-3000:]}"
    for needle in _fill(list(case.names), values):
        assert needle in text, f"{needle!r} is not named in:\n{text[-3000:]}"
    for secret in case.absent:
        assert secret not in text, "the output shows a secret"
    if case.code == 1:
        report = json.loads(out)
        assert [c["outcome"] for c in report["certificates"]] == ["failed"], report
    assert writes == [], f"bad input wrote to AWS: {writes}"
    assert w.state_keys() == [], "bad input wrote to the state bucket"
    assert not any(r.getMessage().startswith(("order ", "registered ACME account")) for r in caplog.records), \
        "bad input reached the CA"


def test_the_table_has_at_least_40_cases_and_none_wrote_anything():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    if RESULTS:  # when the table ran in this session (it does in `make test`)
        wrote = sorted(k for k, v in RESULTS.items() if v)
        assert wrote == [], wrote
        print(f"\nhostile input: {len(RESULTS)} cases, {len(wrote)} wrote anything")
