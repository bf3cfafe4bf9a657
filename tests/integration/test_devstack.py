"""The devstack itself: Pebble over TLS, the DNS bridge over moto's Route53, the AWS proxy."""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import time
import urllib.error
import urllib.request

import boto3
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509

from devstack import pebble_client, proxy_client
from devstack import stack as devstack
from devstack.procs import StackError, is_running

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})  # max_attempts counts retries only


# ---------------------------------------------------------------------------- helpers

def route53(**kwargs):
    return boto3.client("route53", **kwargs)


def create_zone(name: str) -> str:
    return route53().create_hosted_zone(Name=name, CallerReference=f"{name}-{time.time()}")["HostedZone"]["Id"]


def change(zone_id: str, action: str, name: str, rtype: str, values: list[str], ttl: int = 60) -> dict:
    rrset = {"Name": name, "Type": rtype, "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}
    batch = {"Changes": [{"Action": action, "ResourceRecordSet": rrset}]}
    return route53().change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch)["ChangeInfo"]


def query(stack, name: str, rtype: str, tcp: bool = False) -> dns.message.Message:
    request = dns.message.make_query(name, rtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(request, stack.dns_host, port=stack.dns_port, timeout=3)


def txt_strings(response: dns.message.Message) -> list[list[bytes]]:
    return [list(rdata.strings) for rrset in response.answer if rrset.rdtype == dns.rdatatype.TXT for rdata in rrset]


def https_get(url: str, cafile: str | None) -> bytes:
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    with opener.open(url, timeout=10) as response:
        return response.read()


# ---------------------------------------------------------------------------- Pebble

def test_pebble_directory_is_served_over_tls_trusted_with_the_ca_bundle(stack):
    directory = json.loads(https_get(stack.acme_directory, stack.ca_bundle))

    assert directory["renewalInfo"].startswith("https://127.0.0.1:")
    assert {"default", "shortlived"} <= set(directory["meta"]["profiles"])
    assert directory["meta"].get("externalAccountRequired") in (None, False)


def test_pebble_tls_is_not_trusted_without_the_ca_bundle(stack):
    with pytest.raises(urllib.error.URLError) as caught:
        https_get(stack.acme_directory, cafile=None)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)


def test_pebble_management_serves_root_and_intermediate(stack):
    root = x509.load_pem_x509_certificate(pebble_client.root_pem(stack, 0).encode())
    intermediate = x509.load_pem_x509_certificate(pebble_client.intermediate_pem(stack, 0).encode())

    assert intermediate.issuer == root.subject
    intermediate.verify_directly_issued_by(root)


# ---------------------------------------------------------------------------- DNS bridge

def test_txt_record_upserted_in_moto_is_answered_over_udp_and_tcp(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "_acme-challenge.www.example.test", "TXT", ['"tok-123_ABC"', '"part1" "part2"'])

    for tcp in (False, True):
        response = query(aws, "_acme-challenge.www.example.test.", "TXT", tcp=tcp)
        assert response.rcode() == dns.rcode.NOERROR
        assert response.flags & dns.flags.AA
        assert sorted(txt_strings(response)) == [[b"part1", b"part2"], [b"tok-123_ABC"]]


def test_caa_and_other_types_are_answered(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "example.test", "CAA", ['0 issue "pebble.letsencrypt.org"'])
    change(zone, "UPSERT", "example.test", "MX", ["10 mail.example.test"])

    caa = query(aws, "example.test.", "CAA").answer
    assert [(r.flags, r.tag, r.value) for rrset in caa for r in rrset] == [(0, b"issue", b"pebble.letsencrypt.org")]
    assert [str(r.exchange) for rrset in query(aws, "example.test.", "MX").answer for r in rrset] == ["mail.example.test."]
    assert [r.rdtype for r in query(aws, "example.test.", "SOA").answer] == [dns.rdatatype.SOA]


def test_names_are_case_insensitive(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "_acme-challenge.example.test", "TXT", ['"v"'])

    response = query(aws, "_ACME-Challenge.EXAMPLE.test.", "TXT")

    assert txt_strings(response) == [[b"v"]]


