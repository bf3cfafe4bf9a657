"""CloudWatch metrics (EMF, through Powertools Metrics) of a run.

One EMF document per certificate, its name in the document's properties (not a dimension: a
dimension per certificate would make every certificate a set of billed custom metrics):

| metric | unit | per | value |
|---|---|---|---|
| `DaysToExpiry` | None | certificate | days left on the certificate in place after the run |
| `PersistRecordDaysLeft` | None | certificate issued through dns-persist-01 records with a persistUntil | days until they stop validating |
| `CertificatesIssued`, `...Renewed`, `...Deployed`, `...Skipped`, `...Failed`, `...Queued` | Count | certificate | 1 |
| `IssuanceDuration` | Seconds | run that ordered | the run's issuance round: first order to last verified certificate |
| `DnsWait` | Seconds | run that ordered | TXT publish (Route53 INSYNC) until visible; one DNS round serves all orders of a run |
| `RunDuration` | Seconds | invocation | the whole invocation (plan, orders, deploys) |
| `ColdStart` | Count | cold invocation | Powertools, dimension `function_name` |

All carry the dimension `service` (POWERTOOLS_SERVICE_NAME). The alarms read the Minimum of
`DaysToExpiry` and the Sum of `CertificatesFailed`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from aws_lambda_powertools.metrics import MetricUnit

from acme_flow.models import CertificateResult, IssuanceTimings, Outcome, RunReport

OUTCOME_METRICS = {
    Outcome.ISSUED: "CertificatesIssued",
    Outcome.RENEWED: "CertificatesRenewed",
    Outcome.DEPLOYED: "CertificatesDeployed",
    Outcome.SKIPPED: "CertificatesSkipped",
    Outcome.FAILED: "CertificatesFailed",
}
QUEUED_METRIC = "CertificatesQueued"


def days_left(not_after: dt.datetime | None, now: dt.datetime) -> float | None:
    if not_after is None:
        return None
    return round((not_after - now).total_seconds() / 86400, 2)


def emit_certificate(metrics: Any, name: str, metric: str, not_after: dt.datetime | None, now: dt.datetime,
                     persist_until: dt.datetime | None = None, **properties: Any) -> None:
    """One EMF document for one certificate."""
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    left = days_left(not_after, now)
    if left is not None:
        metrics.add_metric(name="DaysToExpiry", unit=MetricUnit.NoUnit, value=left)
    record_left = days_left(persist_until, now)
    if record_left is not None:
        metrics.add_metric(name="PersistRecordDaysLeft", unit=MetricUnit.NoUnit, value=record_left)
    metrics.add_metadata(key="certificate", value=name)
    for key, value in properties.items():
        if value is not None:
            metrics.add_metadata(key=key, value=value)
    metrics.flush_metrics()


def emit_results(metrics: Any, results: Iterable[CertificateResult], now: dt.datetime) -> int:
    """Per-certificate metrics of a (non dry-run) report; returns how many documents were written."""
    count = 0
    for r in results:
        metric = OUTCOME_METRICS.get(r.outcome)
        if metric is None:  # planned: a dry run measures nothing
            continue
        emit_certificate(metrics, r.name, metric, r.not_after, now, r.persist_until, outcome=r.outcome.value,
                         serial=r.serial, reason=r.reason if r.outcome is Outcome.FAILED else None)
        count += 1
    return count


def emit_report(metrics: Any, report: RunReport, run_seconds: float) -> None:
    """Everything a finished run measures; the run-level metric is left for the final flush
    (`log_metrics` flushes it with the cold-start metric when the handler returns)."""
    if not report.dry_run:
        emit_results(metrics, report.results, report.finished)
    add_run_metrics(metrics, run_seconds, *([report.issuance] if report.issuance else []))


def add_run_metrics(metrics: Any, run_seconds: float, *rounds: IssuanceTimings) -> None:
    """The invocation's duration, and each issuance round it ran (the worker may run two)."""
    metrics.add_metric(name="RunDuration", unit=MetricUnit.Seconds, value=round(run_seconds, 3))
    for issuance in rounds:
        metrics.add_metric(name="IssuanceDuration", unit=MetricUnit.Seconds, value=round(issuance.seconds, 3))
        metrics.add_metric(name="DnsWait", unit=MetricUnit.Seconds, value=round(issuance.dns_wait, 3))
