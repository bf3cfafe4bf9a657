"""S3StateStore.save_account against the answers S3 gives two workers racing on a fresh stack."""
from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters.s3_state import S3StateStore
from acme_flow.models import AccountState

DIRECTORY = "https://acme.example/dir"


def conflict(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "conflict"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


class RacingS3:
    """An in-memory bucket whose first create-only write of the account key answers `answer`,
    after `winner` (another worker) has, or has not, written its own key."""

    def __init__(self, answer: ClientError, winner: str | None) -> None:
        self.objects: dict[str, bytes] = {}
        self.answer = answer
        self.winner = winner
        self.puts: list[str] = []

    def put_object(self, Bucket, Key, Body, **kw):
        self.puts.append(Key)
        if Key.endswith("account-key.pem") and self.answer is not None:
            answer, self.answer = self.answer, None
            if self.winner is not None:
                self.objects[Key] = self.winner.encode()
            raise answer
        if kw.get("IfNoneMatch") == "*" and Key in self.objects:
            raise conflict("PreconditionFailed", 412)
        self.objects[Key] = Body
        return {"ETag": '"e"'}

    def get_object(self, Bucket, Key):
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key]), "ETag": '"e"'}


def ours() -> AccountState:
    return AccountState(directory=DIRECTORY, url=None, key_pem="OUR KEY", email="ops@example.com")


@pytest.mark.parametrize("answer", [conflict("ConditionalRequestConflict", 409), conflict("PreconditionFailed", 412)])
def test_a_lost_race_returns_the_winners_account(answer):
    s3 = RacingS3(answer, winner="WINNER KEY")
    store = S3StateStore(s3, "state")
    got = store.save_account(ours())
    assert got.key_pem == "WINNER KEY"
    assert s3.objects[store.account_prefix(DIRECTORY) + "account-key.pem"] == b"WINNER KEY"
    assert not any(k.endswith("account.json") for k in s3.puts), "the loser writes nothing of its own"


def test_a_409_with_no_winner_yet_writes_again():
    """409 ConditionalRequestConflict: a conflicting write was in progress; if it left nothing, ours goes in."""
    s3 = RacingS3(conflict("ConditionalRequestConflict", 409), winner=None)
    store = S3StateStore(s3, "state")
    got = store.save_account(ours())
    assert got.key_pem == "OUR KEY"
    prefix = store.account_prefix(DIRECTORY)
    assert s3.objects[prefix + "account-key.pem"] == b"OUR KEY"
    assert prefix + "account.json" in s3.objects


def test_other_errors_are_not_a_lost_race():
    s3 = RacingS3(conflict("AccessDenied", 403), winner=None)
    with pytest.raises(ClientError, match="AccessDenied"):
        S3StateStore(s3, "state").save_account(ours())
