"""The figures the fault suite reports.

Each fault test adds what it saw to `figures` (runs tried and succeeded, faults injected, kill
points survived, orphan records); at the end of the session they are printed in the terminal
summary (whatever `-s` says) and written to `<pytest basetemp>/fault-figures.json`.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest


_FIGURES: dict[str, dict] = defaultdict(dict)
_BASETEMP: list[Path] = []


@pytest.fixture
def figures(request, tmp_path_factory):
    """figures[group][key] = value, reported at the end of the session."""
    if not _BASETEMP:
        _BASETEMP.append(tmp_path_factory.getbasetemp())
    return _FIGURES


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _FIGURES:
        return
    terminalreporter.section("fault suite figures")
    for group, values in sorted(_FIGURES.items()):
        terminalreporter.write_line(f"{group}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    if _BASETEMP:
        path = _BASETEMP[0] / "fault-figures.json"
        path.write_text(json.dumps(_FIGURES, indent=2, sort_keys=True, default=str))
        terminalreporter.write_line(f"(also in {path})")
