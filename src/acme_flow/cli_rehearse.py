"""`certrenew rehearse` (issue 14): being written; registers nothing yet."""
from __future__ import annotations


def register(sub) -> None:
    """Add the `rehearse` subcommand to the CLI's subparsers."""
