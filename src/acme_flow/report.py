"""Human-readable tables for the CLI (JSON comes from the models' to_dict)."""
from __future__ import annotations

import datetime as dt

from .models import RunReport


def _short(value: str | None, width: int) -> str:
    if not value:
        return "-"
    return value if len(value) <= width else value[: width - 1] + "…"


def _date(value: dt.datetime | None) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%MZ") if value else "-"


def render_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def render_report(report: RunReport) -> str:
    header = ["NAME", "OUTCOME", "SERIAL", "NOT AFTER", "NEXT CHECK", "TARGETS", "REASON"]
    rows = [[r.name, r.outcome.value, _short(r.serial, 12), _date(r.not_after), _date(r.next_check),
             str(len(r.targets)), r.reason] for r in report.results]
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items())) or "nothing to do"
    title = "plan" if report.dry_run else "run"
    status = "ok" if report.ok else "FAILED"
    return f"{render_table(rows, header)}\n\n{title} {status}: {counts}"
