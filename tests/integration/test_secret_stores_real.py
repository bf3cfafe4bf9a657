"""Secret stores on the devstack (real sockets, moto behind the strict proxy): a secret created then
given new versions, KMS keys named by alias, a chain over 4 KB in SSM, and what AWS refuses where
moto would not (the strict rules of devstack/strict/secrets.py)."""
from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from acme_flow import pki
from acme_flow.adapters.secret_stores import SecretsManagerWriter, SsmParameterWriter, request_token
from acme_flow.errors import DeployError
from acme_flow.models import CertificateMaterial, ParameterTarget, SecretTarget
from certfactory import MiniCA
from devstack import proxy_client
from devstack.targets.secret_stores import (make_kms_key, parameter_tiers, read_consistent_set, read_parameters,
                                            read_secret, secret_versions)

REGION = "eu-west-1"


def _sm(region, role):
    return boto3.client("secretsmanager", region_name=region)  # no certrenew app id: not judged by strict IAM


def _kms(region, role):
    return boto3.client("kms", region_name=region)


def _ssm(region, role):
    return boto3.client("ssm", region_name=region)


@pytest.fixture(scope="module")
def ca():
    return MiniCA()


def _leaf(ca):
    material = ca.leaf(("www.example.test", "example.test"))
    return material, pki.describe(material.cert_pem)


def _long_chain(ca) -> CertificateMaterial:
    """A leaf whose full chain is over 4 KB (a long intermediate chain) but every PEM under 8 KB."""
    material = ca.leaf(("www.example.test",))
    chain = ca.int_pem
    while len(material.cert_pem + chain) <= 4_500:
        chain += ca.int_pem
    return CertificateMaterial(material.cert_pem, chain, material.key_pem)


# ---- Secrets Manager ---------------------------------------------------------------------------

def test_a_secret_is_created_then_gets_new_versions(aws, ca):
    writer = SecretsManagerWriter(_sm)
    target = SecretTarget("tls/www", REGION)
    writer.check(target, None)  # missing: fine
    first, first_info = _leaf(ca)
    writer.put(target, first, first_info, None)
    doc = read_secret("tls/www", REGION)
    assert doc["certificate"] == first.cert_pem and doc["private_key"] == first.key_pem
    assert doc["fullchain"] == first.fullchain_pem and doc["serial"] == first_info.serial
    assert doc["names"] == list(first_info.names)
    tags = boto3.client("secretsmanager", region_name=REGION).describe_secret(SecretId="tls/www")["Tags"]
    assert {"Key": "certrenew:managed", "Value": "true"} in tags

    writer.put(target, first, first_info, None)  # a retry of the same deploy
    assert list(secret_versions("tls/www", REGION)) == [request_token(first_info.serial)]

    second, second_info = _leaf(ca)
    writer.put(target, second, second_info, None)
    versions = secret_versions("tls/www", REGION)
    assert versions[request_token(second_info.serial)] == ["AWSCURRENT"]
    assert versions[request_token(first_info.serial)] == ["AWSPREVIOUS"]
    assert read_secret("tls/www", REGION)["serial"] == second_info.serial


def test_a_key_named_by_alias_is_used_and_compared(aws, ca):
    key_id = make_kms_key(REGION, "alias/certs")
    material, info = _leaf(ca)
    SecretsManagerWriter(_sm).put(SecretTarget("tls/aliased", REGION, "alias/certs"), material, info, None)
    sm = boto3.client("secretsmanager", region_name=REGION)
    assert sm.describe_secret(SecretId="tls/aliased")["KmsKeyId"] == "alias/certs"

    by_id = SecretTarget("tls/aliased", REGION, key_id)
    SecretsManagerWriter(_sm, _kms).check(by_id, None)  # the alias resolves to this key
    with pytest.raises(DeployError, match="cannot tell"):
        SecretsManagerWriter(_sm).check(by_id, None)
    other = make_kms_key(REGION, "alias/other")
    with pytest.raises(DeployError, match="encrypted with alias/certs, the config says .*does not re-encrypt"):
        SecretsManagerWriter(_sm, _kms).put(SecretTarget("tls/aliased", REGION, other), material, info, None)


def test_a_secret_scheduled_for_deletion_is_refused(aws, ca):
    material, info = _leaf(ca)
    writer = SecretsManagerWriter(_sm)
    writer.put(SecretTarget("tls/gone", REGION), material, info, None)
    sm = boto3.client("secretsmanager", region_name=REGION)
    sm.delete_secret(SecretId="tls/gone", RecoveryWindowInDays=7)
    with pytest.raises(DeployError, match="scheduled for deletion"):
        writer.check(SecretTarget("tls/gone", REGION), None)
    with pytest.raises(ClientError, match="marked for deletion") as got:  # strict: moto would write it
        sm.put_secret_value(SecretId="tls/gone", SecretString="{}")
    assert got.value.response["Error"]["Code"] == "InvalidRequestException"


def test_a_kms_key_that_does_not_exist_is_refused(aws, ca):
    material, info = _leaf(ca)
    with pytest.raises(DeployError, match="CreateSecret.*InvalidParameterException.*alias/nope"):
        SecretsManagerWriter(_sm).put(SecretTarget("tls/nokey", REGION, "alias/nope"), material, info, None)
    with pytest.raises(ClientError):
        boto3.client("secretsmanager", region_name=REGION).describe_secret(SecretId="tls/nokey")


