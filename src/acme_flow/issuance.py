"""ACME issuance for every certificate due in a run, with one DNS round for all of them.

The steps, each logged once:
  1. a fresh key, a CSR and a new order per certificate (concurrently);
  1b. choose each order's challenge (validation.py); answer the dns-persist-01 ones at once;
  2. locate the hosted zone of every `_acme-challenge` record;
  3. publish all TXT values, one change batch per zone, and wait for INSYNC;
  4. check the values are served by the zone's name servers (or the configured resolvers);
  5. answer every challenge, then poll each order's authorizations to valid;
  6. finalize each order and download the default and alternate chains;
  7. (finally) delete every TXT value we published, also when anything failed: on a thread of
     its own, so the certificates are stored and deployed meanwhile (`cleaned` waits for it);
  8. choose the chain, verify chain, key and names before anything is stored.
A failure of one certificate never stops the others: results map each name to
`Issued` or the exception that ended it. Nothing of a certificate is stored (and no ARI
window asked) before every order of the round is finalized: Pebble 2.10 deadlocks when a
renewalInfo lookup meets an order being finalized and polled.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from . import pki
from .errors import CertrenewError, PropagationTimeout, VerificationError
from .deadline import Deadline
from .models import CertificateInfo, CertificateMaterial, CertificateSpec, Challenge, IssuanceTimings
from .parallel import Background, map_settled, settle
from .ports import (NO_PROGRESS, AcmeCa, ChallengeLedger, Clock, Dns01Challenge, DnsProvider, PendingOrder,
                    Progress, PropagationCheck, TxtRecord, ZoneRecords)
from .validation import ChallengeChooser, Choice

log = logging.getLogger("certrenew.issuance")


@dataclass(frozen=True)
class Issued:
    spec: CertificateSpec
    material: CertificateMaterial = field(repr=False)
    info: CertificateInfo
    root: str  # issuer name of the chosen chain's root
    replaced: str | None = None  # the ARI CertID the CA recorded as replaced by this order
    challenge: Challenge | None = None  # how the names were validated (None: authorizations reused)
    note: str = ""  # why `auto` fell back to DNS-01, when it did
    directory: str = ""  # the CA that issued it
    persist_until: dt.datetime | None = None  # when the dns-persist-01 records it used stop validating


@dataclass
class _Work:
    """One certificate's progress through the run."""

    spec: CertificateSpec
    replaces: str | None = None
    key_pem: str = field(default="", repr=False)
    csr_pem: bytes = b""
    order: PendingOrder | None = None
    choice: Choice = Choice(None)
    records: list[TxtRecord] = field(default_factory=list)
    chains: tuple[str, ...] = ()


@dataclass
class _DnsRound:
    """The run's one DNS-01 round: the values to publish, those published (to clean up), its time."""

    records: list[TxtRecord]
    published: list[TxtRecord] = field(default_factory=list)
    wait: float = 0.0


