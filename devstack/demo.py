"""`make demo`: the main job end to end on the devstack, then everything stopped.

Two hosted zones, a CloudFront distribution, a state and an export bucket are created in
moto; the scheduled Lambda handler runs on `events/scheduled.json` exactly as in AWS;
Pebble issues both certificates through real DNS-01 validation against the DNS bridge.
"""
from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

import boto3

from devstack import pebble_client, proxy_client, world
from devstack import stack as devstack

REPO = Path(__file__).resolve().parent.parent
STATE_BUCKET = "certrenew-demo-state"
EXPORT_BUCKET = "certrenew-demo-export"
WORK_QUEUE = "certrenew-demo-work"
TOPIC = "certrenew-demo"

CONFIG = """\
acme:
  directory: {directory}
  email: ops@example.test
defaults:
  key: ec-p256
  profile: default      # Pebble picks a random profile when none is named; this one is 90 days
certificates:
  - name: example-site
    domains: [example.test, "*.example.test"]
    deploy:
      acm: {{regions: [us-east-1, eu-west-1]}}
      cloudfront: {{distributions: [{distribution}]}}
      s3: {{bucket: {export}, prefix: example.test/}}
  - name: shop
    domains: [shop.test, www.shop.test]
    key: rsa-2048
    deploy:
      acm: {{regions: [us-east-1]}}
"""


def run(keep: bool = False) -> int:
    state_dir = Path(tempfile.mkdtemp(prefix="certrenew-demo-"))
    print(f"== starting the devstack (Pebble, moto server, DNS bridge) in {state_dir}", flush=True)
    stack = devstack.up(state_dir)
    exports: dict[str, str] = {}
    try:
        os.environ.update(stack.env())
        config_path = _seed(stack, state_dir)
        exports = {"CERTRENEW_CONFIG": str(config_path), "CERTRENEW_STATE_BUCKET": STATE_BUCKET}
        os.environ.update(exports)
        print(f"== config: {config_path}\n{config_path.read_text()}", flush=True)
        report = _invoke_scheduled()
        _print_report(report)
        _print_checks(stack)
        return 0 if report.get("ok") else 1
    finally:
        if keep:
            print(keep_instructions(state_dir, exports, _stack_resources() if exports else {}), flush=True)
        else:
            devstack.down(state_dir)
            print("== devstack stopped")


def _stack_resources() -> dict[str, str]:
    """What a deployed stack would give the functions besides the bucket (`certrenew invoke
    --function` takes the template's resource references from the caller): a work queue and a
    topic, made now so the printed commands work; the state key stays S3's own (empty)."""
    queue = boto3.client("sqs").create_queue(QueueName=WORK_QUEUE)["QueueUrl"]
    topic = boto3.client("sns").create_topic(Name=TOPIC)["TopicArn"]
    return {"CERTRENEW_STATE_KMS_KEY": "", "CERTRENEW_SNS_TOPIC_ARN": topic, "CERTRENEW_QUEUE_URL": queue}


def keep_instructions(state_dir: Path, exports: dict[str, str], resources: dict[str, str]) -> str:
    """The commands that use the kept stack, ready to paste into a shell (and stop it)."""
    down = f"certrenew devstack down --dir {shlex.quote(str(state_dir))}"
    if not exports:
        return f"== devstack left running; stop it with: {down}"
    lines = ["", "== the devstack is still running; to use it from this shell:",
             f'eval "$(certrenew devstack env --dir {shlex.quote(str(state_dir))})"']
    lines += [f"export {k}={shlex.quote(v)}" for k, v in {**exports, **resources}.items()]
    config = shlex.quote(exports["CERTRENEW_CONFIG"])
    lines += ["certrenew status", "certrenew run --force --only shop",
              "# the functions as template.yaml configures them (resources from the exports above):",
              f"certrenew invoke --function RenewerFunction --parameter-overrides ConfigLocation={config} "
              f"{shlex.quote(str(REPO / 'events' / 'plan.json'))}",
              "# stop it:", down]
    return "\n".join(lines)


def _seed(stack, state_dir: Path) -> Path:
    s3 = boto3.client("s3")
    world.create_bucket(s3, STATE_BUCKET)
    world.create_bucket(s3, EXPORT_BUCKET)
    route53 = boto3.client("route53")
    zones = [world.create_zone(route53, "example.test"), world.create_zone(route53, "shop.test")]
    distribution = world.create_distribution(boto3.client("cloudfront"), ["example.test", "www.example.test"])
    # The deployment the proxy's strict IAM judges the handler's calls by (template parameters).
    proxy_client.configure(stack.aws_endpoint_url, deployment={
        "StateBucket": STATE_BUCKET, "ExportBucket": EXPORT_BUCKET, "HostedZoneIds": zones,
        "DistributionIds": [distribution]})
    path = state_dir / "certificates.yaml"
    path.write_text(CONFIG.format(directory=stack.acme_directory, distribution=distribution, export=EXPORT_BUCKET))
    return path


def _invoke_scheduled() -> dict:
    from handler.local import invoke

    event = json.loads((REPO / "events" / "scheduled.json").read_text())
    print("== invoking the Lambda handler with events/scheduled.json", flush=True)
    return invoke(event, timeout=900)  # the handler's JSON logs on stderr, the report on stdout


def _print_report(report: dict) -> None:
    print("\n== run report")
    print(json.dumps(report, indent=2))


def _print_checks(stack) -> None:
    from acme_flow import pki

    print("\n== checks")
    root = pebble_client.root_pem(stack)
    s3 = boto3.client("s3")
    for name in ("example-site", "shop"):
        current = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=f"certificates/{name}/current.json")["Body"].read())
        key = f"certificates/{name}/{current['version']}/material.json"
        material = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=key)["Body"].read())
        pki.verify_against_root(pki.split_pem_chain(material["cert_pem"] + material["chain_pem"]), root)
        print(f"{name}: serial {current['serial']} verifies against Pebble's root; targets "
              f"{[p['target'] for p in current['deployment']]}")
    cloudfront = boto3.client("cloudfront")
    for item in cloudfront.list_distributions()["DistributionList"].get("Items", []):
        viewer = item["ViewerCertificate"]
        print(f"CloudFront {item['Id']}: {viewer.get('ACMCertificateArn')} {viewer.get('SSLSupportMethod')} "
              f"{viewer.get('MinimumProtocolVersion')}")
    route53 = boto3.client("route53")
    leftovers = 0
    for zone in route53.list_hosted_zones()["HostedZones"]:
        leftovers += sum(1 for n in world.txt_records(route53, zone["Id"]) if n.startswith("_acme-challenge"))
    print(f"_acme-challenge records left in Route53: {leftovers}")
