"""moto's server as the devstack runs it: `python -m devstack.moto_server -H HOST -p PORT`.

`moto.server` as is, less two costs it pays on every request under one process-wide lock
(DomainDispatcherApplication.get_application), which made the devstack, not the product, the
bottleneck of the fleet benchmark (py-spy: more than half of moto's threads waited on that lock):

- finding the backend of a request lists moto's package directory (`os.listdir` and an
  `isdir` per entry, about 200) and then tries every backend's URL patterns: the answer depends
  on the host name alone, so it is kept per host;
- every look-up of a service's backend (`BackendDict[account_id]`, several per request) takes
  moto's global backend lock and compares the dictionary with every other backend dictionary
  (a list of hundreds) to register it, even when the account's backend exists already: an
  existing one is now returned straight away (a missing one is made as before);
- werkzeug logs one line per request to moto's stderr (the devstack's proxy records every call
  anyway): only warnings are logged.

One answer changes, to AWS's: a re-import into an ACM certificate's ARN keeps its tags (moto 5.2
makes a new certificate without them). The strict proxy used to put them back with two more
calls to moto per re-import, a tenth of moto's work when a fleet renews.
Nothing else changes: the same moto, the same state, the same answers.
"""
from __future__ import annotations

import logging
import threading
from typing import Any


def _cache_backend_lookups() -> None:
    from moto import backends
    from moto.moto_server import werkzeug_app

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    dispatcher = werkzeug_app.DomainDispatcherApplication
    find = dispatcher.get_backend_for_host
    found: dict[str | None, Any] = {}
    lock = threading.Lock()

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        with lock:
            if host not in found:
                found[host] = find(self, host)
            return found[host]
    dispatcher.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


def _fast_existing_backends() -> None:
    from moto.core.base_backend import BackendDict

    make_or_get = BackendDict.__getitem__

    def getitem(self: Any, account_id: str) -> Any:
        try:
            return dict.__getitem__(self, account_id)  # made already: no lock, no registration scan
        except KeyError:
            return make_or_get(self, account_id)
    BackendDict.__getitem__ = getitem  # type: ignore[method-assign]


def _reimport_keeps_tags() -> None:
    from moto.acm.models import AWSCertificateManagerBackend

    imported = AWSCertificateManagerBackend.import_certificate

    def import_certificate(self: Any, certificate: bytes, private_key: bytes, chain: bytes | None,
                           arn: str | None, tags: list[dict[str, str]]) -> str:
        before = self._certificates.get(arn) if arn else None
        result = imported(self, certificate, private_key, chain, arn, tags)
        if before is not None:
            self._certificates[result].tags = before.tags
        return result
    AWSCertificateManagerBackend.import_certificate = import_certificate  # type: ignore[method-assign]


def main() -> None:
    _cache_backend_lookups()
    _fast_existing_backends()
    _reimport_keeps_tags()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import main as moto_main

    moto_main()


if __name__ == "__main__":
    main()
