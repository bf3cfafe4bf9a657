"""Secret stores with fake clients: every branch of the Secrets Manager and SSM writers."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

from acme_flow import pki
from acme_flow.adapters.secret_stores import (SecretsManagerWriter, SsmParameterWriter, key_reference,
                                              prefix_problem, request_token)
from acme_flow.errors import DeployError
from acme_flow.models import CertificateMaterial, ParameterTarget, SecretTarget
from certfactory import MiniCA

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}"
OTHER_ID = "9999abcd-12ab-34cd-56ef-1234567890ab"


def _error(code: str, message: str = "no") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


@pytest.fixture(scope="module")
def material() -> CertificateMaterial:
    return MiniCA().leaf(("example.com", "*.example.com"))


@pytest.fixture(scope="module")
def info(material):
    return pki.describe(material.cert_pem)


class FakeSecrets:
    def __init__(self, described=None, fail=None):
        self.described = described  # None: no such secret
        self.fail = fail or {}  # operation -> ClientError
        self.calls = []

    def _maybe_fail(self, op):
        if op in self.fail:
            raise self.fail.pop(op)

    def describe_secret(self, SecretId):
        self.calls.append(("describe", SecretId))
        self._maybe_fail("describe")
        if self.described is None:
            raise _error("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
        return self.described

    def create_secret(self, **args):
        self.calls.append(("create", args))
        self._maybe_fail("create")
        self.described = {"Name": args["Name"], **({"KmsKeyId": args["KmsKeyId"]} if "KmsKeyId" in args else {})}
        return {"VersionId": args["ClientRequestToken"]}

    def put_secret_value(self, **args):
        self.calls.append(("put", args))
        self._maybe_fail("put")
        return {"VersionId": args["ClientRequestToken"]}


class FakeKms:
    def __init__(self, aliases, fail=None):
        self.aliases = aliases
        self.fail = fail

    def describe_key(self, KeyId):
        if self.fail:
            raise self.fail
        key = self.aliases.get(KeyId, KeyId)
        return {"KeyMetadata": {"KeyId": key.rsplit("/", 1)[-1]}}


def _writer(fake, kms=None):
    return SecretsManagerWriter(lambda region, role: fake, (lambda region, role: kms) if kms else None)


SECRET = SecretTarget("tls/example", "eu-west-1")


# ---- Secrets Manager: put ----------------------------------------------------------------------

def test_a_missing_secret_is_created_with_the_json_document_tag_and_key(material, info):
    fake = FakeSecrets()
    _writer(fake).put(SecretTarget("tls/example", "eu-west-1", "alias/certs"), material, info, None)
    (op, args), = [c for c in fake.calls if c[0] != "describe"]
    assert op == "create" and args["KmsKeyId"] == "alias/certs"
    assert args["Tags"] == [{"Key": "certrenew:managed", "Value": "true"}]
    doc = json.loads(args["SecretString"])
    assert doc == {"certificate": material.cert_pem, "chain": material.chain_pem, "fullchain": material.fullchain_pem,
                   "private_key": material.key_pem, "serial": info.serial,
                   "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"), "names": list(info.names)}
    assert args["ClientRequestToken"] == request_token(info.serial)


def test_no_kms_key_configured_sends_none(material, info):
    fake = FakeSecrets()
    _writer(fake).put(SECRET, material, info, None)
    assert "KmsKeyId" not in fake.calls[1][1]


def test_an_existing_secret_gets_a_new_version_with_a_token_from_the_serial(material, info):
    fake = FakeSecrets({"Name": "tls/example"})
    _writer(fake).put(SECRET, material, info, None)
    op, args = fake.calls[-1]
    assert op == "put" and args["SecretId"] == "tls/example"
    assert args["ClientRequestToken"] == request_token(info.serial)
    assert 32 <= len(args["ClientRequestToken"]) <= 64
    assert request_token(info.serial) != request_token(info.serial + "1")


def test_a_racing_creator_falls_back_to_a_new_version(material, info):
    fake = FakeSecrets(fail={"create": _error("ResourceExistsException")})
    original = fake.describe_secret
    seen = []

    def describe(SecretId):  # missing at first, there once the racer made it
        seen.append(SecretId)
        if len(seen) == 2:
            fake.described = {"Name": SecretId}
        return original(SecretId)
    fake.describe_secret = describe
    _writer(fake).put(SECRET, material, info, None)
    assert [c[0] for c in fake.calls if c[0] != "describe"] == ["create", "put"]


def test_a_racing_creator_with_another_key_is_refused(material, info):
    fake = FakeSecrets(fail={"create": _error("ResourceExistsException")})
    calls = []

    def describe(SecretId):
        calls.append(SecretId)
        if len(calls) == 1:
            raise _error("ResourceNotFoundException")
        return {"Name": SecretId, "KmsKeyId": KEY_ARN}
    fake.describe_secret = describe
    with pytest.raises(DeployError, match="does not re-encrypt"):
        _writer(fake).put(SECRET, material, info, None)
    assert not [c for c in fake.calls if c[0] == "put"]


def test_a_value_over_64_kib_is_refused_before_any_call(info):
    huge = CertificateMaterial("C" * 70_000, "", "K")
    fake = FakeSecrets()
    with pytest.raises(DeployError, match="65536"):
        _writer(fake).put(SECRET, huge, info, None)
    assert fake.calls == []


@pytest.mark.parametrize("op,action", [("put", "PutSecretValue"), ("create", "CreateSecret"),
                                       ("describe", "DescribeSecret")])
def test_access_denied_names_the_action(material, info, op, action):
    fake = FakeSecrets({"Name": "x"} if op == "put" else None, fail={op: _error("AccessDeniedException", "nope")})
    with pytest.raises(DeployError, match=f"secretsmanager:{action}") as got:
        _writer(fake).put(SECRET, material, info, None)
    assert "access denied" in got.value.reason and got.value.target == "secretsmanager:eu-west-1/tls/example"


def test_other_errors_carry_the_code(material, info):
    fake = FakeSecrets(fail={"create": _error("InvalidParameterException", "bad key")})
    with pytest.raises(DeployError, match="InvalidParameterException: bad key"):
        _writer(fake).put(SECRET, material, info, None)


def test_a_secret_scheduled_for_deletion_is_refused(material, info):
    fake = FakeSecrets({"Name": "tls/example", "DeletedDate": dt.datetime(2027, 1, 1)})
    with pytest.raises(DeployError, match="scheduled for deletion.*restore-secret"):
        _writer(fake).put(SECRET, material, info, None)
    with pytest.raises(DeployError, match="scheduled for deletion"):
        _writer(fake).check(SECRET, None)
    assert not [c for c in fake.calls if c[0] == "put"]


# ---- Secrets Manager: check and keys -----------------------------------------------------------

def test_check_accepts_a_missing_secret():
    fake = FakeSecrets()
    _writer(fake).check(SECRET, "arn:aws:iam::111122223333:role/deploy")
    assert fake.calls == [("describe", "tls/example")]


def test_check_access_denied_names_describe_secret():
    fake = FakeSecrets(fail={"describe": _error("AccessDeniedException")})
    with pytest.raises(DeployError, match="secretsmanager:DescribeSecret"):
        _writer(fake).check(SECRET, None)


@pytest.mark.parametrize("configured,actual", [
    (None, None), ("alias/aws/secretsmanager", None), (KEY_ID, KEY_ARN), (KEY_ARN, KEY_ID),
    ("alias/certs", "arn:aws:kms:eu-west-1:111122223333:alias/certs"), ("alias/certs", "alias/certs")])
def test_the_same_key_written_differently_needs_no_kms(configured, actual):
    fake = FakeSecrets({"Name": "s", **({"KmsKeyId": actual} if actual else {})})
    _writer(fake).check(SecretTarget("s", "eu-west-1", configured), None)


@pytest.mark.parametrize("configured,actual", [(KEY_ID, OTHER_ID), (None, KEY_ARN), (KEY_ARN, None)])
def test_different_keys_are_refused_naming_both(configured, actual):
    fake = FakeSecrets({"Name": "s", **({"KmsKeyId": actual} if actual else {})})
    with pytest.raises(DeployError, match="does not re-encrypt") as got:
        _writer(fake).check(SecretTarget("s", "eu-west-1", configured), None)
    assert (actual or "aws/secretsmanager") in got.value.reason
    assert (configured or "aws/secretsmanager") in got.value.reason


def test_an_alias_and_a_key_id_are_resolved_through_kms():
    kms = FakeKms({"alias/certs": KEY_ARN})
    fake = FakeSecrets({"Name": "s", "KmsKeyId": KEY_ARN})
    _writer(fake, kms).check(SecretTarget("s", "eu-west-1", "alias/certs"), None)
    fake.described = {"Name": "s", "KmsKeyId": OTHER_ID}
    with pytest.raises(DeployError, match="does not re-encrypt"):
        _writer(fake, kms).check(SecretTarget("s", "eu-west-1", "alias/certs"), None)


def test_an_alias_without_kms_cannot_be_compared():
    fake = FakeSecrets({"Name": "s", "KmsKeyId": KEY_ARN})
    with pytest.raises(DeployError, match="cannot tell.*as the secret shows it"):
        _writer(fake).check(SecretTarget("s", "eu-west-1", "alias/certs"), None)


def test_kms_describe_key_denied_names_the_action():
    kms = FakeKms({}, fail=_error("AccessDeniedException"))
    fake = FakeSecrets({"Name": "s", "KmsKeyId": KEY_ARN})
    with pytest.raises(DeployError, match="kms:DescribeKey"):
        _writer(fake, kms).check(SecretTarget("s", "eu-west-1", "alias/certs"), None)


def test_key_reference_forms():
    assert key_reference(KEY_ARN, "alias/aws/secretsmanager") == KEY_ID
    assert key_reference("arn:aws:kms:eu-west-1:1:alias/aws/secretsmanager", "alias/aws/secretsmanager") is None
    assert key_reference("", "alias/aws/secretsmanager") is None
    assert key_reference("alias/x", "alias/aws/secretsmanager") == "alias/x"


# ---- SSM ---------------------------------------------------------------------------------------

class FakeSsm:
    def __init__(self, fail=None):
        self.params: dict[str, dict] = {}
        self.fail = fail or {}
        self.reads = []

    def put_parameter(self, **args):
        if args["Name"] in self.fail:
            raise self.fail.pop(args["Name"])
        old = self.params.get(args["Name"], {"Version": 0})
        self.params[args["Name"]] = {**args, "Version": old["Version"] + 1}
        return {"Version": old["Version"] + 1, "Tier": args["Tier"]}

    def get_parameters(self, Names, WithDecryption):
        self.reads.append((Names, WithDecryption))
        if "get" in self.fail:
            raise self.fail.pop("get")
        return {"Parameters": [], "InvalidParameters": Names}


def _ssm(fake):
    return SsmParameterWriter(lambda region, role: fake)


PARAMS = ParameterTarget("/certs/example/", "eu-west-1")


def test_parameters_are_written_key_first_marker_last(material, info):
    fake = FakeSsm()
    _ssm(fake).put(ParameterTarget("/certs/example/", "eu-west-1", "alias/certs"), material, None)
    names = list(fake.params)
    assert names == ["/certs/example/privkey.pem", "/certs/example/fullchain.pem", "/certs/example/cert.pem",
                     "/certs/example/chain.pem", "/certs/example/current.json"]
    key = fake.params["/certs/example/privkey.pem"]
    assert key["Value"] == material.key_pem and key["Type"] == "SecureString" and key["KeyId"] == "alias/certs"
    assert key["Overwrite"] is True and key["Tier"] == "Intelligent-Tiering"
    assert fake.params["/certs/example/fullchain.pem"]["Value"] == material.fullchain_pem
    marker = fake.params["/certs/example/current.json"]
    assert marker["Type"] == "String" and "KeyId" not in marker and marker["Tier"] == "Standard"
    assert json.loads(marker["Value"]) == {
        "serial": info.serial, "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {"cert.pem": 1, "chain.pem": 1, "fullchain.pem": 1, "privkey.pem": 1}}


def test_the_marker_records_the_versions_put_parameter_returned(material):
    fake = FakeSsm()
    fake.params["/certs/example/cert.pem"] = {"Version": 6}
    _ssm(fake).put(PARAMS, material, None)
    versions = json.loads(fake.params["/certs/example/current.json"]["Value"])["versions"]
    assert versions["cert.pem"] == 7 and versions["privkey.pem"] == 1
    assert "KeyId" not in fake.params["/certs/example/privkey.pem"]


def _big(material, size=5000):
    return CertificateMaterial(material.cert_pem, "X" * size, material.key_pem)


def test_standard_tier_refuses_a_value_over_4096_bytes_before_any_write(material):
    fake = FakeSsm()
    with pytest.raises(DeployError, match=r"/certs/example/fullchain.pem would be \d+ bytes.*Standard.*Intelligent"):
        _ssm(fake).put(ParameterTarget("/certs/example/", "eu-west-1", tier="Standard"), _big(material), None)
    assert fake.params == {}


def test_intelligent_tiering_takes_a_large_chain(material):
    fake = FakeSsm()
    _ssm(fake).put(PARAMS, _big(material), None)
    assert len(fake.params["/certs/example/fullchain.pem"]["Value"]) > 4096


def test_no_tier_takes_more_than_8192_bytes(material):
    fake = FakeSsm()
    with pytest.raises(DeployError, match="at most 8192"):
        _ssm(fake).put(ParameterTarget("/c/", "eu-west-1", tier="Advanced"), _big(material, 9000), None)
    assert fake.params == {}


def test_an_unknown_key_is_a_clear_error(material):
    fake = FakeSsm(fail={"/certs/example/privkey.pem": _error("InvalidKeyId", "Alias alias/nope is not found.")})
    with pytest.raises(DeployError, match="cannot encrypt /certs/example/privkey.pem with the key alias/nope"):
        _ssm(fake).put(ParameterTarget("/certs/example/", "eu-west-1", "alias/nope"), material, None)


def test_put_access_denied_names_the_action(material):
    fake = FakeSsm(fail={"/certs/example/privkey.pem": _error("AccessDeniedException")})
    with pytest.raises(DeployError, match="access denied to ssm:PutParameter on /certs/example/privkey.pem"):
        _ssm(fake).put(PARAMS, material, None)


def test_put_refuses_a_bad_prefix_before_any_write(material):
    fake = FakeSsm()
    with pytest.raises(DeployError, match="not an SSM path prefix"):
        _ssm(fake).put(ParameterTarget("certs/", "eu-west-1"), material, None)
    assert fake.params == {}


def test_check_reads_the_names_without_decrypting():
    fake = FakeSsm()
    _ssm(fake).check(PARAMS, None)
    (names, decrypt), = fake.reads
    assert decrypt is False and "/certs/example/privkey.pem" in names and "/certs/example/current.json" in names


def test_check_access_denied_names_the_action():
    fake = FakeSsm(fail={"get": _error("AccessDeniedException")})
    with pytest.raises(DeployError, match="ssm:GetParameters") as got:
        _ssm(fake).check(PARAMS, None)
    assert got.value.target == "ssm:eu-west-1:/certs/example/"


@pytest.mark.parametrize("prefix,why", [
    ("certs/", "not an SSM path prefix"), ("/certs", "not an SSM path prefix"), ("/", "not an SSM path prefix"),
    ("/a//b/", "not an SSM path prefix"), ("/a b/", "not an SSM path prefix"), ("/a/b*/", "not an SSM path prefix"),
    ("/aws/x/", "reserves"), ("/SSM-things/", "reserves"),
    ("/" + "l/" * 15, "16 levels deep"), ("/" + "n" * 960 + "/", "too long")])
def test_bad_prefixes(prefix, why):
    fake = FakeSsm()
    with pytest.raises(DeployError, match=why):
        _ssm(fake).check(ParameterTarget(prefix, "us-east-1"), None)
    assert fake.reads == []


@pytest.mark.parametrize("prefix", ["/certs/", "/a.b/c-d/e_f/", "/" + "l/" * 14, "/" + "n" * 900 + "/"])
def test_good_prefixes(prefix):
    assert prefix_problem(prefix, "us-east-1") is None