@dataclass
class Issuer:
    dns: DnsProvider
    propagation: PropagationCheck
    ledger: ChallengeLedger
    clock: Clock
    workers: int = 8
    propagation_timeout: float = 300.0  # and never more than half the time left
    records: ZoneRecords | None = None  # reads the dns-persist-01 records
    progress: Progress = NO_PROGRESS  # each wait of the round, for a status line on a terminal
    _cleaning: list[Background] = field(default_factory=list, init=False, repr=False)

    def check(self, spec: CertificateSpec) -> None:
        """Every `_acme-challenge` name of `spec` has a hosted zone we can write (read-only); not
        for dns-persist-01, whose records may live in DNS that is not Route53."""
        if spec.challenge is Challenge.DNS_PERSIST01:
            return
        for domain in dict.fromkeys(d.removeprefix("*.") for d in spec.domains):
            self.dns.locate(f"_acme-challenge.{domain}", "", spec)

    def sweep_stale(self) -> None:
        """Remove TXT values that a crashed earlier run published and never removed (a ledger
        that cannot be read is left for a later run: sweeping never fails a run)."""
        try:
            stale = self.ledger.stale_challenges(self.clock.now())
        except CertrenewError as exc:
            log.warning("could not look for TXT values left by earlier runs: %s", exc)
            return
        for run, records in stale:
            try:
                self.dns.remove(records)
                self.ledger.forget_challenges(run)
                log.info("swept %d TXT values left by run %s", len(records), run)
            except CertrenewError as exc:
                log.warning("could not sweep the TXT values of run %s: %s", run, exc)

    def issue_all(self, ca: AcmeCa, specs: list[CertificateSpec], deadline: Deadline, run_id: str,
                  until: dt.datetime, replaces: dict[str, str] | None = None,
                  account_url: str | None = None) -> tuple[dict[str, Issued | Exception], IssuanceTimings]:
        """Issue every spec; `replaces` maps a name to the ARI CertID of the certificate it
        renews; the ledger holds the run's TXT values (as `run_id`, until `until`) while published.
        Orders validated by dns-persist-01 (`account_url` names our account in their records) are
        answered at once: they validate while the others' TXT values propagate."""
        self.cleaned()  # a round before this one (another CA's) may still be removing values of the same names
        results: dict[str, Issued | Exception] = {}
        started = self.clock.monotonic()
        works = [_Work(s, (replaces or {}).get(s.name)) for s in specs]
        live = self._choose(ca, self._start_orders(ca, works, results), results, account_url)
        persistent = self._answer(ca, [w for w in live if w.choice.persistent], results)
        publishing = self._locate_records([w for w in live if not w.choice.persistent], results)
        records = [r for w in publishing for r in w.records]
        round_ = _DnsRound(records)
        try:
            publishing = self._dns_round(round_, publishing, deadline, run_id, until, results)
            answered = persistent + self._answer(ca, publishing, results)
            self._phase("waiting for the CA to validate", answered, "orders valid")
            valid = self._each(answered, lambda w: self._wait_valid(ca, w, deadline), results, "validation")
            self._finalize(ca, valid, deadline, results)
        except CertrenewError as exc:
            for work in persistent + publishing:
                results.setdefault(work.spec.name, exc)
        finally:
            self.progress.done()
            if round_.published:
                published = round_.published
                self._cleaning.append(Background(lambda: self._cleanup(published, run_id), f"cleanup-{run_id}"))
        return results, IssuanceTimings(self.clock.monotonic() - started, round_.wait)

    # -- steps ----------------------------------------------------------------------------------

    def _start_orders(self, ca: AcmeCa, works: list[_Work], results: dict) -> list[_Work]:
        def start(work: _Work) -> _Work:
            key = pki.generate_key(work.spec.key)
            work.key_pem = pki.key_to_pem(key)
            work.csr_pem = pki.make_csr(key, work.spec.domains)
            work.order = ca.new_order(work.csr_pem, work.spec.domains, work.spec.profile, work.replaces)
            self.progress.advance()
            log.info("order %s for %s: %d challenges to answer%s", work.order.url, work.spec.name,
                     len(work.order.challenges), f", replaces {work.order.replaces}" if work.order.replaces else "")
            return work
        self._phase("starting orders", works, "orders")
        return self._each(works, start, results, "ordering")

    def _dns_round(self, round_: _DnsRound, works: list[_Work], deadline: Deadline, run_id: str,
                   until: dt.datetime, results: dict) -> list[_Work]:
        """Publish every TXT value (in the ledger first), wait for INSYNC and for the values to be
        served; the works whose values can be seen. A failure fails these works only: orders
        validated by dns-persist-01 go on."""
        if not round_.records:
            return works
        log.info("publishing %d TXT values for %d certificates", len(round_.records), len(works))
        self._phase("publishing TXT values", round_.records, "values")  # the DNS provider counts
        started = self.clock.monotonic()
        try:
            self.ledger.record_challenges(run_id, round_.records, until)
            round_.published = round_.records
            self.dns.present(round_.records, deadline)
            return self._check_propagation(works, round_.records, deadline, results)
        except CertrenewError as exc:
            for work in works:
                results.setdefault(work.spec.name, exc)
            return []
        finally:
            round_.wait = self.clock.monotonic() - started

    def _choose(self, ca: AcmeCa, works: list[_Work], results: dict, account_url: str | None) -> list[_Work]:
        chooser = ChallengeChooser(self.records, self.clock)

        def choose(work: _Work) -> _Work:
            assert work.order is not None
            work.choice = chooser.choose(ca, work.spec, work.order, account_url)
            if work.choice.note:
                log.info("%s: %s", work.spec.name, work.choice.note)
            return work
        return self._each(works, choose, results, "choosing the challenge")

    def _locate_records(self, works: list[_Work], results: dict) -> list[_Work]:
        def locate(work: _Work) -> _Work:
            work.records = [self.dns.locate(c.record_name, c.value, work.spec)
                            for c in work.choice.challenges if isinstance(c, Dns01Challenge)]
            return work
        return _keep(works, results, [(w, settle(lambda w=w: locate(w))) for w in works], "zone lookup")

    def _check_propagation(self, works: list[_Work], records: list[TxtRecord], deadline: Deadline,
                           results: dict) -> list[_Work]:
        try:
            limit = deadline.within(min(self.propagation_timeout, deadline.remaining() / 2))
            self._phase("waiting for the TXT values to be served", records, "values seen")
            self.propagation.wait_visible(records, limit)
            log.info("all %d TXT values are visible", len(records))
            return works
        except PropagationTimeout as exc:
            failed = [w for w in works if any(r.name in exc.missing for r in w.records)]
            for work in failed:
                results[work.spec.name] = exc
            return [w for w in works if w not in failed]

    def _answer(self, ca: AcmeCa, works: list[_Work], results: dict) -> list[_Work]:
        """Answer every challenge of these orders before any is polled: the CA validates them
        all in parallel, and most authorizations are valid by the time they are first polled."""
        def answer(work: _Work) -> _Work:
            for challenge in work.choice.challenges:
                ca.answer(challenge)
            self.progress.advance()
            return work
        if not works:
            return []
        self._phase("answering challenges", works, "orders")
        answered = self._each(works, answer, results, "answering")
        method = "dns-persist-01" if works[0].choice.persistent else "DNS-01"
        log.info("answered the %s challenges of %d certificates", method, len(answered))
        return answered

    def _wait_valid(self, ca: AcmeCa, work: _Work, deadline: Deadline) -> _Work:
        assert work.order is not None
        ca.wait_valid(work.order, deadline)
        self.progress.advance()
        log.info("authorizations valid for %s", work.spec.name)
        return work

    def _finalize(self, ca: AcmeCa, works: list[_Work], deadline: Deadline, results: dict) -> None:
        """Finalize each order and verify its certificate (into `results`)."""
        def finalize(work: _Work) -> _Work:
            assert work.order is not None
            work.chains = ca.finalize(work.order, work.csr_pem, deadline).fullchains
            self.progress.advance()
            log.info("certificate issued for %s (%d chains offered)", work.spec.name, len(work.chains))
            results[work.spec.name] = settle(lambda: replace(self._choose_and_verify(work), directory=ca.directory))
            return work
        def submit(work: _Work) -> _Work:
            assert work.order is not None
            ca.begin_finalize(work.order, work.csr_pem)
            return work
        self._phase("finalizing orders", works, "certificates")
        works = self._each(works, submit, results, "finalize")  # every CSR first: the CA's waits overlap
        self._each(works, finalize, results, "finalize")

    def cleaned(self) -> None:
        """Wait until every TXT value a round published is removed (or its removal failed and
        the ledger keeps it for a later run's sweep)."""
        while self._cleaning:
            self._cleaning.pop(0).join()

    def _cleanup(self, records: list[TxtRecord], run_id: str) -> None:
        try:
            self.dns.remove(records)
            log.info("removed %d TXT values", len(records))
            self.ledger.forget_challenges(run_id)
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
                      replaced=work.order.replaces, challenge=work.choice.method, note=work.choice.note,
                      persist_until=work.choice.persist_until)

    def _phase(self, what: str, items: list, unit: str) -> None:
        """A wait of the round begins (none when there is nothing to wait for)."""
        if items:
            self.progress.phase(what, len(items), unit)

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


def _keep(works: list[_Work], results: dict, outcomes: list[tuple[_Work, Any]], step: str) -> list[_Work]:
    kept = []
    for work, outcome in outcomes:
        if isinstance(outcome, Exception):
            log.warning("%s failed at %s: %s", work.spec.name, step, outcome)
            results[work.spec.name] = outcome
        else:
            kept.append(work)
    return kept
