"""The CA client of a run and the ACME account it acts as.

The client is made on first use (a run with nothing stored and nothing due never talks to the
CA). The account is created once per CA directory and kept in the state store; `bound()` gives
the client acting as it, registering the key with the CA when the CA does not know it yet."""
from __future__ import annotations

from typing import Callable

from .models import AccountState
from .ports import AcmeCa, StateStore


class CaAccess:
    def __init__(self, make: Callable[[], AcmeCa], state: StateStore, directory: str, email: str | None) -> None:
        self._make = make
        self._directory = directory
        self._state = state
        self._email = email
        self._client: AcmeCa | None = None
        self._account: AccountState | None = None  # as bound (registered) in this run

    @property
    def directory(self) -> str:
        return self._directory

    def client(self) -> AcmeCa:
        if self._client is None:
            self._client = self._make()
        return self._client

    def check_registration(self) -> None:
        """What registering needs (the EAB secret) resolves, when no account is stored yet."""
        if self._state.load_account(self._directory) is None:
            self.client().check_registration_inputs()

    def bound(self) -> AcmeCa:
        """The client acting as the account (bound once per run)."""
        ca = self.client()
        if self._account is not None:
            return ca
        account = self._state.load_account(ca.directory)
        if account is None:
            account = self._state.save_account(ca.new_account_key(ca.directory, self._email))
        registered = ca.use_account(account)
        if registered.url != account.url:
            self._state.save_account(registered)
        self._account = registered
        return ca

    @property
    def account_url(self) -> str | None:
        """The bound account's URL (None before `bound()`)."""
        return self._account.url if self._account else None
