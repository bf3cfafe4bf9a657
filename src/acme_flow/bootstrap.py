"""The composition root: the only place that reads the environment and builds boto3 clients
and adapters (`build_adapters`); `build_renewer` makes the use case from them. The Lambda
handler and the CLI both call it; the unit tests make the use case from fakes instead
(`Renewer.from_adapters`)."""
from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

# botocore imports urllib3's pyOpenSSL module only to take the standard library's SSLContext from
# it, and with pyOpenSSL installed (the acme library needs it) that loads all of cryptography
# (~50 ms of every cold start). Marked absent, botocore takes the same SSLContext from
# urllib3.util.ssl_ (requests uses the module only on a Python without SNI).
sys.modules.setdefault("urllib3.contrib.pyopenssl", None)
import boto3  # noqa: E402
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .config import parse_config
from .deadline import SystemClock
from .errors import ConfigError, DeployRoleError, DnsRoleError, Problem, SettingsError
from .models import (APIGATEWAY, CLOUDFRONT_TENANT, ELB, SECRETSMANAGER, SSM, US_EAST_1, AcmeSettings,
                     Config)
from .ports import NO_PROGRESS, AcmeCa, Adapters, Clock, Notifier, Progress
from .renewal import Renewer

PACKAGED_CONFIG = "certificates.yaml"
# Their DEBUG lines carry request and response bodies (private keys sent to ACM, SSM secrets):
# held at WARNING whatever the root level, so no key material is logged at any level.
CHATTY_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer")
BOTO_RETRIES = {"mode": "standard", "max_attempts": 8}
WORKERS = 16  # certificates handled at once (orders, validation, store and deploy)
MAX_POOL = 2 * WORKERS
APP_ID = "certrenew"  # in every request's User-Agent ("app/certrenew"): CloudTrail shows who called
# A person's commands (persist, caa) run with that person's credentials and say so in CloudTrail
# too; the devstack's proxy judges them as an administrator's, not by the renewer's policy.
OPERATOR_APP_ID = "certrenew-operator"


@dataclass(frozen=True)
class Settings:
    config_ref: str
    state_bucket: str | None
    state_kms_key: str | None
    ca_bundle: str | None
    dns_resolvers: str | None
    region: str
    sns_topic_arn: str | None = None
    export_kms_key: str | None = None
    check_interval: dt.timedelta = dt.timedelta(days=7)
    event_bus: str | None = None
    expiring_days: float = 14.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, config_ref: str | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            config_ref=config_ref or env.get("CERTRENEW_CONFIG") or default_config_path(env),
            state_bucket=env.get("CERTRENEW_STATE_BUCKET") or None,
            state_kms_key=env.get("CERTRENEW_STATE_KMS_KEY") or None,
            ca_bundle=env.get("CERTRENEW_ACME_CA_BUNDLE") or None,
            dns_resolvers=env.get("CERTRENEW_DNS_RESOLVERS") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            sns_topic_arn=env.get("CERTRENEW_SNS_TOPIC_ARN") or None,
            export_kms_key=env.get("CERTRENEW_EXPORT_KMS_KEY") or None,  # never the state key
            check_interval=parse_interval(env.get("CERTRENEW_CHECK_INTERVAL") or "7d", "CERTRENEW_CHECK_INTERVAL"),
            event_bus=env.get("CERTRENEW_EVENT_BUS") or None,
            expiring_days=env_number(env, "CERTRENEW_EXPIRING_DAYS", 14.0, float),
        )

    def require_bucket(self) -> str:
        if not self.state_bucket:
            raise SettingsError("CERTRENEW_STATE_BUCKET is not set: name the S3 bucket that keeps "
                                "the ACME account and certificates")
        return self.state_bucket


def env_number(env: Mapping[str, str], name: str, default, kind):
    """A non-negative number from the environment, or `default` when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} must not be negative")
    return value


def parse_interval(text: str, name: str) -> dt.timedelta:
    """`7d`, `12h`, `30m` or seconds: how long until the next scheduled check."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    raw = text.strip().lower()
    try:
        seconds = float(raw[:-1]) * units[raw[-1]] if raw and raw[-1] in units else float(raw)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise SettingsError(f"{name}={text!r} is not a duration: use e.g. 7d, 12h, 30m or seconds")
    return dt.timedelta(seconds=seconds)


