"""The edges of the core, as Protocols. Adapters implement them; tests swap in fakes."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .deadline import Deadline
from .models import (AccountState, ApiDomain, CertificateInfo, CertificateMaterial, CertificateSpec, Deployment, DeploySpec,
                     ParameterTarget, RunReport, SecretTarget, StoredCertificate)

# ---- ACME -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dns01Challenge:
    """One DNS-01 challenge: publish `value` as TXT at `record_name`, then answer it."""

    domain: str  # as ordered, "*.example.com" for a wildcard
    record_name: str  # "_acme-challenge.example.com"
    value: str
    handle: Any = field(default=None, compare=False, repr=False)  # the adapter's own object


@dataclass(frozen=True)
class PersistChallenge:
    """One dns-persist-01 challenge: the CA reads the persistent TXT record at `record_name`
    (written once, see persist.py); answering it is all a run does."""

    domain: str  # as ordered, "*.example.com" for a wildcard
    record_name: str  # "_validation-persist.example.com"
    issuers: tuple[str, ...]  # the issuer domain names the CA accepts in the record
    draft: str  # the record syntax the CA speaks: a persist.Draft value ("draft-ietf-acme-dns-persist-01")
    handle: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PendingOrder:
    url: str
    domains: tuple[str, ...]
    challenges: tuple[Dns01Challenge, ...]  # only for authorizations still pending
    handle: Any = field(default=None, compare=False, repr=False)
    replaces: str | None = None  # the ARI CertID the CA recorded for this order
    # the dns-persist-01 challenge of each pending authorization the CA offers it for
    persist: tuple[PersistChallenge, ...] = ()
    pending: tuple[str, ...] = ()  # the names (as ordered) whose authorizations are still pending


@dataclass(frozen=True)
class CaMeta:
    """What a CA's directory says about itself (RFC 8555 `meta`) that record planning needs."""

    caa_identities: tuple[str, ...] = ()  # issuer domain names for CAA (and dns-persist-01)
    account_hash_prefix: str | None = None  # dns-persist-01 draft -02: hashed accounturi prefix


@dataclass(frozen=True)
class RenewalInfo:
    """An ARI answer (RFC 9773): the suggested window and how long to wait before asking again."""

    start: dt.datetime
    end: dt.datetime
    retry_after: float  # seconds
    explanation_url: str | None = None


@dataclass(frozen=True)
class IssuedChains:
    """The CA's answer to a finalized order: the default chain first, then alternates."""

    fullchains: tuple[str, ...]


class AcmeCa(Protocol):
    directory: str

    def new_account_key(self, directory: str, email: str | None) -> AccountState:
        """A fresh account key (not yet registered)."""

    def use_account(self, account: AccountState) -> AccountState:
        """Bind the key, registering it if the CA does not know it; returns the account with its URL."""

    def profiles(self) -> dict[str, str] | None:
        """The profiles the directory advertises (`meta.profiles`), or None if it lists none."""

    def meta(self) -> CaMeta:
        """The directory's CAA identities and dns-persist-01 settings."""

    def account_thumbprint(self) -> str:
        """The RFC 7638 thumbprint of the bound account's key (dns-persist-01 draft -02)."""

    def supports_ari(self) -> bool: ...

    def renewal_info(self, cert_id: str) -> RenewalInfo | None:
        """The ARI window of the certificate with this RFC 9773 CertID, or None if the CA has no
        renewalInfo."""

    def new_order(self, csr_pem: bytes, domains: tuple[str, ...], profile: str | None,
                  replaces: str | None = None) -> PendingOrder:
        """Create an order; `replaces` (an ARI CertID) is dropped when the CA has no ARI or says
        alreadyReplaced. `PendingOrder.replaces` is what the CA accepted."""

    def revoke(self, cert_pem: str, reason: int) -> None: ...

    def check_registration_inputs(self) -> None:
        """Resolve what registering an account needs (the EAB secret); raise ConfigError if it fails."""

    def answer(self, challenge: Dns01Challenge | PersistChallenge) -> None: ...

    def wait_valid(self, order: PendingOrder, deadline: Deadline) -> None:
        """Poll the order's authorizations until all are valid; raise ValidationFailed."""

    def begin_finalize(self, order: PendingOrder, csr_pem: bytes) -> None:
        """Send the CSR (finalize) and keep the CA's answer (its Retry-After) for `finalize`: a
        round sends every order's CSR first, so their waits run side by side."""

    def finalize(self, order: PendingOrder, csr_pem: bytes, deadline: Deadline) -> IssuedChains:
        """Wait until the order is valid (first look no sooner than the CA asked) and download
        its chains; sends the CSR first when `begin_finalize` was not called for it."""


