"""Run notifications.

- `SnsNotifier`: one SNS message per run with every certificate's outcome (a readable text for
  e-mail subscribers, the JSON report for everything else). A quiet run (everything skipped and
  nothing close to expiry) sends nothing.
- `EventBridgeNotifier`: one event per certificate outcome, source `certrenew`, detail-type
  `certrenew.certificate.renewed` (issued or renewed), `.deployed`, `.failed` and `.expiring`
  (fewer than `expiring_days` left after the run, whatever the outcome): servers subscribe and
  pull the new PEM files from the export location named in the event.
- `CompositeNotifier`: several notifiers behind the one `Notifier` port; one failing never stops
  the others, and no notifier ever fails a run.

Reports carry no key material, so neither do the messages.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from ..deadline import Deadline, SystemClock
from ..errors import DeadlineExceeded
from ..models import CertificateResult, Config, Outcome, RunReport

log = logging.getLogger("certrenew.notify")

SOURCE = "certrenew"
DETAIL_TYPES = {
    Outcome.ISSUED: "certrenew.certificate.renewed",
    Outcome.RENEWED: "certrenew.certificate.renewed",
    Outcome.DEPLOYED: "certrenew.certificate.deployed",
    Outcome.FAILED: "certrenew.certificate.failed",
}
EXPIRING = "certrenew.certificate.expiring"
DEFAULT_EXPIRING_DAYS = 14
SNS_MAX_BYTES = 262_144  # the whole Publish Message, every MessageStructure=json part together
SUBJECT_MAX = 99  # SNS: "Subjects must be ... less than 100 characters"
REASON_CHARS = 300  # a reason cut short when a report has to shrink
SOON_NAMES = 50  # expiring certificates named in the text
PUT_EVENTS_MAX_ENTRIES = 10
PUT_EVENTS_ATTEMPTS = 4  # per entry: the first call and three retries of what failed retryably
PUT_EVENTS_BACKOFF = 0.5  # seconds before the first retry, doubled each time
PUT_EVENTS_MAX_WAIT = 4.0
PUT_EVENTS_WAIT_BUDGET = 20.0  # seconds of retries at most per run, whatever the number of events
# Entry error codes (PutEventsResultEntry.ErrorCode) worth another try: throttling and AWS-side faults.
RETRYABLE_ENTRY_ERRORS = frozenset({"ThrottlingException", "InternalFailure", "InternalException",
                                    "ServiceUnavailable", "KMSThrottlingException",
                                    "ConcurrentModificationException"})


def days_left(result: CertificateResult, now: dt.datetime) -> float | None:
    if result.not_after is None:
        return None
    return round((result.not_after - now).total_seconds() / 86400, 1)


def expiring(report: RunReport, days: float) -> list[CertificateResult]:
    """Certificates with fewer than `days` left when the run finished, or whose dns-persist-01
    records stop validating within `days` (planned rows excluded)."""
    out = []
    for r in report.results:
        left = days_left(r, report.finished)
        record_ends = r.persist_until is not None and (r.persist_until - report.finished).total_seconds() < days * 86400
        if r.outcome is not Outcome.PLANNED and ((left is not None and left < days) or record_ends):
            out.append(r)
    return out


# ---- SNS ---------------------------------------------------------------------------------------


class SnsNotifier:
    def __init__(self, sns, topic_arn: str, expiring_days: float = DEFAULT_EXPIRING_DAYS) -> None:
        self._sns = sns
        self.topic_arn = topic_arn
        self.expiring_days = expiring_days

    def notify(self, report: RunReport) -> None:
        acted = [r for r in report.results if r.outcome not in (Outcome.SKIPPED, Outcome.PLANNED)]
        soon = expiring(report, self.expiring_days)
        if not acted and not soon and not report.warnings:
            return  # a quiet week sends nothing
        subject, message = sns_message(report, soon, self.expiring_days)
        try:
            self._sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message,
                              MessageStructure="json")
        except (ClientError, BotoCoreError) as exc:
            log.error("could not publish the run report to %s: %s", self.topic_arn, exc)


@dataclass(frozen=True)
class _Cut:
    """How much of a run one SNS message carries."""

    every_row: bool = True  # the JSON lists the not-due rows too
    brief: bool = False  # reasons cut to REASON_CHARS, no timings in the JSON
    limit: int | None = None  # at most this many rows that need attention


# Larger reports are cut step by step until the whole Message fits SNS_MAX_BYTES.
CUTS = (_Cut(), _Cut(every_row=False), _Cut(every_row=False, brief=True))


def sns_message(report: RunReport, soon: Sequence[CertificateResult],
                expiring_days: float = DEFAULT_EXPIRING_DAYS) -> tuple[str, str]:
    """(subject, Message) of one run, the Message always within SNS_MAX_BYTES: the JSON report
    (`default`: SQS, Lambda, HTTP and email-json subscribers) and a readable text (`email`).

    A large run keeps its counts and what needs attention: first the not-due rows go, then the
    reasons are cut short, then rows from the end, with a "N more" note."""
    status = "FAILED" if not report.ok else ("EXPIRING" if soon else "OK")
    subject = subject_line(status, report.counts())
    for cut in CUTS:
        message = _envelope(report, soon, expiring_days, cut)
        if _fits(message):
            return subject, message
    return subject, _largest_that_fits(report, soon, expiring_days)


def _largest_that_fits(report: RunReport, soon: Sequence[CertificateResult], expiring_days: float) -> str:
    """The message with as many rows needing attention as fit (failures first)."""
    last = CUTS[-1]
    low, high = 0, len(_attention(report, soon))
    while low < high:
        middle = (low + high + 1) // 2
        if _fits(_envelope(report, soon, expiring_days, replace(last, limit=middle))):
            low = middle
        else:
            high = middle - 1
    return _envelope(report, soon, expiring_days, replace(last, limit=low))


def _fits(message: str) -> bool:
    return len(message.encode("utf-8")) <= SNS_MAX_BYTES


def _envelope(report: RunReport, soon: Sequence[CertificateResult], expiring_days: float, cut: _Cut) -> str:
    rows = _attention(report, soon)
    shown = rows if cut.limit is None else rows[:cut.limit]
    text = render_text(report, soon, expiring_days, shown, len(rows) - len(shown), cut.brief)
    listed = list(report.results) if cut.every_row else shown
    data = report.to_dict()
    data["certificates"] = [_row(r, cut.brief) for r in listed]
    if len(listed) < len(report.results):
        data["truncated"] = len(report.results) - len(listed)
        data["note"] = (f"{data['truncated']} more certificate(s) not listed (the message must fit SNS's "
                        f"{SNS_MAX_BYTES} bytes): see the run's log or `certrenew status`")
    return json.dumps({"default": json.dumps(data, separators=(",", ":")), "email": text})


def _row(r: CertificateResult, brief: bool) -> dict[str, Any]:
    row = r.to_dict()
    if brief:
        row["reason"] = _short(r.reason)
        row.pop("issuance_seconds", None)
        row.pop("dns_wait_seconds", None)
    return row


def _short(reason: str) -> str:
    return reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 3] + "..."


def subject_line(status: str, counts: dict[str, int]) -> str:
    """`certrenew STATUS: counts`: ASCII, one line, shorter than SNS's 100 characters."""
    head = f"certrenew {status}"
    parts = [f"{n} {k}" for k, n in sorted(counts.items())] or ["nothing to do"]
    subject = f"{head}: {', '.join(parts)}"
    while len(subject) > SUBJECT_MAX and len(parts) > 1:
        parts.pop()
        subject = f"{head}: {', '.join(parts)}, ..."
    printable = "".join(c if c.isascii() and c.isprintable() else " " for c in subject)
    return " ".join(printable.split())[:SUBJECT_MAX]


