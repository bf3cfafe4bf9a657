"""Checks the fault tests share: what ACM serves, what the state points at, the account key."""
from __future__ import annotations

import datetime as dt

import boto3

from acme_flow import pki
from acme_flow.models import CertificateMaterial
from devstack_world import STATE_BUCKET, World


def acm_arns(region: str = "us-east-1") -> list[str]:
    """Every ACM certificate in the region, whatever its key type (moto lists all of them)."""
    acm = boto3.client("acm", region_name=region)
    got = acm.list_certificates(Includes={"keyTypes": [
        "EC_prime256v1", "EC_secp384r1", "RSA_2048", "RSA_3072", "RSA_4096"]})
    return sorted(c["CertificateArn"] for c in got["CertificateSummaryList"])


def stored_versions(w: World, name: str) -> dict[str, dict[str, str]]:
    """serial -> the material (`cert_pem`, `chain_pem`, `key_pem`) of every stored version of
    `name` that was completely written."""
    out: dict[str, dict[str, str]] = {}
    prefix = f"certificates/{name}/"
    for key in w.state_keys():
        if key.startswith(prefix) and key.endswith("/material.json"):
            material = w.material(name, key[len(prefix):].split("/")[0])
            out[pki.describe(material["cert_pem"]).serial] = material
    return out


def check_deployed_certificates(w: World, names: str | tuple[str, ...], root_pem: str,
                                regions=("us-east-1",)) -> dict[str, str]:
    """Every ACM certificate is a valid one: its chain (without moto's Amazon root) verifies
    against Pebble's root, it is within its validity period, and it is a certificate certrenew
    stored whose stored key matches it. Returns ARN -> serial."""
    now = dt.datetime.now(dt.timezone.utc)
    names = (names,) if isinstance(names, str) else names
    versions = {serial: files for name in names for serial, files in stored_versions(w, name).items()}
    seen = {}
    for region in regions:
        for arn in acm_arns(region):
            got = w.acm(region).get_certificate(CertificateArn=arn)
            chain = pki.split_pem_chain(got.get("CertificateChain", ""))
            chain = [c for c in chain if "Amazon" not in pki.common_name(pki.load_certificate(c).subject)]
            pki.verify_against_root([got["Certificate"], *chain], root_pem)
            leaf = pki.load_certificate(got["Certificate"])
            assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc, f"{arn} is not currently valid"
            serial = pki.describe(got["Certificate"]).serial
            assert serial in versions, f"{arn} holds serial {serial}, which is not a stored version of {names}"
            files = versions[serial]
            key = pki.load_key(files["key_pem"])
            assert pki.public_key_matches(leaf, key), f"{arn}: the stored key does not match"
            seen[arn] = serial
    return seen


def check_pointer(w: World, name: str) -> dict | None:
    """current.json, if any, points at a complete version whose material is sound."""
    if f"certificates/{name}/current.json" not in w.state_keys():
        return None
    current = w.current(name)
    files = stored_versions(w, name).get(current["serial"])
    assert files is not None, f"current.json points at serial {current['serial']}, which has no material"
    material = CertificateMaterial(**files)
    assert pki.material_problem(material, current["serial"]) is None
    return current


def account_key(w: World) -> bytes | None:
    keys = [k for k in w.state_keys() if k.endswith("account-key.pem")]
    assert len(keys) <= 1, keys
    return w.s3.get_object(Bucket=STATE_BUCKET, Key=keys[0])["Body"].read() if keys else None
