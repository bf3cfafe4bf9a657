"""Locks, crash leftovers and damaged state, on the devstack."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading

import pytest

from acme_flow import pki
from acme_flow.adapters.s3_state import S3StateStore
from acme_flow.models import KeyType
from devstack import proxy_client, world
from devstack_world import STATE_BUCKET, make_world


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def site():
    return {"name": "site", "domains": ["example.test", "*.example.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}}


def _cli_json(config, *extra) -> tuple[int, dict, str]:
    done = subprocess.run([sys.executable, "-m", "acme_flow.cli", "run", "--config", str(config), "--json", *extra],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    return done.returncode, json.loads(done.stdout or "{}"), done.stderr


def test_two_runs_at_once_issue_once(w):
    config = w.write_config([site()])
    results: list[tuple[int, dict, str]] = []
    threads = [threading.Thread(target=lambda: results.append(_cli_json(config))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    outcomes = sorted(r["certificates"][0]["outcome"] for _, r, _ in results)
    assert outcomes == ["issued", "skipped"], outcomes
    versions = {k.split("/")[2] for k in w.state_keys() if k.startswith("certificates/site/") and k.count("/") == 3}
    assert len(versions) == 1, f"exactly one certificate issued, got versions {versions}"
    skipped = [r["certificates"][0] for _, r, _ in results if r["certificates"][0]["outcome"] == "skipped"][0]
    # skipped at the lease, or (if it started late) after re-reading the state the winner wrote
    assert skipped["reason"] == "locked: another run holds its lease" or "renews at" in skipped["reason"]
    assert "locks/site.json" not in w.state_keys(), "the lease is released (deleted) at the end of the run"
    assert len(w.acm().list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]) == 1


def test_a_409_on_the_first_account_key_write_is_a_lost_race_not_a_crash(w, capsys):
    """Two workers on a fresh stack: S3 may answer the create-only write of the account key with
    409 ConditionalRequestConflict. The run reads the winner's key (or, none yet, writes again)."""
    config = w.write_config([site()])
    # A run's PutObjects: the lease, then the account key (a fresh stack has none).
    proxy_client.configure(w.stack.aws_endpoint_url, faults=[
        {"service": "s3", "operation": "PutObject", "status": 409, "code": "ConditionalRequestConflict",
         "message": "A conflicting operation occurred. If using PutObject you can retry the request.",
         "every": 2, "count": 1}])
    code, report = w.run_json(config, capsys=capsys)
    (faulted,) = proxy_client.faulted(w.stack.aws_endpoint_url)
    assert faulted["path"].endswith("/account-key.pem"), f"the fault must hit the account key, hit {faulted['path']}"
    assert code == 0, report
    assert report["certificates"][0]["outcome"] == "issued"
    keys = w.state_keys()
    assert [k for k in keys if k.endswith("/account-key.pem")] and [k for k in keys if k.endswith("/account.json")]


def test_a_held_lease_skips_and_an_expired_one_is_taken_over(w, capsys):
    config = w.write_config([site()])
    now = dt.datetime.now(dt.timezone.utc)
    held = {"holder": "someone-else", "until": (now + dt.timedelta(minutes=10)).isoformat()}
    w.s3.put_object(Bucket=STATE_BUCKET, Key="locks/site.json", Body=json.dumps(held).encode())
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0
    assert report["certificates"][0]["outcome"] == "skipped"
    assert report["certificates"][0]["reason"] == "locked: another run holds its lease"
    assert not [k for k in w.state_keys() if k.startswith("certificates/")]

    expired = {"holder": "crashed-run", "until": (now - dt.timedelta(minutes=1)).isoformat()}
    w.s3.put_object(Bucket=STATE_BUCKET, Key="locks/site.json", Body=json.dumps(expired).encode())
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "issued"


