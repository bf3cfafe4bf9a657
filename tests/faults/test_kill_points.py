"""A run killed (SIGKILL) at each phase, then run again: nothing is lost, nothing is left behind.

The killed run is a real `certrenew run` process; it is killed the moment its log shows the
phase is done (its stderr is read line by line). The phases and the log line that ends each:

    order     "order <url> for NAME"                 an ACME order exists, nothing published yet
    upsert    "zone Z...: publishing of N TXT names" TXT values in Route53 (and in the ledger)
    answer    "authorizations valid for NAME"        challenges answered and valid
    finalize  "certificate issued for NAME"          the CA issued; nothing stored yet
    stored    "stored NAME version"                  new version written, pointer flipped
    imported  "imported NAME into" / "re-imported"   ACM holds the new certificate; state not updated

A killed run leaves its lease (`locks/NAME.json`) and its challenge ledger behind, both valid
until its deadline plus five minutes. Rather than editing them, the rerun happens "later": it
runs in this process with the system clock moved forward past that expiry (KILLED_TIMEOUT +
LEASE_MARGIN), exactly as the next scheduled run would find them.

Each phase is tried twice: during a first issuance (nothing deployed yet) and during a forced
renewal (the previous certificate must stay current, deployed and valid until the rerun).
After every kill and every rerun: the certificate ACM serves is valid (chain to Pebble's root,
in its validity period, a stored version whose stored key matches); `current.json` points at
complete, sound material; the account key is byte-for-byte the one first written.
After the rerun: issued and deployed everywhere, no `_acme-challenge` TXT record left, no
challenge ledger left, the lease released (deleted), exactly one ACM certificate (an import the killed
run made but never recorded is found again by its tags and re-imported into).
A renewal killed after the CA issued it meets `alreadyReplaced` on the rerun (its order
carried the same `replaces`): the order is placed again without it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys

import pytest

import secret_scan
from acme_flow import bootstrap, cli, pki
from acme_flow.renewal import LEASE_MARGIN
from fault_checks import acm_arns, account_key, check_deployed_certificates, check_pointer
from devstack import pebble_client
from devstack_world import EXPORT_BUCKET, STATE_BUCKET, make_world

KILLED_TIMEOUT = 120  # --timeout of the killed run: its lease lasts this + LEASE_MARGIN
LATER = dt.timedelta(seconds=KILLED_TIMEOUT) + LEASE_MARGIN + dt.timedelta(minutes=5)

PHASES = {
    "order": r"certrenew\.issuance: order \S+ for site:",
    "upsert": r"certrenew\.route53: zone \S+: publishing of \d+ TXT names submitted",
    "answer": r"certrenew\.issuance: authorizations valid for site$",
    "finalize": r"certrenew\.issuance: certificate issued for site ",
    "stored": r"certrenew\.state: stored site version ",
    "imported": r"certrenew\.acm: (re-)?imported site into arn:",
}


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def site() -> dict:
    return {"name": "site", "domains": ["site.example.test", "*.site.example.test"],
            "deploy": {"acm": {"regions": ["us-east-1"]}, "s3": {"bucket": EXPORT_BUCKET, "prefix": "site/"}}}


class Killed:
    def __init__(self, line: str | None, stderr: str, returncode: int) -> None:
        self.line, self.stderr, self.returncode = line, stderr, returncode


def run_and_kill(config, pattern: str, *extra: str) -> Killed:
    """Start `certrenew run`, SIGKILL it as soon as a stderr line matches `pattern`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "acme_flow.cli", "run", "--config", str(config), "--json",
         "--timeout", str(KILLED_TIMEOUT), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    lines, hit = [], None
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if re.search(pattern, line.rstrip("\n")):
                proc.send_signal(signal.SIGKILL)
                hit = line.rstrip("\n")
                break
        lines.append(proc.stderr.read())
    finally:
        if proc.poll() is None and hit is None:
            proc.kill()
        proc.wait(timeout=60)
    stderr = "".join(lines)
    secret_scan.record_output(f"killed `certrenew run {' '.join(extra)}` stderr", stderr)
    return Killed(hit, stderr, proc.returncode)


