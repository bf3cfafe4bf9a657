"""Issue 13 end to end on the devstack (Pebble, moto behind the strict proxy, the served APIs):
one certificate deployed to ACM in two regions, a CloudFront distribution and a tenant, an ALB
listener (SNI), an API Gateway REGIONAL domain, a Secrets Manager secret, SSM parameters and S3;
renewed into the same ARNs; moved to a new key type, every target moved and the old ARNs retired.
Then the same targets in a second account through deploy_role_arn, a certificate whose listener
alone lives there (elb.role_arn), and a refused role failing its certificate alone. The renewer's calls are judged by strict IAM against template.yaml with
exactly the parameters a user would give the stack."""
from __future__ import annotations

import json

import boto3
import pytest

from acme_flow import cli
from certfactory import MiniCA
from devstack import proxy_client, world
from devstack.dns_bridge import OTHER_ACCOUNT
from devstack.targets import apigateway as apigw
from devstack.targets import cloudfront_tenants as tenants
from devstack.targets import elb, secret_stores
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

REGIONS = ("us-east-1", "eu-west-1")
NAMES = ["shop.example.test", "api.example.test"]
RENEWER_ROLE = "arn:aws:iam::123456789012:role/certrenew-renewer"
DEPLOY_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/certrenew-deploy"
REFUSING_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/certrenew-deploy-not-trusted"


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def foreign_certificate(region: str, session_kwargs=None) -> str:
    """A certificate someone else imported: what a listener or domain serves before certrenew."""
    material = MiniCA().leaf(tuple(NAMES))
    acm = boto3.session.Session(**(session_kwargs or {})).client("acm", region_name=region)
    return acm.import_certificate(Certificate=material.cert_pem.encode(), PrivateKey=material.key_pem.encode(),
                                  CertificateChain=material.chain_pem.encode())["CertificateArn"]


def run(w, certificates: list[dict], capsys, *extra: str) -> tuple[int, dict]:
    config = w.write_config(certificates)
    code = cli.main(["run", "--config", str(config), "--json", *extra])
    captured = capsys.readouterr()
    assert captured.out, f"exit {code}, no report; stderr:\n{captured.err}"
    return code, json.loads(captured.out)


def acm_arns(w, name: str) -> dict[str, str]:
    return {p["target"].split(":", 1)[1]: p["arn"] for p in w.current(name)["deployment"]
            if p["target"].startswith("acm:")}


def exists(arn: str, session_kwargs=None) -> bool:
    acm = boto3.session.Session(**(session_kwargs or {})).client("acm", region_name=arn.split(":")[3])
    try:
        acm.describe_certificate(CertificateArn=arn)
        return True
    except acm.exceptions.ResourceNotFoundException:
        return False


# ---- one account ------------------------------------------------------------------------------


def shop(listener: str, tenant: str, distribution: str, **extra) -> dict:
    return {"name": "shop", "domains": NAMES, **extra, "deploy": {
        "acm": {"regions": list(REGIONS)},
        "cloudfront": {"distributions": [distribution], "tenants": [tenant]},
        "elb": {"listeners": [listener]},
        "apigateway": {"domains": [{"name": "api.example.test", "region": "eu-west-1"}]},
        "secretsmanager": {"secrets": [{"name": "certrenew/shop", "region": "eu-west-1"}]},
        "ssm": {"parameters": [{"prefix": "/certrenew/shop/", "region": "eu-west-1"}]},
        "s3": {"bucket": EXPORT_BUCKET, "prefix": "shop/"}}}


def make_targets(w) -> dict:
    eu_foreign = foreign_certificate("eu-west-1")
    listener = elb.make_https_listener("eu-west-1", eu_foreign)
    apigw.make_domain("api.example.test", "eu-west-1", eu_foreign)
    distribution = world.create_distribution(boto3.client("cloudfront"), ["shop.example.test"])
    tenant = tenants.make_tenant(tenants.make_multitenant_distribution(), "shop", ["api.example.test"])
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {
        "DistributionIds": [distribution], "TenantIds": [tenant], "ListenerArns": [listener],
        "ApiDomainNames": ["api.example.test"], "SecretNamePrefix": "certrenew/",
        "ParameterPathPrefix": "/certrenew/"})
    return {"listener": listener, "tenant": tenant, "distribution": distribution, "foreign": eu_foreign}


def assert_everything_serves(w, t: dict, serial: str) -> None:
    arns = acm_arns(w, "shop")
    assert set(arns) == set(REGIONS)
    default, sni = elb.listener_certificates(t["listener"])
    assert default == t["foreign"] and sni == [arns["eu-west-1"]], "an SNI entry next to the listener's default"
    assert apigw.domain_certificate("api.example.test", "eu-west-1") == arns["eu-west-1"]
    assert tenants.tenant_certificate(t["tenant"]) == arns["us-east-1"]
    viewer = boto3.client("cloudfront").get_distribution_config(Id=t["distribution"])["DistributionConfig"]
    assert viewer["ViewerCertificate"]["ACMCertificateArn"] == arns["us-east-1"]
    assert secret_stores.read_secret("certrenew/shop", "eu-west-1")["serial"] == serial
    assert serial in secret_stores.read_parameters("/certrenew/shop/", "eu-west-1")["current.json"]


