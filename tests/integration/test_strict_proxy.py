"""The devstack proxy's strict mode refuses what AWS refuses (devstack/strict), with AWS's codes,
and still lets the good case through; `strict=False` answers as moto does.

Every client here is plain boto3 (principal "admin"): these rules apply to every caller."""
from __future__ import annotations

import datetime as dt
import json
import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devstack import proxy_client
from devstack.dns_bridge import OTHER_ACCOUNT

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
ACCOUNT = "123456789012"
RENEWER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/certrenew-renewer"  # the function's role
RENEWER_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/certrenew-renewer/certrenew"  # its calls
SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
ALL_KU = {"digital_signature": True, "key_encipherment": True}


def refusal(call, *args, **kwargs) -> tuple[str, int, str]:
    """(code, HTTP status, message) of the error the call answers."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    error = caught.value.response["Error"]
    return error["Code"], caught.value.response["ResponseMetadata"]["HTTPStatusCode"], error.get("Message", "")


def strict_refusals(aws) -> list[str]:
    return [c["strict"] for c in proxy_client.calls(aws.aws_endpoint_url) if "strict" in c]


# ------------------------------------------------------------------------------------ certificates

def new_key(kind: str = "ec"):
    return ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)


def key_pem(key, password: bytes | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def leaf(key, names=("site.example.test",), *, key_usage=None, ekus=(SERVER_AUTH, CLIENT_AUTH)) -> bytes:
    """A self-signed leaf for `names`, with the given Key Usage flags and EKUs."""
    now = dt.datetime.now(dt.timezone.utc)
    usage = {"digital_signature": True, "key_encipherment": False, **(key_usage or {})}
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
               .add_extension(x509.KeyUsage(content_commitment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False, encipher_only=False,
                                            decipher_only=False, **usage), critical=True))
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def import_cert(acm, key, cert: bytes, **extra) -> str:
    return acm.import_certificate(Certificate=cert, PrivateKey=key_pem(key), **extra)["CertificateArn"]


@pytest.fixture
def acm(aws):
    return boto3.client("acm", region_name="us-east-1", config=NO_RETRIES)


# ----------------------------------------------------------------------------------------- ACM

def test_acm_import_refuses_a_key_that_does_not_match_the_certificate(aws, acm):
    cert = leaf(new_key())
    code, status, message = refusal(acm.import_certificate, Certificate=cert, PrivateKey=key_pem(new_key()))
    assert (code, status) == ("ValidationException", 400)
    assert "does not match" in message
    assert strict_refusals(aws) == ["ValidationException"]

    key = new_key()
    assert import_cert(acm, key, leaf(key)).startswith("arn:aws:acm:us-east-1:")


def test_acm_import_refuses_an_encrypted_key(aws, acm):
    key = new_key()
    code, status, message = refusal(acm.import_certificate, Certificate=leaf(key),
                                    PrivateKey=key_pem(key, password=b"secret-pass"))
    assert (code, status) == ("ValidationException", 400)
    assert "encrypted" in message


def test_acm_import_refuses_a_key_over_5_kb(aws, acm):
    key = new_key("rsa")
    padded = key_pem(key) + b"\n" * (5 * 1024)  # the PEM ACM receives is over 5 KB
    code, _, message = refusal(acm.import_certificate, Certificate=leaf(key), PrivateKey=padded)
    assert code == "ValidationException" and "5 KB" in message
    assert import_cert(acm, key, leaf(key))  # the same key, unpadded


def test_acm_reimport_refuses_tags(aws, acm):
    key = new_key()
    arn = import_cert(acm, key, leaf(key), Tags=[{"Key": "certrenew", "Value": "site"}])
    code, _, message = refusal(acm.import_certificate, CertificateArn=arn, Certificate=leaf(key),
                               PrivateKey=key_pem(key), Tags=[{"Key": "certrenew", "Value": "site"}])
    assert code == "ValidationException" and "Tagging is not permitted on re-import" in message
    assert import_cert(acm, key, leaf(key), CertificateArn=arn) == arn


@pytest.mark.parametrize("strict", [True, False])
def test_acm_reimport_keeps_the_certificates_tags(aws, acm, strict):
    """moto 5.2 drops them; the devstack's moto keeps them (devstack/moto_server.py), as AWS does."""
    key = new_key()
    tags = [{"Key": "certrenew:managed", "Value": "true"}, {"Key": "certrenew:name", "Value": "site"}]
    arn = import_cert(acm, key, leaf(key), Tags=tags)
    proxy_client.configure(aws.aws_endpoint_url, strict=strict)
    import_cert(acm, key, leaf(key), CertificateArn=arn)
    kept = acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]
    assert sorted(kept, key=lambda t: t["Key"]) == tags, "AWS keeps a certificate's tags on re-import"