def _attention(report: RunReport, soon: Sequence[CertificateResult]) -> list[CertificateResult]:
    """The rows the text lists, failures first: every outcome but not-due skips and plans."""
    close = {id(r) for r in soon}
    order = {Outcome.FAILED: 0, Outcome.ISSUED: 1, Outcome.RENEWED: 1, Outcome.DEPLOYED: 2}
    rows = [r for r in report.results
            if r.outcome not in (Outcome.SKIPPED, Outcome.PLANNED) or id(r) in close]
    return sorted(rows, key=lambda r: (order.get(r.outcome, 3), r.name))


def render_text(report: RunReport, soon: Sequence[CertificateResult], expiring_days: float,
                rows: Sequence[CertificateResult], more: int = 0, brief: bool = False) -> str:
    """The e-mail text of one run: the counts, then one block per row."""
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items())) or "nothing to do"
    lines = [f"certrenew run {report.started:%Y-%m-%d %H:%M}Z - {report.finished:%H:%M}Z: {counts}", ""]
    if report.warnings:
        lines += ["To fix before it fails a run:", *(f"  ! {w}" for w in report.warnings), ""]
    for r in rows:
        left = days_left(r, report.finished)
        expiry = f", expires {r.not_after:%Y-%m-%d} ({left:g} days)" if r.not_after and left is not None else ""
        serial = f", serial {r.serial}" if r.serial else ""
        lines.append(f"- {r.name}: {r.outcome.value.upper()}{serial}{expiry}")
        lines.append(f"    {_short(r.reason) if brief else r.reason}")
        for target in r.targets:
            lines.append(f"    -> {target}")
    if more:
        lines += ["", f"{more} more certificate(s) not listed: see the JSON report, the run's log "
                      "or `certrenew status`."]
    close = {id(r) for r in soon}
    skipped = sum(1 for r in report.results if r.outcome is Outcome.SKIPPED and id(r) not in close)
    if skipped:
        lines += ["", f"{skipped} other certificate(s) were not due."]
    if soon:
        names = ", ".join(r.name for r in soon[:SOON_NAMES])
        extra = f" and {len(soon) - SOON_NAMES} more" if len(soon) > SOON_NAMES else ""
        lines += ["", f"{len(soon)} certificate(s) expire in fewer than {expiring_days:g} days: {names}{extra}"]
    return "\n".join(lines) + "\n"


