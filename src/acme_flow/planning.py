"""Is a certificate due, and why. Pure functions of the spec, the stored state and the time."""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from .models import Action, CertificateSpec, RenewalDecision, RenewalWindow, StoredCertificate, Target

SHORT_LIFETIME = dt.timedelta(days=10)


def fallback_renewal_time(not_before: dt.datetime, not_after: dt.datetime,
                          renew_before_days: int | None = None) -> dt.datetime:
    """When to renew without ARI: `renew_before_days` before expiry if set, else at 2/3 of the
    lifetime (1/2 for lifetimes under 10 days, so a short-lived certificate keeps a margin)."""
    if renew_before_days is not None:
        return not_after - dt.timedelta(days=renew_before_days)
    lifetime = not_after - not_before
    fraction = 1 / 2 if lifetime < SHORT_LIFETIME else 2 / 3
    return not_before + lifetime * fraction


def choose_in_window(start: dt.datetime, end: dt.datetime, fraction: float) -> dt.datetime:
    """The renewal time inside an ARI window: `fraction` in [0, 1] is drawn uniformly by the caller."""
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


def updated_window(previous: RenewalWindow | None, start: dt.datetime, end: dt.datetime,
                   retry_after: dt.timedelta, now: dt.datetime, fraction: float,
                   explanation_url: str | None = None) -> RenewalWindow:
    """Keep the time chosen earlier while the CA's window is unchanged; draw anew when it moved."""
    if previous is not None and previous.same_window(start, end):
        chosen = previous.chosen
    else:
        chosen = choose_in_window(start, end, fraction)
    return RenewalWindow(start=start, end=end, chosen=chosen, next_check=now + retry_after,
                         explanation_url=explanation_url)


def worth_saving(old: RenewalWindow | None, new: RenewalWindow | None, now: dt.datetime,
                 lookahead: dt.timedelta) -> bool:
    """Whether a refreshed ARI window is written back to the state: when the CA moved it (or
    changed its explanation), or when its Retry-After reaches past the next scheduled run (a run
    before then must not ask again). A shorter Retry-After changes nothing for the scheduled runs,
    which ask anyway: not writing it saves a write per certificate per run (a manual run in
    between may ask once more)."""
    if new is None or new == old:
        return False
    if old is None or (old.start, old.end, old.chosen, old.explanation_url) != (
            new.start, new.end, new.chosen, new.explanation_url):
        return True
    return new.next_check > now + lookahead


def missing_targets(spec: CertificateSpec, stored: StoredCertificate) -> list[Target]:
    """Targets the config names that do not hold the stored certificate (absent or older), in
    deploy order."""
    missing = []
    for target in spec.deploy.targets():
        placement = stored.deployment.get(target)
        if placement is None or placement.serial != stored.info.serial:
            missing.append(target)
    return missing


def changed_request(spec: CertificateSpec, stored: StoredCertificate, directory: str | Sequence[str]) -> str | None:
    """Why the stored certificate no longer matches what the config asks for, if it does not.
    `directory`: the configured CA, or all of them (the primary first, then its fallbacks: a
    certificate a fallback issued is kept until it is due, then renewed from the primary)."""
    directories = (directory,) if isinstance(directory, str) else tuple(directory)
    if stored.directory not in directories:
        return f"CA changed: {stored.directory} -> {directories[0]}"
    wanted, have = set(spec.domains), set(stored.domains)
    if wanted != have:
        diff = [f"+{d}" for d in spec.domains if d not in have]
        diff += [f"-{d}" for d in stored.domains if d not in wanted]
        return "names changed: " + ", ".join(diff)
    if spec.key is not stored.key_type:
        return f"key type changed: {stored.key_type.value} -> {spec.key.value}"
    if spec.profile != stored.profile:
        return f"profile changed: {stored.profile or 'CA default'} -> {spec.profile or 'CA default'}"
    return None