def test_acm_reimport_refuses_another_key_algorithm(aws, acm):
    ec_key, rsa_key = new_key("ec"), new_key("rsa")
    arn = import_cert(acm, ec_key, leaf(ec_key))
    code, _, message = refusal(acm.import_certificate, CertificateArn=arn, Certificate=leaf(rsa_key),
                               PrivateKey=key_pem(rsa_key))
    assert code == "ValidationException"
    assert "RSA_2048" in message and "EC_secp256r1" in message
    other_ec = new_key("ec")  # a new key of the same algorithm is fine
    assert import_cert(acm, other_ec, leaf(other_ec), CertificateArn=arn) == arn


def test_acm_reimport_refuses_another_rsa_key_size(aws, acm):
    small, large = new_key("rsa"), rsa.generate_private_key(65537, 3072)
    arn = import_cert(acm, small, leaf(small))
    code, _, message = refusal(acm.import_certificate, CertificateArn=arn, Certificate=leaf(large),
                               PrivateKey=key_pem(large))
    assert code == "ValidationException" and "RSA_3072" in message and "RSA_2048" in message


def test_acm_reimport_refuses_an_rsa_certificate_that_drops_key_encipherment(aws, acm):
    key = new_key("rsa")
    arn = import_cert(acm, key, leaf(key, key_usage=ALL_KU))  # like Let's Encrypt's classic profile
    code, _, message = refusal(acm.import_certificate, CertificateArn=arn,
                               Certificate=leaf(key, key_usage={"key_encipherment": False}),  # like tlsserver
                               PrivateKey=key_pem(key))
    assert code == "ValidationException"
    assert "missing one or more Key Usages" in message and "key_encipherment" in message
    assert import_cert(acm, key, leaf(key, key_usage=ALL_KU), CertificateArn=arn) == arn


def test_acm_reimport_lets_an_ecdsa_certificate_drop_key_encipherment(aws, acm):
    key = new_key("ec")
    arn = import_cert(acm, key, leaf(key, key_usage=ALL_KU))
    assert import_cert(acm, key, leaf(key, key_usage={"key_encipherment": False}), CertificateArn=arn) == arn
    code, _, message = refusal(acm.import_certificate, CertificateArn=arn, PrivateKey=key_pem(key),
                               Certificate=leaf(key, key_usage={"digital_signature": False,
                                                                "key_encipherment": True}))
    assert code == "ValidationException" and "digital_signature" in message


def test_acm_reimport_refuses_dropping_server_auth_but_not_client_auth(aws, acm):
    key = new_key()
    arn = import_cert(acm, key, leaf(key, ekus=(SERVER_AUTH, CLIENT_AUTH)))
    code, _, message = refusal(acm.import_certificate, CertificateArn=arn, PrivateKey=key_pem(key),
                               Certificate=leaf(key, ekus=(CLIENT_AUTH,)))
    assert code == "ValidationException"
    assert "missing one or more Extended Key Usages" in message and "serverAuth" in message
    assert import_cert(acm, key, leaf(key, ekus=(SERVER_AUTH,)), CertificateArn=arn) == arn


# ---------------------------------------------------------------------------------- CloudFront

def distribution_config(aliases, acm_arn=None, ref="ref-1") -> dict:
    viewer = ({"ACMCertificateArn": acm_arn, "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"}
              if acm_arn else {"CloudFrontDefaultCertificate": True})
    return {
        "CallerReference": ref, "Comment": "", "Enabled": True,
        "Aliases": {"Quantity": len(aliases), "Items": list(aliases)},
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "origin.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "redirect-to-https", "MinTTL": 0,
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                 "TrustedSigners": {"Enabled": False, "Quantity": 0}},
        "ViewerCertificate": viewer,
    }


@pytest.fixture
def cloudfront(aws):
    return boto3.client("cloudfront", config=NO_RETRIES)


def import_for(acm, names, kind="ec") -> str:
    key = new_key(kind)
    return import_cert(acm, key, leaf(key, names))


def move_certificate(cloudfront, dist_id: str, acm_arn: str) -> None:
    current = cloudfront.get_distribution_config(Id=dist_id)
    config = current["DistributionConfig"]
    config["ViewerCertificate"] = {"ACMCertificateArn": acm_arn, "SSLSupportMethod": "sni-only",
                                   "MinimumProtocolVersion": "TLSv1.2_2021"}
    cloudfront.update_distribution(Id=dist_id, IfMatch=current["ETag"], DistributionConfig=config)


