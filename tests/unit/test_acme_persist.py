"""The dns-persist-01 challenge class registered with the `acme` library."""
from __future__ import annotations

import json

import josepy as jose
import pytest
from acme import challenges, client, messages
from cryptography.hazmat.primitives.asymmetric import ec

from acme_flow.adapters.acme_ca import persist as acme_persist
from acme_flow.adapters.acme_ca.persist import DnsPersist01, DnsPersist01Response
from acme_flow.persist import Draft, PersistError, pick_draft

TOKEN = "nQ-cvkFvI-jJuo9bqRmE6bvhKDaWhRFq_Ecb5-4jS8A"
# One authorization exactly as Debian's Pebble 2.10.0 sent it on the devstack (wildcard order).
PEBBLE_AUTHZ = {
    "status": "pending",
    "identifier": {"type": "dns", "value": "example.test"},
    "challenges": [
        {"type": "dns-account-01", "url": "https://127.0.0.1:55981/chalZ/Qi2b", "token": TOKEN,
         "status": "pending"},
        {"type": "dns-persist-01", "url": "https://127.0.0.1:55981/chalZ/aiwG", "status": "pending",
         "issuer-domain-names": ["pebble.letsencrypt.org"]},
        {"type": "dns-01", "url": "https://127.0.0.1:55981/chalZ/ON0P", "token": TOKEN, "status": "pending"},
    ],
    "expires": "2026-12-07T22:21:03Z",
    "wildcard": True,
}
DRAFT_02_CHALLENGE = {"type": "dns-persist-01", "url": "https://ca.example/acme/authz/1234/0", "status": "pending",
                      "issuerDomainNames": ["authority.example", "ca.example.net"]}
# RFC 7638 §3.1's example key; its thumbprint is the one draft -02 §10.2 hashes.
RFC7638_KEY = {"kty": "RSA", "e": "AQAB", "n": (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknj"
    "hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQv"
    "RL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnq"
    "DKgw")}


def authz(body: dict = PEBBLE_AUTHZ) -> messages.AuthorizationResource:
    return messages.AuthorizationResource(body=messages.Authorization.from_json(body), uri="https://ca/authz/1")


def test_pebble_authorization_parses_into_the_typed_challenge():
    challb = acme_persist.find_dns_persist(authz())
    assert isinstance(challb.chall, DnsPersist01)
    assert challb.uri == "https://127.0.0.1:55981/chalZ/aiwG"
    assert challb.status == messages.STATUS_PENDING
    assert challb.chall.issuer_domain_names == ("pebble.letsencrypt.org",)
    assert challb.chall.accounturi is None
    assert pick_draft(challb.chall.fields_json()) is Draft.D01


def test_pebble_challenge_round_trips_through_json():
    original = PEBBLE_AUTHZ["challenges"][1]
    challb = messages.ChallengeBody.from_json(original)
    assert json.loads(challb.json_dumps()) == original
    assert messages.ChallengeBody.from_json(json.loads(challb.json_dumps())) == challb


def test_draft_02_challenge_and_the_pebble_2_10_1_accounturi():
    challb = messages.ChallengeBody.from_json({**DRAFT_02_CHALLENGE, "accounturi": "https://ca.example/acct/123"})
    assert challb.chall.issuer_domain_names == ("authority.example", "ca.example.net")
    assert challb.chall.accounturi == "https://ca.example/acct/123"
    assert pick_draft(challb.chall.fields_json()) is Draft.D02
    assert json.loads(challb.json_dumps())["issuerDomainNames"] == ["authority.example", "ca.example.net"]
    assert "issuer-domain-names" not in json.loads(challb.json_dumps())


def test_a_challenge_without_issuer_names_parses_but_says_so_when_asked():
    challb = messages.ChallengeBody.from_json({"type": "dns-persist-01", "url": "u", "status": "pending"})
    assert isinstance(challb.chall, DnsPersist01)
    with pytest.raises(PersistError, match="issuer domain names"):
        challb.chall.issuer_domain_names


def test_the_response_posts_an_empty_object():
    response = DnsPersist01Response()
    assert response.json_dumps() == "{}"
    assert isinstance(challenges.ChallengeResponse.from_json({"type": "dns-persist-01"}), DnsPersist01Response)
    assert isinstance(DnsPersist01(issuer_domain_names_01=("a.example",)).response(), DnsPersist01Response)


def test_the_library_posts_the_empty_object_not_a_post_as_get():
    """ClientNetwork sends `b''` (POST-as-GET) for a falsy object, and a josepy object without
    fields is falsy (len 0): Pebble then answers with the challenge and no "up" link."""
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    network = client.ClientNetwork(key, alg=jose.ES256)
    signed = json.loads(network._wrap_in_jws(DnsPersist01Response(), b"nonce", "https://ca/chalZ/1"))
    assert jose.b64decode(signed["payload"].encode()) == b"{}"


def test_registering_does_not_change_how_other_challenges_parse():
    body = authz().body
    kinds = {type(c.chall) for c in body.challenges}
    assert kinds == {challenges.UnrecognizedChallenge, DnsPersist01, challenges.DNS01}
    dns01 = next(c for c in body.challenges if isinstance(c.chall, challenges.DNS01))
    assert dns01.chall.encode("token") == TOKEN
    assert challenges.Challenge.TYPES["dns-01"] is challenges.DNS01
    assert challenges.Challenge.TYPES["http-01"] is challenges.HTTP01
    assert challenges.ChallengeResponse.TYPES["dns-01"] is challenges.DNS01Response


def test_no_dns_persist_challenge_gives_none():
    body = {**PEBBLE_AUTHZ, "challenges": [PEBBLE_AUTHZ["challenges"][2]]}
    assert acme_persist.find_dns_persist(authz(body)) is None


def test_account_thumbprint_matches_rfc_7638_and_the_draft_02_vector():
    key = jose.JWK.from_json(RFC7638_KEY)
    assert acme_persist.account_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
