"""Shared set-up for integration tests: a world of buckets and zones in moto, a config file, the CLI."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import yaml

from acme_flow import cli
from devstack import proxy_client, world

STATE_BUCKET = "certrenew-test-state"
EXPORT_BUCKET = "certrenew-test-export"
WRITES = {"PutObject", "DeleteObject", "ChangeResourceRecordSets", "ImportCertificate", "UpdateDistribution",
          "DeleteCertificate", "Publish", "CopyObject", "CompleteMultipartUpload"}


@dataclass
class World:
    stack: object
    tmp: Path
    zones: dict[str, str] = field(default_factory=dict)

    @property
    def s3(self):
        return boto3.client("s3")

    @property
    def route53(self):
        return boto3.client("route53")

    def acm(self, region="us-east-1"):
        return boto3.client("acm", region_name=region)

    def write_config(self, certificates: list[dict], **top) -> Path:
        doc = {"acme": {"directory": self.stack.acme_directory, "email": "ops@example.test"},
               "defaults": {"profile": "default"}, "certificates": certificates, **top}
        path = self.tmp / "certificates.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def cli(self, *args: str, capsys=None) -> tuple[int, str]:
        code = cli.main(list(args))
        out = capsys.readouterr().out if capsys else ""
        return code, out

    def run_json(self, config: Path, *extra: str, capsys) -> tuple[int, dict]:
        code = cli.main(["run", "--config", str(config), "--json", *extra])
        out = capsys.readouterr().out
        return code, json.loads(out)

    def acme_records(self) -> dict[str, list[str]]:
        out = {}
        for zone_id in self.zones.values():
            out.update({n: v for n, v in world.txt_records(self.route53, zone_id).items()
                        if n.startswith("_acme-challenge")})
        return out

    def current(self, name: str) -> dict:
        return json.loads(self.s3.get_object(Bucket=STATE_BUCKET, Key=f"certificates/{name}/current.json")["Body"].read())

    def material(self, name: str, version: str | None = None) -> dict[str, str]:
        """`cert_pem`, `chain_pem` and `key_pem` of a stored version (the current one by default)."""
        version = version or self.current(name)["version"]
        key = f"certificates/{name}/{version}/material.json"
        return json.loads(self.s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())

    def state_keys(self) -> list[str]:
        got = self.s3.list_objects_v2(Bucket=STATE_BUCKET)
        return sorted(o["Key"] for o in got.get("Contents", []))

    def writes(self) -> list[dict]:
        return [c for c in proxy_client.calls(self.stack.aws_endpoint_url) if c.get("operation") in WRITES]


def make_world(stack, tmp: Path, zones=("example.test", "shop.test")) -> World:
    w = World(stack, tmp)
    world.create_bucket(w.s3, STATE_BUCKET)
    world.create_bucket(w.s3, EXPORT_BUCKET)
    for zone in zones:
        w.zones[zone] = world.create_zone(w.route53, zone)
    # The deployment strict IAM judges the product by: this state and export bucket, every zone.
    proxy_client.update_deployment(stack.aws_endpoint_url, {"StateBucket": STATE_BUCKET,
                                                            "ExportBucket": EXPORT_BUCKET})
    proxy_client.reset_calls(stack.aws_endpoint_url)
    return w