def decide(spec: CertificateSpec, stored: StoredCertificate | None, now: dt.datetime, directory: str | Sequence[str],
           *, force: bool = False, lookahead: dt.timedelta = dt.timedelta(0),
           window: RenewalWindow | None = None) -> RenewalDecision:
    """The action for one certificate, with a reason a person can read.

    `window` is the CA's ARI window (with our chosen time), when the CA offers ARI; without
    it the certificate renews at 2/3 of its lifetime (1/2 under 10 days) or
    `renew_before_days` before expiry. `lookahead` is the time until the next scheduled
    check: a renewal time that falls before it is acted on now, so a weekly schedule never
    sleeps through its window.
    """
    name = spec.name
    if stored is None:
        return RenewalDecision(name, Action.ISSUE, "no certificate yet")
    if force:
        return RenewalDecision(name, Action.ISSUE, "forced")
    changed = changed_request(spec, stored, directory)
    if changed:
        return RenewalDecision(name, Action.ISSUE, changed)
    if stored.damaged:
        return RenewalDecision(name, Action.ISSUE, f"stored certificate is damaged ({stored.damaged}); reissuing")
    if stored.revoked:
        return RenewalDecision(name, Action.ISSUE, f"certificate was revoked ({stored.revoked})")
    info = stored.info
    if now >= info.not_after:
        return RenewalDecision(name, Action.ISSUE, f"expired {_fmt(info.not_after)}")
    renew_at, rule = renewal_time(spec, stored, window)
    if now + lookahead >= renew_at:
        when = "passed" if now >= renew_at else "falls before the next check"
        reason = f"renewal time {_fmt(renew_at)} ({rule}) {when}"
        if lookahead >= info.lifetime:
            reason += f"; the check interval is longer than the {info.lifetime.days}-day lifetime: schedule more often"
        return RenewalDecision(name, Action.ISSUE, reason, renew_at=renew_at)
    missing = missing_targets(spec, stored)
    if missing:
        return RenewalDecision(name, Action.DEPLOY, "not deployed to " + ", ".join(map(str, missing)), renew_at=renew_at)
    if window is not None and now < window.start:
        return RenewalDecision(name, Action.NONE, f"ARI window opens {_fmt(window.start)}; renews at "
                                                  f"{_fmt(renew_at)}", renew_at=renew_at)
    return RenewalDecision(name, Action.NONE, f"renews at {_fmt(renew_at)} ({rule})", renew_at=renew_at)


def renewal_time(spec: CertificateSpec, stored: StoredCertificate,
                 window: RenewalWindow | None) -> tuple[dt.datetime, str]:
    """When to renew, and the rule that says so: ARI when the CA gives a window, else the fallback."""
    if window is not None:
        return window.chosen, f"ARI window {_fmt(window.start)} to {_fmt(window.end)}"
    info = stored.info
    renew_at = fallback_renewal_time(info.not_before, info.not_after, spec.renew_before_days)
    rule = (f"{spec.renew_before_days} days before expiry" if spec.renew_before_days is not None
            else "1/2 of lifetime" if info.lifetime < SHORT_LIFETIME else "2/3 of lifetime")
    return renew_at, rule


def persist_warning(spec: CertificateSpec, persist_until: dt.datetime | None, renew_at: dt.datetime | None,
                    now: dt.datetime, lookahead: dt.timedelta) -> str | None:
    """When the dns-persist-01 records a certificate was issued through end (their persistUntil)
    before its next renewal can use them: said now, while there is time to extend them."""
    if persist_until is None or not spec.challenge.may_persist:
        return None
    next_try = max(renew_at or now, now)
    if persist_until > next_try + lookahead:
        return None
    ended = "ended" if persist_until <= now else "ends"
    return (f"{spec.name}: the dns-persist-01 record it was issued through {ended} {_fmt(persist_until)} "
            f"(persistUntil), before its next renewal ({_fmt(next_try)}): extend it (`certrenew persist plan`)")


def _fmt(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