def test_deleted_record_is_gone_at_once(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "_acme-challenge.example.test", "TXT", ['"v"'])
    change(zone, "DELETE", "_acme-challenge.example.test", "TXT", ['"v"'])

    assert query(aws, "_acme-challenge.example.test.", "TXT").rcode() == dns.rcode.NXDOMAIN


def test_nxdomain_carries_the_zone_soa(aws):
    create_zone("example.test")

    response = query(aws, "missing.example.test.", "TXT")

    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.flags & dns.flags.AA
    assert [(str(r.name), r.rdtype) for r in response.authority] == [("example.test.", dns.rdatatype.SOA)]


def test_existing_name_without_the_type_is_nodata_with_soa(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "www.example.test", "A", ["192.0.2.1"])

    response = query(aws, "www.example.test.", "TXT")

    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []
    assert [r.rdtype for r in response.authority] == [dns.rdatatype.SOA]


def test_cname_is_chased_into_another_zone(aws):
    first = create_zone("example.test")
    second = create_zone("validation.test")
    change(first, "UPSERT", "_acme-challenge.example.test", "CNAME", ["example.test.validation.test"])
    change(second, "UPSERT", "example.test.validation.test", "TXT", ['"delegated"'])

    response = query(aws, "_acme-challenge.example.test.", "TXT")

    assert response.rcode() == dns.rcode.NOERROR
    assert [(str(r.name), r.rdtype) for r in response.answer] == [
        ("_acme-challenge.example.test.", dns.rdatatype.CNAME),
        ("example.test.validation.test.", dns.rdatatype.TXT),
    ]
    assert txt_strings(response) == [[b"delegated"]]


def test_cname_loop_is_answered_not_hung(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "a.example.test", "CNAME", ["b.example.test"])
    change(zone, "UPSERT", "b.example.test", "CNAME", ["a.example.test"])

    response = query(aws, "a.example.test.", "TXT")

    assert [r.rdtype for r in response.answer] == [dns.rdatatype.CNAME, dns.rdatatype.CNAME]


def test_longest_matching_zone_answers(aws):
    parent = create_zone("example.test")
    child = create_zone("sub.example.test")
    change(parent, "UPSERT", "_acme-challenge.www.sub.example.test", "TXT", ['"from-parent"'])
    change(child, "UPSERT", "_acme-challenge.www.sub.example.test", "TXT", ['"from-child"'])

    assert txt_strings(query(aws, "_acme-challenge.www.sub.example.test.", "TXT")) == [[b"from-child"]]


def test_wildcard_record_answers_names_below_it(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "*.apps.example.test", "A", ["192.0.2.7"])

    response = query(aws, "foo.apps.example.test.", "A")

    assert [(str(r.name), r[0].address) for r in response.answer] == [("foo.apps.example.test.", "192.0.2.7")]


def test_name_outside_every_zone_is_refused(aws):
    create_zone("example.test")

    response = query(aws, "www.example.org.", "TXT")

    assert response.rcode() == dns.rcode.REFUSED
    assert not response.flags & dns.flags.AA


# ---------------------------------------------------------------------------- AWS proxy

def test_route53_change_is_pending_until_the_delay_has_passed(aws):
    zone = create_zone("example.test")
    proxy_client.configure(aws.aws_endpoint_url, route53_delay=1.5)

    info = change(zone, "UPSERT", "_acme-challenge.example.test", "TXT", ['"v"'])
    assert info["Status"] == "PENDING"
    assert route53().get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "PENDING"

    time.sleep(1.6)
    assert route53().get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC"


def test_route53_changes_without_delay_are_insync_with_distinct_ids(aws):
    zone = create_zone("example.test")

    first = change(zone, "UPSERT", "_acme-challenge.example.test", "TXT", ['"a"'])
    second = change(zone, "UPSERT", "_acme-challenge.example.test", "TXT", ['"b"'])

    assert first["Status"] == second["Status"] == "INSYNC"
    assert first["Id"] != second["Id"]


