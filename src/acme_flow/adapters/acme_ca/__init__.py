"""The ACME CA adapter: wraps certbot's `acme` library (ClientV2 over ClientNetwork).

The library does the protocol (JWS, nonces, messages). We add what it lacks for a
serverless renewer: deadlines on every wait, Retry-After honoured, alternate chains,
account recovery when the CA forgot us, and errors translated into our own tree.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Collection, Iterator, TypeVar

import josepy as jose
import requests
import requests.adapters
from acme import challenges, client, errors as acme_errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from requests.utils import parse_header_links

from ...deadline import Deadline, Jitter, SystemClock, Wait, spread
from ...errors import AcmeProblem, AcmeTransientProblem, ValidationFailed
from ...models import AccountState
from ...persist import pick_draft, record_name
from ...ports import CaMeta, Dns01Challenge, IssuedChains, PendingOrder, PersistChallenge, RenewalInfo
from .network import _Network
from .persist import DnsPersist01, DnsPersist01Response, account_thumbprint

# The library logs every JWS it posts at DEBUG: keep it quiet whatever the root level is.
logging.getLogger("acme").setLevel(logging.WARNING)
log = logging.getLogger("certrenew.acme")

USER_AGENT = "certrenew/0.1 (+acme-python)"
TRANSIENT_CODES = {"badNonce", "rateLimited", "serverInternal"}
ACCOUNT_GONE = "urn:ietf:params:acme:error:accountDoesNotExist"
ALREADY_REPLACED = "urn:ietf:params:acme:error:alreadyReplaced"
# Problems after which a renewal is ordered once more without `replaces` (RFC 9773 §5: it only
# buys the rate-limit exemption): the CA says the certificate was already replaced, or it could
# not take the field (Pebble 2.10 answers serverInternal for a serial whose DER has a leading 0).
ORDER_AGAIN_WITHOUT_REPLACES = {ALREADY_REPLACED, "urn:ietf:params:acme:error:malformed",
                                "urn:ietf:params:acme:error:serverInternal"}
FIRST_POLL = 0.25
MAX_POLL = 5.0
ARI_DEFAULT_RETRY = 6 * 3600.0
AUTHZ_FETCH_WORKERS = 8
RETRY_ATTEMPTS = 4  # transient CA errors: three more tries with jittered backoff from RETRY_BASE
RETRY_BASE = 1.0
MAX_RETRY_WAIT = 30.0  # a Retry-After longer than this fails the step instead of waiting
T = TypeVar("T")


class NewOrder(messages.NewOrder):
    """RFC 8555 newOrder with RFC 9773's `replaces` (the library's NewOrder lacks the field)."""

    replaces: str | None = jose.field("replaces", omitempty=True)


class OrderBody(messages.Order):
    """An order as the CA returns it, keeping `replaces` (RFC 9773)."""

    replaces: str | None = jose.field("replaces", omitempty=True)


class AcmeCaAdapter:
    """One CA directory, one account key. Create with `AcmeCaAdapter(...)`, then `use_account`."""

    def __init__(self, directory: str, *, ca_bundle: str | None = None, email: str | None = None,
                 eab: tuple[str, Callable[[], str]] | None = None, timeout: float = 30.0,
                 clock: Any = None, jitter: Jitter | None = None) -> None:
        self.directory = directory
        self._clock = clock or SystemClock()
        self._jitter = jitter  # of the retry backoff (default: 0.5 to 1.5 times the delay)
        self._verify: str | bool = ca_bundle or True
        self._email = email
        self._eab = eab  # (kid, lazy HMAC key reader)
        self._timeout = timeout
        self._client: client.ClientV2 | None = None
        self._key: jose.JWK | None = None
        self._plain: client.ClientNetwork | None = None
        self._dir: messages.Directory | None = None
        self._meta: dict[str, Any] = {}  # the directory's raw `meta` (the library drops unknown fields)
        self._finalizing: dict[str, tuple[Any, float]] = {}  # order URL -> (finalize answer, when to look)
        self._finalizing_lock = threading.Lock()

    # -- directory (no account needed) ----------------------------------------------------------

    def _directory(self) -> messages.Directory:
        if self._dir is None:
            self._plain = _Network(None, verify_ssl=self._verify, user_agent=USER_AGENT, timeout=int(self._timeout))
            raw = self._request("reading the directory", lambda: self._plain.get(self.directory).json())
            self._meta = dict(raw.get("meta") or {}) if isinstance(raw, dict) else {}
            self._dir = self._request("reading the directory", lambda: messages.Directory.from_json(dict(raw)))
        return self._dir

    def meta(self) -> CaMeta:
        self._directory()
        identities = self._meta.get("caaIdentities") or ()
        prefix = self._meta.get("accountHashPrefix")
        return CaMeta(caa_identities=tuple(str(i) for i in identities if isinstance(i, str)),
                      account_hash_prefix=prefix if isinstance(prefix, str) else None)

    def account_thumbprint(self) -> str:
        if self._key is None:
            raise RuntimeError("use_account() must be called before the account thumbprint is known")
        return account_thumbprint(self._key)

    def profiles(self) -> dict[str, str] | None:
        meta = getattr(self._directory(), "meta", None)
        profiles = getattr(meta, "profiles", None) if meta is not None else None
        return dict(profiles) if profiles else None

    def supports_ari(self) -> bool:
        return _has(self._directory(), "renewalInfo")

    def renewal_info(self, cert_id: str) -> RenewalInfo | None:
        """GET renewalInfo/<CertID> (unauthenticated); None when the CA has no ARI."""
        directory = self._directory()
        if not _has(directory, "renewalInfo"):
            return None
        url = directory["renewalInfo"].rstrip("/") + "/" + cert_id
        response = self._request("fetching renewal information",
                                 lambda: self._plain.get(url, content_type="application/json"))
        body = self._request("reading renewal information", lambda: messages.RenewalInfo.from_json(response.json()))
        window = body.suggested_window
        return RenewalInfo(start=_aware(window.start), end=_aware(window.end),
                           retry_after=retry_after_seconds(response.headers.get("Retry-After"), ARI_DEFAULT_RETRY),
                           explanation_url=response.json().get("explanationURL"))

    # -- account --------------------------------------------------------------------------------

    @staticmethod
    def new_account_key(directory: str, email: str | None) -> AccountState:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
        return AccountState(directory=directory, url=None, key_pem=pem, email=email)

    def use_account(self, account: AccountState) -> AccountState:
        """Bind the account key; register it when the CA does not know it (yet or any more).

        Returns the account with its current URL (the caller saves it when it changed).
        """
        key = serialization.load_pem_private_key(account.key_pem.encode("ascii"), password=None)
        self._key = jose.JWKEC(key=key) if isinstance(key, ec.EllipticCurvePrivateKey) else jose.JWKRSA(key=key)
        alg = jose.ES256 if isinstance(key, ec.EllipticCurvePrivateKey) else jose.RS256
        net = _Network(self._key, alg=alg, verify_ssl=self._verify, user_agent=USER_AGENT,
                       timeout=int(self._timeout))
        self._client = client.ClientV2(self._directory(), net)
        url = self._existing_account_url(account) if account.url else None
        if url is None:
            url = self._register()
            log.info("registered ACME account %s", url)
        return AccountState(directory=account.directory, url=url, key_pem=account.key_pem,
                            email=account.email)

    def _existing_account_url(self, account: AccountState) -> str | None:
        regr = messages.RegistrationResource(uri=account.url, body=messages.Registration())
        try:
            return self._request("looking up the account", lambda: self._acme.query_registration(regr).uri)
        except AcmeProblem as exc:
            if exc.typ == ACCOUNT_GONE:
                log.warning("the CA no longer knows account %s: registering the same key again", account.url)
                return None
            raise

    def _register(self) -> str:
        acme = self._acme
        eab = None
        if self._eab is not None:
            kid, read_hmac = self._eab
            eab = messages.ExternalAccountBinding.from_data(
                account_public_key=self._key.public_key(), kid=kid, hmac_key=read_hmac(),
                directory=acme.directory)
        registration = messages.NewRegistration.from_data(
            email=self._email, terms_of_service_agreed=True, external_account_binding=eab)
        try:
            return self._request("registering the account", lambda: acme.new_account(registration).uri)
        except acme_errors.ConflictError as exc:  # the key already has an account
            return str(exc.location)

    @property
    def _acme(self) -> client.ClientV2:
        if self._client is None:
            raise RuntimeError("use_account() must be called before any ACME request")
        return self._client

    # -- orders ---------------------------------------------------------------------------------

    def new_order(self, csr_pem: bytes, domains: tuple[str, ...], profile: str | None,
                  replaces: str | None = None) -> PendingOrder:
        if replaces and not self.supports_ari():
            replaces = None  # never send `replaces` to a CA without ARI
        try:
            orderr = self._post_new_order(csr_pem, domains, profile, replaces)
        except AcmeProblem as exc:
            if not replaces or exc.typ not in ORDER_AGAIN_WITHOUT_REPLACES:
                raise
            log.warning("the CA refused the order with `replaces` (%s): ordering without it", exc)
            replaces = None
            orderr = self._post_new_order(csr_pem, domains, profile, None)
        pending = [a for a in orderr.authorizations if a.body.status != messages.STATUS_VALID]
        return PendingOrder(url=orderr.uri, domains=domains, handle=orderr, replaces=orderr.body.replaces,
                            challenges=tuple(c for a in pending if (c := self._dns01(a))),
                            persist=tuple(c for a in pending if (c := self._persist(a))),
                            pending=tuple(_ordered_name(a.body) for a in pending))

    def _post_new_order(self, csr_pem: bytes, domains: tuple[str, ...], profile: str | None,
                        replaces: str | None) -> messages.OrderResource:
        acme = self._acme
        identifiers = tuple(messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=d) for d in domains)
        order = NewOrder(identifiers=identifiers, profile=profile or None, replaces=replaces)
        # with `replaces`, a problem that drops the field is not retried first: ordered again at once
        final = ORDER_AGAIN_WITHOUT_REPLACES if replaces else frozenset()
        response = self._request("creating the order", lambda: acme.net.post(
            acme.directory["newOrder"], order, new_nonce_url=acme.directory["newNonce"]), final=final)
        body = self._request("reading the order", lambda: OrderBody.from_json(response.json()))
        authorizations = self._fetch_authorizations(list(body.authorizations))
        return messages.OrderResource(body=body, uri=response.headers.get("Location"),
                                      authorizations=authorizations, csr_pem=csr_pem)

    def _fetch_authorizations(self, urls: list[str]) -> list[messages.AuthorizationResource]:
        """All authorizations of an order, fetched concurrently (the library fetches them one by one)."""
        def fetch(url: str) -> messages.AuthorizationResource:
            response = self._request("fetching an authorization", lambda: self._post_as_get(url))
            return messages.AuthorizationResource(body=messages.Authorization.from_json(response.json()), uri=url)
        if len(urls) <= 1:
            return [fetch(u) for u in urls]
        with ThreadPoolExecutor(max_workers=min(AUTHZ_FETCH_WORKERS, len(urls))) as pool:
            return list(pool.map(fetch, urls))

    def check_registration_inputs(self) -> None:
        if self._eab is not None:
            self._eab = (self._eab[0], _once(self._eab[1]))
            self._eab[1]()

    def revoke(self, cert_pem: str, reason: int) -> None:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        self._request("revoking the certificate", lambda: self._acme.revoke(cert, reason))

    def _dns01(self, authzr: messages.AuthorizationResource) -> Dns01Challenge | None:
        body = authzr.body
        for challb in body.challenges:
            if isinstance(challb.chall, challenges.DNS01):
                return Dns01Challenge(
                    domain=_ordered_name(body),
                    record_name=challb.chall.validation_domain_name(body.identifier.value),
                    value=challb.chall.validation(self._key),
                    handle=challb)
        return None

    def _persist(self, authzr: messages.AuthorizationResource) -> PersistChallenge | None:
        body = authzr.body
        for challb in body.challenges:
            if isinstance(challb.chall, DnsPersist01):
                draft = pick_draft(challb.chall.fields_json(), self._meta)
                return PersistChallenge(domain=_ordered_name(body), record_name=record_name(body.identifier.value),
                                        issuers=challb.chall.issuer_domain_names, draft=draft.value, handle=challb)
        return None

    def answer(self, challenge: Dns01Challenge | PersistChallenge) -> None:
        challb = challenge.handle
        response = DnsPersist01Response() if isinstance(challenge, PersistChallenge) else challb.chall.response(self._key)
        self._request(f"answering the {challb.chall.typ} challenge for {challenge.domain}",
                      lambda: self._acme.answer_challenge(challb, response))

    def wait_valid(self, order: PendingOrder, deadline: Deadline) -> None:
        failures: dict[str, str] = {}
        for url in order.handle.body.authorizations:
            body = self._poll(url, messages.Authorization, deadline, "authorization",
                              done={messages.STATUS_VALID, messages.STATUS_INVALID,
                                    messages.STATUS_DEACTIVATED, messages.STATUS_REVOKED})
            if body.status != messages.STATUS_VALID:
                name = ("*." if body.wildcard else "") + body.identifier.value
                details = [str(c.error.detail or c.error.typ) for c in body.challenges if c.error]
                failures[name] = "; ".join(details) or f"authorization {body.status}"
        if failures:
            raise ValidationFailed(failures)

    def begin_finalize(self, order: PendingOrder, csr_pem: bytes) -> None:
        """POST the CSR; the answer (the order, and when to look at it again) is kept for
        `finalize`. An error is kept too: the poll in `finalize` tells whether the order went
        through (a lost response) or failed (its error)."""
        orderr = order.handle
        started = self._clock.monotonic()
        try:
            response = self._request("finalizing the order", lambda: self._post_finalize(orderr))
            body = messages.Order.from_json(response.json())
            ready_at = started + retry_after_seconds(response.headers.get("Retry-After"), default=0.0)
        except AcmeProblem as exc:
            # orderNotReady: still validating; anything else after retries
            log.info("finalize answered %s; polling the order", exc.code or exc)
            body, ready_at = None, started
        with self._finalizing_lock:
            self._finalizing[orderr.uri] = (body, ready_at)

    def finalize(self, order: PendingOrder, csr_pem: bytes, deadline: Deadline) -> IssuedChains:
        """The order polled until valid (not when the finalize answer says so already), its
        first look no sooner than the Retry-After the CA asked for (RFC 8555 7.4): polling at
        once met Pebble 2.10 still issuing, and it never answered that account again."""
        orderr = order.handle
        with self._finalizing_lock:
            submitted = self._finalizing.pop(orderr.uri, None)
        if submitted is None:
            self.begin_finalize(order, csr_pem)
            with self._finalizing_lock:
                submitted = self._finalizing.pop(orderr.uri)
        body, ready_at = submitted
        if body is None or body.status != messages.STATUS_VALID or body.certificate is None:
            wait = ready_at - self._clock.monotonic()
            body = self._poll(orderr.uri, messages.Order, deadline, "certificate issuance",
                              done={messages.STATUS_VALID, messages.STATUS_INVALID},
                              first_wait=wait if wait > 0 else None)
        if body.status != messages.STATUS_VALID or body.certificate is None:
            detail = body.error.detail if body.error is not None else "no detail given"
            raise AcmeProblem(body.error.typ if body.error is not None else "", f"order invalid: {detail}")
        response = self._request("downloading the certificate", lambda: self._post_as_get(body.certificate))
        alternates = [link["url"] for link in parse_header_links(response.headers.get("Link", ""))
                      if link.get("rel") == "alternate" and "url" in link]
        chains = [response.text] + [
            self._request("downloading an alternate chain", lambda u=url: self._post_as_get(u)).text
            for url in alternates]
        return IssuedChains(fullchains=tuple(chains))

    # -- polling --------------------------------------------------------------------------------

    def _post_finalize(self, orderr: messages.OrderResource) -> requests.Response:
        """The library's begin_finalization, keeping the answer's headers (its Retry-After)."""
        acme = self._acme
        csr = x509.load_pem_x509_csr(orderr.csr_pem)
        return acme.net.post(orderr.body.finalize, messages.CertificateRequest(csr=csr),
                             new_nonce_url=acme.directory["newNonce"])

    def _poll(self, url: str, message_type, deadline: Deadline, what: str, done: set,
              first_wait: float | None = None):
        """POST-as-GET `url` until its status is in `done`; honours Retry-After, else backs off.
        `first_wait`: wait that long before the first look (what the CA asked for before)."""
        def look():
            response = self._request(f"polling the {what}", lambda: self._post_as_get(url), deadline)
            body = message_type.from_json(response.json())
            if body.status in done:
                return body
            asked = retry_after_seconds(response.headers.get("Retry-After"), default=None)
            return None if asked is None else Wait(asked)
        if first_wait:  # what the CA asked before the first look (never past the deadline)
            self._clock.sleep(min(first_wait, max(0.0, deadline.remaining())))
        return deadline.poll(look, what, interval=FIRST_POLL, max_interval=MAX_POLL, backoff=2.0)

    def _request(self, what: str, fn: Callable[[], T], deadline: Deadline | None = None, *,
                 final: Collection[str] = frozenset()) -> T:
        """One CA request (see `_call`), retried within the run's deadline when there is one, and
        never for longer than every try and every wait at their longest would take; a problem
        whose type is in `final` is raised at once (the caller has a better next step)."""
        longest = RETRY_ATTEMPTS * self._timeout + (RETRY_ATTEMPTS - 1) * MAX_RETRY_WAIT
        budget = deadline.within(longest) if deadline else Deadline(self._clock, longest)
        return _call(what, fn, budget, self._jitter, final)

    def _post_as_get(self, url: str) -> requests.Response:
        acme = self._acme
        return acme.net.post(url, None, new_nonce_url=acme.directory["newNonce"])


def _ordered_name(body: messages.Authorization) -> str:
    """The name as ordered: a wildcard's authorization is for the base name, flagged `wildcard`."""
    return ("*." if body.wildcard else "") + body.identifier.value