def test_a_secret_over_64_kib_is_refused_by_aws(aws):
    sm = boto3.client("secretsmanager", region_name=REGION)
    sm.create_secret(Name="big", SecretString="{}")
    with pytest.raises(ClientError, match="65536") as got:
        sm.put_secret_value(SecretId="big", SecretString="x" * 65_537)
    assert got.value.response["Error"]["Code"] == "ValidationException"
    sm.put_secret_value(SecretId="big", SecretString="x" * 65_536)


# ---- SSM -----------------------------------------------------------------------------------------

def test_a_chain_over_4_kb_goes_to_intelligent_tiering_and_reads_consistently(aws, ca):
    material = _long_chain(ca)
    writer = SsmParameterWriter(_ssm)
    target = ParameterTarget("/certs/www/", REGION)
    writer.check(target, None)
    writer.put(target, material, None)
    stored = read_parameters("/certs/www/", REGION)
    assert stored["fullchain.pem"] == material.fullchain_pem and len(stored["fullchain.pem"]) > 4096
    assert stored["privkey.pem"] == material.key_pem and stored["chain.pem"] == material.chain_pem
    marker = json.loads(stored["current.json"])
    assert marker["serial"] == pki.describe(material.cert_pem).serial and set(marker["versions"].values()) == {1}

    renewed = _long_chain(ca)
    writer.put(target, renewed, None)
    assert read_consistent_set("/certs/www/", REGION) == {
        "cert.pem": renewed.cert_pem, "chain.pem": renewed.chain_pem, "fullchain.pem": renewed.fullchain_pem,
        "privkey.pem": renewed.key_pem}
    tiers = parameter_tiers("/certs/www/", REGION)
    assert tiers["privkey.pem"]["Type"] == "SecureString" and tiers["current.json"]["Type"] == "String"


def test_standard_tier_refuses_the_long_chain_before_writing(aws, ca):
    with pytest.raises(DeployError, match="/certs/std/fullchain.pem would be .* bytes.*Standard"):
        SsmParameterWriter(_ssm).put(ParameterTarget("/certs/std/", REGION, tier="Standard"), _long_chain(ca), None)
    assert read_parameters("/certs/std/", REGION) == {}
    ssm = boto3.client("ssm", region_name=REGION)
    with pytest.raises(ClientError, match="Standard tier parameters support a maximum") as got:  # strict rule
        ssm.put_parameter(Name="/x/std", Value="x" * 4097, Type="SecureString", Tier="Standard")
    assert got.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="8192"):
        ssm.put_parameter(Name="/x/adv", Value="x" * 8193, Type="SecureString", Tier="Advanced")


def test_an_advanced_parameter_cannot_go_back_to_standard(aws):
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/x/adv", Value="x" * 5000, Type="SecureString", Tier="Advanced")
    with pytest.raises(ClientError, match="downgrade") as got:  # strict: moto would downgrade it
        ssm.put_parameter(Name="/x/adv", Value="x", Type="SecureString", Tier="Standard", Overwrite=True)
    assert got.value.response["Error"]["Code"] == "ValidationException"
    ssm.put_parameter(Name="/x/adv", Value="x", Type="SecureString", Tier="Intelligent-Tiering", Overwrite=True)


def test_a_customer_key_by_alias_encrypts_the_parameters(aws, ca):
    make_kms_key(REGION, "alias/ssm-certs")
    material, _ = _leaf(ca)
    SsmParameterWriter(_ssm).put(ParameterTarget("/certs/kms/", REGION, "alias/ssm-certs", "Standard"), material, None)
    tiers = parameter_tiers("/certs/kms/", REGION)
    assert tiers["privkey.pem"]["KeyId"] == "alias/ssm-certs" and tiers["cert.pem"]["Tier"] == "Standard"
    assert read_parameters("/certs/kms/", REGION)["cert.pem"] == material.cert_pem


def test_a_kms_key_that_does_not_exist_writes_nothing(aws, ca):
    material, _ = _leaf(ca)
    with pytest.raises(DeployError, match="InvalidKeyId.*alias/nope is not found"):
        SsmParameterWriter(_ssm).put(ParameterTarget("/certs/nokey/", REGION, "alias/nope"), material, None)
    assert read_parameters("/certs/nokey/", REGION) == {}


def test_a_disabled_kms_key_is_refused(aws, ca):
    key_id = make_kms_key(REGION, "alias/disabled")
    boto3.client("kms", region_name=REGION).disable_key(KeyId=key_id)
    material, _ = _leaf(ca)
    with pytest.raises(DeployError, match="InvalidKeyId.*disabled"):
        SsmParameterWriter(_ssm).put(ParameterTarget("/certs/off/", REGION, key_id), material, None)
    with pytest.raises(DeployError, match="InvalidParameterException.*disabled"):
        SecretsManagerWriter(_sm).put(SecretTarget("tls/off", REGION, "alias/disabled"), material,
                                      pki.describe(material.cert_pem), None)


def test_a_bad_prefix_is_refused_without_a_call(aws):
    for prefix in ("certs/www", "/aws/certs/", "/certs with space/"):
        with pytest.raises(DeployError):
            SsmParameterWriter(_ssm).check(ParameterTarget(prefix, REGION), None)
    assert proxy_client.calls(aws.aws_endpoint_url, operation="GetParameters") == []
