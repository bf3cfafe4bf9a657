"""The PEM export's encryption on the devstack: never the state key; an export key must be in the
export bucket's region, which preflight checks before anything is ordered or written."""
from __future__ import annotations

import boto3
import pytest

from devstack import proxy_client
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

EU_BUCKET = "certrenew-test-export-eu"


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    w = make_world(aws, tmp_path, zones=("example.test",))
    state_key = boto3.client("kms").create_key(Description="state")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("CERTRENEW_STATE_KMS_KEY", state_key)
    proxy_client.update_deployment(aws.aws_endpoint_url, {"StateKey.Arn": state_key})  # the stack's key
    monkeypatch.delenv("CERTRENEW_EXPORT_KMS_KEY", raising=False)
    w.state_key = state_key
    return w


def site(bucket: str) -> dict:
    return {"name": "site", "domains": ["example.test"],
            "deploy": {"acm": {"regions": ["us-east-1"]}, "s3": {"bucket": bucket, "prefix": "site/"}}}


def key_in(region: str) -> str:
    return boto3.client("kms", region_name=region).create_key(Description=f"export {region}")["KeyMetadata"]["Arn"]


def eu_bucket(w, export_key: str) -> None:
    """The export bucket in eu-west-1, deployed as the stack's ExportBucket with that key."""
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket=EU_BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"ExportBucket": EU_BUCKET, "ExportKmsKeyArn": export_key})


def test_without_an_export_key_the_bucket_default_encryption_protects_the_export(w, capsys):
    # the bucket's default: SSE-KMS with the AWS managed key aws/s3 (no IAM permission needed;
    # a customer managed default key would be given to the stack as ExportKmsKeyArn)
    w.s3.put_bucket_encryption(Bucket=EXPORT_BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    code, report = w.run_json(w.write_config([site(EXPORT_BUCKET)]), capsys=capsys)
    assert code == 0, report
    head = w.s3.head_object(Bucket=EXPORT_BUCKET, Key="site/privkey.pem")
    assert head.get("SSEKMSKeyId") != w.state_key, "the export never uses the key of the ACME account key"
    assert head["ServerSideEncryption"] == "aws:kms"
    puts = [c for c in proxy_client.calls(w.stack.aws_endpoint_url, "s3", "PutObject")
            if c["path"].endswith(f"/{EXPORT_BUCKET}/site/privkey.pem")]
    assert puts and all(c["status"] == 200 for c in puts)


def test_an_export_key_of_another_region_fails_in_preflight_before_anything_is_written(w, capsys, monkeypatch):
    us_key = key_in("us-east-1")
    eu_bucket(w, us_key)
    monkeypatch.setenv("CERTRENEW_EXPORT_KMS_KEY", us_key)
    code, report = w.run_json(w.write_config([site(EU_BUCKET)]), capsys=capsys)
    result = report["certificates"][0]
    assert code == 1 and result["outcome"] == "failed", report
    assert result["reason"].startswith(f"s3://{EU_BUCKET}: the export KMS key arn:aws:kms:us-east-1:")
    assert "is in us-east-1 but the bucket is in eu-west-1" in result["reason"]
    assert not [k for k in w.state_keys() if k.startswith(("certificates/", "accounts/"))], "nothing ordered or stored"
    assert proxy_client.calls(w.stack.aws_endpoint_url, "s3", "GetBucketLocation")


def test_an_export_key_of_the_bucket_region_encrypts_the_private_key(w, capsys, monkeypatch):
    eu_key = key_in("eu-west-1")
    eu_bucket(w, eu_key)
    monkeypatch.setenv("CERTRENEW_EXPORT_KMS_KEY", eu_key)
    code, report = w.run_json(w.write_config([site(EU_BUCKET)]), capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "issued", report
    head = boto3.client("s3", region_name="eu-west-1").head_object(Bucket=EU_BUCKET, Key="site/privkey.pem")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == eu_key


def test_a_bucket_whose_default_is_a_customer_key_not_given_to_the_stack_fails_in_preflight(w, capsys):
    bucket_key = key_in("us-east-1")
    w.s3.put_bucket_encryption(Bucket=EXPORT_BUCKET, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": bucket_key}}]})
    code, report = w.run_json(w.write_config([site(EXPORT_BUCKET)]), capsys=capsys)
    result = report["certificates"][0]
    assert code == 1 and result["outcome"] == "failed", report
    assert f"the bucket's default encryption is the KMS key {bucket_key}" in result["reason"]
    assert not [k for k in w.state_keys() if k.startswith(("certificates/", "accounts/"))], "nothing ordered or stored"
