"""PROOF of the devstack side of CA fallback (issue 12), with the `acme` library, not the product.

The fallback CA (a second Pebble, EAB required) registers only with EAB, issues through DNS-01
on the devstack's zones, and its certificates chain to its own root, not the primary's. The
fault front before the primary Pebble answers what a rule names with a problem document,
passes the rest, counts its hits, lets orders through once cleared, and can refuse connections.
"""
from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import time
import urllib.error
import urllib.request

import boto3
import josepy as jose
import pytest
import requests
from acme import challenges, client, crypto_util, errors as acme_errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acme_flow import pki
from devstack import pebble_client, world
from devstack import stack as devstack
from devstack.acme_faults import RATE_LIMITED, SERVER_INTERNAL, AcmeFaultFront, FaultRule
from devstack.procs import is_running

# the library logs every JWS at DEBUG, which the secret scan rightly refuses
pytestmark = pytest.mark.usefixtures("quiet_acme_library")

ZONE = "fallback.test"
POLL_DEADLINE = 60.0


@pytest.fixture
def zone(aws):
    return world.create_zone(boto3.client("route53"), ZONE)


def acme_client(directory: str, ca_bundle: str) -> client.ClientV2:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=ca_bundle, user_agent="certrenew-test")
    net.session.trust_env = False  # no proxy, no REQUESTS_CA_BUNDLE from the machine
    return client.ClientV2(client.ClientV2.get_directory(directory, net), net)


def register(acme: client.ClientV2, kid: str | None = None, hmac: str | None = None) -> messages.RegistrationResource:
    eab = None
    if kid is not None:
        eab = messages.ExternalAccountBinding.from_data(acme.net.key.public_key(), kid, hmac, acme.directory)
    return acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True,
                                                               external_account_binding=eab))


def new_order(acme: client.ClientV2, *names: str) -> messages.OrderResource:
    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return acme.new_order(crypto_util.make_csr(key_pem, list(names)))


def issue(acme: client.ClientV2, zone_id: str, *names: str) -> list[str]:
    """Order, DNS-01 (the TXT written as the zone's administrator), finalize: the full chain."""
    orderr = new_order(acme, *names)
    for authzr in orderr.authorizations:
        (challb,) = [c for c in authzr.body.challenges if isinstance(c.chall, challenges.DNS01)]
        name = challb.chall.validation_domain_name(authzr.body.identifier.value)
        world.upsert_txt(boto3.client("route53"), zone_id, name, [challb.chall.validation(acme.net.key)])
        acme.answer_challenge(challb, challb.chall.response(acme.net.key))
    deadline = dt.datetime.now() + dt.timedelta(seconds=POLL_DEADLINE)
    final = acme.finalize_order(acme.poll_authorizations(orderr, deadline), deadline)
    return pki.split_pem_chain(final.fullchain_pem)


def common_name(pem: str) -> str:
    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()


def issuer_name(pem: str) -> str:
    return x509.load_pem_x509_certificate(pem.encode()).issuer.rfc4514_string()


# ---------------------------------------------------------------------------- the fallback CA

def test_the_fallback_ca_is_a_ca_of_its_own_that_requires_eab(stack, fallback_ca):
    primary, fallback = pebble_client.directory(stack), pebble_client.directory(fallback_ca)
    assert fallback["meta"]["externalAccountRequired"] is True
    assert primary["meta"].get("externalAccountRequired") is not True
    assert fallback["meta"]["caaIdentities"] == ["fallback.pebble.test"] == [fallback_ca.caa_identity]
    assert fallback["meta"]["caaIdentities"] != primary["meta"]["caaIdentities"]
    assert fallback_ca.acme_directory != stack.acme_directory
    assert fallback_ca.ca_bundle == stack.ca_bundle, "the product trusts one bundle: both Pebbles chain to it"
    assert common_name(pebble_client.root_pem(fallback_ca)) != common_name(pebble_client.root_pem(stack))
    assert devstack.load_fallback(stack.state_dir) == fallback_ca, "recorded in stack.json"
    assert devstack.load(stack.state_dir) is not None


