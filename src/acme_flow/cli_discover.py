"""`certrenew discover` (issue 14): being written; registers nothing yet."""
from __future__ import annotations


def register(sub) -> None:
    """Add the `discover` subcommand to the CLI's subparsers."""
