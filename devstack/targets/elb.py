"""ELBv2 set-up in moto for tests and the demo: an ALB with an HTTPS (or HTTP) listener, and what
its certificates are. Plain admin boto3 clients on the devstack's endpoint (the environment the
tests' `aws` fixture sets), so strict IAM does not judge them."""
from __future__ import annotations

import uuid
from typing import Any

import boto3


def _client(service: str, region: str, session_kwargs: dict[str, Any] | None):
    return boto3.session.Session(**(session_kwargs or {})).client(service, region_name=region)


def make_https_listener(region: str, certificate_arn: str | None, *, protocol: str = "HTTPS", port: int = 443,
                        name: str | None = None, session_kwargs: dict[str, Any] | None = None) -> str:
    """A VPC with two subnets, an ALB, a target group and a listener (`certificate_arn` its default
    certificate; None for an HTTP listener); returns the listener's ARN. `session_kwargs` (e.g. an
    assumed role's credentials) make it in another account."""
    ec2, elb = _client("ec2", region, session_kwargs), _client("elbv2", region, session_kwargs)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
               for i, zone in enumerate(zones)]
    name = name or f"web-{uuid.uuid4().hex[:8]}"
    lb = elb.create_load_balancer(Name=name, Subnets=subnets, Scheme="internet-facing",
                                  Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    group = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc,
                                    TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    args: dict[str, Any] = {"LoadBalancerArn": lb, "Protocol": protocol, "Port": port,
                            "DefaultActions": [{"Type": "forward", "TargetGroupArn": group}]}
    if certificate_arn:
        args["Certificates"] = [{"CertificateArn": certificate_arn}]
        args["SslPolicy"] = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    return elb.create_listener(**args)["Listeners"][0]["ListenerArn"]


def add_sni_certificate(listener_arn: str, certificate_arn: str,
                        session_kwargs: dict[str, Any] | None = None) -> None:
    """Put a certificate in the listener's SNI list (someone else's, as a user's own set-up would)."""
    elb = _client("elbv2", listener_arn.split(":")[3], session_kwargs)
    elb.add_listener_certificates(ListenerArn=listener_arn, Certificates=[{"CertificateArn": certificate_arn}])


def listener_certificates(listener_arn: str,
                          session_kwargs: dict[str, Any] | None = None) -> tuple[str | None, list[str]]:
    """(default certificate ARN, SNI list ARNs) as DescribeListeners and DescribeListenerCertificates show them."""
    elb = _client("elbv2", listener_arn.split(":")[3], session_kwargs)
    listener = elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    default = next((c["CertificateArn"] for c in listener.get("Certificates") or []), None)
    sni: list[str] = []
    for page in elb.get_paginator("describe_listener_certificates").paginate(ListenerArn=listener_arn):
        sni += [c["CertificateArn"] for c in page.get("Certificates") or [] if not c.get("IsDefault")]
    return default, sni