def test_one_certificate_everywhere_renewed_into_the_same_arns_then_moved_to_a_new_key_type(w, capsys):
    t = make_targets(w)
    code, report = run(w, [shop(t["listener"], t["tenant"], t["distribution"])], capsys)
    (result,) = report["certificates"]
    assert code == 0 and result["outcome"] == "issued", result
    assert_everything_serves(w, t, result["serial"])
    assert len(result["targets"]) == 9, result["targets"]
    first = acm_arns(w, "shop")
    code = cli.main(["status", "--config", str(w.tmp / "certificates.yaml"), "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert code == 0 and {f"cloudfront-tenant:{t['tenant']}", f"elb:{t['listener']}", "apigateway:eu-west-1/api.example.test",
                          "secretsmanager:eu-west-1/certrenew/shop", "ssm:eu-west-1:/certrenew/shop/"} <= set(row["targets"])

    code, report = run(w, [shop(t["listener"], t["tenant"], t["distribution"])], capsys, "--force")
    (result,) = report["certificates"]
    assert code == 0 and result["outcome"] == "renewed", result
    assert acm_arns(w, "shop") == first, "re-imported into the same ARNs"
    assert_everything_serves(w, t, result["serial"])
    assert len(secret_stores.secret_versions("certrenew/shop", "eu-west-1")) >= 2

    code, report = run(w, [shop(t["listener"], t["tenant"], t["distribution"], key="rsa-2048")], capsys)
    (result,) = report["certificates"]
    assert code == 0 and result["outcome"] == "renewed", result
    moved = acm_arns(w, "shop")
    assert all(moved[r] != first[r] for r in REGIONS), "a key type change needs new ARNs"
    assert_everything_serves(w, t, result["serial"])
    proxy_client.configure(w.stack.aws_endpoint_url, inuse_lag=0)  # CloudFront lets go of the old one at once
    code, report = run(w, [shop(t["listener"], t["tenant"], t["distribution"], key="rsa-2048")], capsys)
    assert code == 0, report
    assert not any(exists(first[r]) for r in REGIONS), "the old ARNs are retired once nothing uses them"
    assert_least_privilege(w, {"UpdateDistributionTenant", "AddListenerCertificates", "RemoveListenerCertificates",
                               "UpdateDomainName", "CreateSecret", "PutSecretValue", "PutParameter",
                               "DeleteCertificate"})


def assert_least_privilege(w, wanted: set[str], refused_ok: tuple[str, ...] = ()) -> None:
    """Every call of the renewer went through strict IAM with the stack's parameters, none refused
    (but `refused_ok` operations), and the new calls were among them: the template (or the deploy
    role's policy) allows what these targets need."""
    calls = [c for c in proxy_client.calls(w.stack.aws_endpoint_url) if c.get("principal") == "renewer"]
    assert [c for c in calls if c.get("strict") and c["operation"] not in refused_ok] == []
    assert wanted <= {c["operation"] for c in calls}


# ---- another account --------------------------------------------------------------------------


def in_other_account(service: str):
    client = boto3.client(service)
    client.meta.events.register(f"before-sign.{service}.*",
                                lambda request, **_: request.headers.__setitem__("x-moto-account-id", OTHER_ACCOUNT))
    return client


# The target account's role, as the README shows it: trusting the stack's function role, allowed
# what certrenew does there and nothing else.
DEPLOY_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["acm:ListCertificates", "elasticloadbalancing:DescribeListeners",
                                   "elasticloadbalancing:DescribeListenerCertificates"], "Resource": "*"},
    {"Effect": "Allow", "Action": ["acm:ImportCertificate", "acm:DescribeCertificate", "acm:GetCertificate",
                                   "acm:ListTagsForCertificate"],
     "Resource": f"arn:aws:acm:*:{OTHER_ACCOUNT}:certificate/*"},
    {"Effect": "Allow", "Action": "acm:AddTagsToCertificate", "Resource": f"arn:aws:acm:*:{OTHER_ACCOUNT}:certificate/*",
     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["certrenew:managed", "certrenew:name"]}}},
    {"Effect": "Allow", "Action": "acm:DeleteCertificate", "Resource": f"arn:aws:acm:*:{OTHER_ACCOUNT}:certificate/*",
     "Condition": {"StringEquals": {"aws:ResourceTag/certrenew:managed": "true"}}},
    {"Effect": "Allow", "Action": ["elasticloadbalancing:AddListenerCertificates",
                                   "elasticloadbalancing:RemoveListenerCertificates",
                                   "elasticloadbalancing:ModifyListener"],
     "Resource": f"arn:aws:elasticloadbalancing:*:{OTHER_ACCOUNT}:listener/*"},
    {"Effect": "Allow", "Action": ["secretsmanager:DescribeSecret", "secretsmanager:CreateSecret",
                                   "secretsmanager:PutSecretValue", "secretsmanager:TagResource"],
     "Resource": f"arn:aws:secretsmanager:*:{OTHER_ACCOUNT}:secret:certrenew/*"},
    {"Effect": "Allow", "Action": ["ssm:PutParameter", "ssm:GetParameters"],
     "Resource": f"arn:aws:ssm:*:{OTHER_ACCOUNT}:parameter/certrenew/*"},
]}


