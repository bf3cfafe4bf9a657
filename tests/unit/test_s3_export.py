"""The PEM export's encryption and its preflight check (adapters/s3_export.py)."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters.s3_export import S3Exporter, kms_key_region
from acme_flow.bootstrap import Settings
from acme_flow.errors import DeployError
from acme_flow.models import CertificateMaterial

STATE_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-1111-1111-1111-111111111111"
EU_KEY = "arn:aws:kms:eu-west-1:123456789012:key/22222222-2222-2222-2222-222222222222"


class FakeS3:
    def __init__(self, locations=None, default_keys=None):
        self.locations = locations or {}
        self.default_keys = default_keys or {}  # bucket -> KMSMasterKeyID of its default SSE-KMS
        self.puts = []
        self.location_calls = []

    def get_bucket_encryption(self, Bucket):
        rule = ({"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": self.default_keys[Bucket]}
                if Bucket in self.default_keys else {"SSEAlgorithm": "AES256"})
        return {"ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]}}

    def put_object(self, **kwargs):
        self.puts.append(kwargs)
        return {"ETag": '"e"'}

    def get_bucket_location(self, Bucket):
        self.location_calls.append(Bucket)
        if Bucket not in self.locations:
            raise ClientError({"Error": {"Code": "NoSuchBucket", "Message": "The specified bucket does not exist"}},
                              "GetBucketLocation")
        return {"LocationConstraint": self.locations[Bucket]}


MATERIAL = CertificateMaterial(cert_pem="CERT\n", chain_pem="CHAIN\n", key_pem="KEY\n")


def privkey_put(s3):
    (put,) = [p for p in s3.puts if p["Key"].endswith("privkey.pem")]
    return put


def test_without_an_export_key_the_bucket_default_encryption_applies():
    s3 = FakeS3()
    S3Exporter(s3).export("certs", "site/", MATERIAL)
    put = privkey_put(s3)
    assert "SSEKMSKeyId" not in put and "ServerSideEncryption" not in put


def test_the_export_key_encrypts_the_private_key():
    s3 = FakeS3()
    S3Exporter(s3, EU_KEY, "us-east-1").export("certs", "site/", MATERIAL)
    put = privkey_put(s3)
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == EU_KEY


def test_the_state_key_is_never_the_export_default():
    settings = Settings.from_env({"CERTRENEW_STATE_KMS_KEY": STATE_KEY, "CERTRENEW_STATE_BUCKET": "state"})
    assert settings.export_kms_key is None
    settings = Settings.from_env({"CERTRENEW_STATE_KMS_KEY": STATE_KEY, "CERTRENEW_EXPORT_KMS_KEY": EU_KEY})
    assert settings.export_kms_key == EU_KEY


@pytest.mark.parametrize("key, function_region, constraint", [
    (EU_KEY, "us-east-1", "eu-west-1"),
    (EU_KEY, "us-east-1", "EU"),  # the legacy name of eu-west-1
    (STATE_KEY, "eu-west-1", None),  # no LocationConstraint: us-east-1
    ("22222222-2222-2222-2222-222222222222", "eu-west-1", "eu-west-1"),  # an id: the function's region
    ("alias/exports", "ap-southeast-2", "ap-southeast-2"),
    (None, "us-east-1", "sa-east-1"),  # no key: any region will do
])
def test_a_key_of_the_bucket_region_passes(key, function_region, constraint):
    s3 = FakeS3({"certs": constraint})
    exporter = S3Exporter(s3, key, function_region)
    exporter.check("certs")
    exporter.check("certs")
    assert s3.location_calls == ["certs"], "one GetBucketLocation per bucket and run"


@pytest.mark.parametrize("key, function_region, key_region", [
    (STATE_KEY, "us-east-1", "us-east-1"),
    ("alias/exports", "us-east-1", "us-east-1"),
    ("arn:aws:kms:us-west-2:123456789012:alias/exports", "eu-west-1", "us-west-2"),
])
def test_a_key_of_another_region_fails_the_check_naming_both(key, function_region, key_region):
    with pytest.raises(DeployError) as err:
        S3Exporter(FakeS3({"certs": "eu-west-1"}), key, function_region).check("certs")
    message = str(err.value)
    assert err.value.target == "s3://certs"
    assert f"is in {key_region} but the bucket is in eu-west-1" in message and key in message
    assert "ExportKmsKeyArn" in message and "CERTRENEW_EXPORT_KMS_KEY" in message


def test_a_missing_export_bucket_fails_the_check():
    with pytest.raises(DeployError, match="s3://nope: no such export bucket"):
        S3Exporter(FakeS3()).check("nope")


def test_key_region():
    assert kms_key_region(EU_KEY, "us-east-1") == "eu-west-1"
    assert kms_key_region("mrk-1234", "ca-central-1") == "ca-central-1"


def test_a_bucket_encrypted_by_default_with_a_customer_key_needs_that_key_named():
    # the function may use only the KMS key the stack names (ExportKmsKeyArn): writing into a
    # bucket whose default is another customer key would fail at export, after the order
    s3 = FakeS3({"certs": "eu-west-1"}, default_keys={"certs": EU_KEY})
    with pytest.raises(DeployError, match=f"s3://certs: the bucket's default encryption is the KMS key {EU_KEY}.*"
                                          "ExportKmsKeyArn"):
        S3Exporter(s3, None, "us-east-1").check("certs")
    S3Exporter(s3, EU_KEY, "us-east-1").check("certs")  # named: fine


@pytest.mark.parametrize("default", [None, "alias/aws/s3", "arn:aws:kms:eu-west-1:123456789012:alias/aws/s3"])
def test_sse_s3_and_the_aws_managed_key_need_no_export_key(default):
    s3 = FakeS3({"certs": "eu-west-1"}, default_keys={"certs": default} if default else {})
    S3Exporter(s3, None, "us-east-1").check("certs")
