"""Set-up helpers for CloudFront distribution tenants on the devstack (tests, the end-to-end test,
the demo): plain admin clients on the devstack's endpoint (the environment names it), so strict
IAM does not judge them as the product's calls.

moto 5.2 ignores a DistributionConfig's `ConnectionMode` (it neither stores nor returns it), so a
"multi-tenant distribution" here is an ordinary moto distribution created with
`ConnectionMode=tenant-only`: the served tenant API only checks that the distribution exists.
"""
from __future__ import annotations

import uuid

import boto3

CLOUDFRONT_REGION = "us-east-1"


def _cloudfront():
    return boto3.client("cloudfront", region_name=CLOUDFRONT_REGION)


def make_multitenant_distribution(comment: str = "certrenew multi-tenant distribution") -> str:
    """A distribution meant for tenants (no aliases, CloudFront's default certificate); its id."""
    config = {
        "CallerReference": uuid.uuid4().hex,
        "ConnectionMode": "tenant-only",
        "Aliases": {"Quantity": 0},
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "saas", "DomainName": "saas-bucket.s3.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "saas", "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0, "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0}},
        "Comment": comment,
        "Enabled": True,
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
    }
    return _cloudfront().create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def make_tenant(distribution_id: str, name: str, domains: list[str] | tuple[str, ...],
                certificate_arn: str | None = None, **settings) -> str:
    """A tenant of the distribution serving `domains`, with its own certificate when given (the
    served API checks it as CloudFront does); `settings` go to CreateDistributionTenant as they are
    (Customizations, Parameters, Enabled, ...; a given Customizations gets the certificate added)."""
    params = {"DistributionId": distribution_id, "Name": name,
              "Domains": [{"Domain": d} for d in domains], **settings}
    if certificate_arn:
        params["Customizations"] = {**params.get("Customizations", {}), "Certificate": {"Arn": certificate_arn}}
    return _cloudfront().create_distribution_tenant(**params)["DistributionTenant"]["Id"]


def tenant_certificate(tenant_id: str) -> str | None:
    """The tenant's own certificate ARN (None: it uses its distribution's)."""
    tenant = _cloudfront().get_distribution_tenant(Identifier=tenant_id)["DistributionTenant"]
    return ((tenant.get("Customizations") or {}).get("Certificate") or {}).get("Arn")
