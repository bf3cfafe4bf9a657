"""State written in the layout before issue 11 (schema 1: a version's PEM files and meta.json,
a pointer without the ARI CertID) keeps working, and is migrated by the first run that applies."""
from __future__ import annotations

import json

import pytest

from acme_flow import pki
from devstack_world import STATE_BUCKET, make_world

SCHEMA_1_FIELDS = ("schema", "name", "version", "domains", "key_type", "profile", "directory", "issued_at",
                   "serial", "not_before", "not_after", "names", "issuer", "deployment", "retiring", "ari",
                   "replaced", "revoked")


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def site(*regions: str) -> dict:
    return {"name": "site", "domains": ["example.test"], "deploy": {"acm": {"regions": list(regions)}}}


def to_schema_1(w) -> dict:
    """Rewrite the current version as the previous code stored it; returns its material."""
    current = w.current("site")
    material = w.material("site")
    prefix = f"certificates/site/{current['version']}/"
    files = {"cert.pem": material["cert_pem"], "chain.pem": material["chain_pem"],
             "fullchain.pem": material["cert_pem"] + material["chain_pem"]}
    for name, text in files.items():
        w.s3.put_object(Bucket=STATE_BUCKET, Key=prefix + name, Body=text.encode())
    w.s3.put_object(Bucket=STATE_BUCKET, Key=prefix + "privkey.pem", Body=material["key_pem"].encode(),
                    ServerSideEncryption="aws:kms")
    pointer = {k: current[k] for k in SCHEMA_1_FIELDS} | {"schema": 1}
    w.s3.put_object(Bucket=STATE_BUCKET, Key=prefix + "meta.json", Body=json.dumps(pointer).encode())
    w.s3.delete_object(Bucket=STATE_BUCKET, Key=prefix + "material.json")
    w.s3.put_object(Bucket=STATE_BUCKET, Key="certificates/site/current.json", Body=json.dumps(pointer).encode())
    return material


def test_state_from_the_previous_layout_is_read_migrated_and_renewed(w, capsys):
    code, first = w.run_json(w.write_config([site("us-east-1")]), capsys=capsys)
    assert code == 0 and first["certificates"][0]["outcome"] == "issued"
    material = to_schema_1(w)
    legacy = w.current("site")
    assert legacy["schema"] == 1 and "ari_cert_id" not in legacy

    # a plan reads it and changes nothing
    assert w.cli("plan", "--config", str(w.write_config([site("us-east-1")])), capsys=capsys)[0] == 0
    assert w.current("site") == legacy

    # the first run that applies rewrites the pointer in the new form; the PEM files stay
    code, report = w.run_json(w.write_config([site("us-east-1")]), capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "skipped"
    migrated = w.current("site")
    assert migrated["schema"] == 2 and migrated["material"] == "pem-files"
    assert migrated["ari_cert_id"] == pki.ari_cert_id(material["cert_pem"])
    assert {k: migrated[k] for k in SCHEMA_1_FIELDS if k != "schema"} == \
           {k: legacy[k] for k in SCHEMA_1_FIELDS if k != "schema"}

    # its material is still deployed from the PEM files (a region added to the config)
    code, report = w.run_json(w.write_config([site("us-east-1", "eu-west-1")]), capsys=capsys)
    (result,) = report["certificates"]
    assert code == 0 and result["outcome"] == "deployed" and result["serial"] == legacy["serial"]
    arn = next(p["arn"] for p in w.current("site")["deployment"] if p["target"] == "acm:eu-west-1")
    served = w.acm("eu-west-1").get_certificate(CertificateArn=arn)["Certificate"]
    assert pki.describe(served).serial == legacy["serial"]

    # a renewal stores the new version as one material object
    code, report = w.run_json(w.write_config([site("us-east-1", "eu-west-1")]), "--force", capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "renewed"
    renewed = w.current("site")
    assert renewed["material"] == "material.json" and renewed["serial"] != legacy["serial"]
    assert pki.describe(w.material("site")["cert_pem"]).serial == renewed["serial"]
