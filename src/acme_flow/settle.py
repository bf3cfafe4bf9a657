"""Settling one certificate once its order is done: store what was issued, deploy it to every
target, retire the ACM certificates it superseded, and say what happened."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from . import pki
from .errors import CertrenewError
from .issuance import Issued
from .models import (Action, CertificateResult, CertificateSpec, Challenge, Deployment, DeploySpec, Outcome,
                     StoredCertificate)
from .ports import Clock, Deployer, StateStore
from .results import certificate_result, with_notes
from .survey import PlanRow, Survey

log = logging.getLogger("certrenew.renewal")


@dataclass
class Settlement:
    directory: str
    state: StateStore
    survey: Survey
    deployer: Deployer
    clock: Clock

    def finish(self, row: PlanRow, issued: Issued | Exception | None) -> CertificateResult:
        spec, decision, stored = row.spec, row.decision, row.stored
        if decision.action is Action.NONE:
            if row.save_window or (stored is not None and stored.outdated):  # an older layout: rewritten
                stored = self.state.update(replace(stored, window=row.window or stored.window))
            stored, notes = self.retire(stored, spec.deploy)
            return certificate_result(spec, Outcome.SKIPPED, with_notes(decision.reason, notes), stored,
                                      decision.renew_at)
        if decision.action is Action.DEPLOY:
            assert stored is not None
            return self.deploy(spec, self.intend_imports(spec, stored), stored.deployment, Outcome.DEPLOYED,
                               decision.reason)
        if not isinstance(issued, Issued):
            raise issued or CertrenewError("not issued")
        new = self.store(spec, issued, stored)
        outcome = Outcome.RENEWED if stored is not None else Outcome.ISSUED
        notes = [f"replaces {issued.replaced}"] * bool(issued.replaced) + [issued.note] * bool(issued.note)
        return self.deploy(spec, new, stored.deployment if stored else Deployment(), outcome,
                           with_notes(decision.reason, notes), issued.challenge)

    def store(self, spec: CertificateSpec, issued: Issued, previous: StoredCertificate | None) -> StoredCertificate:
        """The new version, written before the pointer flips to it, with its first ARI window and
        the intents of its ACM imports (see `intend_imports`)."""
        now = self.clock.now()
        cert_id = pki.ari_cert_id(issued.material.cert_pem)
        window = None
        directory = issued.directory or self.directory
        try:
            window = self.survey.fetch_window(cert_id, None, now, directory)
        except CertrenewError as exc:
            log.warning("%s: no renewal information yet (%s)", spec.name, exc)
        deployment = previous.deployment if previous else Deployment()
        new = StoredCertificate(
            name=spec.name, version=_version(now, issued.info.serial), domains=spec.domains,
            key_type=spec.key, profile=spec.profile, directory=directory,
            info=issued.info, material=issued.material, issued_at=now,
            deployment=deployment.for_new_version(spec.deploy.acm_copies, issued.info.serial), window=window,
            replaced=issued.replaced, ari_cert_id=cert_id, persist_until=issued.persist_until)
        return self.state.save_certificate(new)

    def intend_imports(self, spec: CertificateSpec, stored: StoredCertificate) -> StoredCertificate:
        """Record an ACM import (a region whose ARN does not hold this certificate yet) before it
        is made: a run that dies after an import under a new ARN and before recording it leaves the
        next run the one reason to search ACM for it. One pointer write, only when a region gets a
        new intent (a region added to the config: a new certificate's intents come with its pointer)."""
        deployment = stored.deployment.intending(spec.deploy.acm_copies, stored.info.serial)
        if deployment == stored.deployment:
            return stored
        return self.state.update(replace(stored, deployment=deployment))

    def deploy(self, spec: CertificateSpec, stored: StoredCertificate, before: Deployment, outcome: Outcome,
               reason: str, challenge: Challenge | None = None) -> CertificateResult:
        """Bring every configured target to the stored serial; record what succeeded."""
        if stored.material is None or stored.damaged:  # planning checks it first: never deploy unchecked material
            raise CertrenewError(f"the material of {stored.name} version {stored.version} was not checked "
                                 f"before deploying it{f' ({stored.damaged})' if stored.damaged else ''}")
        deployment, errors = self.deployer.deploy(spec, stored, before)
        stored = self.state.update(replace(stored, deployment=deployment))
        stored, notes = self.retire(stored, spec.deploy)
        if errors:
            reason = with_notes(f"{reason}; deploy failed: " + "; ".join(errors), notes)
            return certificate_result(spec, Outcome.FAILED, reason, stored, challenge=challenge)
        return certificate_result(spec, outcome, with_notes(reason, notes), stored, None,
                                  deployment.targets(stored.info.serial), challenge)

    def retire(self, stored: StoredCertificate | None,
               deploy: DeploySpec = DeploySpec()) -> tuple[StoredCertificate | None, list[str]]:
        """Delete superseded ACM certificates nothing uses any more (each in its account, through
        the roles of `deploy`); one still in use stays on the list for a later run. Only when
        the list is not empty."""
        if stored is None or not stored.deployment.retiring:
            return stored, []
        deployment, notes = self.deployer.retire(stored.deployment, deploy)
        if deployment != stored.deployment:
            try:
                stored = self.state.update(replace(stored, deployment=deployment))
            except CertrenewError as exc:
                log.warning("%s: could not record the retired certificates (%s); a later run sees they are gone",
                            stored.name, exc)
        return stored, notes


def _version(now: dt.datetime, serial: str) -> str:
    return f"{now.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{serial[:16]}"
