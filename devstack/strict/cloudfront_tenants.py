"""ACM's `InUseBy` as CloudFront fills it for distribution tenants: a tenant whose
`Customizations.Certificate.Arn` is the certificate uses it, so DescribeCertificate lists the
tenant's ARN and DeleteCertificate is refused (ResourceInUseException) while it does.

The tenants live in the served API's memory (devstack/served/cloudfront_tenants.py), in the same
proxy process; its `tenants_using` reads them. No rule of its own: a source of strict/cloudfront's
INUSE_SOURCES, which the InUseBy rule asks.
"""
from __future__ import annotations

from devstack.served.cloudfront_tenants import tenants_using
from devstack.strict import Call
from devstack.strict.cloudfront import INUSE_SOURCES


def tenant_users(call: Call, cert_arn: str) -> list[str]:
    """The distribution tenants that use the certificate now."""
    return tenants_using(cert_arn)


INUSE_SOURCES.append(tenant_users)
