"""A key type change goes to a new ACM ARN (ACM cannot re-import across key types). A run SIGKILLed
right after that import, before the state records the new ARN, leaves its import intent in
current.json; the next run looks for that import (one search of the account) and re-imports into it
instead of making a third certificate, then retires the old one. (The kills of a first issuance and
of a same-ARN renewal: test_kill_points.py.)"""
from __future__ import annotations

import signal

import pytest

from acme_flow import pki
from devstack import pebble_client, proxy_client
from devstack_world import STATE_BUCKET, make_world
from fault_checks import acm_arns, check_deployed_certificates, check_pointer
from test_kill_points import rerun_later, run_and_kill, site

IMPORTED = r"certrenew\.acm: imported site into arn:"


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def test_a_move_to_a_new_arn_killed_after_the_import_is_recovered_without_a_third_certificate(
        w, capsys, monkeypatch, figures):
    root = pebble_client.root_pem(w.stack)
    assert w.run_json(w.write_config([{**site(), "key": "ec-p256"}]), capsys=capsys)[0] == 0
    (old,) = acm_arns()

    rsa = w.write_config([{**site(), "key": "rsa-2048"}])
    killed = run_and_kill(rsa, IMPORTED)
    assert killed.line and killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    current = check_pointer(w, "site")
    assert current["importing"] == ["us-east-1"], "the import was recorded as begun before it was made"
    assert {p["arn"] for p in current["deployment"] if p["target"] == "acm:us-east-1"} == {old}
    (moved,) = set(acm_arns()) - {old}
    check_deployed_certificates(w, "site", root)

    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = rerun_later(w, rsa, capsys, monkeypatch)
    assert code == 0 and report["certificates"][0]["outcome"] == "deployed", report
    current = check_pointer(w, "site")
    assert {p["arn"] for p in current["deployment"] if p["target"] == "acm:us-east-1"} == {moved}
    assert current["importing"] == [] and current["retiring"] == []
    assert acm_arns() == [moved], "re-imported into the killed run's import; the old one retired"
    served = check_deployed_certificates(w, "site", root)
    assert served[moved] == current["serial"]
    assert pki.describe(w.material("site")["cert_pem"]).key_type.value == "rsa-2048"
    searches = [c for c in proxy_client.calls(w.stack.aws_endpoint_url, service="acm", operation="ListCertificates")
                if c.get("principal", "renewer") == "renewer"]
    assert len(searches) == 2, "the region check and the one search for the unrecorded import"
    figures["kill points"]["orphan ACM certificates after a killed move to a new ARN"] = len(acm_arns()) - 1