def test_registration_without_eab_is_refused(fallback_ca):
    with pytest.raises(messages.Error) as refused:
        register(acme_client(fallback_ca.acme_directory, fallback_ca.ca_bundle))
    assert refused.value.code == "externalAccountRequired", refused.value


def test_registration_with_a_wrong_hmac_is_refused(fallback_ca):
    wrong = jose.b64.b64encode(b"not the key the CA handed out, 32b").decode()
    with pytest.raises(messages.Error) as refused:
        register(acme_client(fallback_ca.acme_directory, fallback_ca.ca_bundle), fallback_ca.eab_kid, wrong)
    assert refused.value.code in ("unauthorized", "malformed"), refused.value


def test_the_fallback_issues_with_eab_and_chains_to_its_own_root(aws, fallback_ca, zone):
    acme = acme_client(fallback_ca.acme_directory, fallback_ca.ca_bundle)
    account = register(acme, fallback_ca.eab_kid, fallback_ca.eab_hmac)
    assert account.body.status == "valid"

    chain = issue(acme, zone, f"www.{ZONE}", ZONE)

    assert sorted(pki.describe(chain[0]).names) == sorted([ZONE, f"www.{ZONE}"])
    fallback_root, primary_root = pebble_client.root_pem(fallback_ca), pebble_client.root_pem(aws)
    pki.verify_against_root(chain, fallback_root)
    with pytest.raises(Exception, match="(?i)sign|issu"):
        pki.verify_against_root(chain, primary_root)
    assert issuer_name(chain[-1]) == common_name(fallback_root) != common_name(primary_root)


def test_the_eab_hmac_goes_into_ssm_as_a_secure_string(aws, fallback_ca):
    ssm = boto3.client("ssm")
    reference = fallback_ca.put_eab_hmac(ssm)
    assert reference == "ssm:/certrenew/fallback-eab-hmac"
    stored = ssm.get_parameter(Name="/certrenew/fallback-eab-hmac", WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString"
    assert stored["Value"] == fallback_ca.eab_hmac
    assert fallback_ca.put_eab_hmac(ssm) == reference, "a second put overwrites"
    assert fallback_ca.acme_settings(reference, "ops@example.test") == {
        "directory": fallback_ca.acme_directory, "email": "ops@example.test",
        "eab": {"kid": "fallback-kid-1", "hmac_key": reference}}


def test_restarting_the_fallback_gives_a_fresh_ca_and_stopping_it_leaves_the_stack(stack, fallback_ca):
    old_root = pebble_client.root_pem(fallback_ca)
    fresh = devstack.start_fallback_pebble(stack, eab_kid="kid-9", eab_hmac=fallback_ca.eab_hmac)
    assert not is_running(fallback_ca.pid)
    assert common_name(pebble_client.root_pem(fresh)) != common_name(old_root)
    assert fresh.eab_kid == "kid-9"

    assert devstack.stop_fallback_pebble(stack) is True
    assert not is_running(fresh.pid)
    assert devstack.load_fallback(stack.state_dir) is None
    assert devstack.load(stack.state_dir) == stack, "the rest of the stack runs on"
    assert devstack.stop_fallback_pebble(stack) is False


def test_down_stops_the_fallback_with_the_rest(tmp_path):
    other = devstack.up(tmp_path / "other")
    try:
        started = time.monotonic()
        fallback = devstack.start_fallback_pebble(other)
        assert time.monotonic() - started < 5, "the second Pebble starts in about a second"
        assert json.loads((other.state_dir / "stack.json").read_text())["pids"]["pebble_fallback"] == fallback.pid
    finally:
        assert devstack.down(other.state_dir) is True
    assert not is_running(fallback.pid)
    assert not any(is_running(pid) for pid in other.pids.values())


# ---------------------------------------------------------------------------- the fault front

def test_new_order_fails_through_the_front_while_the_rest_passes(aws, acme_faults, zone):
    directory, front = acme_faults
    front.fail("/order-plz", status=503, type=SERVER_INTERNAL, detail="the primary CA is unwell")
    acme = acme_client(directory, aws.ca_bundle)
    account = register(acme)
    assert account.uri.startswith(directory.rsplit("/", 1)[0]), "Pebble's URLs point at the front (Host kept)"

    for attempt in (1, 2):
        with pytest.raises(messages.Error) as refused:
            new_order(acme, f"www.{ZONE}")
        assert (refused.value.code, refused.value.detail) == ("serverInternal", "the primary CA is unwell")
        assert front.hits("/order-plz") == attempt
    seen = [(e.path, e.status, e.injected) for e in front.exchanges]
    assert ("/order-plz", 503, True) in seen
    assert ("/sign-me-up", 201, False) in seen, "newAccount passed through"

    front.clear()
    chain = issue(acme, zone, f"www.{ZONE}")
    pki.verify_against_root(chain, pebble_client.root_pem(aws))
    assert front.hits() == 0 and front.exchanges[-1].injected is False


def test_a_rule_with_a_count_answers_that_many_then_passes(aws, acme_faults):
    directory, front = acme_faults
    front.add_rule({"path": "/order-plz", "status": 503, "count": 1})
    acme = acme_client(directory, aws.ca_bundle)
    register(acme)
    with pytest.raises(messages.Error):
        new_order(acme, f"once.{ZONE}")
    assert new_order(acme, f"once.{ZONE}").body.status == messages.STATUS_PENDING
    assert front.rules() == [{**FaultRule("/order-plz", count=1).__dict__, "hits": 1}]


def _raw_post(url: str, ca_bundle: str) -> tuple[int, dict, dict]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(
        context=ssl.create_default_context(cafile=ca_bundle)))
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/jose+json"})
    with pytest.raises(urllib.error.HTTPError) as answered:
        opener.open(request, timeout=10)
    return answered.value.code, dict(answered.value.headers), json.loads(answered.value.read())


