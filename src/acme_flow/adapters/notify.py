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
from typing import Any, Iterable, Sequence

from botocore.exceptions import BotoCoreError, ClientError

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
SNS_MAX_BYTES = 256 * 1024
PUT_EVENTS_MAX_ENTRIES = 10


def days_left(result: CertificateResult, now: dt.datetime) -> float | None:
    if result.not_after is None:
        return None
    return round((result.not_after - now).total_seconds() / 86400, 1)


def expiring(report: RunReport, days: float) -> list[CertificateResult]:
    """Certificates with fewer than `days` left when the run finished (planned rows excluded)."""
    out = []
    for r in report.results:
        left = days_left(r, report.finished)
        if r.outcome is not Outcome.PLANNED and left is not None and left < days:
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
        if not acted and not soon:
            return  # a quiet week sends nothing
        subject, text, data = render_sns(report, soon, self.expiring_days)
        message = json.dumps({"default": data, "email": text, "email-json": data})
        if len(message.encode()) > SNS_MAX_BYTES:
            # very large runs: keep the counts and what needs attention, not every skipped row
            data = json.dumps(_trimmed(report.to_dict()))
            text = text[: SNS_MAX_BYTES // 4]
            message = json.dumps({"default": data, "email": text, "email-json": data})
        try:
            self._sns.publish(TopicArn=self.topic_arn, Subject=subject, Message=message,
                              MessageStructure="json")
        except (ClientError, BotoCoreError) as exc:
            log.error("could not publish the run report to %s: %s", self.topic_arn, exc)


def render_sns(report: RunReport, soon: Sequence[CertificateResult],
               expiring_days: float = DEFAULT_EXPIRING_DAYS) -> tuple[str, str, str]:
    """(subject, e-mail text, JSON report) of one run."""
    status = "FAILED" if not report.ok else ("EXPIRING" if soon else "OK")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items())) or "nothing to do"
    subject = f"certrenew {status}: {counts}"[:100]
    lines = [f"certrenew run {report.started:%Y-%m-%d %H:%M}Z - {report.finished:%H:%M}Z: {counts}", ""]
    order = {Outcome.FAILED: 0, Outcome.ISSUED: 1, Outcome.RENEWED: 1, Outcome.DEPLOYED: 2}
    for r in sorted(report.results, key=lambda r: (order.get(r.outcome, 3), r.name)):
        if r.outcome is Outcome.SKIPPED and r not in soon:
            continue
        left = days_left(r, report.finished)
        expiry = f", expires {r.not_after:%Y-%m-%d} ({left:g} days)" if r.not_after and left is not None else ""
        serial = f", serial {r.serial}" if r.serial else ""
        lines.append(f"- {r.name}: {r.outcome.value.upper()}{serial}{expiry}")
        lines.append(f"    {r.reason}")
        for target in r.targets:
            lines.append(f"    -> {target}")
    skipped = sum(1 for r in report.results if r.outcome is Outcome.SKIPPED and r not in soon)
    if skipped:
        lines += ["", f"{skipped} other certificate(s) were not due."]
    if soon:
        lines += ["", f"{len(soon)} certificate(s) expire in fewer than {expiring_days:g} days: "
                  + ", ".join(r.name for r in soon)]
    return subject, "\n".join(lines) + "\n", json.dumps(report.to_dict(), indent=1)


def _trimmed(data: dict[str, Any]) -> dict[str, Any]:
    keep = [c for c in data["certificates"] if c["outcome"] not in ("skipped", "planned")]
    return {**data, "certificates": keep, "truncated": len(data["certificates"]) - len(keep)}


# ---- EventBridge -------------------------------------------------------------------------------


class EventBridgeNotifier:
    def __init__(self, events, config: Config, bus: str = "default",
                 expiring_days: float = DEFAULT_EXPIRING_DAYS) -> None:
        self._events = events
        self._config = config
        self.bus = bus
        self.expiring_days = expiring_days

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
        entries = self.entries(report)
        for chunk in _chunks(entries, PUT_EVENTS_MAX_ENTRIES):
            try:
                got = self._events.put_events(Entries=chunk)
            except (ClientError, BotoCoreError) as exc:
                log.error("could not put %d certificate event(s) on %s: %s", len(chunk), self.bus, exc)
                continue
            if got.get("FailedEntryCount"):
                for entry, answer in zip(chunk, got.get("Entries", [])):
                    if answer.get("ErrorCode"):
                        log.error("event %s for %s not accepted: %s %s", entry["DetailType"],
                                  json.loads(entry["Detail"])["name"], answer["ErrorCode"],
                                  answer.get("ErrorMessage", ""))


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
