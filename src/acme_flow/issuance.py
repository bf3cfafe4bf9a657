"""ACME issuance for every certificate due in a run, with one DNS round for all of them.

The steps, each logged once:
  1. a fresh key, a CSR and a new order per certificate (concurrently);
  2. locate the hosted zone of every `_acme-challenge` record;
  3. publish all TXT values, one change batch per zone, and wait for INSYNC;
  4. check the values are served by the zone's name servers (or the configured resolvers);
  5. answer every challenge, then poll each order's authorizations to valid;
  6. finalize each order and download the default and alternate chains;
  7. (finally) delete every TXT value we published, also when anything failed;
  8. choose the chain, verify chain, key and names before anything is stored.
A failure of one certificate never stops the others: results map each name to
`Issued` or the exception that ended it.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, TypeVar

from . import pki
from .errors import CertrenewError, PropagationTimeout, VerificationError
from .deadline import Deadline
from .models import CertificateInfo, CertificateMaterial, CertificateSpec
from .ports import AcmeCa, Clock, DnsProvider, PendingOrder, PropagationCheck, TxtRecord

log = logging.getLogger("certrenew.issuance")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Issued:
    spec: CertificateSpec
    material: CertificateMaterial = field(repr=False)
    info: CertificateInfo
    root: str  # issuer name of the chosen chain's root
    replaced: str | None = None  # the ARI CertID the CA recorded as replaced by this order
    seconds: float = 0.0  # the issuance batch this certificate was in: first order to last verification
    dns_wait: float = 0.0  # publishing the TXT values until the CA could see them (shared by the run)


@dataclass
class _Work:
    """One certificate's progress through the run."""

    spec: CertificateSpec
    replaces: str | None = None
    key_pem: str = field(default="", repr=False)
    csr_pem: bytes = b""
    order: PendingOrder | None = None
    records: list[TxtRecord] = field(default_factory=list)
    chains: tuple[str, ...] = ()