def test_cloudfront_refuses_a_certificate_outside_us_east_1(aws, cloudfront):
    eu_acm = boto3.client("acm", region_name="eu-west-1")
    arn = import_for(eu_acm, ["www.example.test"])
    code, status, message = refusal(cloudfront.create_distribution,
                                    DistributionConfig=distribution_config(["www.example.test"], arn))
    assert (code, status) == ("InvalidViewerCertificate", 400)
    assert "isn't in us-east-1 region" in message


def test_cloudfront_refuses_an_unknown_certificate(aws, cloudfront):
    missing = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/00000000-0000-0000-0000-000000000000"
    code, _, _ = refusal(cloudfront.create_distribution,
                         DistributionConfig=distribution_config(["www.example.test"], missing))
    assert code == "InvalidViewerCertificate"


def test_cloudfront_refuses_a_certificate_that_misses_an_alias(aws, acm, cloudfront):
    arn = import_for(acm, ["example.test", "*.example.test"])
    code, _, message = refusal(cloudfront.create_distribution, DistributionConfig=distribution_config(
        ["www.example.test", "a.b.example.test"], arn))
    assert code == "InvalidViewerCertificate"
    assert "doesn't cover the alternate domain name" in message and "a.b.example.test" in message

    dist = cloudfront.create_distribution(DistributionConfig=distribution_config(
        ["example.test", "www.example.test"], arn))["Distribution"]
    narrow = import_for(acm, ["example.test"])
    code, _, _ = refusal(move_certificate, cloudfront, dist["Id"], narrow)  # UpdateDistribution too
    assert code == "InvalidViewerCertificate"


def test_acm_reports_cloudfront_use_and_keeps_it_for_the_lag_after_a_move(aws, acm, cloudfront):
    proxy_client.configure(aws.aws_endpoint_url, inuse_lag=3600)
    old = import_for(acm, ["www.example.test"])
    new = import_for(acm, ["www.example.test"])
    dist = cloudfront.create_distribution(DistributionConfig=distribution_config(["www.example.test"], old))
    dist_arn = dist["Distribution"]["ARN"]
    assert acm.describe_certificate(CertificateArn=old)["Certificate"]["InUseBy"] == [dist_arn]
    assert refusal(acm.delete_certificate, CertificateArn=old)[:2] == ("ResourceInUseException", 400)

    move_certificate(cloudfront, dist["Distribution"]["Id"], new)
    assert acm.describe_certificate(CertificateArn=new)["Certificate"]["InUseBy"] == [dist_arn]
    assert acm.describe_certificate(CertificateArn=old)["Certificate"]["InUseBy"] == [dist_arn], "within the lag"
    code, _, message = refusal(acm.delete_certificate, CertificateArn=old)
    assert code == "ResourceInUseException" and dist_arn in message

    assert proxy_client.configure(aws.aws_endpoint_url, inuse_lag=0)["inuse_lag"] == 0  # the lag has passed
    assert acm.describe_certificate(CertificateArn=old)["Certificate"]["InUseBy"] == []
    acm.delete_certificate(CertificateArn=old)


def test_inuse_lag_is_configured_and_reset(aws):
    assert proxy_client.get_config(aws.aws_endpoint_url)["inuse_lag"] > 0  # a few seconds by default
    default = proxy_client.get_config(aws.aws_endpoint_url)["inuse_lag"]
    assert proxy_client.configure(aws.aws_endpoint_url, inuse_lag=1.5)["inuse_lag"] == 1.5
    assert proxy_client.reset(aws.aws_endpoint_url)["inuse_lag"] == default


# ------------------------------------------------------------------------------------------ S3

def bucket_in(region: str, name: str):
    s3 = boto3.client("s3", region_name=region, config=NO_RETRIES)
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **location)
    return s3


def kms_key(region: str) -> str:
    return boto3.client("kms", region_name=region).create_key()["KeyMetadata"]["Arn"]


def test_s3_refuses_a_kms_key_of_another_region(aws):
    s3 = bucket_in("eu-west-1", "export-eu")
    us_key, eu_key = kms_key("us-east-1"), kms_key("eu-west-1")
    code, status, message = refusal(s3.put_object, Bucket="export-eu", Key="privkey.pem", Body=b"k",
                                    ServerSideEncryption="aws:kms", SSEKMSKeyId=us_key)
    assert (code, status) == ("KMS.NotFoundException", 400)
    assert "eu-west-1" in message
    s3.put_object(Bucket="export-eu", Key="privkey.pem", Body=b"k", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId=eu_key)
    assert s3.head_object(Bucket="export-eu", Key="privkey.pem")["SSEKMSKeyId"].endswith(eu_key.rsplit("/", 1)[1])