def test_a_run_whose_lease_was_taken_over_does_not_release_the_new_holders(w):
    """The release is a conditional delete on the ETag the run wrote: after another run took over
    the expired lease, the late release must leave the new holder's lease in place."""
    now = dt.datetime.now(dt.timezone.utc)
    late, taker = S3StateStore(w.s3, STATE_BUCKET), S3StateStore(w.s3, STATE_BUCKET)
    assert late.acquire("site", "late-run", now + dt.timedelta(minutes=1), now)
    later = now + dt.timedelta(minutes=2)
    assert not taker.acquire("site", "taker", later + dt.timedelta(minutes=5), now), "not while it is live"
    assert taker.acquire("site", "taker", later + dt.timedelta(minutes=5), later), "taken over once expired"
    late.release("site", "late-run", later)
    lease = json.loads(w.s3.get_object(Bucket=STATE_BUCKET, Key="locks/site.json")["Body"].read())
    assert lease["holder"] == "taker"
    taker.release("site", "taker", later)
    assert "locks/site.json" not in w.state_keys()


def test_records_left_by_a_crashed_run_are_swept(w, capsys):
    zone_id = w.zones["example.test"]
    world.upsert_txt(w.route53, zone_id, "_acme-challenge.old.example.test", ["left-by-crash", "someone-elses"])
    ledger = {"run": "deadbeef", "until": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat(),
              "records": [{"name": "_acme-challenge.old.example.test", "value": "left-by-crash",
                           "zone_id": zone_id, "role_arn": None}]}
    w.s3.put_object(Bucket=STATE_BUCKET, Key="challenges/deadbeef.json", Body=json.dumps(ledger).encode())
    code, report = w.run_json(w.write_config([site()]), capsys=capsys)
    assert code == 0, report
    assert w.acme_records() == {"_acme-challenge.old.example.test": ['"someone-elses"']}
    assert not [k for k in w.state_keys() if k.startswith("challenges/")]


@pytest.mark.parametrize("damage", ["truncated", "wrong-key", "bad-metadata", "missing-material"])
def test_damaged_state_is_reported_and_reissued_never_deployed(w, capsys, damage):
    """A plain run reads only the pointer: damaged material is found where it is read, by a
    deep run (`--deep`, `status --deep`) or before a deploy; unreadable metadata at once."""
    config = w.write_config([site()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    current = w.current("site")
    key = f"certificates/site/{current['version']}/material.json"
    arn = next(p["arn"] for p in current["deployment"] if p["target"] == "acm:us-east-1")
    material = w.material("site")
    if damage == "truncated":
        material["cert_pem"] = material["cert_pem"][:300]
    elif damage == "wrong-key":
        material["key_pem"] = pki.key_to_pem(pki.generate_key(KeyType.EC_P256))
    if damage in ("truncated", "wrong-key"):
        w.s3.put_object(Bucket=STATE_BUCKET, Key=key, Body=json.dumps(material).encode(),
                        ServerSideEncryption="aws:kms")
    elif damage == "missing-material":
        w.s3.delete_object(Bucket=STATE_BUCKET, Key=key)
    else:
        w.s3.put_object(Bucket=STATE_BUCKET, Key="certificates/site/current.json", Body=b"{not json")
    if damage != "bad-metadata":
        code, quiet = w.run_json(config, capsys=capsys)
        assert quiet["certificates"][0]["outcome"] == "skipped", "a plain run reads no material"
        code, out = w.cli("status", "--config", str(config), "--deep", "--json", capsys=capsys)
        (row,) = json.loads(out)
        assert code == 0 and row["damaged"] and "damaged" in row["why"], row

    code, report = w.run_json(config, "--deep", capsys=capsys)
    result = report["certificates"][0]
    assert code == 0, report
    assert result["outcome"] in ("renewed", "issued")
    assert ("damaged" in result["reason"]) or ("unreadable" in result["reason"]), result["reason"]
    new = w.current("site")
    assert new["serial"] != current["serial"]
    served = w.acm().get_certificate(CertificateArn=next(
        p["arn"] for p in new["deployment"] if p["target"] == "acm:us-east-1"))["Certificate"]
    assert pki.describe(served).serial == new["serial"]
    if damage != "bad-metadata":
        assert next(p["arn"] for p in new["deployment"] if p["target"] == "acm:us-east-1") == arn, \
            "the deployment record survives damaged material: re-import into the same ARN"