def test_proxy_records_calls_with_service_and_operation(aws):
    zone = create_zone("example.test")
    change(zone, "UPSERT", "_acme-challenge.example.test", "TXT", ['"v1"', '"v2"'])
    boto3.client("acm").list_certificates()
    boto3.client("acm", region_name="eu-west-1").list_certificates()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="devstack-test")
    s3.put_object(Bucket="devstack-test", Key="a/b.txt", Body=b"x")
    boto3.client("sns").create_topic(Name="devstack-test")

    calls = [(c["service"], c["operation"]) for c in proxy_client.calls(aws.aws_endpoint_url)]

    assert calls == [
        ("route53", "CreateHostedZone"),
        ("route53", "ChangeResourceRecordSets"),
        ("acm", "ListCertificates"),
        ("acm", "ListCertificates"),
        ("s3", "CreateBucket"),
        ("s3", "PutObject"),
        ("sns", "CreateTopic"),
    ]
    regions = [c["region"] for c in proxy_client.calls(aws.aws_endpoint_url, service="acm")]
    assert regions == ["us-east-1", "eu-west-1"]


def test_change_batches_are_recorded_per_zone_with_their_records(aws):
    zone = create_zone("example.test")
    other = create_zone("other.test")
    change(zone, "UPSERT", "_acme-challenge.example.test", "TXT", ['"v1"', '"v2"'])
    change(zone, "DELETE", "_acme-challenge.example.test", "TXT", ['"v1"', '"v2"'])
    change(other, "UPSERT", "_acme-challenge.other.test", "TXT", ['"w"'])

    batches = proxy_client.change_batches(aws.aws_endpoint_url, zone_id=zone)

    assert [[c["action"] for c in b["changes"]] for b in batches] == [["UPSERT"], ["DELETE"]]
    assert batches[0]["changes"][0] == {
        "action": "UPSERT", "name": "_acme-challenge.example.test", "type": "TXT", "ttl": 60,
        "values": ['"v1"', '"v2"'],
    }
    assert len(proxy_client.change_batches(aws.aws_endpoint_url)) == 3


def test_fault_rule_answers_throttling_the_configured_number_of_times(aws):
    zone = create_zone("example.test")
    proxy_client.configure(aws.aws_endpoint_url, faults=[
        {"service": "route53", "operation": "ChangeResourceRecordSets", "status": 400, "code": "Throttling",
         "count": 2},
    ])
    client = route53(config=NO_RETRIES)
    batch = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "_acme-challenge.example.test", "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": '"v"'}]}}]}

    for _ in range(2):
        with pytest.raises(ClientError) as caught:
            client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)
        assert caught.value.response["Error"]["Code"] == "Throttling"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    client.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)

    statuses = [c["status"] for c in proxy_client.calls(aws.aws_endpoint_url, operation="ChangeResourceRecordSets")]
    assert statuses == [400, 400, 200]
    assert len(proxy_client.change_batches(aws.aws_endpoint_url, zone)) == 1


def test_fault_rule_shapes_json_protocol_errors(aws):
    proxy_client.configure(aws.aws_endpoint_url, faults=[{"service": "acm", "code": "ThrottlingException"}])
    acm = boto3.client("acm", config=NO_RETRIES)

    with pytest.raises(ClientError) as caught:
        acm.list_certificates()
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    acm.list_certificates()


def test_s3_conditional_writes_pass_through_with_412(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="devstack-state")
    first = s3.put_object(Bucket="devstack-state", Key="pointer.json", Body=b"1", IfNoneMatch="*")

    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="devstack-state", Key="pointer.json", Body=b"2", IfNoneMatch="*")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    s3.put_object(Bucket="devstack-state", Key="pointer.json", Body=b"3", IfMatch=first["ETag"])
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="devstack-state", Key="pointer.json", Body=b"4", IfMatch=first["ETag"])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket="devstack-state", Key="pointer.json")["Body"].read() == b"3"


