"""The ACME client's network: certbot's ClientNetwork made safe to share between threads, with
a connection pool for every thread that uses it, badNonce retries, and problems that keep their
HTTP status and Retry-After."""
from __future__ import annotations

import logging
import threading
from typing import Any

import requests
import requests.adapters
from acme import client, errors as acme_errors, messages

log = logging.getLogger("certrenew.acme")

BAD_NONCE_ATTEMPTS = 6
HTTP_POOL = 32  # connections kept per CA host: at least the renewer's workers and the authorization fetchers


class _Network(client.ClientNetwork):
    """ClientNetwork that is safe to share between threads and outlasts bursts of badNonce.

    The library keeps a set of nonces and retries a badNonce once; a CA rejecting many nonces
    (Pebble's PEBBLE_WFE_NONCEREJECT, or a real CA under load) needs more tries.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._nonce_lock = threading.Lock()
        # requests' default pool keeps 10 connections; the renewer's workers and the
        # authorization fetchers use this network at once (more would log "pool is full")
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=HTTP_POOL)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def _get_nonce(self, url: str, new_nonce_url: str) -> str:
        with self._nonce_lock:
            return super()._get_nonce(url, new_nonce_url)

    @classmethod
    def _check_response(cls, response: requests.Response, content_type: str | None = None) -> requests.Response:
        """Keep the HTTP status and Retry-After on problems; a 5xx without a problem is one too.

        The library turns every 409 into ConflictError before reading the body, which hides
        RFC 9773's `alreadyReplaced` problem: a 409 carrying a problem document stays a problem.
        """
        try:
            if response.status_code == 409 and _problem(response) is not None:
                error = messages.Error.from_json(_problem(response))
                error.http_status = 409
                raise error
            return super()._check_response(response, content_type=content_type)
        except messages.Error as error:
            error.http_status = response.status_code
            error.retry_after_header = response.headers.get("Retry-After")
            raise
        except acme_errors.ClientError:
            if response.status_code < 500:
                raise
            error = messages.Error.with_code("serverInternal", detail=f"HTTP {response.status_code} from the CA")
            error.http_status = response.status_code
            raise error from None

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for attempt in range(1, BAD_NONCE_ATTEMPTS + 1):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == BAD_NONCE_ATTEMPTS:
                    raise
                log.debug("badNonce (attempt %d), retrying with a fresh nonce", attempt)
        raise AssertionError("unreachable")


def _problem(response: requests.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and "type" in body else None