# ---- DNS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TxtRecord:
    """A TXT value we publish, with the hosted zone that holds its name."""

    name: str  # fqdn without trailing dot
    value: str
    zone_id: str
    role_arn: str | None = None


class DnsProvider(Protocol):
    def locate(self, record_name: str, value: str, spec: CertificateSpec) -> TxtRecord:
        """Find the hosted zone for a record (raises ZoneNotFound)."""

    def present(self, records: list[TxtRecord], deadline: Deadline) -> None:
        """Publish all records (one change batch per zone) and wait until Route53 is INSYNC."""

    def remove(self, records: list[TxtRecord]) -> None:
        """Delete exactly these values (one change batch per zone); never raises for missing ones."""

    def name_servers(self, record: TxtRecord) -> list[str]:
        """The authoritative name servers of the record's zone (host names)."""


@dataclass(frozen=True)
class RecordSet:
    """The values a hosted zone holds at one name and type (Route53's presentation form: TXT
    quoted, CAA `0 issue "..."`); `ttl` None when the set does not exist."""

    name: str  # fqdn without trailing dot, after CNAME delegation
    rtype: str  # "TXT" or "CAA"
    values: tuple[str, ...]
    zone_id: str
    zone_name: str
    role_arn: str | None = None
    ttl: int | None = None


class ZoneRecords(Protocol):
    """Record sets a person manages through certrenew (dns-persist-01 and CAA records)."""

    def read(self, name: str, rtype: str, spec: CertificateSpec) -> RecordSet:
        """The set at `name` in the hosted zone that holds it (following CNAME delegation as
        DNS-01 does; raises ZoneNotFound); no values when there is none."""

    def write(self, changes: list[tuple[RecordSet, tuple[str, ...]]], deadline: Deadline) -> None:
        """Replace each set read earlier with the new values (every value to keep included), one
        change batch per zone, refused if the set changed since it was read; wait for INSYNC."""


class CaaLookup(Protocol):
    def caa(self, name: str) -> list[str] | None:
        """The CAA values public DNS serves at exactly `name` (following a CNAME), as
        `0 issue "..."` strings; None when there are none."""


class PropagationCheck(Protocol):
    def wait_visible(self, records: list[TxtRecord], deadline: Deadline) -> None:
        """Wait until every record's value is served by its zone's name servers, or by the
        configured resolvers (raises PropagationTimeout)."""


# ---- state ------------------------------------------------------------------------------------


class StateStore(Protocol):
    def check_ready(self) -> None:
        """Raise StateBucketMissing if the bucket is absent."""

    def load_account(self, directory: str) -> AccountState | None: ...

    def save_account(self, account: AccountState) -> AccountState: ...

    def load_certificate(self, name: str) -> StoredCertificate | None:
        """The current certificate's pointer: everything planning needs, no material (no PEM,
        no KMS-protected read). Raises StateError when it cannot be read."""

    def load_material(self, stored: StoredCertificate) -> StoredCertificate:
        """`stored` with its material, checked: a problem with it is set in `damaged`."""

    def save_certificate(self, stored: StoredCertificate) -> StoredCertificate:
        """Write a new version, then flip the current pointer to it."""

    def update(self, stored: StoredCertificate) -> StoredCertificate:
        """Rewrite the current pointer's metadata (deployment, ARI window, revocation)."""

    def acquire(self, name: str, holder: str, until: dt.datetime, now: dt.datetime) -> bool:
        """Take the lease of one certificate; False when another live run holds it."""

    def release(self, name: str, holder: str, now: dt.datetime) -> None: ...


