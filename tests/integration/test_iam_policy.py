"""Strict IAM on the devstack: the product's calls are judged by the role template.yaml gives the
renewer (devstack/strict/iam.py), for the deployment the test describes; set-up is not.

Each refusal is shown next to the same call made as test set-up ("admin"), which succeeds, and,
where it matters, next to the call the policy does allow.
"""
from __future__ import annotations

import json
import urllib.error

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from certfactory import MiniCA
from devstack import proxy_client, world
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

RENEWER = Config(user_agent_appid="certrenew")  # as acme_flow.bootstrap's clients call
RENEWER_ARN = "arn:aws:sts::123456789012:assumed-role/certrenew-renewer/certrenew"
OTHER_BUCKET = "someone-elses-bucket"
MATERIAL = MiniCA().leaf(("example.test",))


@pytest.fixture
def w(aws, tmp_path):
    return make_world(aws, tmp_path)


def renewer(service: str, region: str = "us-east-1", **kw):
    return boto3.client(service, region_name=region, config=RENEWER, **kw)


def admin(service: str, region: str = "us-east-1", **kw):
    return boto3.client(service, region_name=region, **kw)


def refused(call, code: str, status: int) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    assert error["Error"]["Code"] == code, error
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status, error
    return error["Error"]


def denied_message(action: str, resource: str, who: str = RENEWER_ARN) -> str:
    return (f'User: {who} is not authorized to perform: {action} on resource: "{resource}" '
            f"because no identity-based policy allows the {action} action")


def test_put_object_outside_the_state_and_export_buckets_is_refused(w):
    world.create_bucket(w.s3, OTHER_BUCKET)
    put = renewer("s3").put_object
    error = refused(lambda: put(Bucket=OTHER_BUCKET, Key="k", Body=b"x"), "AccessDenied", 403)
    assert error["Message"] == denied_message("s3:PutObject", f"arn:aws:s3:::{OTHER_BUCKET}/k")
    put(Bucket=STATE_BUCKET, Key="k", Body=b"x")
    put(Bucket=EXPORT_BUCKET, Key="site/cert.pem", Body=b"x")
    admin("s3").put_object(Bucket=OTHER_BUCKET, Key="k", Body=b"x")
    recorded = proxy_client.calls(w.stack.aws_endpoint_url, "s3", "PutObject")
    assert [(c["principal"], c["status"], c.get("strict")) for c in recorded] == [
        ("renewer", 403, "AccessDenied"), ("renewer", 200, None), ("renewer", 200, None), ("admin", 200, None)]


def test_the_export_bucket_is_writable_only_when_the_deployment_names_it(w):
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"ExportBucket": ""})
    error = refused(lambda: renewer("s3").put_object(Bucket=EXPORT_BUCKET, Key="a.pem", Body=b"x"),
                    "AccessDenied", 403)
    assert f"arn:aws:s3:::{EXPORT_BUCKET}/a.pem" in error["Message"]


def change(zone_id: str, name: str, rtype: str = "TXT", action: str = "CREATE"):
    value = '"token"' if rtype == "TXT" else "192.0.2.1"
    return lambda client: client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": action, "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": 60,
                                                 "ResourceRecords": [{"Value": value}]}}]})


@pytest.mark.parametrize("name, rtype", [("www.example.test", "TXT"), ("_acme-challenge.example.test", "A"),
                                         ("example.test", "TXT")])
def test_route53_changes_other_than_acme_challenge_txt_are_refused(w, name, rtype):
    zone = w.zones["example.test"]
    error = refused(lambda: change(zone, name, rtype)(renewer("route53")), "AccessDenied", 403)
    assert error["Message"] == denied_message("route53:ChangeResourceRecordSets",
                                              f"arn:aws:route53:::hostedzone/{zone}")
    change(zone, name, rtype)(admin("route53"))


