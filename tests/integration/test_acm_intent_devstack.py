"""On the devstack: a first issue imports into ACM without listing the account's certificates (the
state recorded no unfinished import), even when the account holds certificates for the same names;
a deploy into a new region writes its intent to current.json before the import and clears it after.
(A run killed mid-import and recovered by the next one: tests/faults/test_kill_points.py.)"""
from __future__ import annotations

import pytest

from certfactory import MiniCA
from devstack import proxy_client
from devstack_world import STATE_BUCKET, make_world

REGIONS = ["us-east-1", "eu-west-1"]


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def cert(name: str, regions=REGIONS) -> dict:
    return {"name": name, "domains": [f"{name}.example.test"], "deploy": {"acm": {"regions": list(regions)}}}


def renewer_calls(w, operation: str) -> list[dict]:
    return [c for c in proxy_client.calls(w.stack.aws_endpoint_url, service="acm", operation=operation)
            if c.get("principal", "renewer") == "renewer"]


def test_a_first_issue_lists_no_certificate_of_the_account(w, capsys):
    names = [f"intent{i}" for i in range(3)]
    ca = MiniCA()
    for name in names:  # someone else's certificates for the same names: the old search read their tags
        theirs = ca.leaf([f"{name}.example.test"])
        w.acm().import_certificate(Certificate=theirs.cert_pem.encode(), PrivateKey=theirs.key_pem.encode(),
                                   CertificateChain=theirs.chain_pem.encode())
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = w.run_json(w.write_config([cert(n) for n in names]), capsys=capsys)
    assert code == 0, report
    assert {c["outcome"] for c in report["certificates"]} == {"issued"}
    assert len(renewer_calls(w, "ImportCertificate")) == len(names) * len(REGIONS)
    assert sorted(c["region"] for c in renewer_calls(w, "ListCertificates")) == sorted(REGIONS), \
        "one region check each (MaxItems=1), no listing to find an orphan"
    assert renewer_calls(w, "ListTagsForCertificate") == []
    for name in names:
        assert w.current(name)["importing"] == []


def test_a_deploy_to_a_new_region_records_and_clears_its_intent(w, capsys):
    assert w.run_json(w.write_config([cert("intent", ["us-east-1"])]), capsys=capsys)[0] == 0
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = w.run_json(w.write_config([cert("intent")]), capsys=capsys)
    assert code == 0 and report["certificates"][0]["outcome"] == "deployed", report
    steps = [c["operation"] for c in proxy_client.calls(w.stack.aws_endpoint_url)
             if c["operation"] == "ImportCertificate" or c.get("path", "").endswith("/intent/current.json")
             and c["operation"] == "PutObject"]
    assert steps == ["PutObject", "ImportCertificate", "PutObject"], "the intent is written before the import"
    assert w.current("intent")["importing"] == []
    assert {p["target"] for p in w.current("intent")["deployment"]} == {"acm:us-east-1", "acm:eu-west-1"}
    assert renewer_calls(w, "ListTagsForCertificate") == []