@dataclass
class Issuer:
    ca: AcmeCa
    dns: DnsProvider
    propagation: PropagationCheck
    clock: Clock
    workers: int = 8
    propagation_timeout: float = 300.0  # and never more than half the time left
    on_publish: Callable[[list[TxtRecord]], None] | None = None  # before any TXT value is written
    on_cleaned: Callable[[], None] | None = None  # once every value is removed again
    _dns_wait: float = field(default=0.0, init=False)

    def issue_all(self, specs: list[CertificateSpec], deadline: Deadline,
                  replaces: dict[str, str] | None = None) -> dict[str, Issued | Exception]:
        """Issue every spec; `replaces` maps a name to the ARI CertID of the certificate it renews."""
        results: dict[str, Issued | Exception] = {}
        started = self.clock.monotonic()
        works = [_Work(s, (replaces or {}).get(s.name)) for s in specs]
        live = self._start_orders(works, results)
        live = self._locate_records(live, results)
        published: list[TxtRecord] = []
        try:
            records = [r for w in live for r in w.records]
            if records:
                log.info("publishing %d TXT values for %d certificates", len(records), len(live))
                if self.on_publish:
                    self.on_publish(records)
                published = records
                dns_started = self.clock.monotonic()
                self.dns.present(records, deadline)
                live = self._check_propagation(live, records, deadline, results)
                self._dns_wait = self.clock.monotonic() - dns_started
            live = self._answer_and_wait(live, deadline, results)
            live = self._finalize(live, deadline, results)
        except CertrenewError as exc:
            for work in live:
                results.setdefault(work.spec.name, exc)
            live = []
        finally:
            if published:
                self._cleanup(published)
        for work in live:
            results[work.spec.name] = _settle(lambda w=work: self._choose_and_verify(w))
        elapsed = self.clock.monotonic() - started
        return {name: replace(r, seconds=elapsed, dns_wait=self._dns_wait) if isinstance(r, Issued) else r
                for name, r in results.items()}

    # -- steps ----------------------------------------------------------------------------------

    def _start_orders(self, works: list[_Work], results: dict) -> list[_Work]:
        def start(work: _Work) -> _Work:
            key = pki.generate_key(work.spec.key)
            work.key_pem = pki.key_to_pem(key)
            work.csr_pem = pki.make_csr(key, work.spec.domains)
            work.order = self.ca.new_order(work.csr_pem, work.spec.domains, work.spec.profile, work.replaces)
            log.info("order %s for %s: %d challenges to answer%s", work.order.url, work.spec.name,
                     len(work.order.challenges), f", replaces {work.order.replaces}" if work.order.replaces else "")
            return work
        return self._each(works, start, results, "ordering")

    def _locate_records(self, works: list[_Work], results: dict) -> list[_Work]:
        def locate(work: _Work) -> _Work:
            assert work.order is not None
            work.records = [self.dns.locate(c.record_name, c.value, work.spec) for c in work.order.challenges]
            return work
        return _keep(works, results, [(w, _settle(lambda w=w: locate(w))) for w in works], "zone lookup")

    def _check_propagation(self, works: list[_Work], records: list[TxtRecord], deadline: Deadline,
                           results: dict) -> list[_Work]:
        try:
            limit = deadline.within(min(self.propagation_timeout, deadline.remaining() / 2))
            self.propagation.wait_visible(records, limit)
            log.info("all %d TXT values are visible", len(records))
            return works
        except PropagationTimeout as exc:
            failed = [w for w in works if any(r.name in exc.missing for r in w.records)]
            for work in failed:
                results[work.spec.name] = exc
            return [w for w in works if w not in failed]

    def _answer_and_wait(self, works: list[_Work], deadline: Deadline, results: dict) -> list[_Work]:
        """Answer every challenge of the run first, then poll: the CA validates them all in
        parallel, and most authorizations are valid by the time they are first polled."""
        def answer(work: _Work) -> _Work:
            assert work.order is not None
            for challenge in work.order.challenges:
                self.ca.answer(challenge)
            return work

        def wait(work: _Work) -> _Work:
            assert work.order is not None
            self.ca.wait_valid(work.order, deadline)
            log.info("authorizations valid for %s", work.spec.name)
            return work
        answered = self._each(works, answer, results, "answering")
        log.info("answered the challenges of %d certificates", len(answered))
        return self._each(answered, wait, results, "validation")

    def _finalize(self, works: list[_Work], deadline: Deadline, results: dict) -> list[_Work]:
        def finalize(work: _Work) -> _Work:
            assert work.order is not None
            work.chains = self.ca.finalize(work.order, work.csr_pem, deadline).fullchains
            log.info("certificate issued for %s (%d chains offered)", work.spec.name, len(work.chains))
            return work
        return self._each(works, finalize, results, "finalize")

    def _cleanup(self, records: list[TxtRecord]) -> None:
        try:
            self.dns.remove(records)
            log.info("removed %d TXT values", len(records))
            if self.on_cleaned:
                self.on_cleaned()
        except Exception as exc:  # cleanup must never hide the run's own outcome
            log.error("could not remove TXT values (a later run sweeps them): %s", exc)

    def _choose_and_verify(self, work: _Work) -> Issued:
        fullchain = choose_chain(work.chains, work.spec.preferred_chain)
        certs = pki.split_pem_chain(fullchain)
        if not certs:
            raise VerificationError("the CA returned no certificate")
        material = CertificateMaterial(cert_pem=certs[0], chain_pem="".join(pki.strip_roots(certs[1:])),
                                       key_pem=work.key_pem)
        info = pki.verify_material(material, work.spec.domains, self.clock.now(), work.spec.key)
        assert work.order is not None
        return Issued(spec=work.spec, material=material, info=info, root=pki.chain_root_issuer(fullchain),
                      replaced=work.order.replaces)

    def _each(self, works: list[_Work], fn: Callable[[_Work], _Work], results: dict,
              step: str) -> list[_Work]:
        outcomes = map_settled(fn, works, self.workers)
        return _keep(works, results, list(zip(works, outcomes)), step)


def choose_chain(fullchains: Iterable[str], preferred_root: str | None) -> str:
    """The chain whose root issuer name matches `preferred_root`, else the CA's default (first)."""
    chains = list(fullchains)
    if not chains:
        raise VerificationError("the CA returned no certificate chain")
    if preferred_root:
        for chain in chains:
            if pki.chain_root_issuer(chain) == preferred_root:
                return chain
        log.info("no chain ends at %r; using the default chain", preferred_root)
    return chains[0]


def map_settled(fn: Callable[[T], R], items: list[T], workers: int) -> list[R | Exception]:
    """Apply `fn` to each item concurrently; each result is the value or the exception raised."""
    if not items:
        return []
    if len(items) == 1 or workers <= 1:
        return [_settle(lambda i=i: fn(i)) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(lambda i: _settle(lambda: fn(i)), items))


def _settle(thunk: Callable[[], R]) -> R | Exception:
    try:
        return thunk()
    except Exception as exc:  # every failure belongs to its certificate
        return exc


def _keep(works: list[_Work], results: dict, outcomes: list[tuple[_Work, Any]], step: str) -> list[_Work]:
    kept = []
    for work, outcome in outcomes:
        if isinstance(outcome, Exception):
            log.warning("%s failed at %s: %s", work.spec.name, step, outcome)
            results[work.spec.name] = outcome
        else:
            kept.append(work)
    return kept
