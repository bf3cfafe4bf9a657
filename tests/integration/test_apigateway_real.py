"""API Gateway custom domain names on the devstack: the adapter's v1 calls over real sockets, the
proxy's served UpdateDomainName (moto has none) checked as AWS checks it, and ACM's InUseBy."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters.apigateway import ApiGatewayDomains
from acme_flow.deploy_targets import ApiDomain
from acme_flow.errors import DeployError
from certfactory import MiniCA
from devstack import proxy_client
from devstack.targets.apigateway import domain_certificate, make_domain

REGION = "eu-west-1"


def _import(region: str, name: str = "api.example.test") -> str:
    material = MiniCA().leaf((name,))
    return boto3.client("acm", region_name=region).import_certificate(
        Certificate=material.cert_pem.encode(), PrivateKey=material.key_pem.encode(),
        CertificateChain=material.chain_pem.encode())["CertificateArn"]


def _adapter() -> ApiGatewayDomains:
    """Plain clients (no certrenew app id): strict IAM does not grant these calls yet."""
    return ApiGatewayDomains(lambda region, role: boto3.client("apigateway", region_name=region))


def _patches(aws) -> list[dict]:
    return [c for c in proxy_client.calls(aws.aws_endpoint_url, service="apigateway") if c["method"] == "PATCH"]


def test_a_regional_domain_moves_to_a_new_arn_keeping_its_settings(aws):
    old, new = _import(REGION), _import(REGION)
    make_domain("api.example.test", REGION, old, security_policy="TLS_1_0")
    domain = ApiDomain("api.example.test", REGION)
    _adapter().check(domain, None)
    assert _adapter().attach(domain, new, None) is True
    got = boto3.client("apigateway", region_name=REGION).get_domain_name(domainName="api.example.test")
    assert got["regionalCertificateArn"] == new
    assert got["securityPolicy"] == "TLS_1_0"
    assert got["endpointConfiguration"]["types"] == ["REGIONAL"]
    listed = boto3.client("apigateway", region_name=REGION).get_domain_names()["items"]
    assert [d["regionalCertificateArn"] for d in listed] == [new]
    [patch] = _patches(aws)
    assert patch["status"] == 200 and patch.get("served") is True


def test_a_reattach_of_the_same_arn_writes_nothing(aws):
    arn = _import(REGION)
    make_domain("api.example.test", REGION, arn)
    proxy_client.reset_calls(aws.aws_endpoint_url)
    assert _adapter().attach(ApiDomain("api.example.test", REGION), arn, None) is False
    assert _patches(aws) == []
    assert proxy_client.calls(aws.aws_endpoint_url, service="apigateway"), "the domain was read"


def test_an_edge_domain_needs_a_us_east_1_certificate(aws):
    edge_cert, regional_cert = _import("us-east-1"), _import(REGION)
    make_domain("edge.example.test", REGION, edge_cert, edge=True)
    domain = ApiDomain("edge.example.test", REGION, edge=True)
    with pytest.raises(DeployError, match="is in eu-west-1: an EDGE domain uses an ACM certificate in us-east-1"):
        _adapter().attach(domain, regional_cert, None)
    new = _import("us-east-1")
    assert _adapter().attach(domain, new, None) is True
    assert domain_certificate("edge.example.test", REGION) == new


def test_the_served_update_refuses_what_aws_refuses(aws):
    """Straight calls, past the adapter's own checks: the devstack answers as AWS would."""
    edge_cert = _import("us-east-1")
    make_domain("edge.example.test", REGION, edge_cert, edge=True)
    client = boto3.client("apigateway", region_name=REGION)

    def refused(name, path, value, op="replace"):
        with pytest.raises(ClientError) as err:
            client.update_domain_name(domainName=name, patchOperations=[{"op": op, "path": path, "value": value}])
        return err.value.response["Error"]["Code"], err.value.response["ResponseMetadata"]["HTTPStatusCode"]

    assert refused("nothing.example.test", "/certificateArn", edge_cert) == ("NotFoundException", 404)
    assert refused("edge.example.test", "/certificateArn", _import(REGION)) == ("BadRequestException", 400)
    unknown = edge_cert.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    assert refused("edge.example.test", "/certificateArn", unknown) == ("BadRequestException", 400)
    assert refused("edge.example.test", "/regionalCertificateArn", edge_cert) == ("BadRequestException", 400)
    assert refused("edge.example.test", "/domainName", "other.example.test") == ("BadRequestException", 400)
    assert refused("edge.example.test", "/certificateArn", edge_cert, op="add") == ("BadRequestException", 400)
    assert domain_certificate("edge.example.test", REGION) == edge_cert


def test_an_unknown_domain_fails_check(aws):
    with pytest.raises(DeployError, match="no custom domain name nothing.example.test in eu-west-1"):
        _adapter().check(ApiDomain("nothing.example.test", REGION), None)


def test_an_endpoint_type_mismatch_fails_check(aws):
    make_domain("api.example.test", REGION, _import(REGION))
    with pytest.raises(DeployError, match="is a REGIONAL domain: remove `endpoint: edge`"):
        _adapter().check(ApiDomain("api.example.test", REGION, edge=True), None)


def test_acm_shows_the_domain_in_use_and_refuses_to_delete_its_certificate(aws):
    old, new = _import(REGION), _import(REGION)
    make_domain("api.example.test", REGION, old)
    acm = boto3.client("acm", region_name=REGION)
    domain_arn = f"arn:aws:apigateway:{REGION}::/domainnames/api.example.test"
    assert acm.describe_certificate(CertificateArn=old)["Certificate"]["InUseBy"] == [domain_arn]
    _adapter().attach(ApiDomain("api.example.test", REGION), new, None)
    assert acm.describe_certificate(CertificateArn=new)["Certificate"]["InUseBy"] == [domain_arn]
    assert acm.describe_certificate(CertificateArn=old)["Certificate"].get("InUseBy", []) == []
    with pytest.raises(ClientError, match="ResourceInUseException"):
        acm.delete_certificate(CertificateArn=new)
    acm.delete_certificate(CertificateArn=old)
