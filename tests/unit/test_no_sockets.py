"""The guard of tests/unit/conftest.py: a unit test cannot reach the network, even by accident."""
import socket

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import HTTPClientError

REFUSED = "unit tests open no socket"  # conftest.SocketRefused, a RuntimeError


def test_tcp_udp_and_name_lookups_are_refused(no_sockets):
    with pytest.raises(RuntimeError, match=f"{REFUSED}: create_connection"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(RuntimeError, match=REFUSED):
        s.connect(("192.0.2.1", 443))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(RuntimeError, match=REFUSED):
        s.sendto(b"query", ("192.0.2.53", 53))
    with pytest.raises(RuntimeError, match=f"{REFUSED}: getaddrinfo"):
        socket.getaddrinfo("example.com", 443)
    assert len(no_sockets) == 4
    no_sockets.clear()  # expected here: the guard fails any test left with an attempt


def test_an_aws_call_is_refused_before_it_leaves(no_sockets):
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y",
                      config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(HTTPClientError, match=REFUSED):  # botocore wraps what the HTTP layer raised
        s3.head_bucket(Bucket="certrenew-state")
    assert no_sockets == ["getaddrinfo('certrenew-state.s3.amazonaws.com')"]
    no_sockets.clear()


def test_local_ipc_and_address_parsing_still_work():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        a.sendall(b"ping")
        assert b.recv(4) == b"ping"
    assert socket.getaddrinfo("127.0.0.1", 53, type=socket.SOCK_DGRAM)[0][4] == ("127.0.0.1", 53)