def make_deploy_role(w, role: str, trusted: str = RENEWER_ROLE) -> None:
    iam = in_other_account("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": [trusted]}}]}
    name = role.rsplit("/", 1)[-1]
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="certrenew-deploy", PolicyDocument=json.dumps(DEPLOY_POLICY))
    deployed = proxy_client.get_config(w.stack.aws_endpoint_url)["deployment"].get("DeployRoleArns")
    roles = [r for r in (deployed if isinstance(deployed, list) else [])]
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"DeployRoleArns": [*roles, role]})


def other_account_session() -> dict:
    """Credentials acting in the other account (moto maps an assumed role's keys to its account)."""
    iam = in_other_account("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": "*"}}]}
    role = iam.create_role(RoleName="admin", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    creds = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="test-setup")["Credentials"]
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}


def partner(listener: str, role: str) -> dict:
    return {"name": "partner", "domains": NAMES, "deploy_role_arn": role, "deploy": {
        "elb": {"listeners": [listener]},
        "secretsmanager": {"secrets": [{"name": "certrenew/partner", "region": "eu-west-1"}]},
        "ssm": {"parameters": [{"prefix": "/certrenew/partner/", "region": "eu-west-1"}]}}}


def test_targets_in_another_account_through_the_deploy_role_and_a_refused_role_fails_alone(w, capsys):
    other = other_account_session()
    listener = elb.make_https_listener("eu-west-1", foreign_certificate("eu-west-1", other), session_kwargs=other)
    assert listener.split(":")[4] == OTHER_ACCOUNT
    make_deploy_role(w, DEPLOY_ROLE)
    make_deploy_role(w, REFUSING_ROLE, trusted="arn:aws:iam::999999999999:root")
    home = {"name": "home", "domains": ["www.example.test"], "deploy": {"acm": {"regions": ["eu-west-1"]}}}
    refused = {**partner(listener, REFUSING_ROLE), "name": "refused", "domains": ["refused.example.test"]}
    # one certificate, two accounts: its ACM copy at home, its listener (and that copy) in the other
    mixed = {"name": "mixed", "domains": ["mixed.example.test"], "deploy": {
        "acm": {"regions": ["eu-west-1"]}, "elb": {"listeners": [listener], "role_arn": DEPLOY_ROLE}}}
    code, report = run(w, [partner(listener, DEPLOY_ROLE), refused, home, mixed], capsys)
    results = {c["name"]: c for c in report["certificates"]}
    assert code == 1
    assert results["partner"]["outcome"] == "issued", results["partner"]
    assert results["home"]["outcome"] == "issued", results["home"]
    assert results["mixed"]["outcome"] == "issued", results["mixed"]
    mixed_copies = acm_arns(w, "mixed")
    assert mixed_copies["eu-west-1"].split(":")[4] == "123456789012"
    assert mixed_copies[f"eu-west-1@{OTHER_ACCOUNT}"].split(":")[4] == OTHER_ACCOUNT
    assert results["refused"]["outcome"] == "failed"
    assert REFUSING_ROLE in results["refused"]["reason"] and "DeployRoleArns" in results["refused"]["reason"]

    (copy,) = acm_arns(w, "partner").values()
    assert copy.split(":")[4] == OTHER_ACCOUNT, "the listener's ACM copy lives in the listener's account"
    default, sni = elb.listener_certificates(listener, session_kwargs=other)
    assert sorted(sni) == sorted([copy, mixed_copies[f"eu-west-1@{OTHER_ACCOUNT}"]])
    assert secret_stores.read_secret("certrenew/partner", "eu-west-1", session_kwargs=other)["serial"] == \
        results["partner"]["serial"]
    assert "cert.pem" in secret_stores.read_parameters("/certrenew/partner/", "eu-west-1", session_kwargs=other)
    with pytest.raises(Exception):
        secret_stores.read_secret("certrenew/partner", "eu-west-1")  # nothing in the renewer's own account

    code, report = run(w, [partner(listener, DEPLOY_ROLE)], capsys, "--force")
    (result,) = report["certificates"]
    assert code == 0 and result["outcome"] == "renewed", result
    assert list(acm_arns(w, "partner").values()) == [copy], "re-imported into the same ARN, in that account"
    assert copy in elb.listener_certificates(listener, session_kwargs=other)[1]
    assert_least_privilege(w, {"AssumeRole", "AddListenerCertificates", "PutSecretValue", "PutParameter"},
                           refused_ok=("AssumeRole",))  # the role that does not trust the stack
