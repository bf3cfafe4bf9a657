"""CA fallback on the devstack: the primary Pebble behind a fault front that fails every new
order (503 serverInternal), a second Pebble that requires EAB as `acme.fallback`. The run issues
from the fallback and exits 0; the certificate chains to the fallback's root; the next due
renewal, with the primary healthy again, comes from the primary."""
from __future__ import annotations

import boto3
import pytest

from acme_flow import pki
from devstack import pebble_client
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path)


def site() -> dict:
    return {"name": "site", "domains": ["example.test", "www.example.test"],
            "deploy": {"acm": {"regions": ["us-east-1"]}, "s3": {"bucket": EXPORT_BUCKET, "prefix": "site/"}}}


def chains_to(w, root_pem: str) -> bool:
    stored = w.material("site")
    try:
        pki.verify_against_root(pki.split_pem_chain(stored["cert_pem"] + stored["chain_pem"]), root_pem)
    except Exception:  # noqa: BLE001 - another CA's root
        return False
    return True


def test_the_fallback_ca_issues_while_the_primary_fails_and_the_next_renewal_is_the_primary(
        w, capsys, acme_faults, fallback_ca):
    front_directory, front = acme_faults
    front.fail("/order-plz", status=503)
    hmac_ref = fallback_ca.put_eab_hmac(boto3.client("ssm"))
    config = w.write_config([site()], acme={"directory": front_directory, "email": "ops@example.test",
                                            "fallback": [fallback_ca.acme_settings(hmac_ref)]},
                            defaults={"profile": "default"})
    code, report = w.run_json(config, capsys=capsys)
    (result,) = report["certificates"]
    assert code == 0 and result["outcome"] == "issued", report
    assert result["directory"] == fallback_ca.acme_directory
    assert f"issued by fallback CA {fallback_ca.acme_directory}" in result["reason"]
    assert front.hits("/order-plz") >= 1
    assert chains_to(w, pebble_client.root_pem(fallback_ca)) and not chains_to(w, pebble_client.root_pem(w.stack))
    assert w.current("site")["directory"] == fallback_ca.acme_directory

    front.clear()
    code, report = w.run_json(config, "--force", capsys=capsys)
    (renewed,) = report["certificates"]
    assert code == 0 and renewed["outcome"] == "renewed" and renewed["directory"] == front_directory, report
    assert chains_to(w, pebble_client.root_pem(w.stack))


def test_a_fallback_whose_eab_secret_is_missing_is_a_warning_of_the_run(w, capsys, fallback_ca):
    config = w.write_config([site()], acme={"directory": w.stack.acme_directory, "fallback": [
        fallback_ca.acme_settings("ssm:/certrenew/no-such-parameter")]}, defaults={"profile": "default"})
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "issued"
    (warning,) = report["warnings"]
    assert f"fallback CA {fallback_ca.acme_directory} cannot be used" in warning
    assert "/certrenew/no-such-parameter" in warning