def test_route53_acme_challenge_txt_is_allowed_in_the_deployments_zones_only(w):
    zone, other = w.zones["example.test"], w.zones["shop.test"]
    change(zone, "_acme-challenge.example.test.")(renewer("route53"))
    change(zone, "_acme-challenge.example.test.", action="DELETE")(renewer("route53"))
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"HostedZoneIds": [zone]})
    change(zone, "_acme-challenge.a.example.test")(renewer("route53"))
    error = refused(lambda: change(other, "_acme-challenge.shop.test")(renewer("route53")), "AccessDenied", 403)
    assert f"hostedzone/{other}" in error["Message"]
    refused(lambda: change(zone, "_acme-challenge.b.example.test", action="UPSERT")(renewer("route53")),
            "AccessDenied", 403)  # certrenew never UPSERTs: DELETE exactly what it read + CREATE


def import_certificate(client, **kw) -> str:
    return client.import_certificate(Certificate=MATERIAL.cert_pem.encode(), PrivateKey=MATERIAL.key_pem.encode(),
                                     CertificateChain=MATERIAL.chain_pem.encode(), **kw)["CertificateArn"]


def test_delete_certificate_needs_the_certrenew_managed_tag(w):
    foreign = import_certificate(admin("acm"))
    ours = import_certificate(admin("acm"), Tags=[{"Key": "certrenew:managed", "Value": "true"}])
    error = refused(lambda: renewer("acm").delete_certificate(CertificateArn=foreign),
                    "AccessDeniedException", 400)
    assert error["Message"] == denied_message("acm:DeleteCertificate", foreign)
    renewer("acm").delete_certificate(CertificateArn=ours)
    admin("acm").delete_certificate(CertificateArn=foreign)


def test_import_certificate_with_a_tag_key_other_than_ours_is_refused(w):
    acm = renewer("acm", "eu-west-1")
    error = refused(lambda: import_certificate(acm, Tags=[{"Key": "owner", "Value": "me"}]),
                    "AccessDeniedException", 400)
    assert "acm:AddTagsToCertificate" in error["Message"]
    import_certificate(acm, Tags=[{"Key": "certrenew:managed", "Value": "true"}, {"Key": "certrenew:name", "Value": "s"}])
    import_certificate(acm)
    import_certificate(admin("acm", "eu-west-1"), Tags=[{"Key": "owner", "Value": "me"}])


def test_sns_publish_to_another_topic_is_refused(w):
    sns = admin("sns")
    ours, theirs = (sns.create_topic(Name=n)["TopicArn"] for n in ("certrenew", "someone-else"))
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"NotificationTopicArn": ours})
    error = refused(lambda: renewer("sns").publish(TopicArn=theirs, Message="hi"), "AuthorizationError", 403)
    assert error["Message"] == denied_message("sns:Publish", theirs)
    renewer("sns").publish(TopicArn=ours, Message="hi")
    sns.publish(TopicArn=theirs, Message="hi")


def test_ssm_and_secrets_outside_the_prefix_are_refused(w):
    admin("ssm").put_parameter(Name="/other/x", Value="v", Type="SecureString")
    admin("ssm").put_parameter(Name="/certrenew/x", Value="v", Type="SecureString")
    admin("secretsmanager").create_secret(Name="other/eab", SecretString="s")
    error = refused(lambda: renewer("ssm").get_parameter(Name="/other/x", WithDecryption=True),
                    "AccessDeniedException", 400)
    assert error["Message"] == denied_message("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/other/x")
    renewer("ssm").get_parameter(Name="/certrenew/x", WithDecryption=True)
    refused(lambda: renewer("secretsmanager").get_secret_value(SecretId="other/eab"), "AccessDeniedException", 400)
    admin("secretsmanager").get_secret_value(SecretId="other/eab")


def test_events_to_another_bus_are_refused(w):
    admin("events").create_event_bus(Name="elsewhere")
    entry = {"Source": "certrenew", "DetailType": "t", "Detail": "{}"}
    error = refused(lambda: renewer("events").put_events(Entries=[{**entry, "EventBusName": "elsewhere"}]),
                    "AccessDeniedException", 400)
    assert "event-bus/elsewhere" in error["Message"]
    renewer("events").put_events(Entries=[entry])


