"""Run notifications: one SNS message per run with every certificate's outcome."""
from __future__ import annotations

import json
import logging

from botocore.exceptions import ClientError

from ..models import Outcome, RunReport

log = logging.getLogger("certrenew.notify")


class SnsNotifier:
    def __init__(self, sns, topic_arn: str) -> None:
        self._sns = sns
        self.topic_arn = topic_arn

    def notify(self, report: RunReport) -> None:
        acted = [r for r in report.results if r.outcome is not Outcome.SKIPPED]
        if not acted:
            return  # a quiet week sends nothing
        status = "FAILED" if not report.ok else "OK"
        counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items()))
        try:
            self._sns.publish(TopicArn=self.topic_arn, Subject=f"certrenew {status}: {counts}"[:100],
                              Message=json.dumps(report.to_dict(), indent=2))
        except ClientError as exc:
            log.error("could not publish the run report to %s: %s", self.topic_arn, exc)


class NoNotifier:
    def notify(self, report: RunReport) -> None:
        return None