# ---- EventBridge -------------------------------------------------------------------------------


class EventBridgeNotifier:
    """`clock` times the retries of entries EventBridge failed inside a 200 answer."""

    def __init__(self, events, config: Config, bus: str = "default",
                 expiring_days: float = DEFAULT_EXPIRING_DAYS, clock: Any = None) -> None:
        self._events = events
        self._config = config
        self.bus = bus
        self.expiring_days = expiring_days
        self._clock = clock or SystemClock()

    def entries(self, report: RunReport) -> list[dict[str, Any]]:
        """The PutEvents entries of one run (one per outcome worth an event)."""
        specs = {c.name: c for c in self._config.certificates}
        soon = {r.name for r in expiring(report, self.expiring_days)}
        out = []
        for r in report.results:
            types = [DETAIL_TYPES[r.outcome]] if r.outcome in DETAIL_TYPES else []
            if r.name in soon:
                types.append(EXPIRING)
            for detail_type in types:
                out.append({
                    "Source": SOURCE,
                    "DetailType": detail_type,
                    "Resources": [t.removeprefix("acm:") for t in r.targets if t.startswith("acm:arn:")],
                    "Detail": json.dumps(_detail(r, specs.get(r.name), report)),
                    "EventBusName": self.bus,
                })
        return out

    def notify(self, report: RunReport) -> None:
        budget = Deadline(self._clock, PUT_EVENTS_WAIT_BUDGET)  # for the retries of all this run's events
        for chunk in _chunks(self.entries(report), PUT_EVENTS_MAX_ENTRIES):
            self._put(chunk, budget)

    def _put(self, chunk: list[dict[str, Any]], budget: Deadline) -> None:
        """One PutEvents call, then again for the entries that failed with a retryable code
        (a bounded number of times, with backoff, within the run's budget); the others are logged."""
        pending, attempts = chunk, 0

        def put() -> None:
            nonlocal pending, attempts
            attempts += 1
            got = self._events.put_events(Entries=pending)
            failed = [(e, a) for e, a in zip(pending, got.get("Entries", [])) if a.get("ErrorCode")]
            for entry, answer in failed:
                if answer["ErrorCode"] not in RETRYABLE_ENTRY_ERRORS:
                    _log_rejected(entry, answer, attempts)
            retry = [(e, a) for e, a in failed if a["ErrorCode"] in RETRYABLE_ENTRY_ERRORS]
            if retry:
                pending = [e for e, _ in retry]
                raise _EntriesFailed(retry)
        try:
            budget.retry(put, f"PutEvents on {self.bus}", retryable=_EntriesFailed, attempts=PUT_EVENTS_ATTEMPTS,
                         base=PUT_EVENTS_BACKOFF, cap=PUT_EVENTS_MAX_WAIT)
        except (ClientError, BotoCoreError) as exc:
            log.error("could not put %d certificate event(s) on %s: %s", len(pending), self.bus, exc)
        except (_EntriesFailed, DeadlineExceeded) as exc:
            gave_up = exc if isinstance(exc, _EntriesFailed) else exc.__cause__
            for entry, answer in gave_up.failed:
                _log_rejected(entry, answer, attempts)


class _EntriesFailed(Exception):
    """Entries EventBridge failed with a retryable code inside a 200 answer."""

    def __init__(self, failed: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.failed = failed
        codes = ", ".join(sorted({a["ErrorCode"] for _, a in failed}))
        super().__init__(f"EventBridge failed {len(failed)} event(s) with a retryable code ({codes})")


def _log_rejected(entry: dict[str, Any], answer: dict[str, Any], attempts: int) -> None:
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    log.error("event %s for %s not accepted%s: %s %s", entry["DetailType"], json.loads(entry["Detail"])["name"],
              tries, answer["ErrorCode"], answer.get("ErrorMessage", ""))


def _detail(r: CertificateResult, spec, report: RunReport) -> dict[str, Any]:
    detail = r.to_dict()
    detail["days_left"] = days_left(r, report.finished)
    detail["domains"] = list(spec.domains) if spec else []
    export = spec.deploy.s3 if spec else None
    detail["export"] = None if export is None else {
        "bucket": export.bucket,
        "prefix": export.prefix,
        "location": export.location,
        "files": {f: export.prefix + f for f in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem")},
    }
    detail["run"] = {"started": _iso(report.started), "finished": _iso(report.finished)}
    return detail


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# ---- composition -------------------------------------------------------------------------------


class CompositeNotifier:
    def __init__(self, *notifiers) -> None:
        self.notifiers = [n for n in notifiers if n is not None]

    def notify(self, report: RunReport) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(report)
            except Exception as exc:  # noqa: BLE001 - a notification never fails a run
                log.error("%s failed: %s", type(notifier).__name__, exc)