class ChallengeLedger(Protocol):
    """The TXT values a run published, written down before they are, so a run that dies before
    removing them is swept by a later one."""

    def record_challenges(self, run_id: str, records: list[TxtRecord], until: dt.datetime) -> None: ...

    def forget_challenges(self, run_id: str) -> None: ...

    def stale_challenges(self, now: dt.datetime) -> list[tuple[str, list[TxtRecord]]]:
        """(run id, records) of runs past `until` that never removed their values."""


# ---- deploy, notify, time ---------------------------------------------------------------------


class CertificateImporter(Protocol):
    def import_certificate(self, region: str, material: CertificateMaterial, name: str,
                           existing_arn: str | None, *, maybe_orphaned: bool, role_arn: str | None = None) -> str:
        """Import into ACM (re-import into `existing_arn` when given); returns the ARN.
        `maybe_orphaned`: the state recorded a first import into `region` and no ARN (a run died
        mid-import): look for the certificate it may have left (a search of the account) and
        re-import into it rather than import a second one. Otherwise a first import does not search.
        `role_arn` (every call here): the account of the certificate's deploy role, None: ours."""

    def check_region(self, region: str, *, role_arn: str | None = None) -> None:
        """Raise DeployError when the region does not exist for ACM or the account has not enabled it."""

    def delete_if_unused(self, region: str, arn: str, other_users: list[str], *,
                         role_arn: str | None = None) -> tuple[bool, str]:
        """Delete a superseded certificate nothing uses any more; returns (settled, what was done):
        not settled while something still uses it (try again on a later run)."""


class CloudFrontAttacher(Protocol):
    def attach(self, distribution_id: str, certificate_arn: str, names: tuple[str, ...], *,
               role_arn: str | None = None) -> bool:
        """Point the distribution at the certificate; returns whether anything changed."""

    def distributions_using(self, certificate_arn: str, *, role_arn: str | None = None) -> list[str]: ...

    def check(self, distribution_id: str, *, role_arn: str | None = None) -> None:
        """Raise DeployError when the distribution does not exist or cannot be read."""


class Exporter(Protocol):
    def export(self, bucket: str, prefix: str, material: CertificateMaterial, *,
               role_arn: str | None = None) -> str: ...

    def check(self, bucket: str, *, role_arn: str | None = None) -> None:
        """Raise DeployError when the bucket cannot be found or the export key cannot serve it."""


# ---- the attached target kinds of issue 13: each call takes the role (`deploy_role_arn`) that
# reaches the target's account, None for the renewer's own; a role that cannot be assumed raises
# DeployRoleError. Every `check` is read-only and raises DeployError naming the target.


class TenantAttacher(Protocol):
    """CloudFront distribution tenants (multi-tenant distributions)."""

    def check(self, tenant_id: str, role_arn: str | None) -> None:
        """The tenant exists and can be read."""

    def attach(self, tenant_id: str, certificate_arn: str, names: tuple[str, ...], role_arn: str | None) -> bool:
        """The tenant's `Customizations.Certificate` becomes `certificate_arn` (us-east-1), every
        other setting kept; its domains must be covered by `names`. False when it already was."""


class ListenerAttacher(Protocol):
    """ELBv2 (ALB/NLB) HTTPS and TLS listeners."""

    def check(self, listener_arn: str, role_arn: str | None) -> None:
        """The listener exists, is HTTPS or TLS, and can be read."""

    def attach(self, listener_arn: str, certificate_arn: str, replaces: str | None, role_arn: str | None) -> bool:
        """`certificate_arn` serves on the listener, where `replaces` (our earlier ARN) served:
        its default certificate when `replaces` was the default, else an entry of its SNI list
        (and `replaces` leaves the list). False when nothing had to change."""


class DomainAttacher(Protocol):
    """API Gateway custom domain names (REST and HTTP APIs)."""

    def check(self, domain: ApiDomain, role_arn: str | None) -> None:
        """The domain exists, can be read, and its endpoint type is the configured one (EDGE or
        REGIONAL)."""

    def attach(self, domain: ApiDomain, certificate_arn: str, role_arn: str | None) -> bool:
        """The domain's certificate (edge or regional, by its type) becomes `certificate_arn`;
        endpoint type, security policy, mappings and every other setting kept. False when it
        already was."""


