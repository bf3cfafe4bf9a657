"""Frozen value types shared by the core and the adapters. No I/O here."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from .deploy_targets import (  # noqa: F401  (re-exported: the deploy targets are part of the model)
    ACM, APIGATEWAY, CLOUDFRONT, CLOUDFRONT_TENANT, ELB, S3, SECRETSMANAGER, SSM, US_EAST_1, ApiDomain, DeploySpec,
    ParameterTarget, S3Export, SecretTarget, Target, listener_region)
from .errors import InputError


class Challenge(str, Enum):
    """How a certificate's names are validated: DNS-01 (a TXT value written per order), the
    persistent dns-persist-01 record (written once, by a person), or `auto`: dns-persist-01
    where the CA offers it and the record is in place, else DNS-01."""

    DNS01 = "dns-01"
    DNS_PERSIST01 = "dns-persist-01"
    AUTO = "auto"

    @property
    def may_persist(self) -> bool:
        return self is not Challenge.DNS01


class KeyType(str, Enum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"

    @property
    def is_ec(self) -> bool:
        return self.value.startswith("ec-")

    @property
    def rsa_bits(self) -> int:
        return int(self.value.split("-")[1]) if not self.is_ec else 0

    @property
    def cloudfront_compatible(self) -> bool:
        """CloudFront accepts RSA 1024-4096 and EC P-256 only."""
        return self is not KeyType.EC_P384


@dataclass(frozen=True)
class Eab:
    kid: str
    hmac_ref: str  # "ssm:/name" or "secretsmanager:name", never the secret itself


@dataclass(frozen=True)
class AcmeSettings:
    directory: str  # resolved URL
    email: str | None = None
    eab: Eab | None = None
    fallback: tuple[AcmeSettings, ...] = ()  # CAs tried in order when this one cannot issue
    rehearsal_directory: str | None = None  # the staging directory `certrenew rehearse` uses (resolved URL)

    def all_directories(self) -> tuple[str, ...]:
        return (self.directory, *(f.directory for f in self.fallback))


@dataclass(frozen=True)
class DnsSpec:
    hosted_zone_id: str | None = None
    role_arn: str | None = None


@dataclass(frozen=True)
class CertificateSpec:
    name: str
    domains: tuple[str, ...]
    key: KeyType = KeyType.EC_P256
    profile: str | None = None
    renew_before_days: int | None = None
    preferred_chain: str | None = None
    dns: DnsSpec = DnsSpec()
    deploy: DeploySpec = DeploySpec()
    challenge: Challenge = Challenge.DNS01


@dataclass(frozen=True)
class NotifySpec:
    sns_topic_arn: str | None = None


@dataclass(frozen=True)
class Config:
    acme: AcmeSettings
    certificates: tuple[CertificateSpec, ...]
    notify: NotifySpec = NotifySpec()
    source: str = ""

    def names(self) -> list[str]:
        return [c.name for c in self.certificates]

    def select(self, only: tuple[str, ...]) -> list[CertificateSpec]:
        """The certificates named in `only` (all of them when it is empty); an unknown name is an
        InputError listing the known ones."""
        unknown = [n for n in only if n not in self.names()]
        if unknown:
            raise InputError(f"unknown certificate name(s) {unknown}: the config has {self.names()}")
        return [c for c in self.certificates if not only or c.name in only]


# ---- certificates and state ---------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    """What we read off an issued leaf certificate."""

    serial: str  # lowercase hex, no separators
    not_before: dt.datetime
    not_after: dt.datetime
    names: tuple[str, ...]
    issuer: str
    key_type: KeyType | None

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before


@dataclass(frozen=True)
class CertificateMaterial:
    """PEM text of one issued certificate. `key_pem` never appears in repr or reports."""

    cert_pem: str
    chain_pem: str  # intermediates only, leaf's issuer first; never the root
    key_pem: str = field(repr=False)

    @property
    def fullchain_pem(self) -> str:
        return self.cert_pem + self.chain_pem


@dataclass(frozen=True)
class Placement:
    """One deploy target and what it holds (a target given as text is parsed)."""

    target: Target
    serial: str  # serial of the certificate deployed there
    arn: str | None = None  # the ACM certificate ARN (imported, or attached to CloudFront)

    def __post_init__(self) -> None:
        if isinstance(self.target, str):
            object.__setattr__(self, "target", Target.parse(self.target))

    def describe(self) -> str:
        if self.target.kind == ACM and self.arn:
            return f"acm:{self.arn}"
        return str(self.target)


@dataclass(frozen=True)
class Retiring:
    """A superseded ACM certificate (replaced by a new ARN) to delete once nothing uses it.

    CloudFront keeps using the old certificate for a while after UpdateDistribution (ACM reports
    it InUseBy and refuses DeleteCertificate), so it is kept here and tried again on later runs."""

    region: str
    arn: str
    since: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "arn": self.arn, "since": self.since.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Retiring:
        return cls(data["region"], data["arn"], dt.datetime.fromisoformat(data["since"]))


@dataclass(frozen=True)
class Deployment:
    """Where certificates of one config entry have been deployed, and which serial each holds;
    `retiring`: the superseded ACM certificates still to delete; `importing`: the ACM regions an
    import of the stored certificate is under way in, recorded before the import and cleared once
    the ARN that holds it is: one left over means a run died mid-import, and ACM may hold a
    certificate whose ARN was never recorded (a first import, or a move to a new ARN). None: not
    recorded (a pointer written before intents were), so any region may."""

    placements: tuple[Placement, ...] = ()
    retiring: tuple[Retiring, ...] = ()
    importing: tuple[str, ...] | None = ()

    def get(self, target: Target) -> Placement | None:
        return next((p for p in self.placements if p.target == target), None)

    def acm_arn(self, region: str) -> str | None:
        placement = self.get(Target.acm(region))
        return placement.arn if placement else None

    def may_hold_orphan(self, region: str) -> bool:
        """Whether ACM in `region` may hold a certificate a run imported and never recorded: an
        import was begun there and not recorded (or it is not known whether one was)."""
        return self.importing is None or region in self.importing

    def intending(self, regions: tuple[str, ...], serial: str) -> Deployment:
        """With the intent of an import of `serial` into each of `regions` whose ARN does not hold
        it yet (itself when every one does, or when not recorded: None already says any region may)."""
        due = [r for r in regions if (p := self.get(Target.acm(r))) is None or p.arn is None or p.serial != serial]
        if not due or self.importing is None:
            return self
        return replace(self, importing=tuple(dict.fromkeys([*self.importing, *due])))

    def for_new_version(self, regions: tuple[str, ...], serial: str) -> Deployment:
        """What a new version's pointer starts from: this deployment with the intents of importing
        it into every region (a pointer from before intents gets its first: its own are unknown)."""
        return replace(self, importing=self.importing or ()).intending(regions, serial)

    def with_placement(self, placement: Placement) -> Deployment:
        kept = tuple(p for p in self.placements if p.target != placement.target)
        importing = self.importing
        if placement.target.kind == ACM and placement.arn and importing:
            importing = tuple(r for r in importing if r != placement.target.id)
        return replace(self, placements=kept + (placement,), importing=importing)

    def with_retiring(self, region: str, arn: str, since: dt.datetime) -> Deployment:
        if any(r.arn == arn for r in self.retiring):
            return self
        return replace(self, retiring=self.retiring + (Retiring(region, arn, since),))

    def without_retiring(self, arns: set[str]) -> Deployment:
        return replace(self, retiring=tuple(r for r in self.retiring if r.arn not in arns))

    def targets(self, serial: str | None = None) -> tuple[str, ...]:
        return tuple(p.describe() for p in self.placements if serial is None or p.serial == serial)

    def to_dict(self) -> list[dict[str, Any]]:
        return [{"target": str(p.target), "serial": p.serial, "arn": p.arn} for p in self.placements]

    def retiring_to_dict(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.retiring]

    def importing_to_list(self) -> list[str] | None:
        return None if self.importing is None else list(self.importing)

    @classmethod
    def from_dict(cls, data: list[dict[str, Any]] | None, retiring: list[dict[str, Any]] | None = None,
                  importing: list[str] | None = ()) -> Deployment:
        """`importing` None: the pointer predates import intents (see `may_hold_orphan`)."""
        return cls(tuple(Placement(d["target"], d["serial"], d.get("arn")) for d in data or ()),
                   tuple(Retiring.from_dict(r) for r in retiring or ()),
                   None if importing is None else tuple(importing))


@dataclass(frozen=True)
class RenewalWindow:
    """The CA's ARI suggested window for a certificate, and the time we picked inside it.

    `chosen` is drawn uniformly in [start, end] once and kept while the window stays the same;
    `next_check` comes from the CA's Retry-After: the window is not asked for again before it.
    """

    start: dt.datetime
    end: dt.datetime
    chosen: dt.datetime
    next_check: dt.datetime
    explanation_url: str | None = None

    def same_window(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.start == start and self.end == end

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "chosen": self.chosen.isoformat(),
                "next_check": self.next_check.isoformat(), "explanation_url": self.explanation_url}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RenewalWindow | None:
        if not data:
            return None
        return cls(start=dt.datetime.fromisoformat(data["start"]), end=dt.datetime.fromisoformat(data["end"]),
                   chosen=dt.datetime.fromisoformat(data["chosen"]),
                   next_check=dt.datetime.fromisoformat(data["next_check"]),
                   explanation_url=data.get("explanation_url"))


@dataclass(frozen=True)
class StoredCertificate:
    """The current certificate of one config entry, as kept in the state bucket.

    Loading reads the small pointer only: `material` (the PEMs and the key, a KMS-protected
    read) is None until `StateStore.load_material` fills it, which is done only for a
    certificate about to be deployed or verified. `ari_cert_id` is kept in the pointer so ARI
    and `replaces` need no PEM."""

    name: str
    version: str
    domains: tuple[str, ...]  # the requested set, in config order
    key_type: KeyType
    profile: str | None
    directory: str
    info: CertificateInfo
    material: CertificateMaterial | None = field(repr=False)
    issued_at: dt.datetime
    deployment: Deployment = Deployment()
    window: RenewalWindow | None = None  # ARI, when the CA offers it
    replaced: str | None = None  # ARI CertID of the certificate this one replaced (sent as `replaces`)
    revoked: str | None = None  # revocation reason, once revoked
    damaged: str | None = None  # why the stored material cannot be used (it is then reissued, never deployed)
    ari_cert_id: str | None = None  # RFC 9773 CertID of the leaf (AKI.serial)
    outdated: bool = False  # kept in an older state layout: the next run that applies rewrites its pointer
    # issued through dns-persist-01 records with a persistUntil: the earliest (a renewal after it fails)
    persist_until: dt.datetime | None = None


@dataclass(frozen=True)
class AccountState:
    """The ACME account for one CA directory. `key_pem` never leaves the state store/adapter."""

    directory: str
    url: str | None
    key_pem: str = field(repr=False)
    email: str | None = None


# ---- planning and reporting ---------------------------------------------------------------


class Action(str, Enum):
    ISSUE = "issue"
    DEPLOY = "deploy"  # redeploy the stored certificate, no new order
    NONE = "none"


@dataclass(frozen=True)
class RenewalDecision:
    name: str
    action: Action
    reason: str
    renew_at: dt.datetime | None = None


class Outcome(str, Enum):
    ISSUED = "issued"
    RENEWED = "renewed"
    DEPLOYED = "deployed"
    SKIPPED = "skipped"
    FAILED = "failed"
    PLANNED = "planned"  # plan and dry-run: would act


@dataclass(frozen=True)
class CertificateResult:
    name: str
    outcome: Outcome
    reason: str
    serial: str | None = None
    not_after: dt.datetime | None = None
    next_check: dt.datetime | None = None
    targets: tuple[str, ...] = ()
    challenge: Challenge | None = None  # how this run validated the names (None: it issued nothing)
    directory: str | None = None  # the CA that issued the certificate in place
    persist_until: dt.datetime | None = None  # its dns-persist-01 records stop validating then

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "serial": self.serial,
            "not_after": _iso(self.not_after),
            "next_check": _iso(self.next_check),
            "targets": list(self.targets),
            "challenge": self.challenge.value if self.challenge else None,
            "directory": self.directory,
            "persist_until": _iso(self.persist_until),
        }


@dataclass(frozen=True)
class IssuanceTimings:
    """The run's one issuance round: first order to last verified certificate, and the DNS part
    of it (publishing the TXT values until the CA could see them), shared by all its orders."""

    seconds: float
    dns_wait: float


@dataclass(frozen=True)
class RunReport:
    results: tuple[CertificateResult, ...]
    started: dt.datetime
    finished: dt.datetime
    dry_run: bool = False
    issuance: IssuanceTimings | None = None  # None when the run ordered nothing
    warnings: tuple[str, ...] = ()  # what a person should fix before it fails a run (e.g. a fallback CA)

    @property
    def ok(self) -> bool:
        return all(r.outcome is not Outcome.FAILED for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.outcome.value] = out.get(r.outcome.value, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "started": _iso(self.started),
            "finished": _iso(self.finished),
            "counts": self.counts(),
            "issuance_seconds": _round(self.issuance.seconds) if self.issuance else None,
            "dns_wait_seconds": _round(self.issuance.dns_wait) if self.issuance else None,
            "warnings": list(self.warnings),
            "certificates": [r.to_dict() for r in self.results],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
