"""Renewal lifecycle on Pebble: ARI windows and `replaces`, profiles, key type changes, chains, EAB."""
from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from acme_flow import cli, pki
from devstack import pebble_client, proxy_client, world
from certfactory import MiniCA
from devstack_world import STATE_BUCKET, make_world

NOW = lambda: dt.datetime.now(dt.timezone.utc)  # noqa: E731


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def cert(name="site", **extra):
    return {"name": name, "domains": [f"{name}.example.test"], "deploy": {"acm": {"regions": ["us-east-1"]}}, **extra}


def leaf_pem(w, name="site") -> str:
    return w.material(name)["cert_pem"]


def test_ari_window_in_the_past_renews_with_replaces(w, capsys):
    config = w.write_config([cert()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    old = leaf_pem(w)
    stored_window = w.current("site")["ari"]
    assert stored_window is not None, "the ARI window is fetched and kept at issuance"
    start, end = NOW() - dt.timedelta(days=2), NOW() - dt.timedelta(days=1)
    pebble_client.set_renewal_info(w.stack, old, start, end)
    _expire_next_check(w, "site")

    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    result = report["certificates"][0]
    assert result["outcome"] == "renewed"
    assert "ARI window" in result["reason"] and "passed" in result["reason"]
    current = w.current("site")
    assert current["replaced"] == pki.ari_cert_id(old) == pebble_client.ari_cert_id(old)
    assert current["serial"] != pki.describe(old).serial


def test_ari_window_in_the_future_is_skipped_with_the_window_in_the_reason(w, capsys):
    config = w.write_config([cert()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    start = (NOW() + dt.timedelta(days=40)).replace(microsecond=0)
    pebble_client.set_renewal_info(w.stack, leaf_pem(w), start, start + dt.timedelta(days=2))
    _expire_next_check(w, "site")

    code, report = w.run_json(config, capsys=capsys)
    assert code == 0
    result = report["certificates"][0]
    assert result["outcome"] == "skipped"
    assert f"ARI window opens {start:%Y-%m-%dT%H:%M}Z" in result["reason"]
    chosen = dt.datetime.fromisoformat(w.current("site")["ari"]["chosen"])
    assert start <= chosen <= start + dt.timedelta(days=2)
    # the chosen time is kept while the window stays the same
    _expire_next_check(w, "site")
    w.run_json(config, capsys=capsys)
    assert dt.datetime.fromisoformat(w.current("site")["ari"]["chosen"]) == chosen


def test_weekly_lookahead_renews_a_window_that_opens_before_the_next_run(w, capsys):
    config = w.write_config([cert()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    start = NOW() + dt.timedelta(days=3)
    pebble_client.set_renewal_info(w.stack, leaf_pem(w), start, start + dt.timedelta(hours=1))
    _expire_next_check(w, "site")
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0
    assert report["certificates"][0]["outcome"] == "renewed"
    assert "falls before the next check" in report["certificates"][0]["reason"]


def test_shortlived_profile_gets_pebbles_short_validity(w, capsys):
    config = w.write_config([cert(profile="shortlived")])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    info = pki.describe(leaf_pem(w))
    assert abs((info.not_after - info.not_before).total_seconds() - 518400) < 120
    assert w.current("site")["profile"] == "shortlived"


def test_unknown_profile_is_a_config_error_before_any_order(w, capsys):
    config = w.write_config([cert(), cert("other", profile="tlsserver")])
    code = cli.main(["run", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "certificates[1].profile" in err and "'tlsserver' is not offered" in err
    assert "default" in err and "shortlived" in err
    assert w.writes() == [] and w.state_keys() == []


def test_key_type_change_moves_cloudfront_to_a_new_arn_and_removes_the_old(w, capsys):
    cf = boto3.client("cloudfront")
    dist = world.create_distribution(cf, ["www.example.test"])
    spec = {"name": "site", "domains": ["example.test", "*.example.test"], "key": "rsa-2048",
            "deploy": {"cloudfront": {"distributions": [dist]}}}
    config = w.write_config([spec])
    assert w.run_json(config, capsys=capsys)[0] == 0
    old_arn = _arn(w, "site")
    assert pki.describe(w.acm().get_certificate(CertificateArn=old_arn)["Certificate"]).key_type.value == "rsa-2048"

    config = w.write_config([{**spec, "key": "ec-p256"}])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    result = report["certificates"][0]
    assert "key type changed: rsa-2048 -> ec-p256" in result["reason"]
    new_arn = _arn(w, "site")
    assert new_arn != old_arn
    viewer = cf.get_distribution_config(Id=dist)["DistributionConfig"]["ViewerCertificate"]
    assert viewer["ACMCertificateArn"] == new_arn
    # CloudFront lets go of the old certificate a while after the move (ACM's InUseBy lags):
    # it is kept on the retire list, and the next run, once nothing uses it, deletes it
    assert f"kept {old_arn} for a later run: still used by cloudfront:{dist}" in result["reason"]
    proxy_client.configure(w.stack.aws_endpoint_url, inuse_lag=0)
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    arns = [c["CertificateArn"] for c in w.acm().list_certificates(
        Includes={"keyTypes": ["RSA_2048", "EC_prime256v1"]})["CertificateSummaryList"]]
    assert arns == [new_arn], "the old RSA certificate is deleted once nothing uses it"
    assert f"deleted {old_arn}" in report["certificates"][0]["reason"]


def test_an_old_arn_still_in_use_is_kept(w, capsys):
    cf = boto3.client("cloudfront")
    ours = world.create_distribution(cf, ["www.example.test"])
    spec = {"name": "site", "domains": ["example.test", "*.example.test"], "key": "rsa-2048",
            "deploy": {"cloudfront": {"distributions": [ours]}}}
    assert w.run_json(w.write_config([spec]), capsys=capsys)[0] == 0
    old_arn = _arn(w, "site")
    # someone else attached our certificate to another distribution by hand
    theirs = world.create_distribution(cf, ["api.example.test"])
    got = cf.get_distribution_config(Id=theirs)
    config = got["DistributionConfig"]
    config["ViewerCertificate"] = {"ACMCertificateArn": old_arn, "SSLSupportMethod": "sni-only",
                                   "MinimumProtocolVersion": "TLSv1.2_2021", "CloudFrontDefaultCertificate": False}
    cf.update_distribution(Id=theirs, IfMatch=got["ETag"], DistributionConfig=config)

    code, report = w.run_json(w.write_config([{**spec, "key": "ec-p256"}]), capsys=capsys)
    assert code == 0
    reason = report["certificates"][0]["reason"]
    assert f"kept {old_arn} for a later run: still used by " in reason and f"cloudfront:{theirs}" in reason
    w.acm().describe_certificate(CertificateArn=old_arn)  # still there


def test_preferred_chain_picks_the_alternate_root(w, capsys, restart_pebble):
    restart_pebble(pebble_env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    alternate_root = pebble_client.root_pem(w.stack, 1)
    wanted = pki.common_name(pki.load_certificate(alternate_root).subject)
    default_root = pki.common_name(pki.load_certificate(pebble_client.root_pem(w.stack, 0)).subject)
    assert wanted != default_root
    config = w.write_config([cert(preferred_chain=wanted)])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    stored = w.material("site")
    fullchain = stored["cert_pem"] + stored["chain_pem"]
    pki.verify_against_root(pki.split_pem_chain(fullchain), alternate_root)


def test_a_broken_chain_is_never_stored_or_deployed(w, capsys, monkeypatch):
    config = w.write_config([cert()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    before = w.current("site")
    arn = _arn(w, "site")
    # The CA hands out a chain whose intermediate did not sign the leaf.
    wrong_intermediate = MiniCA(intermediate_name=pki.describe(leaf_pem(w)).issuer).int_pem
    from acme_flow.adapters import acme_ca
    real_finalize = acme_ca.AcmeCaAdapter.finalize

    def tampered(self, order, csr_pem, deadline):
        chains = real_finalize(self, order, csr_pem, deadline).fullchains
        leaf = pki.split_pem_chain(chains[0])[0]
        return acme_ca.IssuedChains((leaf + wrong_intermediate,))

    monkeypatch.setattr(acme_ca.AcmeCaAdapter, "finalize", tampered)
    code, report = w.run_json(config, "--force", capsys=capsys)
    assert code == 1
    assert "chain broken" in report["certificates"][0]["reason"]
    assert w.current("site")["serial"] == before["serial"]
    served = w.acm().get_certificate(CertificateArn=arn)["Certificate"]
    assert pki.describe(served).serial == before["serial"], "the old certificate stays deployed"


def test_external_account_binding(w, capsys, restart_pebble):
    hmac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    restart_pebble(pebble_config={"externalAccountBindingRequired": True,
                                  "externalAccountMACKeys": {"kid-1": hmac}})
    boto3.client("ssm").put_parameter(Name="/certrenew/eab-hmac", Value=hmac, Type="SecureString")
    config = w.write_config([cert()])
    code, report = w.run_json(config, capsys=capsys)
    assert code == 1, "without EAB the CA refuses to register"
    assert "externalAccountRequired" in report["certificates"][0]["reason"] or \
        "external account" in report["certificates"][0]["reason"].lower()

    doc = json.loads(json.dumps(__import__("yaml").safe_load(config.read_text())))
    doc["acme"]["eab"] = {"kid": "kid-1", "hmac_key": "ssm:/certrenew/eab-hmac"}
    config.write_text(__import__("yaml").safe_dump(doc))
    # the key written by the refused attempt is reused; the CA now accepts it with EAB
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0, report
    assert report["certificates"][0]["outcome"] == "issued"


def test_revoke_then_the_next_run_reissues(w, capsys):
    config = w.write_config([cert()])
    assert w.run_json(config, capsys=capsys)[0] == 0
    serial = w.current("site")["serial"]
    assert cli.main(["revoke", "site", "--reason", "superseded", "--config", str(config)]) == 0
    assert "revoked site" in capsys.readouterr().out
    status = _status(config, capsys)
    assert status[0]["due"] and "revoked (superseded)" in status[0]["why"]
    code, report = w.run_json(config, capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "renewed"
    assert w.current("site")["serial"] != serial


def test_status_shows_expiry_window_and_targets(w, capsys):
    config = w.write_config([cert(), cert("other")])
    assert w.run_json(config, "--only", "site", capsys=capsys)[0] == 0
    rows = {r["name"]: r for r in _status(config, capsys)}
    site, other = rows["site"], rows["other"]
    assert site["serial"] == w.current("site")["serial"] and 80 < site["days_left"] <= 90
    assert site["ari_window"] is not None and not site["due"]
    assert site["targets"][0].startswith("acm:arn:aws:acm:us-east-1:")
    assert other["serial"] is None and other["due"] and "no certificate yet" in other["why"]
    assert cli.main(["status", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "site" in table and "NEXT RENEWAL" in table and "deployed targets:" in table


def _status(config, capsys) -> list[dict]:
    assert cli.main(["status", "--config", str(config), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _arn(w, name: str) -> str:
    return next(p["arn"] for p in w.current(name)["deployment"] if p["target"] == "acm:us-east-1")


def _expire_next_check(w, name: str) -> None:
    """Pretend the CA's Retry-After has passed, so the next run asks for the window again."""
    key = f"certificates/{name}/current.json"
    current = w.current(name)
    current["ari"]["next_check"] = (NOW() - dt.timedelta(seconds=1)).isoformat()
    w.s3.put_object(Bucket=STATE_BUCKET, Key=key, Body=json.dumps(current).encode())
