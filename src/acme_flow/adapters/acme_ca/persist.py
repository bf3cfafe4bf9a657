"""dns-persist-01 for the `acme` library, through its own extension point.

`acme` 5.9 parses an unknown challenge type as `UnrecognizedChallenge`; registering
`DnsPersist01` (and its response) under the type makes `ChallengeBody.chall` a typed object and
lets `ClientV2.answer_challenge(challb, DnsPersist01Response())` POST the `{}` the draft asks for.
Importing this module is what registers them.
"""
from __future__ import annotations

from typing import Any, Mapping

import josepy as jose
from acme import challenges, messages

from ...persist import CHALLENGE_TYPE, offered_issuers


def _names(value: Any) -> tuple[str, ...]:
    return tuple(value)


@challenges.ChallengeResponse.register
class DnsPersist01Response(challenges.ChallengeResponse):
    """The answer to a dns-persist-01 challenge: an empty JSON object (the record does the proving)."""

    typ = CHALLENGE_TYPE

    def __bool__(self) -> bool:
        # A josepy object without fields has len 0, and ClientNetwork posts `b''` (POST-as-GET)
        # for a falsy object: the CA would never be told to validate.
        return True


@challenges.Challenge.register
class DnsPersist01(challenges.Challenge):
    """A dns-persist-01 challenge: no token, the CA's issuer domain names, maybe our account URL.

    -01 CAs send `issuer-domain-names`, -02 CAs `issuerDomainNames`; Pebble >= 2.10.1 adds
    `accounturi` (2.10.0 does not).
    """

    typ = CHALLENGE_TYPE
    issuer_domain_names_01: tuple[str, ...] | None = jose.field(
        "issuer-domain-names", omitempty=True, default=None, decoder=_names, encoder=list)
    issuer_domain_names_02: tuple[str, ...] | None = jose.field(
        "issuerDomainNames", omitempty=True, default=None, decoder=_names, encoder=list)
    accounturi: str | None = jose.field("accounturi", omitempty=True, default=None)

    @property
    def issuer_domain_names(self) -> tuple[str, ...]:
        """The offered issuer names, normalized, whichever draft's field carries them
        (raises PersistError when there are none or more than ten)."""
        return offered_issuers(self.fields_json())

    def fields_json(self) -> Mapping[str, Any]:
        """The challenge's own fields as the CA spelled them (for `persist.pick_draft`)."""
        return self.to_partial_json()

    def response(self) -> DnsPersist01Response:
        return DnsPersist01Response()


def find_dns_persist(authzr: messages.AuthorizationResource) -> messages.ChallengeBody | None:
    """The authorization's dns-persist-01 challenge body, or None when the CA offers none."""
    for challb in authzr.body.challenges:
        if isinstance(challb.chall, DnsPersist01):
            return challb
    return None


def account_thumbprint(key: jose.JWK) -> str:
    """The 43-character unpadded base64url SHA-256 JWK thumbprint (-02's hash input `key`)."""
    return jose.b64encode(key.public_key().thumbprint()).decode("ascii")
