"""Set-up helpers for tests and the end-to-end test: API Gateway custom domain names in moto,
made and read as an administrator through the devstack's endpoint (AWS_ENDPOINT_URL and the
devstack's credentials in the environment, as the tests' `aws` fixture sets them)."""
from __future__ import annotations

import boto3


def _client(region: str):
    return boto3.client("apigateway", region_name=region)


def make_domain(name: str, region: str, certificate_arn: str, *, edge: bool = False,
                security_policy: str = "TLS_1_2") -> None:
    """A REGIONAL (or EDGE) custom domain name using `certificate_arn` (an ACM ARN of
    `region`, or of us-east-1 for EDGE)."""
    field = "certificateArn" if edge else "regionalCertificateArn"
    _client(region).create_domain_name(domainName=name, securityPolicy=security_policy,
                                       endpointConfiguration={"types": ["EDGE" if edge else "REGIONAL"]},
                                       **{field: certificate_arn})


def domain_certificate(name: str, region: str) -> str:
    """The ACM ARN the domain uses now (edge or regional, by its endpoint type)."""
    found = _client(region).get_domain_name(domainName=name)
    edge = (found.get("endpointConfiguration") or {}).get("types", ["EDGE"])[0] == "EDGE"
    return found["certificateArn"] if edge else found["regionalCertificateArn"]