def test_s3_refuses_a_kms_key_that_does_not_exist(aws):
    s3 = bucket_in("us-east-1", "state")
    missing = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
    code, _, _ = refusal(s3.put_object, Bucket="state", Key="a", Body=b"x", ServerSideEncryption="aws:kms",
                         SSEKMSKeyId=missing)
    assert code == "KMS.NotFoundException"
    code, _, _ = refusal(s3.create_multipart_upload, Bucket="state", Key="a", ServerSideEncryption="aws:kms",
                         SSEKMSKeyId=missing)
    assert code == "KMS.NotFoundException"
    s3.put_object(Bucket="state", Key="a", Body=b"x", ServerSideEncryption="aws:kms")  # the aws/s3 key


def test_s3_refuses_a_bucket_default_key_of_another_region(aws):
    s3 = bucket_in("eu-west-1", "export-eu")
    s3.put_bucket_encryption(Bucket="export-eu", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key("us-east-1")}}]})
    code, _, _ = refusal(s3.put_object, Bucket="export-eu", Key="cert.pem", Body=b"c")
    assert code == "KMS.NotFoundException"
    code, _, _ = refusal(s3.copy_object, Bucket="export-eu", Key="copy.pem",
                         CopySource={"Bucket": "export-eu", "Key": "cert.pem"})
    assert code == "KMS.NotFoundException"
    s3.put_bucket_encryption(Bucket="export-eu", ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key("eu-west-1")}}]})
    s3.put_object(Bucket="export-eu", Key="cert.pem", Body=b"c")


def test_a_fault_rule_answers_409_conditional_request_conflict_to_a_conditional_write(aws):
    s3 = bucket_in("us-east-1", "state")
    proxy_client.configure(aws.aws_endpoint_url, faults=[
        {"service": "s3", "operation": "PutObject", "status": 409, "code": "ConditionalRequestConflict",
         "message": "A conflicting conditional action is currently in progress against this resource.",
         "count": 1}])
    code, status, message = refusal(s3.put_object, Bucket="state", Key="account.json", Body=b"{}", IfNoneMatch="*")
    assert (code, status) == ("ConditionalRequestConflict", 409)
    assert "conflicting conditional" in message
    s3.put_object(Bucket="state", Key="account.json", Body=b"{}", IfNoneMatch="*")  # the retry goes through
    assert [c["status"] for c in proxy_client.calls(aws.aws_endpoint_url, "s3", "PutObject")] == [409, 200]
    assert s3.get_object(Bucket="state", Key="account.json")["Body"].read() == b"{}"


# ----------------------------------------------------------------------------------------- STS

def create_role(principals, effect: str = "Allow", extra_statements=()) -> str:
    """The cross-account DNS role of tests/integration/test_dns.py, in the zone's account, trusting `principals`."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Action": "sts:AssumeRole", "Principal": {"AWS": principals}}, *extra_statements]}
    iam = boto3.client("iam")
    iam.meta.events.register("before-sign.iam.*",
                             lambda request, **_: request.headers.__setitem__("x-moto-account-id", OTHER_ACCOUNT))
    arn = iam.create_role(RoleName="certrenew-dns", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    # the stack may assume it (DnsRoleArns), so what is judged here is the role's trust policy
    proxy_client.update_deployment(os.environ["AWS_ENDPOINT_URL"], {"DnsRoleArns": [arn]})
    return arn


def renewer_sts():
    """An STS client that names itself as the product's clients do (principal "renewer")."""
    return boto3.client("sts", config=Config(user_agent_appid="certrenew", retries={"total_max_attempts": 1}))


def admin_sts():
    return boto3.client("sts", config=NO_RETRIES)


def test_sts_refuses_a_role_that_does_not_exist(aws):
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/certrenew-dns"
    code, status, message = refusal(admin_sts().assume_role, RoleArn=role, RoleSessionName="setup")
    assert (code, status) == ("AccessDenied", 403)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: sts:AssumeRole "
                       f"on resource: {role}")


def test_sts_refuses_a_caller_the_trust_policy_does_not_name(aws):
    role = create_role(["arn:aws:iam::999999999999:root"])
    code, status, message = refusal(renewer_sts().assume_role, RoleArn=role, RoleSessionName="certrenew")
    assert (code, status) == ("AccessDenied", 403)
    assert message == f"User: {RENEWER_SESSION} is not authorized to perform: sts:AssumeRole on resource: {role}"