def _once(read: Callable[[], str]) -> Callable[[], str]:
    """Read a secret once per run, however often it is needed."""
    value: list[str] = []

    def get() -> str:
        if not value:
            value.append(read())
        return value[0]
    return get


def _has(directory: messages.Directory, name: str) -> bool:
    try:
        directory[name]
    except KeyError:
        return False
    return True


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def retry_after_seconds(header: str | None, default, now: dt.datetime | None = None):
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); `default` when
    there is none or it cannot be read."""
    if not header:
        return default
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default
    now = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _call(what: str, fn: Callable[[], T], budget: Deadline, jitter: Jitter | None = None,
          final: Collection[str] = frozenset()) -> T:
    """Run one CA request: errors translated into ours (naming the step), transient ones
    (badNonce beyond the network's own retries, rateLimited with a short Retry-After, 5xx,
    connection errors) retried with jittered backoff within `budget`; permanent ones, and those
    whose type is in `final`, raised at once."""
    def once() -> T:
        with _translated(what):
            return fn()

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, AcmeTransientProblem) and exc.typ not in final
    return budget.retry(once, what, retryable=retryable, attempts=RETRY_ATTEMPTS, base=RETRY_BASE,
                        jitter=jitter or spread(0.5, 1.5), asked=lambda exc: exc.retry_after,
                        longest=MAX_RETRY_WAIT)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn the library's and requests' exceptions into ours, naming the step."""
    try:
        yield
    except messages.Error as exc:
        code = exc.code or ""
        status = getattr(exc, "http_status", None)
        transient = code in TRANSIENT_CODES or (status is not None and status >= 500)
        cls = AcmeTransientProblem if transient else AcmeProblem
        retry_after = getattr(exc, "retry_after_header", None)
        raise cls(exc.typ or "", f"{what}: {exc.detail or exc.title or code}", status=status,
                  retry_after=retry_after_seconds(retry_after, 0.0) if retry_after else None) from None
    except acme_errors.ConflictError:
        raise
    except acme_errors.Error as exc:
        raise AcmeProblem("", f"{what}: {exc}") from None
    except requests.RequestException as exc:
        raise AcmeTransientProblem("connection", f"{what}: cannot reach the CA ({type(exc).__name__}: {exc})") from None
