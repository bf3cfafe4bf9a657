"""Read-only inventory for `certrenew discover`: what serves TLS in the account and with which
certificate (CloudFront distributions and their tenants, ELBv2 HTTPS/TLS listeners, API Gateway
custom domain names), what ACM says of each certificate, and the account's public hosted zones.

Every call is a read, made with a person's credentials (the operator's clients). A listing that
fails (no permission, a region without the service) is reported in `problems` and the rest goes
on: the inventory is then incomplete, and the command says so.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from ..discover import API_DOMAIN, CLOUDFRONT_DEFAULT, DISTRIBUTIONS, DISTRIBUTION, IAM, LISTENER, TENANT
from ..discover import CertificateFacts, Found

log = logging.getLogger("certrenew.inventory")

CLOUDFRONT_REGION = "us-east-1"
TLS_PROTOCOLS = ("HTTPS", "TLS")
ClientFor = Callable[[str, str], Any]  # (service, region) -> boto3 client


class AwsInventory:
    """`client_for(service, region)` gives the clients (bootstrap.Clients.get)."""

    def __init__(self, client_for: ClientFor) -> None:
        self._client_for = client_for
        self.problems: list[str] = []

    def scan(self, regions: list[str]) -> list[Found]:
        """Distributions, tenants, then per region listeners and API domains."""
        found = self._guarded("CloudFront distributions", self.distributions)
        found += self._guarded("CloudFront distribution tenants", self.tenants)
        for region in regions:
            found += self._guarded(f"load balancer listeners in {region}", lambda: self.listeners(region))
            found += self._guarded(f"API Gateway domain names in {region}", lambda: self.api_domains(region))
        return found

    def _guarded(self, what: str, read: Callable[[], list[Found]]) -> list[Found]:
        try:
            return read()
        except (ClientError, BotoCoreError) as exc:
            self.problems.append(f"cannot list {what}: {exc}")
            log.warning("cannot list %s: %s", what, exc)
            return []

    def distributions(self) -> list[Found]:
        cf = self._client_for("cloudfront", CLOUDFRONT_REGION)
        out = []
        for page in cf.get_paginator("list_distributions").paginate():
            for d in (page.get("DistributionList") or {}).get("Items") or []:
                if d.get("ConnectionMode") == "tenant-only":
                    continue  # a multi-tenant distribution: its tenants serve the names
                out.append(_distribution(d))
        return out

    def tenants(self) -> list[Found]:
        cf = self._client_for("cloudfront", CLOUDFRONT_REGION)
        out = []
        for page in cf.get_paginator("list_distribution_tenants").paginate():
            for t in page.get("DistributionTenantList") or []:
                arn = ((t.get("Customizations") or {}).get("Certificate") or {}).get("Arn")
                out.append(Found(TENANT, t["Id"], t.get("Arn", ""), CLOUDFRONT_REGION,
                                 tuple(d["Domain"] for d in t.get("Domains") or []),
                                 (arn,) if arn else (), None if arn else DISTRIBUTIONS,
                                 parent=t.get("DistributionId")))
        return out

    def listeners(self, region: str) -> list[Found]:
        elb = self._client_for("elbv2", region)
        out = []
        for page in elb.get_paginator("describe_load_balancers").paginate():
            for lb in page.get("LoadBalancers") or []:
                for lp in elb.get_paginator("describe_listeners").paginate(LoadBalancerArn=lb["LoadBalancerArn"]):
                    for listener in lp.get("Listeners") or []:
                        if listener.get("Protocol") in TLS_PROTOCOLS:
                            out.append(self._listener(elb, listener, region))
        return out

    def _listener(self, elb: Any, listener: dict, region: str) -> Found:
        arn = listener["ListenerArn"]
        default = [c["CertificateArn"] for c in listener.get("Certificates") or []][:1]
        sni: list[str] = []
        for page in elb.get_paginator("describe_listener_certificates").paginate(ListenerArn=arn):
            sni += [c["CertificateArn"] for c in page.get("Certificates") or [] if not c.get("IsDefault")]
        arns = tuple(dict.fromkeys(default + sni))
        acm = tuple(a for a in arns if ":acm:" in a)
        source = IAM if arns and not acm else None
        return Found(LISTENER, arn.split(":listener/", 1)[-1], arn, region, (), acm, source)

    def api_domains(self, region: str) -> list[Found]:
        api = self._client_for("apigateway", region)
        out = []
        for page in api.get_paginator("get_domain_names").paginate():
            for d in page.get("items") or []:
                types = (d.get("endpointConfiguration") or {}).get("types") or ["EDGE"]
                if "PRIVATE" in types:
                    continue  # a private custom domain: not reachable for certrenew's targets
                edge = types[0] == "EDGE"
                cert = d.get("certificateArn") if edge else d.get("regionalCertificateArn")
                arn = f"arn:aws:apigateway:{region}::/domainnames/{d['domainName']}"
                out.append(Found(API_DOMAIN, d["domainName"], arn, region, (d["domainName"],),
                                 (cert,) if cert else (), edge=edge))
        return out

    def certificates(self, arns: list[str]) -> dict[str, CertificateFacts]:
        """What ACM says of each certificate (read once per ARN, in the ARN's region)."""
        return {arn: self.certificate(arn) for arn in dict.fromkeys(arns)}

    def certificate(self, arn: str) -> CertificateFacts:
        acm = self._client_for("acm", arn.split(":")[3])
        try:
            cert = acm.describe_certificate(CertificateArn=arn)["Certificate"]
            tags = acm.list_tags_for_certificate(CertificateArn=arn).get("Tags") or []
        except (ClientError, BotoCoreError) as exc:
            return CertificateFacts(arn, error=str(exc))
        names = cert.get("SubjectAlternativeNames") or ([cert["DomainName"]] if cert.get("DomainName") else [])
        return CertificateFacts(arn, cert.get("Type"), cert.get("NotAfter"), cert.get("KeyAlgorithm"), tuple(names),
                                tuple((t["Key"], t.get("Value", "")) for t in tags))

    def public_zones(self) -> list[str]:
        """The names of the account's public hosted zones."""
        r53 = self._client_for("route53", CLOUDFRONT_REGION)
        try:
            return sorted(z["Name"].rstrip(".") for page in r53.get_paginator("list_hosted_zones").paginate()
                          for z in page["HostedZones"] if not (z.get("Config") or {}).get("PrivateZone"))
        except (ClientError, BotoCoreError) as exc:
            self.problems.append(f"cannot list Route53 hosted zones: {exc}")
            return []


def _distribution(d: dict) -> Found:
    viewer = d.get("ViewerCertificate") or {}
    acm = viewer.get("ACMCertificateArn")
    if acm:
        certs, source = (acm,), None
    elif viewer.get("IAMCertificateId"):
        certs, source = (), IAM
    else:
        certs, source = (), CLOUDFRONT_DEFAULT
    return Found(DISTRIBUTION, d["Id"], d.get("ARN", ""), CLOUDFRONT_REGION,
                 tuple((d.get("Aliases") or {}).get("Items") or []), certs, source)
