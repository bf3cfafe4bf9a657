"""Human-readable tables for the CLI (JSON comes from the models' to_dict)."""
from __future__ import annotations

import datetime as dt

from typing import Any

from .models import Action, RunReport


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
    header = ["NAME", "OUTCOME", "SERIAL", "NOT AFTER", "NEXT CHECK", "TARGETS", "CHALLENGE", "REASON"]
    rows = [[r.name, r.outcome.value, _short(r.serial, 12), _date(r.not_after), _date(r.next_check),
             str(len(r.targets)), r.challenge.value if r.challenge else "-", r.reason] for r in report.results]
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items())) or "nothing to do"
    title = "plan" if report.dry_run else "run"
    status = "ok" if report.ok else "FAILED"
    return f"{render_table(rows, header)}\n\n{title} {status}: {counts}"


def status_rows(plan_rows: list, now: dt.datetime) -> list[dict[str, Any]]:
    """One dict per certificate, from `Renewer.plan()` rows: what `certrenew status` shows."""
    out = []
    for row in plan_rows:
        stored, decision = row.stored, row.decision
        info = stored.info if stored else None
        out.append({
            "name": row.spec.name,
            "names": list(row.spec.domains),
            "key": row.spec.key.value,
            "profile": (stored.profile if stored else None) or row.spec.profile,
            "serial": info.serial if info else None,
            "not_after": info.not_after.isoformat() if info else None,
            "days_left": round((info.not_after - now).total_seconds() / 86400, 1) if info else None,
            "next_renewal": decision.renew_at.isoformat() if decision.renew_at else None,
            "due": decision.action is not Action.NONE,
            "why": decision.reason,
            "damaged": stored.damaged if stored else None,  # known after a deep read (status --deep)
            "ari_window": ({"start": row.window.start.isoformat(), "end": row.window.end.isoformat()}
                           if row.window else None),
            "targets": [p.describe() for p in stored.deployment.placements] if stored else [],
            "directory": stored.directory if stored else None,  # the CA that issued it (a fallback?)
        })
    return out


def render_status(rows: list[dict[str, Any]]) -> str:
    header = ["NAME", "NAMES", "KEY", "PROFILE", "SERIAL", "NOT AFTER", "DAYS", "NEXT RENEWAL", "WHY", "TARGETS"]
    table = []
    for r in rows:
        table.append([r["name"], ",".join(r["names"]), r["key"], r["profile"] or "-", _short(r["serial"], 12),
                      (r["not_after"] or "-")[:16], "-" if r["days_left"] is None else f"{r['days_left']:g}",
                      (r["next_renewal"] or "-")[:16], r["why"], "\n".join(r["targets"]) or "-"])
    lines = render_table([row[:-1] for row in table], header[:-1]).splitlines()
    details = [f"{r['name']}: " + (", ".join(r["targets"]) or "not deployed") for r in rows]
    issuers = [f"  {r['name']}: {r['directory']}" for r in rows if r.get("directory")]
    return "\n".join(lines + ["", "deployed targets:"] + [f"  {d}" for d in details]
                     + (["", "issued by:"] + issuers if issuers else []))
