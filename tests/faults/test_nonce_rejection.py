"""Pebble rejecting half of all good nonces (PEBBLE_WFE_NONCEREJECT=50): every run still succeeds.

certbot retries a badNonce once and fails most single-name runs at this rate; certrenew's
network layer retries up to six times per request and its CA calls retry transient problems
with backoff on top. Each run is a full order (a fresh name, or --force), stored and imported.
"""
from __future__ import annotations

import json
import logging

import pytest

from acme_flow import cli
from devstack_world import STATE_BUCKET, make_world

RUNS = 10


@pytest.fixture
def w(aws, tmp_path, monkeypatch, restart_pebble):
    restart_pebble(pebble_env={"PEBBLE_WFE_NONCEREJECT": "50"})
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def test_every_run_succeeds_when_half_the_nonces_are_rejected(w, capsys, caplog, figures):
    caplog.set_level(logging.DEBUG, logger="certrenew.acme")
    config = w.write_config([{"name": "one", "domains": ["one.example.test"],
                              "deploy": {"acm": {"regions": ["us-east-1"]}}}])
    outcomes, serials = [], set()
    for run in range(RUNS):
        code = cli.main(["run", "--config", str(config), "--json", *(["--force"] if run else [])])
        report = json.loads(capsys.readouterr().out)
        outcomes.append((code, report["certificates"][0]["outcome"], report["certificates"][0]["reason"]))
        serials.add(w.current("one")["serial"])
    succeeded = sum(1 for code, outcome, _ in outcomes if code == 0 and outcome in ("issued", "renewed"))
    rejected = sum("badNonce" in r.getMessage() for r in caplog.records)
    figures["nonce rejection 50%"].update(succeeded=succeeded, runs=RUNS, bad_nonces_absorbed=rejected)
    assert succeeded == RUNS, outcomes
    assert len(serials) == RUNS, "every run issued a new certificate"
    assert rejected >= 5, "Pebble did reject nonces (the fault was really on)"
    assert w.acme_records() == {}
