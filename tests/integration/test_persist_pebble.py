"""PROOF: dns-persist-01 against the real Pebble 2.10 on the devstack, with the `acme` library.

The record is written once into a moto Route53 zone (as the zone's administrator, not as the
renewer), Pebble reads it through the DNS bridge over TCP, the challenge is answered with `{}`,
and a certificate for an apex and a wildcard name is issued. Debian's Pebble 2.10.0 speaks
draft -01 and sends no `accounturi`, so the account URL comes from our own registration.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import boto3
import josepy as jose
import pytest
from acme import client, crypto_util, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acme_flow import persist, pki
from acme_flow.adapters.acme_ca.persist import DnsPersist01, DnsPersist01Response, find_dns_persist
from acme_flow.persist import Draft, Verdict, WantedRecord
from devstack import pebble_client, world

# the library logs every JWS at DEBUG, which the secret scan rightly refuses
pytestmark = pytest.mark.usefixtures("quiet_acme_library")

ZONE = "persist.test"
POLL_DEADLINE = 60.0


@pytest.fixture
def zone(aws):
    return world.create_zone(boto3.client("route53"), ZONE)


@pytest.fixture
def acme(aws):
    """A fresh account on the devstack's Pebble: (ClientV2, account URL)."""
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=aws.ca_bundle, user_agent="certrenew-test")
    net.session.trust_env = False  # no proxy, no REQUESTS_CA_BUNDLE from the machine
    acme_client = client.ClientV2(client.ClientV2.get_directory(aws.acme_directory, net), net)
    account = acme_client.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return acme_client, account.uri


def order(acme_client: client.ClientV2, *names: str) -> tuple[messages.OrderResource, bytes]:
    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return acme_client.new_order(crypto_util.make_csr(key_pem, list(names))), key_pem


def publish(zone_id: str, domain: str, values: list[str]) -> None:
    """Write the record set as the zone's administrator (the renewer never touches it)."""
    boto3.client("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": persist.record_name(domain), "Type": "TXT", "TTL": 60,
            "ResourceRecords": [{"Value": persist.txt_rdata(v)} for v in values]}}]})


def published(zone_id: str, domain: str) -> list[str]:
    records = world.txt_records(boto3.client("route53"), zone_id).get(persist.record_name(domain), [])
    return [persist.txt_value(r) for r in records]


def wanted_for(acme_client: client.ClientV2, account_url: str, challb, wildcard: bool) -> WantedRecord:
    meta = acme_client.directory.meta.to_partial_json()
    issuer = persist.pick_issuer(challb.chall.issuer_domain_names, meta.get("caaIdentities"))
    return WantedRecord(issuer=issuer, account_url=account_url, wildcard=wildcard,
                        persist_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30))


def answer_and_poll(acme_client: client.ClientV2, authzr: messages.AuthorizationResource):
    challb = find_dns_persist(authzr)
    acme_client.answer_challenge(challb, DnsPersist01Response())
    deadline = time.monotonic() + POLL_DEADLINE
    while time.monotonic() < deadline:
        authzr, _ = acme_client.poll(authzr)
        if authzr.body.status not in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
            return authzr
        time.sleep(0.25)
    raise AssertionError(f"authorization {authzr.uri} still {authzr.body.status} after {POLL_DEADLINE}s")


def test_apex_and_wildcard_issue_through_one_persistent_record(aws, acme, zone):
    acme_client, account_url = acme
    orderr, _ = order(acme_client, ZONE, f"*.{ZONE}")
    assert len(orderr.authorizations) == 2
    challbs = [find_dns_persist(a) for a in orderr.authorizations]
    assert all(isinstance(c.chall, DnsPersist01) for c in challbs)
    assert {c.chall.issuer_domain_names for c in challbs} == {("pebble.letsencrypt.org",)}
    assert all(persist.pick_draft(c.chall.fields_json(), acme_client.directory.meta.to_partial_json()) is Draft.D01
               for c in challbs)

    # one record with policy=wildcard serves both the apex and the wildcard authorization
    wanted = wanted_for(acme_client, account_url, challbs[0], wildcard=True)
    other_ca = "pki.goog; accounturi=https://dv.acme-v02.api.pki.goog/account/elsewhere"
    assert persist.judge([other_ca], wanted, Draft.D01, now=dt.datetime.now(dt.timezone.utc)).verdict is (
        Verdict.MISSING)
    publish(zone, ZONE, [other_ca, wanted.value(Draft.D01)])
    judgement = persist.judge(published(zone, ZONE), wanted, Draft.D01, now=dt.datetime.now(dt.timezone.utc))
    assert judgement.verdict is Verdict.PRESENT, judgement.reason
    assert judgement.others == (other_ca,)

    for authzr in orderr.authorizations:
        done = answer_and_poll(acme_client, authzr)
        assert done.body.status == messages.STATUS_VALID, done.body.to_json()

    deadline = dt.datetime.now() + dt.timedelta(seconds=POLL_DEADLINE)
    final = acme_client.finalize_order(acme_client.poll_authorizations(orderr, deadline), deadline)
    chain = pki.split_pem_chain(final.fullchain_pem)
    assert sorted(pki.describe(chain[0]).names) == sorted([ZONE, f"*.{ZONE}"])
    pki.verify_against_root(chain, pebble_client.root_pem(aws))
    assert published(zone, ZONE) == [other_ca, wanted.value(Draft.D01)], "the record persists"

    # a renewal: new authorizations (PEBBLE_AUTHZREUSE=0), validated by the same record, no DNS write
    renewal, _ = order(acme_client, ZONE, f"*.{ZONE}")
    assert {a.uri for a in renewal.authorizations}.isdisjoint(a.uri for a in orderr.authorizations)
    for authzr in renewal.authorizations:
        assert answer_and_poll(acme_client, authzr).body.status == messages.STATUS_VALID


NEGATIVE = {
    # what the record gets wrong -> (order names, how to spoil the wanted record, the verdict's words)
    "another account": ([f"neg.{ZONE}"], lambda w: replace(w, account_url=w.account_url + "-someone-else"),
                        "someone-else"),
    "no policy=wildcard": ([f"*.wild.{ZONE}"], lambda w: replace(w, wildcard=False), "policy=wildcard"),
    "persistUntil passed": ([f"old.{ZONE}"], lambda w: replace(w, persist_until=dt.datetime(2020, 1, 1,
                                                                                             tzinfo=dt.timezone.utc)),
                            "has passed"),
}


@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_a_record_that_does_not_fit_makes_the_authorization_invalid(acme, zone, case):
    names, spoil, words = NEGATIVE[case]
    acme_client, account_url = acme
    orderr, _ = order(acme_client, *names)
    (authzr,) = orderr.authorizations
    wanted = wanted_for(acme_client, account_url, find_dns_persist(authzr), wildcard=names[0].startswith("*."))
    publish(zone, names[0], [spoil(wanted).value(Draft.D01)])
    judgement = persist.judge(published(zone, names[0]), wanted, Draft.D01, now=dt.datetime.now(dt.timezone.utc))
    assert judgement.verdict is Verdict.STALE and words in judgement.reason, judgement

    done = answer_and_poll(acme_client, authzr)
    assert done.body.status == messages.STATUS_INVALID
    failed = find_dns_persist(done)
    assert failed.status == messages.STATUS_INVALID
    assert failed.error is not None and failed.error.typ.endswith(":unauthorized"), failed.error
