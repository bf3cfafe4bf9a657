"""The one result of each certificate in a report, built the same way wherever a run ends
(the renewer, a dry run, the fan-out handler)."""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from . import planning
from .models import Action, CertificateResult, CertificateSpec, Challenge, Outcome, StoredCertificate
from .survey import PlanRow


def certificate_result(spec: CertificateSpec, outcome: Outcome, reason: str, stored: StoredCertificate | None,
                       next_check: dt.datetime | None = None, targets: tuple[str, ...] | None = None,
                       challenge: Challenge | None = None) -> CertificateResult:
    """The result of `spec` with `stored` in place: its serial, expiry, CA and the targets
    holding it; the next check from the renewal rule unless given (none for a failure);
    `challenge`: how this run validated it, when it issued."""
    if stored is None:
        return CertificateResult(spec.name, outcome, reason, next_check=next_check, targets=targets or (),
                                 challenge=challenge)
    if targets is None:
        targets = stored.deployment.targets(stored.info.serial)
    if next_check is None and outcome is not Outcome.FAILED:
        next_check = planning.renewal_time(spec, stored, stored.window)[0]
    return CertificateResult(spec.name, outcome, reason, serial=stored.info.serial,
                             not_after=stored.info.not_after, next_check=next_check, targets=targets,
                             challenge=challenge, directory=stored.directory, persist_until=stored.persist_until)


def planned(row: PlanRow) -> CertificateResult:
    """What a dry run reports: skipped, or what the run would do and why."""
    decision = row.decision
    if decision.action is Action.NONE:
        return skipped(row)
    return certificate_result(row.spec, Outcome.PLANNED, f"would {decision.action.value}: {decision.reason}",
                              row.stored, decision.renew_at)


def skipped(row: PlanRow, notes: Sequence[str] = ()) -> CertificateResult:
    return certificate_result(row.spec, Outcome.SKIPPED, with_notes(row.decision.reason, notes), row.stored,
                              row.decision.renew_at)


def failed(row: PlanRow, reason: str) -> CertificateResult:
    return certificate_result(row.spec, Outcome.FAILED, reason, row.stored)


def with_notes(reason: str, notes: Sequence[str]) -> str:
    return "; ".join([reason, *notes])
