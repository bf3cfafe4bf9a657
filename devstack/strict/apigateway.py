"""ACM's `InUseBy` as API Gateway fills it: a custom domain name whose certificate (edge
`certificateArn` or `regionalCertificateArn`, as the served UpdateDomainName left it) is the
ACM certificate uses it, so DescribeCertificate lists the domain and DeleteCertificate is refused
while it does (devstack/strict/cloudfront.py asks every INUSE_SOURCES entry)."""

from __future__ import annotations

import re

from devstack.served import apigateway as served
from devstack.strict import Call
from devstack.strict.cloudfront import INUSE_SOURCES

_ACM_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:(\d{12}):certificate/")


def domain_arn(region: str, name: str) -> str:
    return f"arn:aws:apigateway:{region}::/domainnames/{name}"


def domains_using(call: Call, cert_arn: str) -> list[str]:
    """The ARNs of the domains of the certificate's account whose certificate it is."""
    match = _ACM_ACCOUNT.match(cert_arn)
    if not match:
        return []
    return sorted({domain_arn(region, d["domainName"]) for region, d in served.domains(call.moto, match.group(1))
                   if cert_arn in (d.get("certificateArn"), d.get("regionalCertificateArn"))})


INUSE_SOURCES.append(domains_using)
