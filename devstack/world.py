"""AWS resources the demo and the integration tests create in moto: buckets, zones, a distribution."""
from __future__ import annotations

import uuid
from typing import Any


def create_bucket(s3, name: str) -> str:
    s3.create_bucket(Bucket=name)
    return name


def create_zone(route53, name: str, private: bool = False) -> str:
    args: dict[str, Any] = {"Name": name, "CallerReference": uuid.uuid4().hex}
    if private:
        args["HostedZoneConfig"] = {"Comment": "private", "PrivateZone": True}
        args["VPC"] = {"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"}
    zone = route53.create_hosted_zone(**args)["HostedZone"]
    return zone["Id"].rsplit("/", 1)[-1]


def txt_records(route53, zone_id: str) -> dict[str, list[str]]:
    """Every TXT record set of a zone: name (no trailing dot) -> values as stored (quoted)."""
    out: dict[str, list[str]] = {}
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rrset in page["ResourceRecordSets"]:
            if rrset["Type"] == "TXT":
                out[rrset["Name"].rstrip(".")] = [r["Value"] for r in rrset.get("ResourceRecords", [])]
    return out


def upsert_txt(route53, zone_id: str, name: str, values: list[str]) -> None:
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": name, "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": f'"{v}"'} for v in values]}}]})


def create_distribution(cloudfront, aliases: list[str], minimum_protocol: str = "TLSv1") -> str:
    """A distribution with an S3 origin and CloudFront's default certificate."""
    config = {
        "CallerReference": uuid.uuid4().hex,
        "Aliases": {"Quantity": len(aliases), "Items": aliases},
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "site", "DomainName": "site-bucket.s3.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "site", "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0, "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0}},
        "Comment": "certrenew demo site",
        "Enabled": True,
        "DefaultRootObject": "index.html",
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": minimum_protocol},
    }
    return cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]