def test_sts_lets_the_role_named_in_the_trust_policy_assume_it(aws):
    role = create_role([RENEWER_ROLE])
    assert renewer_sts().assume_role(RoleArn=role, RoleSessionName="certrenew")["Credentials"]["AccessKeyId"]
    code, _, _ = refusal(admin_sts().assume_role, RoleArn=role, RoleSessionName="setup")
    assert code == "AccessDenied", "the admin (account root) is not the renewer's role"


@pytest.mark.parametrize("principal", ["*", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"])
def test_sts_lets_an_account_wide_trust_policy_be_assumed(aws, principal):
    role = create_role(principal)
    assert renewer_sts().assume_role(RoleArn=role, RoleSessionName="certrenew")["Credentials"]
    assert admin_sts().assume_role(RoleArn=role, RoleSessionName="admin")["Credentials"]


def test_sts_deny_in_the_trust_policy_wins(aws):
    deny = {"Effect": "Deny", "Action": "sts:AssumeRole", "Principal": {"AWS": RENEWER_ROLE}}
    role = create_role(f"arn:aws:iam::{ACCOUNT}:root", extra_statements=[deny])
    assert refusal(renewer_sts().assume_role, RoleArn=role, RoleSessionName="certrenew")[0] == "AccessDenied"
    assert admin_sts().assume_role(RoleArn=role, RoleSessionName="admin")["Credentials"]


# ----------------------------------------------------------------------------------------- SNS

@pytest.fixture
def topic(aws):
    return boto3.client("sns").create_topic(Name="certrenew")["TopicArn"]


def test_sns_refuses_a_message_over_256_kib_with_its_attributes(aws, topic):
    sns = boto3.client("sns", config=NO_RETRIES)
    attributes = {"kind": {"DataType": "String", "StringValue": "report"}}  # 4 + 6 + 6 bytes
    body = "x" * (262_144 - 16)
    sns.publish(TopicArn=topic, Message=body, MessageAttributes=attributes)  # exactly the limit
    code, status, message = refusal(sns.publish, TopicArn=topic, Message=body + "x", MessageAttributes=attributes)
    assert (code, status) == ("InvalidParameter", 400)
    assert message.startswith("Invalid parameter: Message too long")


def test_sns_counts_every_part_of_a_json_structured_message(aws, topic):
    sns = boto3.client("sns", config=NO_RETRIES)
    parts = {"default": "d" * 140_000, "email": "e" * 140_000}  # each fits alone, not together
    code, _, _ = refusal(sns.publish, TopicArn=topic, Message=json.dumps(parts), MessageStructure="json")
    assert code == "InvalidParameter"
    sns.publish(TopicArn=topic, Message=json.dumps({"default": "d", "email": "e" * 200_000}), MessageStructure="json")


@pytest.mark.parametrize("subject", ["s" * 100, "line one\nline two", "café renewed", " leading space", ""])
def test_sns_refuses_a_bad_subject(aws, topic, subject):
    code, status, message = refusal(boto3.client("sns", config=NO_RETRIES).publish,
                                    TopicArn=topic, Message="m", Subject=subject)
    assert (code, status, message) == ("InvalidParameter", 400, "Invalid parameter: Subject")


def test_sns_accepts_a_short_ascii_subject(aws, topic):
    boto3.client("sns").publish(TopicArn=topic, Message="m", Subject="[certrenew] 2 failed: " + "x" * 76)  # 99


# ------------------------------------------------------------------------------- strict mode off

def test_strict_false_answers_as_moto_does(aws, acm, topic):
    proxy_client.configure(aws.aws_endpoint_url, strict=False)
    assert import_cert(acm, new_key(), leaf(new_key()))  # a key of another certificate
    boto3.client("sns").publish(TopicArn=topic, Message="m", Subject="line one\nline two")
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/certrenew-dns"  # no such role
    assert admin_sts().assume_role(RoleArn=role, RoleSessionName="setup")["Credentials"]
    eu_acm = boto3.client("acm", region_name="eu-west-1")
    boto3.client("cloudfront").create_distribution(DistributionConfig=distribution_config(
        ["www.example.test"], import_for(eu_acm, ["other.test"])))
    assert strict_refusals(aws) == []

    proxy_client.reset(aws.aws_endpoint_url)  # strict again after a reset
    assert refusal(acm.import_certificate, Certificate=leaf(new_key()), PrivateKey=key_pem(new_key()))[0] == \
        "ValidationException"