def test_bad_control_request_is_a_400(aws):
    with pytest.raises(urllib.error.HTTPError) as caught:
        proxy_client.configure(aws.aws_endpoint_url, faults=[{"servce": "route53"}])
    assert caught.value.code == 400
    for bad in ({"inuse_lag": -1}, {"strict": "yes"}):
        with pytest.raises(urllib.error.HTTPError) as caught:
            proxy_client.configure(aws.aws_endpoint_url, **bad)
        assert caught.value.code == 400, bad


def test_strict_mode_is_on_by_default_and_named_in_the_config(aws):
    config = proxy_client.get_config(aws.aws_endpoint_url)
    assert config["strict"] is True
    assert config["inuse_lag"] > 0


# ---------------------------------------------------------------------------- Pebble validates through the bridge

def _issue(stack, names: list[str], zone_id: str, profile: str | None = None) -> str:
    """A real DNS-01 issuance with the `acme` library: Pebble's VA resolves through the bridge."""
    import josepy as jose
    from acme import challenges, client, crypto_util, messages
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    # the library logs every JWS at DEBUG: pinned to WARNING as the product's ACME adapter pins it
    # (that adapter is imported only when a run first talks to the CA, maybe not in this session)
    logging.getLogger("acme").setLevel(logging.WARNING)

    account_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(account_key, alg=jose.ES256, verify_ssl=stack.ca_bundle)
    acme = client.ClientV2(client.ClientV2.get_directory(stack.acme_directory, net), net)
    acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    cert_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    order = acme.new_order(crypto_util.make_csr(cert_key, names), profile=profile)
    for authz in order.authorizations:
        chall = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.DNS01))
        record = chall.chall.validation_domain_name(authz.body.identifier.value)
        change(zone_id, "UPSERT", record, "TXT", [f'"{chall.chall.validation(account_key)}"'])
        acme.answer_challenge(chall, chall.chall.response(account_key))
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    return acme.poll_and_finalize(order, deadline=deadline).fullchain_pem


def test_pebble_issues_through_dns01_answered_by_the_bridge(aws):
    zone = create_zone("example.test")

    fullchain = _issue(aws, ["example.test", "www.example.test"], zone, profile="shortlived")

    leaf = x509.load_pem_x509_certificate(fullchain.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(sans) == ["example.test", "www.example.test"]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=6, minutes=1)



def test_set_renewal_info_changes_the_ari_window(aws):
    zone = create_zone("example.test")
    fullchain = _issue(aws, ["ari.example.test"], zone)
    start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).replace(microsecond=0)

    pebble_client.set_renewal_info(aws, fullchain, start, start + dt.timedelta(hours=1))

    window = pebble_client.renewal_info(aws, fullchain)["suggestedWindow"]
    assert dt.datetime.fromisoformat(window["start"]) == start
    assert dt.datetime.fromisoformat(window["end"]) == start + dt.timedelta(hours=1)


def test_restart_pebble_applies_eab_and_comes_back(stack, restart_pebble):
    old_directory = stack.acme_directory
    restart_pebble(pebble_config={"externalAccountBindingRequired": True,
                                  "externalAccountMACKeys": {"kid-1": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"}})

    directory = pebble_client.directory(stack)
    assert directory["meta"]["externalAccountRequired"] is True
    assert stack.acme_directory == old_directory
    assert devstack.load(stack.state_dir).pids["pebble"] == stack.pids["pebble"]


# ---------------------------------------------------------------------------- lifecycle

def test_up_twice_in_one_state_dir_is_refused(stack):
    with pytest.raises(StackError, match="already running"):
        devstack.up(stack.state_dir)


def test_down_stops_every_process(tmp_path):
    second = devstack.up(tmp_path / "second", route53_delay=0.5)
    assert devstack.load(second.state_dir) == second
    assert all(is_running(pid) for pid in second.pids.values())
    config = proxy_client.get_config(second.aws_endpoint_url)
    assert config["route53_delay"] == 0.5

    assert devstack.down(second.state_dir) is True

    assert not any(is_running(pid) for pid in second.pids.values())
    assert devstack.load(second.state_dir) is None
    assert devstack.down(second.state_dir) is False