def default_config_path(env: Mapping[str, str]) -> str:
    """The packaged certificates.yaml: next to the Lambda code, else in the working directory."""
    task_root = env.get("LAMBDA_TASK_ROOT")
    if task_root and (Path(task_root) / PACKAGED_CONFIG).exists():
        return str(Path(task_root) / PACKAGED_CONFIG)
    return PACKAGED_CONFIG


class Clients:
    """boto3 clients of one invocation, made once each, with retries sized for real throttling.

    The cache lives on the instance (never `functools.lru_cache` on a method, which would keep
    every invocation's session and clients alive for the life of a warm Lambda), and clients are
    made under a lock: a botocore Session is not thread-safe for creating clients, and the
    renewer's workers ask for them from many threads. The clients themselves are thread-safe."""

    def __init__(self, region: str, app_id: str | None = None) -> None:
        quiet_libraries()
        self.region = region
        self._session = boto3.session.Session()
        self._boto_config = BotoConfig(retries=BOTO_RETRIES, connect_timeout=10, read_timeout=30,
                                       max_pool_connections=MAX_POOL, user_agent_appid=app_id or APP_ID)
        # Sends each request once: for calls that must not repeat blindly.
        self._single_try_config = self._boto_config.merge(
            BotoConfig(retries={"mode": "standard", "total_max_attempts": 1}))
        self._cache: dict[tuple[str, str, str], Any] = {}
        self._making: dict[tuple[str, str, str], threading.Lock] = {}  # one per key being made
        self._lock = threading.Lock()  # guards the two dicts
        self._session_lock = threading.Lock()  # one client creation at a time on the shared Session

    def get(self, service: str, region: str | None = None) -> Any:
        return self._made_once((service, region or self.region, "retrying"), self._make)

    def on_first_use(self, service: str, region: str | None = None) -> FirstUse:
        """The client, made when first called: for adapters that many runs never use."""
        return FirstUse(self, service, region)

    def single_try(self, service: str, region: str | None = None) -> Any:
        """A client that sends each request once: for calls that must not repeat blindly."""
        return self._made_once((service, region or self.region, "single-try"), self._make)

    def route53_for(self, role_arn: str | None) -> Any:
        """Route53 as the renewer, or as `role_arn` (assumed once per invocation).

        A role that cannot be assumed is a DnsRoleError: it fails the certificates that name it,
        not the run."""
        if not role_arn:
            return self.get("route53")
        return self._made_once(("route53", role_arn, "assumed-role"), self._assume_route53)

    def for_role(self, service: str, region: str | None, role_arn: str | None, *, single_try: bool = False) -> Any:
        """`service` in `region` as the renewer, or in the account of a deploy role (assumed once
        per invocation and role; each of its clients made once). A role that cannot be assumed
        is a DeployRoleError: it fails the certificates that name it, not the run."""
        if not role_arn:
            return self.single_try(service, region) if single_try else self.get(service, region)
        session = self._made_once(("session", role_arn, "deploy-role"), self._assume_deploy_role)
        kind = "single-try" if single_try else "retrying"
        config = self._single_try_config if single_try else self._boto_config

        def make(key: tuple[str, str, str]) -> Any:
            with self._session_lock:
                return session.client(service, region_name=region or self.region, config=config)
        return self._made_once((service, f"{region or self.region} {role_arn}", kind), make)

    def _assume_deploy_role(self, key: tuple[str, str, str]) -> Any:
        return self._assumed(key[1], "certrenew-deploy", DeployRoleError)

    def _assumed(self, role_arn: str, session_name: str, error: Callable[[str, str], Exception]) -> Any:
        """A session with `role_arn`'s credentials; `error(role_arn, why)` when it cannot be assumed."""
        try:
            creds = self.get("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise error(role_arn, str(exc)) from None
        return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"])

    def _made_once(self, key: tuple[str, str, str], make: Callable[[tuple[str, str, str]], Any]) -> Any:
        """The client for `key`, made by the first thread that asks; the others wait for that
        key only (a slow AssumeRole does not hold up other clients)."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            client = make(key)
            with self._lock:
                self._cache[key] = client
            return client

    def _make(self, key: tuple[str, str, str]) -> Any:
        service, region, kind = key
        config = self._single_try_config if kind == "single-try" else self._boto_config
        with self._session_lock:
            return self._session.client(service, region_name=region, config=config)

    def _assume_route53(self, key: tuple[str, str, str]) -> Any:
        session = self._assumed(key[1], "certrenew", DnsRoleError)
        return session.client("route53", region_name=self.region, config=self._boto_config)


class FirstUse:
    """Stands in for a boto3 client and has `Clients` make it on its first call: a run that
    deploys to no distribution and notifies nothing (a plan, a run with nothing due) does not
    pay for loading the CloudFront, SNS and EventBridge service models (tens of ms each)."""

    def __init__(self, clients: Clients, service: str, region: str | None) -> None:
        self._clients = clients
        self._service = service
        self._region = region

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and the like probe for these: no client for them
            raise AttributeError(name)
        return getattr(self._clients.get(self._service, self._region), name)


def load_config(settings: Settings, clients: Clients | None = None) -> Config:
    """Read the config document from a file, `s3://bucket/key` or `ssm:/name`, and validate it."""
    ref = settings.config_ref
    try:
        if ref.startswith("s3://"):
            bucket, _, key = ref[5:].partition("/")
            text = (clients or Clients(settings.region)).get("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        elif ref.startswith("ssm:"):
            text = (clients or Clients(settings.region)).get("ssm").get_parameter(
                Name=ref[4:], WithDecryption=True)["Parameter"]["Value"]
        else:
            text = Path(ref).read_bytes()
    except (OSError, ClientError, BotoCoreError) as exc:
        raise ConfigError([Problem("", f"cannot read the config: {exc}")], ref) from None
    config = parse_config(text, ref)
    check_notify_topic(config, settings)
    return config


def check_notify_topic(config: Config, settings: Settings) -> None:
    """In a stack (CERTRENEW_SNS_TOPIC_ARN set), the function may publish only to the stack's
    topic: a different notify.sns_topic_arn would fail at the end of every run, so it is a
    config error now, before anything is written."""
    wanted, allowed = config.notify.sns_topic_arn, settings.sns_topic_arn
    if wanted and allowed and wanted != allowed:
        raise ConfigError([Problem("notify.sns_topic_arn", (
            f"{wanted} is not the topic this stack publishes to ({allowed}, CERTRENEW_SNS_TOPIC_ARN): "
            "the function's policy allows only that one. Either remove notify.sns_topic_arn from the "
            f"config (reports go to {allowed}), or deploy the stack with the template parameter "
            f"NotificationTopicArn={wanted} (and NotificationTopicKmsKeyArn if that topic is encrypted "
            "with a customer managed KMS key)"))], config.source)


def read_secret(ref: str, clients: Clients) -> str:
    """Resolve an `ssm:/name` or `secretsmanager:name` reference (EAB HMAC keys)."""
    try:
        if ref.startswith("ssm:"):
            return clients.get("ssm").get_parameter(Name=ref[4:], WithDecryption=True)["Parameter"]["Value"]
        return clients.get("secretsmanager").get_secret_value(SecretId=ref.split(":", 1)[1])["SecretString"]
    except (ClientError, BotoCoreError) as exc:
        raise ConfigError([Problem("acme.eab.hmac_key", f"cannot read {ref}: {exc}")]) from None


def quiet_libraries() -> None:
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def build_adapters(settings: Settings, clients: Clients, config: Config, clock: Clock,
                   wrap: Callable[[str, Any], Any] | None = None, progress: Progress = NO_PROGRESS) -> Adapters:
    """Every adapter of a run, from the settings and this invocation's boto3 clients; `wrap`
    (name, port) -> port lets the handler trace every port method; `progress` hears what the run
    waits for (a status line when `certrenew run` writes to a terminal; the Lambda: nothing)."""
    # Adapters are imported here so a `plan` of a bad config fails fast without loading them.
    from .adapters.acm import AcmImporter
    from .adapters.cloudfront import CloudFrontAttacher
    from .adapters.dns_check import DnsCaa, DnsPropagation, dns_cname_lookup, parse_resolvers
    from .adapters.route53 import Route53Dns, Route53Records
    from .adapters.s3_export import S3Exporter
    from .adapters.s3_state import S3StateStore

    acme = config.acme
    resolvers = parse_resolvers(settings.dns_resolvers)
    state = S3StateStore(clients.get("s3"), settings.require_bucket(), settings.state_kms_key)
    dns = Route53Dns(clients.route53_for, lookup_cname=dns_cname_lookup(resolvers or None), clock=clock,
                     progress=progress)
    wrap = wrap or (lambda name, port: port)
    return Adapters(
        state=wrap("state", state),
        ledger=wrap("ledger", state),
        ca=_ca_factory(settings, acme, clients, clock, wrap),
        fallback_cas=tuple(_ca_factory(settings, f, clients, clock, wrap) for f in acme.fallback),
        dns=wrap("dns", dns),
        propagation=wrap("propagation", DnsPropagation(resolvers, name_servers=dns.name_servers, progress=progress)),
        importer=wrap("importer", AcmImporter(
            lambda region: clients.get("acm", region), lambda region: clients.single_try("acm", region), clock=clock,
            role_for=lambda region, role, once: clients.for_role("acm", region, role, single_try=once))),
        cloudfront=wrap("cloudfront", CloudFrontAttacher(
            clients.on_first_use("cloudfront"), lambda role: clients.for_role("cloudfront", US_EAST_1, role))),
        exporter=wrap("exporter", S3Exporter(clients.get("s3"), settings.export_kms_key, settings.region,
                                             lambda role: clients.for_role("s3", None, role))),
        notifier=wrap("notifier", build_notifier(settings, clients, config, clock)),
        clock=clock,
        records=wrap("records", Route53Records(dns)),
        caa=wrap("caa", DnsCaa(resolvers or None)),
        progress=progress,
        **{port: wrap(port, adapter) for port, adapter in _attached_adapters(config, clients).items()},
    )


def _attached_adapters(config: Config, clients: Clients) -> dict[str, Any]:
    """The adapters of the target kinds the config uses (issue 13), imported only then: a cold
    start of a config without them loads none of them."""
    kinds = {t.kind for spec in config.certificates for t in spec.deploy.targets()}

    def client_for(service: str) -> Callable[[str, str | None], Any]:
        return lambda region, role: clients.for_role(service, region, role)
    made: dict[str, Any] = {}
    if CLOUDFRONT_TENANT in kinds:
        from .adapters.cloudfront_tenants import CloudFrontTenants
        made["tenants"] = CloudFrontTenants(client_for("cloudfront"))
    if ELB in kinds:
        from .adapters.elb import ElbListeners
        made["listeners"] = ElbListeners(client_for("elbv2"))
    if APIGATEWAY in kinds:
        from .adapters.apigateway import ApiGatewayDomains
        made["api_domains"] = ApiGatewayDomains(client_for("apigateway"))
    if SECRETSMANAGER in kinds or SSM in kinds:
        from .adapters.secret_stores import SecretsManagerWriter, SsmParameterWriter
        made["secrets"] = SecretsManagerWriter(client_for("secretsmanager"), client_for("kms"))
        made["parameters"] = SsmParameterWriter(client_for("ssm"))
    return made


def _ca_factory(settings: Settings, acme: AcmeSettings, clients: Clients, clock: Clock,
                wrap: Callable[[str, Any], Any]) -> Callable[[], AcmeCa]:
    """The CA client of one configured CA, made when first needed (its EAB secret read then)."""
    eab = (acme.eab.kid, lambda: read_secret(acme.eab.hmac_ref, clients)) if acme.eab else None
    return lambda: wrap("ca", build_ca(settings, acme, eab, clock))


def build_ca(settings: Settings, acme: AcmeSettings, eab: tuple[str, Callable[[], str]] | None,
             clock: Clock) -> AcmeCa:
    """The ACME CA adapter, made when a run first needs the CA."""
    # imported here: a run that never talks to the CA (a plan, nothing due) loads no acme, josepy or requests
    from .adapters.acme_ca import AcmeCaAdapter

    return AcmeCaAdapter(acme.directory, ca_bundle=settings.ca_bundle, email=acme.email, eab=eab, clock=clock)


def build_notifier(settings: Settings, clients: Clients, config: Config, clock: Clock) -> Notifier:
    from .adapters.notify import CompositeNotifier, EventBridgeNotifier, SnsNotifier

    topic = config.notify.sns_topic_arn or settings.sns_topic_arn
    return CompositeNotifier(
        SnsNotifier(clients.on_first_use("sns", _region_of(topic)), topic, settings.expiring_days) if topic else None,
        EventBridgeNotifier(clients.on_first_use("events"), config, settings.event_bus, settings.expiring_days,
                            clock=clock) if settings.event_bus else None)


def build_renewer(config: Config, settings: Settings, clients: Clients | None = None,
                  clock: Clock | None = None, wrap: Callable[[str, Any], Any] | None = None,
                  progress: Progress = NO_PROGRESS) -> Renewer:
    quiet_libraries()
    adapters = build_adapters(settings, clients or Clients(settings.region), config, clock or SystemClock(), wrap,
                              progress)
    return Renewer.from_adapters(config, adapters, workers=WORKERS, check_interval=settings.check_interval)


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else None


REHEARSAL_ROOTS_ENV = "CERTRENEW_REHEARSAL_ROOTS"  # PEM file of the staging CA's roots to verify chains against


def build_rehearsal(config: Config, settings: Settings, clients: Clients | None = None, clock: Clock | None = None,
                    wrap: Callable[[str, Any], Any] | None = None, env: Mapping[str, str] | None = None) -> Any:
    """The rehearsal use case (rehearsal.py) on adapters built from the staged config (their CA is
    the staging directory); the CLI's `rehearse` and the handler's `rehearse` action."""
    from .rehearsal import Rehearsal, staged

    config = staged(config)
    adapters = build_adapters(settings, clients or Clients(settings.region), config, clock or SystemClock(), wrap)
    return Rehearsal.from_adapters(config, adapters, roots=read_rehearsal_roots(os.environ if env is None else env),
                                   workers=WORKERS)


def read_rehearsal_roots(env: Mapping[str, str]) -> tuple[str, ...]:
    """The staging roots from the PEM file `CERTRENEW_REHEARSAL_ROOTS` names (none when unset)."""
    from . import pki

    path = env.get(REHEARSAL_ROOTS_ENV)
    if not path:
        return ()
    try:
        roots = tuple(pki.split_pem_chain(Path(path).read_text()))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{REHEARSAL_ROOTS_ENV}={path!r}: cannot read it ({exc})") from None
    if not roots:
        raise SettingsError(f"{REHEARSAL_ROOTS_ENV}={path!r} holds no PEM certificate")
    return roots


def build_discovery(settings: Settings) -> tuple[Any, Callable[[str], str]]:
    """`certrenew discover`'s reads, as a person's (operator) calls: the inventory of what uses
    certificates, and where a run would write a name's `_acme-challenge` TXT record (its zone,
    following CNAME delegation exactly as a run does; raises ZoneNotFound / DnsError)."""
    from .adapters.dns_check import dns_cname_lookup, parse_resolvers
    from .adapters.inventory import AwsInventory
    from .adapters.route53 import Route53Dns
    from .models import CertificateSpec

    clients = Clients(settings.region, app_id=OPERATOR_APP_ID)
    dns = Route53Dns(clients.route53_for, lookup_cname=dns_cname_lookup(parse_resolvers(settings.dns_resolvers) or None))

    def locate(record: str) -> str:
        return dns.locate(record, "", CertificateSpec("discover", (record.removeprefix("_acme-challenge."),))).name
    return AwsInventory(clients.get), locate