class SecretWriter(Protocol):
    """Secrets Manager: one secret per target, JSON with the PEMs."""

    def check(self, secret: SecretTarget, role_arn: str | None) -> None:
        """The secret can be read or created (a missing one is created on deploy)."""

    def put(self, secret: SecretTarget, material: CertificateMaterial, info: CertificateInfo,
            role_arn: str | None) -> None:
        """A new version of the secret holding this certificate (created when missing, encrypted
        with `secret.kms_key`)."""


class ParameterWriter(Protocol):
    """SSM Parameter Store: SecureString parameters under a prefix."""

    def check(self, parameters: ParameterTarget, role_arn: str | None) -> None:
        """The parameters can be read or created."""

    def put(self, parameters: ParameterTarget, material: CertificateMaterial, role_arn: str | None) -> None:
        """`<prefix>cert.pem`, `chain.pem`, `fullchain.pem` and `privkey.pem` overwritten as
        SecureString (key `parameters.kms_key`), in a tier that holds them, then
        `<prefix>current.json` naming the version of each: a reader gets one certificate's set."""


class Deployer(Protocol):
    """Brings a certificate's targets to the stored serial (deploy.py; one kind per target kind)."""

    def check(self, spec: CertificateSpec) -> None:
        """Raise DeployError when a target of `spec` does not exist or cannot be used (read-only)."""

    def deploy(self, spec: CertificateSpec, stored: StoredCertificate,
               before: Deployment) -> tuple[Deployment, list[str]]:
        """Deploy to every target not holding `stored` yet; returns the new deployment (ACM
        certificates of `before` replaced by a new ARN put on its retire list) and the errors.
        `before`: the deployment as this run found it (its import intents are earlier runs')."""

    def retire(self, deployment: Deployment, deploy: DeploySpec = ...) -> tuple[Deployment, list[str]]:
        """Delete the retiring certificates nothing uses any more; returns the deployment
        without them and a note per certificate tried."""


class Notifier(Protocol):
    def notify(self, report: RunReport) -> None: ...


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class Progress(Protocol):
    """What a run waits for, shown to a person at a terminal (progress.py); a no-op elsewhere.
    Called from any thread of the run."""

    def phase(self, what: str, total: int, unit: str = "") -> None:
        """A new wait begins: `what` ("waiting for Route53 INSYNC"), `total` things to count
        (`unit` names them: "changes"), none done yet."""

    def advance(self, n: int = 1) -> None:
        """`n` more of the current wait's things are done."""

    def done(self) -> None:
        """Nothing is waited for any more: the status disappears."""


class NoProgress:
    """The Progress of the Lambda, of pipes and of tests: says nothing."""

    def phase(self, what: str, total: int, unit: str = "") -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


NO_PROGRESS = NoProgress()


@dataclass(frozen=True)
class Adapters:
    """Every edge of a run, built by bootstrap from settings and boto3 clients, or from fakes."""

    state: StateStore
    ledger: ChallengeLedger
    ca: Callable[[], AcmeCa]  # made on first use: a run with nothing stored never talks to the CA
    dns: DnsProvider
    propagation: PropagationCheck
    importer: CertificateImporter
    cloudfront: CloudFrontAttacher
    exporter: Exporter
    notifier: Notifier
    clock: Clock
    records: ZoneRecords | None = None  # dns-persist-01 and CAA record sets (None: not wired)
    fallback_cas: tuple[Callable[[], AcmeCa], ...] = ()  # one per config acme.fallback, in order
    caa: CaaLookup | None = None
    tenants: TenantAttacher | None = None  # the attached kinds of issue 13 (None: not wired)
    listeners: ListenerAttacher | None = None
    api_domains: DomainAttacher | None = None
    secrets: SecretWriter | None = None
    parameters: ParameterWriter | None = None
    progress: Progress = NO_PROGRESS  # a status line on a terminal (cli run), else silent