def test_a_call_with_no_iam_mapping_is_refused_and_says_where_to_add_it(w):
    error = refused(lambda: renewer("s3").list_buckets(), "AccessDenied", 403)
    assert "IAM_ACTIONS_BY_CALL" in error["Message"] and "s3.ListBuckets" in error["Message"]
    admin("s3").list_buckets()


def test_sse_kms_writes_need_the_key_unless_aws_managed(w):
    kms = admin("kms")
    state_key = kms.create_key()["KeyMetadata"]["Arn"]
    export_key = kms.create_key()["KeyMetadata"]["Arn"]
    for bucket, key in ((STATE_BUCKET, state_key), (EXPORT_BUCKET, export_key)):
        w.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
    s3 = renewer("s3")
    s3.put_object(Bucket=STATE_BUCKET, Key="k", Body=b"x")   # the state key: "auto" is the bucket's own
    assert s3.get_object(Bucket=STATE_BUCKET, Key="k")["Body"].read() == b"x"
    error = refused(lambda: s3.put_object(Bucket=EXPORT_BUCKET, Key="a.pem", Body=b"x"), "AccessDenied", 403)
    assert error["Message"] == denied_message("kms:GenerateDataKey", export_key)
    s3.put_object(Bucket=EXPORT_BUCKET, Key="b.pem", Body=b"x", ServerSideEncryption="aws:kms")  # aws/s3
    s3.put_object(Bucket=EXPORT_BUCKET, Key="c.pem", Body=b"x", ServerSideEncryption="AES256")
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"ExportKmsKeyArn": export_key})
    s3.put_object(Bucket=EXPORT_BUCKET, Key="a.pem", Body=b"x")
    # a state object encrypted with another key cannot be read
    w.s3.put_object(Bucket=STATE_BUCKET, Key="other", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=export_key)
    error = refused(lambda: s3.get_object(Bucket=STATE_BUCKET, Key="other"), "AccessDenied", 403)
    assert error["Message"] == denied_message("kms:Decrypt", export_key)
    with pytest.raises(ClientError) as head:  # a HEAD answer has no body: the status says it
        s3.head_object(Bucket=STATE_BUCKET, Key="other")
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3.head_object(Bucket=STATE_BUCKET, Key="k")["ServerSideEncryption"] == "aws:kms"


def test_calls_with_assumed_role_credentials_are_judged_by_that_roles_policies(w):
    iam = admin("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                     "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="dns", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="dns", PolicyName="list", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "route53:ListHostedZones",
                                                "Resource": "*"}]}))
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"DnsRoleArns": [role]})
    creds = renewer("sts").assume_role(RoleArn=role, RoleSessionName="certrenew")["Credentials"]
    as_role = renewer("route53", aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
    as_role.list_hosted_zones()
    zone = w.zones["example.test"]
    error = refused(lambda: change(zone, "_acme-challenge.example.test")(as_role), "AccessDenied", 403)
    assert "assumed-role/dns/certrenew" in error["Message"] and f"hostedzone/{zone}" in error["Message"]
    # the renewer's own policy would allow that change: the role's, not the renewer's, is what counts
    change(zone, "_acme-challenge.example.test")(renewer("route53"))
    # and a role the deployment does not list cannot be assumed
    other = iam.create_role(RoleName="other", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    refused(lambda: renewer("sts").assume_role(RoleArn=other, RoleSessionName="other"), "AccessDenied", 403)


def test_the_deployment_is_forgotten_at_reset_and_bad_keys_are_refused(w):
    endpoint = w.stack.aws_endpoint_url
    with pytest.raises(urllib.error.HTTPError) as caught:
        proxy_client.configure(endpoint, deployment={"StateBuckett": "x"})
    assert "unknown deployment keys: ['StateBuckett']" in caught.value.read().decode()
    proxy_client.reset(endpoint)
    assert "StateBucket" not in proxy_client.get_config(endpoint)["deployment"]
    refused(lambda: renewer("s3").put_object(Bucket=STATE_BUCKET, Key="k", Body=b"x"), "AccessDenied", 403)
