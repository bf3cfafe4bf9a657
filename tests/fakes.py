"""In-memory fakes of every port, shared by the unit tests. None of them opens a socket.

Each fake mirrors the semantics of its adapter that the core relies on (the state store writes a
version, then flips the current pointer with a conditional write; leases have a holder and an
expiry; ACM re-imports into the same ARN unless the key type changes; ...) and records what it
was asked, so a test can assert what a run did and did not do. `make_adapters()` wires one of
each (sharing one clock and one `Journal`, the order of events across ports) and
`make_renewer()` builds the real Renewer over them.
"""
from __future__ import annotations

import datetime as dt
import itertools
import threading
from dataclasses import replace
from typing import Any, Callable

from cryptography import x509

from acme_flow import pki
from acme_flow.deadline import Deadline
from acme_flow.errors import (DeployError, DeployRoleError, PropagationTimeout, StateBucketMissing, StateError, ValidationFailed,
                              ZoneNotFound)
from acme_flow.models import (AccountState, AcmeSettings, CertificateInfo, CertificateMaterial, CertificateSpec, Config, KeyType,
                              RunReport, StoredCertificate)
from acme_flow import persist
from acme_flow.ports import (Adapters, CaMeta, Dns01Challenge, IssuedChains, PendingOrder, PersistChallenge, RecordSet,
                             RenewalInfo, TxtRecord)
from certfactory import MiniCA, make_cert

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
DIRECTORY = "https://ca.test/dir"
ISSUER = "ca.test"  # the CA's issuer domain name (caaIdentities, dns-persist-01)
DIST = "E2ABCDEF123456"
ACCOUNT = "123456789012"
_NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