def test_the_answer_is_an_rfc8555_problem_document_with_a_nonce(stack, acme_faults):
    directory, front = acme_faults
    front.fail("/order-plz", status=429, type=RATE_LIMITED, detail="too many orders", retry_after=7,
               method="POST")
    status, headers, problem = _raw_post(directory.replace("/dir", "/order-plz"), stack.ca_bundle)
    assert status == 429
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "7"
    assert headers.get("Replay-Nonce"), "a fresh nonce from Pebble, as RFC 8555 6.5 asks"
    assert problem == {"type": RATE_LIMITED, "detail": "too many orders", "status": 429}
    assert front.hits("/order-plz") == 1


def test_down_refuses_connections_and_up_serves_again(aws, acme_faults):
    directory, front = acme_faults
    acme = acme_client(directory, aws.ca_bundle)  # holds a keep-alive connection to the front
    register(acme)

    front.go_down()
    assert front.is_down
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", front.port), timeout=2).close()
    with pytest.raises((requests.exceptions.ConnectionError, acme_errors.ClientError)):
        new_order(acme, f"down.{ZONE}")
    with pytest.raises(requests.exceptions.ConnectionError):
        acme_client(directory, aws.ca_bundle)

    front.come_up()
    assert front.directory == directory, "the same port, so the same URLs"
    assert new_order(acme, f"down.{ZONE}").body.status == messages.STATUS_PENDING


def test_a_front_before_the_fallback_ca(stack, fallback_ca):
    with AcmeFaultFront.for_stack(stack, upstream=fallback_ca) as front:
        front.fail("/sign-me-up", status=503)
        acme = acme_client(front.directory, stack.ca_bundle)
        assert acme.directory.meta.external_account_required is True
        with pytest.raises(messages.Error) as refused:
            register(acme, fallback_ca.eab_kid, fallback_ca.eab_hmac)
        assert refused.value.code == "serverInternal"
        front.clear()
        assert register(acme, fallback_ca.eab_kid, fallback_ca.eab_hmac).body.status == "valid"
