"""The error tree of certrenew.

One root, `CertrenewError`; subclasses carry the data a caller needs to report or retry.
`Transient` marks errors worth retrying (inside the run's deadline).
`exit_code` is what the CLI returns when such an error ends a whole command.
"""
from __future__ import annotations

from dataclasses import dataclass


class CertrenewError(Exception):
    """Root of every error certrenew raises on purpose."""

    exit_code = 1


class Transient:
    """Marker mixin: the operation may succeed if tried again later."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, at a path such as `certificates[2].domains[0]`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputError(CertrenewError):
    """Bad input (config, event, CLI arguments): nothing has been written anywhere."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str, source: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.kind} in {self.source}" if self.source else self.kind
        lines = [f"{head} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)

    kind = "invalid input"


class ConfigError(InputError):
    """The config document is invalid."""

    kind = "invalid config"


class EventError(InputError):
    """The Lambda event is invalid."""

    kind = "invalid event"


class StateBucketMissing(CertrenewError):
    """The state bucket does not exist (the template or the devstack creates it)."""

    exit_code = 2

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        super().__init__(
            f"state bucket {bucket!r} does not exist: deploy the stack (it creates the bucket) "
            "or set CERTRENEW_STATE_BUCKET to an existing bucket"
        )


class SettingsError(CertrenewError):
    """A required environment variable is missing or malformed."""

    exit_code = 2


class StateError(CertrenewError):
    """A state object is unreadable or inconsistent."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"state object {key}: {reason}")


class DeadlineExceeded(CertrenewError, Transient):
    """A wait ran out of the time this invocation has left."""

    def __init__(self, what: str, seconds: float | None = None) -> None:
        self.what = what
        suffix = f" after {seconds:.0f}s" if seconds is not None else ""
        super().__init__(f"deadline reached while waiting for {what}{suffix}")


class AcmeProblem(CertrenewError):
    """The CA answered with an RFC 8555 problem document."""

    def __init__(self, typ: str, detail: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.typ = typ
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        code = typ.rsplit(":", 1)[-1] if typ else "unknown"
        super().__init__(f"CA error {code}: {detail}" if detail else f"CA error {code}")

    @property
    def code(self) -> str:
        return self.typ.rsplit(":", 1)[-1] if self.typ else ""


class AcmeTransientProblem(AcmeProblem, Transient):
    """A CA problem worth retrying (badNonce, rateLimited, 5xx)."""


class ValidationFailed(CertrenewError):
    """The CA could not validate one or more DNS-01 challenges."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        parts = "; ".join(f"{name}: {why}" for name, why in sorted(self.failures.items()))
        super().__init__(f"DNS-01 validation failed for {parts}")


class DnsError(CertrenewError):
    """Route53 or propagation trouble."""


class DnsRoleError(DnsError):
    """The role of a certificate's `dns.role_arn` could not be assumed (or used)."""

    def __init__(self, role_arn: str, detail: str) -> None:
        self.role_arn = role_arn
        self.detail = detail
        super().__init__(
            f"cannot assume the DNS role {role_arn}: {detail}; check that the role exists, that its "
            "trust policy allows the renewer's role to call sts:AssumeRole, and that the role is "
            "listed in the stack's DnsRoleArns parameter")


class ZoneNotFound(DnsError):
    """No public hosted zone holds a name."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        extra = f" ({detail})" if detail else ""
        super().__init__(f"no Route53 hosted zone found for {name}{extra}; "
                         "set dns.hosted_zone_id or create the zone")


class PropagationTimeout(DnsError, Transient):
    """The TXT values were not visible on the checked name servers in time."""

    def __init__(self, missing: dict[str, list[str]]) -> None:
        self.missing = missing
        parts = "; ".join(f"{name} not seen by {', '.join(servers)}"
                          for name, servers in sorted(missing.items()))
        super().__init__(f"DNS propagation not confirmed: {parts}")


class VerificationError(CertrenewError):
    """Issued material failed verification: it is never stored as current nor deployed."""


class DeployError(CertrenewError):
    """A deploy target rejected the certificate or could not be reached."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target}: {reason}")


class DeployRoleError(DeployError):
    """The role of a certificate's `deploy_role_arn` could not be assumed."""

    def __init__(self, role_arn: str, detail: str) -> None:
        self.role_arn = role_arn
        super().__init__(f"deploy role {role_arn}",
                         f"cannot be assumed: {detail}; check that the role exists in the target account, "
                         "that its trust policy allows the renewer's role to call sts:AssumeRole, and that "
                         "the role is listed in the stack's DeployRoleArns parameter")
