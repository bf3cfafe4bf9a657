"""Who the records a person manages name: the configured CA's issuer domain names (its
directory's `caaIdentities`) and our account there, read from the state (the account is
registered first when the CA does not know it yet, as a run would)."""
from __future__ import annotations

from dataclasses import dataclass

from .account import CaAccess
from .errors import ConfigError, Problem, StateError
from .ports import AcmeCa, CaMeta


@dataclass(frozen=True)
class OurAccount:
    directory: str
    account_url: str
    issuers: tuple[str, ...]  # the CA's caaIdentities, first the one our records name
    meta: CaMeta

    @property
    def issuer(self) -> str:
        return self.issuers[0]


def our_account(access: CaAccess) -> tuple[OurAccount, AcmeCa]:
    """The bound CA client and what our records name; a CA that advertises no caaIdentities is
    a config error naming its directory (no record could name it)."""
    ca = access.bound()
    url = access.account_url
    if not url:
        raise StateError(f"account for {ca.directory}", "the CA registered the account but gave no URL")
    meta = ca.meta()
    if not meta.caa_identities:
        raise ConfigError([Problem("acme.directory", (
            f"the CA at {ca.directory} advertises no caaIdentities in its directory meta, so there is no "
            "issuer domain name for its dns-persist-01 and CAA records: use a CA that lists them"))])
    return OurAccount(ca.directory, url, tuple(meta.caa_identities), meta), ca
