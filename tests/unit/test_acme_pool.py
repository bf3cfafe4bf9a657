"""The ACME client's HTTP pool holds a connection per thread that uses it: the renewer's workers
(16) and the authorization fetchers share one network, and a pool smaller than that logged
urllib3's "Connection pool is full, discarding connection" on every busy run (issue 14)."""
from acme_flow import bootstrap
from acme_flow.adapters import acme_ca
from acme_flow.adapters.acme_ca import network


def test_the_acme_network_pools_a_connection_for_every_worker():
    network = acme_ca._Network(None, verify_ssl=True, user_agent="t", timeout=5)
    for scheme in ("https://", "http://"):
        adapter = network.session.get_adapter(scheme + "ca.test/dir")
        assert adapter._pool_maxsize >= bootstrap.WORKERS + acme_ca.AUTHZ_FETCH_WORKERS


def test_the_aws_clients_pool_a_connection_for_every_thread_that_calls_them():
    assert bootstrap.MAX_POOL >= bootstrap.WORKERS + 2  # the workers, the TXT cleanup and the CAA check