class FakeClock:
    """Monotonic time that only moves when something sleeps; wall time fixed at `now` until
    `advance` moves it (a later run)."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(round(s, 3))
        self.t += s

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta


class Journal(list):
    """(event, detail) in the order they happened, across every fake of one `make_adapters`."""

    def add(self, event: str, detail: Any = None) -> None:
        self.append((event, detail))

    def events(self) -> list[str]:
        return [event for event, _ in self]

    def first(self, event: str) -> int:
        return self.events().index(event)


def _run_hook(hooks: dict[str, Callable[[str], None]], op: str, name: str) -> None:
    hook = hooks.pop(op, None)  # once: a hook stands for one thing another run did
    if hook:
        hook(name)


# ---- state ------------------------------------------------------------------------------------


class FakeState:
    """S3StateStore in memory: versions, then a pointer flipped by a conditional write (the
    generation read, like the ETag); leases by holder and expiry; the challenge ledger; accounts.

    `put` is what another run (or a test's setup) stored: it is not one of `writes`.
    `damage(name, what)` spoils the stored material, `unreadable[name] = why` makes loading raise
    StateError, `hooks[op] = fn(name)` runs `fn` once when `op` (load/acquire/release) is called.
    """

    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal if journal is not None else Journal()
        self.versions: dict[str, dict[str, CertificateMaterial]] = {}
        self.pointers: dict[str, StoredCertificate] = {}
        self.generation: dict[str, int] = {}
        self._seen: dict[str, int] = {}
        self.leases: dict[str, tuple[str | None, dt.datetime]] = {}
        self.accounts: dict[str, AccountState] = {}
        self.challenges: dict[str, tuple[list[TxtRecord], dt.datetime]] = {}
        self.writes: list[tuple[str, str]] = []
        self.ledger_error: Exception | None = None  # raised by stale_challenges (the listing failed)
        self.history: list[StoredCertificate] = []  # every pointer written, in order
        self.acquired: list[str] = []
        self.released: list[str] = []
        self.material_reads: list[str] = []
        self.material_denied: dict[str, str] = {}  # name -> why reading its material fails (not damage)
        self.pointer_reads: list[str] = []
        self.unreadable: dict[str, str] = {}
        self.bucket_missing = False
        self.hooks: dict[str, Callable[[str], None]] = {}
        self._lock = threading.RLock()

    # -- what a test sets up or inspects

    def put(self, stored: StoredCertificate) -> StoredCertificate:
        """Another run stores `stored` (version and pointer); not counted in `writes`."""
        if stored.ari_cert_id is None and stored.material is not None:
            stored = replace(stored, ari_cert_id=pki.ari_cert_id(stored.material.cert_pem))
        with self._lock:
            self.versions.setdefault(stored.name, {})[stored.version] = stored.material
            self.pointers[stored.name] = replace(stored, damaged=None)
            self.generation[stored.name] = self.generation.get(stored.name, 0) + 1
        return stored

    def current(self, name: str) -> StoredCertificate | None:
        """The stored certificate as a new run would load it (no `writes`, no hooks)."""
        pointer = self.pointers.get(name)
        if pointer is None:
            return None
        material = self.versions.get(name, {}).get(pointer.version)
        if material is None:
            return replace(pointer, material=CertificateMaterial("", "", ""), damaged="version files are missing")
        return replace(pointer, material=material)

    def damage(self, name: str, what: str = "key") -> None:
        """Spoil the current version: `key` (another key), `cert` (not PEM), `missing` (files gone)."""
        version = self.pointers[name].version
        material = self.versions[name][version]
        if what == "missing":
            del self.versions[name][version]
        elif what == "key":
            other = pki.key_to_pem(pki.generate_key(KeyType.EC_P256))
            self.versions[name][version] = replace(material, key_pem=other)
        elif what == "cert":
            self.versions[name][version] = replace(material, cert_pem="-----BEGIN CERTIFICATE-----\nnot\n")
        else:
            raise ValueError(f"unknown damage {what!r}")

    def hold(self, name: str, holder: str = "another-run", until: dt.datetime = NOW + dt.timedelta(hours=1)) -> None:
        self.leases[name] = (holder, until)

    def holder(self, name: str) -> str | None:
        return self.leases.get(name, (None, _NEVER))[0]

    def certificate_writes(self) -> list[tuple[str, str]]:
        return [w for w in self.writes if w[0] in ("version", "pointer")]

    # -- StateStore

    def check_ready(self) -> None:
        if self.bucket_missing:
            raise StateBucketMissing("certrenew-state")

    def load_account(self, directory: str) -> AccountState | None:
        return self.accounts.get(directory)

    def save_account(self, account: AccountState) -> AccountState:
        with self._lock:
            existing = self.accounts.get(account.directory)
            if existing is not None and existing.key_pem != account.key_pem:
                return existing  # another run created the key first: its key wins
            self.accounts[account.directory] = account
            self.writes.append(("account", account.directory))
        return account

    def load_certificate(self, name: str) -> StoredCertificate | None:
        _run_hook(self.hooks, "load", name)
        with self._lock:
            self.pointer_reads.append(name)
            if name in self.pointers:  # read (its ETag kept) before it is parsed, as in S3
                self._seen[name] = self.generation[name]
            if name in self.unreadable:
                raise StateError(f"certificates/{name}/current.json", self.unreadable[name])
            pointer = self.pointers.get(name)
            return replace(pointer, material=None) if pointer else None

    def load_material(self, stored: StoredCertificate) -> StoredCertificate:
        """The version's material, checked as S3StateStore checks it; counted in `material_reads`
        (each is a KMS-protected read at AWS)."""
        with self._lock:
            self.material_reads.append(stored.name)
            if stored.name in self.material_denied:
                raise StateError(f"certificates/{stored.name}/{stored.version}/", self.material_denied[stored.name])
            material = self.versions.get(stored.name, {}).get(stored.version)
        if material is None:
            return replace(stored, material=CertificateMaterial("", "", ""), damaged="version files are missing")
        return replace(stored, material=material,
                       damaged=pki.material_problem(material, stored.info.serial) or stored.damaged)

    def save_certificate(self, stored: StoredCertificate) -> StoredCertificate:
        with self._lock:
            self.versions.setdefault(stored.name, {})[stored.version] = stored.material
            self.writes.append(("version", stored.name))
            self.journal.add("state.version", stored.name)
            self._flip(stored)
        return stored

    def update(self, stored: StoredCertificate) -> StoredCertificate:
        with self._lock:
            self._flip(stored)
        return stored

    def _flip(self, stored: StoredCertificate) -> None:
        name = stored.name
        seen, now = self._seen.get(name), self.generation.get(name)
        if seen != now:
            raise StateError(f"certificates/{name}/current.json", "changed by another run since it was read; "
                                                                   "not overwritten")
        self.pointers[name] = replace(stored, damaged=None)
        self.history.append(stored)
        self.unreadable.pop(name, None)  # a new pointer is readable again
        self.generation[name] = self._seen[name] = (now or 0) + 1
        self.writes.append(("pointer", name))
        self.journal.add("state.pointer", name)

    def acquire(self, name: str, holder: str, until: dt.datetime, now: dt.datetime) -> bool:
        _run_hook(self.hooks, "acquire", name)
        with self._lock:
            current, expires = self.leases.get(name, (None, _NEVER))
            if current not in (None, holder) and expires > now:
                return False
            self.leases[name] = (holder, until)
            self.writes.append(("lease", name))
            self.acquired.append(name)
            self.journal.add("lease.acquire", name)
            return True

    def release(self, name: str, holder: str, now: dt.datetime) -> None:
        _run_hook(self.hooks, "release", name)
        with self._lock:
            if self.leases.get(name, (None, _NEVER))[0] != holder:
                return
            self.leases[name] = (None, now)
            self.released.append(name)
            self.journal.add("lease.release", name)

    # -- ChallengeLedger

    def record_challenges(self, run_id: str, records: list[TxtRecord], until: dt.datetime) -> None:
        with self._lock:
            self.challenges[run_id] = (list(records), until)
            self.writes.append(("ledger", run_id))
            self.journal.add("ledger.record", run_id)

    def forget_challenges(self, run_id: str) -> None:
        with self._lock:
            self.challenges.pop(run_id, None)
            self.journal.add("ledger.forget", run_id)

    def stale_challenges(self, now: dt.datetime) -> list[tuple[str, list[TxtRecord]]]:
        if self.ledger_error is not None:
            raise self.ledger_error
        return [(run, list(records)) for run, (records, until) in self.challenges.items() if until < now]


# ---- the CA -----------------------------------------------------------------------------------


class FakeCa:
    """An ACME CA over a MiniCA: DNS-01 orders, validation (against `dns`'s published TXT values
    when given; `fail_validation[domain] = why` fails a name), finalize issuing a real leaf for the
    CSR's key, ARI (`window`, `retry_after`), profiles, revoke, accounts. It is its own factory:
    `Adapters.ca` is the FakeCa, and `made` counts how often the run asked for a client."""

    def __init__(self, mini: MiniCA | None = None, clock: FakeClock | None = None, dns: FakeDns | None = None, *,
                 directory: str = DIRECTORY, ari: bool = True, profiles: dict[str, str] | None = None,
                 lifetime: dt.timedelta = dt.timedelta(days=90), alternates: tuple[MiniCA, ...] = (),
                 tamper: bool = False, journal: Journal | None = None) -> None:
        self.mini = mini or MiniCA()
        self.clock = clock or FakeClock()
        self.dns = dns
        self.directory = directory
        self.ari = ari
        self.offered_profiles = profiles
        self.lifetime = lifetime
        self.alternates = alternates
        self.tamper = tamper  # issue a leaf for the first name only
        self.journal = journal if journal is not None else Journal()
        self.fail_validation: dict[str, str] = {}
        self.validation_delay = 0.0  # seconds of the clock each wait_valid takes
        self.window: tuple[dt.datetime, dt.datetime] | None = None  # None: 2/3 of the lifetime + 2 days
        self.retry_after = 6 * 3600.0
        self.ari_error: Exception | None = None
        self.already_replaced = False  # the CA drops `replaces` (alreadyReplaced)
        self.order_error: Exception | None = None  # raised by every new_order (the CA is down, ...)
        self.refused: list[tuple[str, ...]] = []  # the orders order_error refused
        self.persist_offered = False  # offer dns-persist-01 (draft -01, issuer ISSUER) beside dns-01
        self.dns01_offered = True
        self.records: FakeRecords | None = None  # where dns-persist-01 validation reads the records
        self.registration_error: Exception | None = None
        self.made = 0
        self.ordered: list[dict[str, Any]] = []
        self.answered: list[str] = []
        self.issued: list[str] = []  # serials
        self.revoked: list[tuple[str, int]] = []
        self.ari_asked: list[str] = []  # CertIDs
        self.known: dict[str, CertificateInfo] = {}  # CertID -> what it was issued as
        self.registered: list[str] = []  # account URLs
        self.persist_answered: list[str] = []  # names answered with dns-persist-01
        self._ids = itertools.count(1)

    def __call__(self) -> FakeCa:
        self.made += 1
        return self

    # -- accounts

    def new_account_key(self, directory: str, email: str | None) -> AccountState:
        return AccountState(directory, None, pki.key_to_pem(pki.generate_key(KeyType.EC_P256)), email)

    def use_account(self, account: AccountState) -> AccountState:
        if account.url in self.registered:
            return account
        url = f"{self.directory.rsplit('/', 1)[0]}/acct/{next(self._ids)}"
        self.registered.append(url)
        return replace(account, url=url)

    def check_registration_inputs(self) -> None:
        if self.registration_error:
            raise self.registration_error

    def profiles(self) -> dict[str, str] | None:
        return self.offered_profiles

    # -- ARI

    def supports_ari(self) -> bool:
        return self.ari

    def renewal_info(self, cert_id: str) -> RenewalInfo | None:
        """The window of a certificate this CA issued (2/3 into its life, two days long, unless
        `window` is set); asked about by its CertID, as ARI is."""
        self.ari_asked.append(cert_id)
        self.journal.add("ca.ari", cert_id)
        if self.ari_error:
            raise self.ari_error
        if not self.ari:
            return None
        info = self.known.get(cert_id)
        if self.window or info is None:
            return RenewalInfo(*(self.window or (NOW + dt.timedelta(days=30), NOW + dt.timedelta(days=32))),
                               self.retry_after)
        start = info.not_before + info.lifetime * 2 / 3
        return RenewalInfo(start, start + dt.timedelta(days=2), self.retry_after)

    def remember(self, cert_pem: str) -> str:
        """Know a certificate made elsewhere (a test's stored one) for ARI; returns its CertID."""
        cert_id = pki.ari_cert_id(cert_pem)
        self.known[cert_id] = pki.describe(cert_pem)
        return cert_id

    # -- orders

    def new_order(self, csr_pem: bytes, domains: tuple[str, ...], profile: str | None,
                  replaces: str | None = None) -> PendingOrder:
        if self.order_error is not None:
            self.refused.append(domains)
            raise self.order_error
        n = next(self._ids)
        accepted = replaces if self.ari and not self.already_replaced else None
        self.ordered.append({"domains": domains, "profile": profile, "replaces": replaces})
        self.journal.add("ca.order", domains)
        challenges = tuple(Dns01Challenge(d, "_acme-challenge." + d.removeprefix("*."), f"token-{n}-{d}")
                           for d in domains) if self.dns01_offered else ()
        offered = tuple(PersistChallenge(d, persist.record_name(d), (ISSUER,), persist.Draft.D01.value)
                        for d in domains) if self.persist_offered else ()
        return PendingOrder(f"{self.directory.rsplit('/', 1)[0]}/order/{n}", domains, challenges, handle=n,
                            replaces=accepted, persist=offered, pending=domains)

    def meta(self) -> CaMeta:
        return CaMeta(caa_identities=(ISSUER,))

    def account_thumbprint(self) -> str:
        return "thumbprint"

    def answer(self, challenge: Dns01Challenge | PersistChallenge) -> None:
        self.answered.append(challenge.domain)
        self.journal.add("ca.answer", challenge.domain)
        if isinstance(challenge, PersistChallenge):
            self.persist_answered.append(challenge.domain)

    def wait_valid(self, order: PendingOrder, deadline) -> None:
        if self.validation_delay:
            self.clock.sleep(self.validation_delay)
        failures = {}
        for c in order.persist:
            if c.domain in self.persist_answered:
                why = self._persist_problem(c)
                if why:
                    failures[c.domain] = why
        for c in order.challenges:
            if c.domain in self.persist_answered:
                continue
            if c.domain in self.fail_validation:
                failures[c.domain] = self.fail_validation[c.domain]
            elif self.dns is not None and (c.record_name, c.value) not in self.dns.published:
                failures[c.domain] = f"no TXT record {c.value} found at {c.record_name}"
        if failures:
            raise ValidationFailed(failures)

    def _persist_problem(self, challenge: PersistChallenge) -> str:
        """What the CA would find wrong with the persistent record (our registered account)."""
        values = [persist.txt_value(v) for v in (self.records.values(challenge.record_name) if self.records else ())]
        ours = [persist.parse_value(v) for v in values if persist.issuer_of(v) == ISSUER]
        if not any(r.accounturi in self.registered and (r.wildcard or not challenge.domain.startswith("*."))
                   for r in ours):
            return f"no dns-persist-01 record for our account at {challenge.record_name}"
        return ""

    def begin_finalize(self, order: PendingOrder, csr_pem: bytes) -> None:
        self.journal.add("ca.begin_finalize", order.domains)

    def finalize(self, order: PendingOrder, csr_pem: bytes, deadline) -> IssuedChains:
        key = x509.load_pem_x509_csr(csr_pem).public_key()
        names = order.domains[:1] if self.tamper else order.domains
        chains = []
        for ca in (self.mini, *self.alternates):
            leaf = make_cert(order.domains[0], ca.int_name, key, ca.int_key, ca=False, names=names,
                             not_before=self.clock.now() - dt.timedelta(hours=1), days=self.lifetime.days)
            chains.append(leaf + ca.int_pem + ca.root_pem)
        self.issued.append(pki.describe(chains[0]).serial)
        for chain in chains:
            self.remember(chain)
        self.journal.add("ca.finalize", order.domains)
        return IssuedChains(tuple(chains))

    def revoke(self, cert_pem: str, reason: int) -> None:
        self.revoked.append((pki.describe(cert_pem).serial, reason))


# ---- DNS --------------------------------------------------------------------------------------


class FakeDns:
    """Hosted zones by suffix (longest match); `published` holds the TXT values present now."""

    def __init__(self, zones: tuple[str, ...] = ("example.com", "example.org"), journal: Journal | None = None,
                 name_servers: dict[str, list[str]] | None = None) -> None:
        self.zones = zones
        self.journal = journal if journal is not None else Journal()
        self.servers = name_servers or {}
        self.published: set[tuple[str, str]] = set()
        self.located: list[str] = []
        self.presented: list[list[TxtRecord]] = []
        self.removed: list[list[TxtRecord]] = []
        self.present_error: Exception | None = None

    def locate(self, record_name: str, value: str, spec: CertificateSpec) -> TxtRecord:
        self.located.append(record_name)
        if spec.dns.hosted_zone_id:
            return TxtRecord(record_name, value, spec.dns.hosted_zone_id, spec.dns.role_arn)
        zones = [z for z in self.zones if record_name == z or record_name.endswith("." + z)]
        if not zones:
            raise ZoneNotFound(record_name)
        return TxtRecord(record_name, value, zone_id=f"Z-{max(zones, key=len)}", role_arn=spec.dns.role_arn)

    def present(self, records: list[TxtRecord], deadline) -> None:
        if self.present_error:
            raise self.present_error
        self.presented.append(list(records))
        self.published |= {(r.name, r.value) for r in records}
        self.journal.add("dns.present", len(records))

    def remove(self, records: list[TxtRecord]) -> None:
        self.removed.append(list(records))
        self.published -= {(r.name, r.value) for r in records}
        self.journal.add("dns.remove", len(records))

    def name_servers(self, record: TxtRecord) -> list[str]:
        return self.servers.get(record.zone_id, [f"ns1.{record.zone_id.removeprefix('Z-')}"])


class FakeRecords:
    """Record sets a person manages (ZoneRecords): `sets[(name, rtype)] = values` in Route53's
    form (TXT values quoted); every name is in zone Z-<last two labels>; `reads` counts reads."""

    def __init__(self) -> None:
        self.sets: dict[tuple[str, str], tuple[str, ...]] = {}
        self.reads: list[tuple[str, str]] = []
        self.writes: list[RecordSet] = []
        self.read_error: Exception | None = None

    def put_txt(self, name: str, *values: str) -> None:
        self.sets[(name, "TXT")] = tuple(persist.txt_rdata(v) for v in values)

    def values(self, name: str, rtype: str = "TXT") -> tuple[str, ...]:
        return self.sets.get((name, rtype), ())

    def read(self, name: str, rtype: str, spec: CertificateSpec) -> RecordSet:
        self.reads.append((name, rtype))
        if self.read_error is not None:
            raise self.read_error
        zone = ".".join(name.split(".")[-2:])
        values = self.values(name, rtype)
        return RecordSet(name, rtype, values, f"Z-{zone}", zone, spec.dns.role_arn, 300 if values else None)

    def write(self, changes: list[tuple[RecordSet, tuple[str, ...]]], deadline) -> None:
        for old, values in changes:
            self.sets[(old.name, old.rtype)] = tuple(values)
            self.writes.append(old)


class FakePropagation:
    """Sees every published value at once, except names in `missing` (PropagationTimeout after
    waiting all it may, when it has a clock). `delay` seconds of the clock pass on each wait."""

    def __init__(self, dns: FakeDns | None = None, clock: FakeClock | None = None, missing=(),
                 delay: float = 0.0) -> None:
        self.dns, self.clock, self.missing, self.delay = dns, clock, set(missing), delay
        self.calls: list[list[TxtRecord]] = []
        self.allowed: list[float] = []

    def wait_visible(self, records: list[TxtRecord], deadline: Deadline) -> None:
        self.calls.append(list(records))
        self.allowed.append(deadline.remaining())
        unseen = {r.name for r in records if r.name in self.missing
                  or (self.dns is not None and (r.name, r.value) not in self.dns.published)}
        if unseen:
            if self.clock:
                self.clock.sleep(deadline.remaining())
            raise PropagationTimeout({name: ["127.0.0.1:53"] for name in unseen})
        if self.clock and self.delay:
            self.clock.sleep(self.delay)


# ---- deploy -----------------------------------------------------------------------------------


class RunKilled(BaseException):
    """The run's process died here (SIGKILL): a BaseException, so no step of the run settles it
    and nothing after this point happens (its `finally` blocks aside)."""


class FakeImporter:
    """ACM in every region: an import with an existing ARN re-imports into it unless ACM would
    refuse (pki.reimport_refusal: the key type changes), then a new ARN. `disabled` regions fail
    `check_region`; `in_use` ARNs are kept by `delete_if_unused` (ACM's InUseBy lags), `not_ours`
    are left alone, `broken` raise; `fail_import[region] = why` fails imports there.
    `maybe_orphaned`, when a new ARN would be needed, searches the account (each search recorded in
    `searches`) for a certificate imported for that name (its tag, `names`) that can take this one;
    `kill_after_import = {region}` kills the run (RunKilled) right after an import there, once."""

    def __init__(self, *, disabled=(), in_use=(), not_ours=(), broken=(), journal: Journal | None = None) -> None:
        self.disabled, self.in_use, self.not_ours, self.broken = set(disabled), set(in_use), set(not_ours), set(broken)
        self.journal = journal if journal is not None else Journal()
        self.certs: dict[str, tuple[str, str]] = {}  # arn -> (region, cert_pem)
        self.names: dict[str, str] = {}  # arn -> the certrenew:name tag it was imported with
        self.imports: list[tuple[str, str, str, str]] = []  # (region, name, arn, serial)
        self.searches: list[tuple[str, str]] = []  # (region, name): each a ListCertificates of the account
        self.fail_import: dict[str, str] = {}
        self.kill_after_import: set[str] = set()
        self.checked: list[str] = []
        self.asked: list[str] = []
        self.deleted: list[str] = []
        self.roles: list[str] = []  # the deploy role of each call that had one
        self.refused_roles: set[str] = set()  # roles that cannot be assumed
        self._ids = itertools.count(1)

    def arn(self, region: str, role_arn: str | None = None) -> str:
        account = role_arn.split(":")[4] if role_arn else ACCOUNT  # a deploy role's account holds its copies
        return f"arn:aws:acm:{region}:{account}:certificate/{next(self._ids):08d}-0000-4000-8000-000000000000"

    def _assume(self, role_arn: str | None) -> None:
        if role_arn:
            self.roles.append(role_arn)
            if role_arn in self.refused_roles:
                raise DeployRoleError(role_arn, "AccessDenied: not authorized to perform sts:AssumeRole")

    def held_for(self, name: str, region: str) -> list[str]:
        """The ARNs ACM holds in `region` imported for `name`."""
        return [arn for arn, (r, _) in self.certs.items() if r == region and self.names.get(arn) == name]

    def import_certificate(self, region: str, material: CertificateMaterial, name: str,
                           existing_arn: str | None, *, maybe_orphaned: bool, role_arn: str | None = None) -> str:
        self._assume(role_arn)
        if region in self.fail_import:
            raise DeployError(f"acm:{region}", self.fail_import[region])
        arn = existing_arn if self._takes(existing_arn, region, material) else None
        if arn is None and maybe_orphaned:
            self.searches.append((region, name))
            self.journal.add("acm.search", region)
            arn = next((a for a in self.held_for(name, region) if self._takes(a, region, material)), None)
        arn = arn or self.arn(region, role_arn)
        self.certs[arn] = (region, material.cert_pem)
        self.names.setdefault(arn, name)
        self.imports.append((region, name, arn, pki.describe(material.cert_pem).serial))
        self.journal.add("acm.import", region)
        if region in self.kill_after_import:
            self.kill_after_import.discard(region)
            raise RunKilled(f"killed after importing {name} into {arn}")
        return arn

    def _takes(self, arn: str | None, region: str, material: CertificateMaterial) -> bool:
        """ACM holds `arn` in `region` and would accept `material` re-imported into it."""
        held = self.certs.get(arn or "")
        return held is not None and held[0] == region and not pki.reimport_refusal(held[1], material.cert_pem)

    def check_region(self, region: str, *, role_arn: str | None = None) -> None:
        self._assume(role_arn)
        self.checked.append(region)
        if region in self.disabled:
            raise DeployError(f"acm:{region}", f"the AWS account has not enabled the region {region}")

    def delete_if_unused(self, region: str, arn: str, other_users: list[str], *,
                         role_arn: str | None = None) -> tuple[bool, str]:
        self._assume(role_arn)
        self.asked.append(arn)
        if arn in self.broken:
            raise DeployError(f"acm:{region}", "ThrottlingException: Rate exceeded")
        if arn in self.not_ours:
            return True, f"left {arn} alone: not imported by certrenew"
        if arn not in self.certs:
            return True, f"{arn} already gone"
        users = list(other_users) + (["an AWS service (ACM InUseBy)"] if arn in self.in_use else [])
        if users:
            return False, f"kept {arn} for a later run: still used by {', '.join(users)}"
        del self.certs[arn]
        self.deleted.append(arn)
        return True, f"deleted {arn}"


class FakeCloudFront:
    """Distributions by id and the ARN each serves; unknown ids fail `check` and `attach`;
    `refuse[id] = why` fails attaching there."""

    def __init__(self, distributions=(DIST,), journal: Journal | None = None) -> None:
        self.viewer: dict[str, str | None] = {d: None for d in distributions}
        self.journal = journal if journal is not None else Journal()
        self.refuse: dict[str, str] = {}
        self.attached: list[tuple[str, str]] = []
        self.checked: list[str] = []

    def attach(self, distribution_id: str, certificate_arn: str, names: tuple[str, ...], *,
               role_arn: str | None = None) -> bool:
        target = f"cloudfront:{distribution_id}"
        if distribution_id not in self.viewer:
            raise DeployError(target, "no such distribution")
        if distribution_id in self.refuse:
            raise DeployError(target, self.refuse[distribution_id])
        changed = self.viewer[distribution_id] != certificate_arn
        self.viewer[distribution_id] = certificate_arn
        self.attached.append((distribution_id, certificate_arn))
        self.journal.add("cloudfront.attach", distribution_id)
        return changed

    def distributions_using(self, certificate_arn: str, *, role_arn: str | None = None) -> list[str]:
        return [f"cloudfront:{d}" for d, arn in self.viewer.items() if arn == certificate_arn]

    def check(self, distribution_id: str, *, role_arn: str | None = None) -> None:
        self.checked.append(distribution_id)
        if distribution_id not in self.viewer:
            raise DeployError(f"cloudfront:{distribution_id}", "no such distribution")


class FakeExporter:
    def __init__(self, missing_buckets=(), journal: Journal | None = None) -> None:
        self.missing_buckets = set(missing_buckets)
        self.journal = journal if journal is not None else Journal()
        self.exports: list[tuple[str, str, str]] = []  # (bucket, prefix, serial)
        self.checked: list[str] = []

    def export(self, bucket: str, prefix: str, material: CertificateMaterial, *, role_arn: str | None = None) -> str:
        if bucket in self.missing_buckets:
            raise DeployError(f"s3://{bucket}", "no such export bucket")
        self.exports.append((bucket, prefix, pki.describe(material.cert_pem).serial))
        self.journal.add("s3.export", bucket)
        return f"s3://{bucket}/{prefix}"

    def check(self, bucket: str, *, role_arn: str | None = None) -> None:
        self.checked.append(bucket)
        if bucket in self.missing_buckets:
            raise DeployError(f"s3://{bucket}", "no such export bucket")


class FakeNotifier:
    def __init__(self) -> None:
        self.reports: list[RunReport] = []

    def notify(self, report: RunReport) -> None:
        self.reports.append(report)


# ---- wiring -----------------------------------------------------------------------------------


def make_adapters(**overrides: Any) -> Adapters:
    """One fake per port, sharing a clock and a journal; any of them replaced by keyword.
    `ledger` defaults to `state` (like S3StateStore); `ca` may be a FakeCa or any factory."""
    from fakes_attached import FakeDomains, FakeListeners, FakeParameters, FakeSecrets, FakeTenants

    clock = overrides.pop("clock", None) or FakeClock()
    journal = overrides.pop("journal", None) or Journal()
    state = overrides.pop("state", None) or FakeState(journal)
    dns = overrides.pop("dns", None) or FakeDns(journal=journal)
    parts = dict(
        state=state, ledger=overrides.pop("ledger", None) or state,
        ca=overrides.pop("ca", None) or FakeCa(clock=clock, dns=dns, journal=journal),
        dns=dns, propagation=overrides.pop("propagation", None) or FakePropagation(dns, clock),
        importer=overrides.pop("importer", None) or FakeImporter(journal=journal),
        cloudfront=overrides.pop("cloudfront", None) or FakeCloudFront(journal=journal),
        exporter=overrides.pop("exporter", None) or FakeExporter(journal=journal),
        notifier=overrides.pop("notifier", None) or FakeNotifier(), clock=clock,
        records=overrides.pop("records", None) or FakeRecords(),
        fallback_cas=tuple(overrides.pop("fallback_cas", ())),
        tenants=overrides.pop("tenants", None) or FakeTenants(), listeners=overrides.pop("listeners", None) or FakeListeners(),
        api_domains=overrides.pop("api_domains", None) or FakeDomains(),
        secrets=overrides.pop("secrets", None) or FakeSecrets(), parameters=overrides.pop("parameters", None) or FakeParameters())
    if isinstance(parts["ca"], FakeCa) and parts["ca"].records is None:
        parts["ca"].records = parts["records"]
    if overrides:
        raise TypeError(f"make_adapters: unknown port(s) {sorted(overrides)}")
    return Adapters(**parts)


def make_config(*specs: CertificateSpec, directory: str = DIRECTORY) -> Config:
    return Config(AcmeSettings(directory), tuple(specs), source="certificates.yaml")


def make_renewer(config: Config, adapters: Adapters | None = None, **kw: Any):
    """The real Renewer over fakes (a fixed random draw: the ARI time is mid-window)."""
    from acme_flow.renewal import Renewer

    kw.setdefault("random_fraction", lambda: 0.5)
    kw.setdefault("workers", 4)
    return Renewer.from_adapters(config, adapters or make_adapters(), **kw)