def rerun_later(w, config, capsys, monkeypatch, *extra: str) -> tuple[int, dict]:
    """The next run, after the killed run's lease and ledger expired (a clock moved forward)."""
    real_now = bootstrap.SystemClock.now
    with monkeypatch.context() as m:
        m.setattr(bootstrap.SystemClock, "now", lambda self: real_now(self) + LATER)
        code = cli.main(["run", "--config", str(config), "--json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out)


def check_after_kill(w, root: str, key: bytes | None, previous: dict | None) -> None:
    served = check_deployed_certificates(w, "site", root)
    current = check_pointer(w, "site")
    if key is not None:
        assert account_key(w) == key, "the account key changed"
    if previous is not None:
        # the previous certificate stays current and deployed: same ARN, an issued serial
        arn = next(p["arn"] for p in previous["deployment"] if p["target"] == "acm:us-east-1")
        assert arn in served, "the deployed ACM certificate disappeared"
        assert current is not None


def check_finished(w, root: str, key: bytes) -> dict:
    current = check_pointer(w, "site")
    assert current is not None
    placements = {p["target"]: p for p in current["deployment"]}
    assert set(placements) == {"acm:us-east-1", f"s3://{EXPORT_BUCKET}/site/"}, placements
    assert {p["serial"] for p in placements.values()} == {current["serial"]}
    served = check_deployed_certificates(w, "site", root)
    assert served[placements["acm:us-east-1"]["arn"]] == current["serial"]
    exported = w.s3.get_object(Bucket=EXPORT_BUCKET, Key="site/cert.pem")["Body"].read().decode()
    assert pki.describe(exported).serial == current["serial"]
    assert w.acme_records() == {}, "orphan _acme-challenge TXT records"
    assert not [k for k in w.state_keys() if k.startswith("challenges/")], "a challenge ledger was left"
    assert "locks/site.json" not in w.state_keys(), "the lease is given back (deleted)"
    assert account_key(w) == key, "the account key changed"
    return current


@pytest.mark.parametrize("phase", list(PHASES))
def test_killed_at_each_phase_then_rerun(w, phase, capsys, monkeypatch, figures):
    root = pebble_client.root_pem(w.stack)
    config = w.write_config([site()])
    survived = figures["kill points"].setdefault("survived", [])

    # 1. killed during the first issuance
    killed = run_and_kill(config, PHASES[phase])
    assert killed.line, f"the run never reached {phase}:\n{killed.stderr[-3000:]}"
    assert killed.returncode == -signal.SIGKILL
    key = account_key(w)
    assert key is not None, "the account key is written before any order"
    check_after_kill(w, root, key, previous=None)
    if phase in ("upsert", "answer"):  # the mess the rerun must sweep is really there
        left = w.acme_records()
        assert left and [k for k in w.state_keys() if k.startswith("challenges/")], "no TXT values left behind"
        figures["kill points"]["TXT names left by killed runs (swept)"] = (
            figures["kill points"].get("TXT names left by killed runs (swept)", 0) + len(left))
    code, report = rerun_later(w, config, capsys, monkeypatch)
    assert code == 0, report
    result = report["certificates"][0]
    assert result["outcome"] in ("issued", "deployed"), result
    first = check_finished(w, root, key)
    arns_after_first = acm_arns()
    assert len(arns_after_first) == 1, (
        f"{len(arns_after_first)} ACM certificates after a first issuance killed at {phase}: "
        "an import whose ARN was never recorded must be found again, not duplicated")
    survived.append(f"{phase}/first-issuance")

    # 2. killed during a forced renewal: the previous certificate stays current and deployed
    killed = run_and_kill(config, PHASES[phase], "--force")
    assert killed.line, f"the renewal never reached {phase}:\n{killed.stderr[-3000:]}"
    check_after_kill(w, root, key, previous=first)
    if phase in ("order", "upsert", "answer", "finalize"):
        assert w.current("site")["serial"] == first["serial"], "nothing was stored: the previous one is current"
    code, report = rerun_later(w, config, capsys, monkeypatch, "--force")
    assert code == 0, report
    assert report["certificates"][0]["outcome"] == "renewed", report
    second = check_finished(w, root, key)
    assert second["serial"] != first["serial"]
    if phase == "finalize":  # the killed run's certificate already replaced the first one
        assert second["replaced"] is None, "ordered again without `replaces` after alreadyReplaced"
    assert acm_arns() == arns_after_first, "a renewal re-imports into the same ARN"
    survived.append(f"{phase}/renewal")
    figures["kill points"]["orphan TXT records after all kills"] = (
        figures["kill points"].get("orphan TXT records after all kills", 0) + len(w.acme_records()))
    figures["kill points"]["orphan ACM certificates after all kills"] = (
        figures["kill points"].get("orphan ACM certificates after all kills", 0) + len(acm_arns()) - 1)
