"""Keys, CSRs and certificate checks: `pki.<name>` is `pki_crypto.<name>`, loaded on first use.

`cryptography` is a tenth of a cold start; a run that reads no certificate (a plan from the
pointers alone, a run with nothing due) never calls into pki, so it never loads it. Code says
`from acme_flow import pki` and `pki.describe(...)`, `from acme_flow.pki import describe` works
too; the functions themselves are in pki_crypto.py.
"""
from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):  # the import machinery's and tools' probes do not load cryptography
        raise AttributeError(name)
    return getattr(importlib.import_module("acme_flow.pki_crypto"), name)


def __dir__() -> list[str]:
    return dir(importlib.import_module("acme_flow.pki_crypto"))
