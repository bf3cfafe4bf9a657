"""DNS-01 on the devstack's Route53: one change batch per zone and run, CNAME delegation,
cross-account zones (and a role that cannot be assumed), other clients' values and TTL,
concurrent writers on one name, throttling, and values that never show up."""
from __future__ import annotations

import json
import socket
from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.retries import standard as botocore_standard

from acme_flow import cli
from acme_flow.bootstrap import Clients
from acme_flow.deadline import Deadline, SystemClock
from acme_flow.adapters import dns_check as dns_check_adapter
from acme_flow.adapters.dns_check import dns_cname_lookup
from acme_flow.adapters.route53 import Route53Dns
from acme_flow.models import CertificateSpec
from devstack import proxy_client, world
from devstack.dns_bridge import OTHER_ACCOUNT
from devstack_world import STATE_BUCKET, make_world

ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/certrenew-dns"
# The devstack's renewer (devstack/strict/sts.py): the stack's function role, as the README's
# cross-account trust policy names it (output RenewerRoleArn).
RENEWER_ROLE = "arn:aws:iam::123456789012:role/certrenew-renewer"


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test", "shop.test", "delegate.test"))


def in_other_account(service: str):
    """A client acting as the other account's own administrator (moto picks the account by header)."""
    client = boto3.client(service)
    client.meta.events.register(f"before-sign.{service}.*",
                                lambda request, **_: request.headers.__setitem__("x-moto-account-id", OTHER_ACCOUNT))
    return client


def cert(name, *domains, **dns):
    entry = {"name": name, "domains": list(domains)}
    if dns:
        entry["dns"] = dns
    return entry


def run(w, config, capsys, *extra):
    """`certrenew run --json`; the exit code and the report (stderr shown if there is none)."""
    code = cli.main(["run", "--config", str(config), "--json", *extra])
    captured = capsys.readouterr()
    assert captured.out, f"exit {code}, no report; stderr:\n{captured.err}"
    return code, json.loads(captured.out)


def outcomes(report):
    return {c["name"]: (c["outcome"], c["reason"]) for c in report["certificates"]}


def batches_by_zone(w):
    out: dict[str, list[list[dict]]] = {}
    for call in proxy_client.change_batches(w.stack.aws_endpoint_url):
        out.setdefault(call["zone_id"], []).append(call["changes"])
    return out


def route53_calls(w, operation):
    return proxy_client.calls(w.stack.aws_endpoint_url, "route53", operation)


def create_dns_role(w, zone_id: str = "Z0OTHERZONE", role: str = ROLE, trusted: str = RENEWER_ROLE) -> None:
    """The role in the other account as the README describes it: trusting the stack's function
    role only (strict STS checks it), with the README's policy for its zone (strict IAM judges
    the product's calls made as the role by it), and listed in the deployment's DnsRoleArns."""
    iam = in_other_account("iam")  # moto keeps IAM per account
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": [trusted]}}]}
    zone = f"arn:aws:route53:::hostedzone/{zone_id}"
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "route53:ListHostedZones", "Resource": "*"},
        {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
        {"Effect": "Allow", "Action": ["route53:GetHostedZone", "route53:ListResourceRecordSets"], "Resource": zone},
        {"Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": zone, "Condition": {
            "ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]},
            "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                                          "route53:ChangeResourceRecordSetsActions": ["CREATE", "DELETE"]}}}]}
    name = role.rsplit("/", 1)[-1]
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="acme-dns", PolicyDocument=json.dumps(policy))
    deployed = proxy_client.get_config(w.stack.aws_endpoint_url)["deployment"].get("DnsRoleArns")
    roles = [r for r in (deployed if isinstance(deployed, list) else []) if r != "auto"]
    proxy_client.update_deployment(w.stack.aws_endpoint_url, {"DnsRoleArns": [*roles, role]})


def other_account_route53():
    return in_other_account("route53")


def test_a_run_makes_one_publishing_and_one_delete_batch_per_zone(w, capsys):
    proxy_client.configure(w.stack.aws_endpoint_url, route53_delay=1)  # changes PENDING: the wait is real
    config = w.write_config([
        cert("site", "example.test", "*.example.test"),
        cert("api", "api.example.test", "v1.api.example.test"),
        cert("blog", "blog.example.test"),
        cert("shop", "shop.test", "www.shop.test"),
        cert("pay", "pay.shop.test"),
    ])
    code, report = run(w, config, capsys)
    assert code == 0, report
    assert {o for o, _ in outcomes(report).values()} == {"issued"}

    by_zone = batches_by_zone(w)
    example, shop = w.zones["example.test"], w.zones["shop.test"]
    assert set(by_zone) == {example, shop}
    for zone_id, names in ((example, {"_acme-challenge.example.test", "_acme-challenge.api.example.test",
                                      "_acme-challenge.v1.api.example.test", "_acme-challenge.blog.example.test"}),
                           (shop, {"_acme-challenge.shop.test", "_acme-challenge.www.shop.test",
                                   "_acme-challenge.pay.shop.test"})):
        upsert, delete = by_zone[zone_id]
        # fresh names: a CREATE each (a CREATE fails if another writer made the set meanwhile)
        assert {c["action"] for c in upsert} == {"CREATE"} and {c["action"] for c in delete} == {"DELETE"}
        assert {c["name"].lower() for c in upsert} == names == {c["name"].lower() for c in delete}
    apex = next(c for c in by_zone[example][0] if c["name"] == "_acme-challenge.example.test")
    assert len(apex["values"]) == 2, "apex and wildcard values share one record set"

    # the zones are listed once for the run; both changes are polled in the same rounds
    assert len(route53_calls(w, "ListHostedZones")) == 1
    polled = Counter(c["path"].rsplit("/", 1)[-1] for c in route53_calls(w, "GetChange"))
    upsert_ids = [c["change_id"] for c in proxy_client.change_batches(w.stack.aws_endpoint_url)][:2]
    assert set(polled) == set(upsert_ids) and len(set(polled.values())) == 1, polled
    assert w.acme_records() == {}


def test_a_cname_delegated_challenge_is_written_in_the_target_zone_and_validated(w, capsys):
    delegate = w.zones["delegate.test"]
    w.route53.change_resource_record_sets(HostedZoneId=w.zones["example.test"], ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": "_acme-challenge.www.example.test", "Type": "CNAME", "TTL": 60,
            "ResourceRecords": [{"Value": "_acme-challenge.www-example-test.delegate.test"}]}}]})
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    config = w.write_config([cert("www", "www.example.test")])
    code, report = run(w, config, capsys)
    assert code == 0, report
    assert outcomes(report)["www"][0] == "issued"  # Pebble validated through the CNAME

    by_zone = batches_by_zone(w)
    assert list(by_zone) == [delegate], "nothing is written in the delegating zone"
    upsert, delete = by_zone[delegate]
    target = "_acme-challenge.www-example-test.delegate.test"
    assert [(c["action"], c["name"]) for c in upsert] == [("CREATE", target)]
    assert [c["action"] for c in delete] == ["DELETE"]
    assert world.txt_records(w.route53, delegate) == {}
    cname = w.route53.list_resource_record_sets(HostedZoneId=w.zones["example.test"],
                                                StartRecordName="_acme-challenge.www.example.test",
                                                StartRecordType="CNAME", MaxItems="1")["ResourceRecordSets"][0]
    assert cname["Type"] == "CNAME", "the delegation itself is left alone"


def test_a_cname_found_in_public_dns_is_followed(w, capsys, monkeypatch):
    # corp.test is a private zone: discovery skips it, so the CNAME on its challenge name can
    # only be found through DNS (here the devstack's DNS bridge, which serves every zone).
    world.create_zone(w.route53, "corp.test", private=True)
    corp = next(z["Id"] for z in w.route53.list_hosted_zones()["HostedZones"] if z["Name"] == "corp.test.")
    w.route53.change_resource_record_sets(HostedZoneId=corp, ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {
            "Name": "_acme-challenge.app.corp.test", "Type": "CNAME", "TTL": 60,
            "ResourceRecords": [{"Value": "_acme-challenge.app-corp.delegate.test"}]}}]})
    bridge = [(w.stack.dns_host, w.stack.dns_port)]

    lookup = dns_cname_lookup(bridge, timeout=2)
    assert lookup("_acme-challenge.app.corp.test") == "_acme-challenge.app-corp.delegate.test."
    assert lookup("_acme-challenge.plain.example.test") is None
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:  # a resolver that never answers reads as "no CNAME", within the lookup's time limit
        assert dns_cname_lookup([silent.getsockname()], timeout=0.5)("_acme-challenge.app.corp.test") is None
    finally:
        silent.close()
    dns = Route53Dns(lambda role: boto3.client("route53"), lookup_cname=lookup)
    record = dns.locate("_acme-challenge.app.corp.test", "v", CertificateSpec("app", ("app.corp.test",)))
    assert (record.name, record.zone_id) == ("_acme-challenge.app-corp.delegate.test", w.zones["delegate.test"])

    # The whole run, with the CNAME lookups sent to the bridge as they would go to public DNS.
    monkeypatch.setattr(dns_check_adapter, "dns_cname_lookup", lambda *a, **k: dns_cname_lookup(bridge, timeout=2))
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = run(w, w.write_config([cert("app", "app.corp.test")]), capsys=capsys)
    assert code == 0, report
    assert list(batches_by_zone(w)) == [w.zones["delegate.test"]]


def test_a_zone_in_another_account_is_reached_through_role_arn(w, capsys):
    other = other_account_route53()
    partner = world.create_zone(other, "partner.test")
    create_dns_role(w, partner)
    visible = {z["Name"] for z in w.route53.list_hosted_zones()["HostedZones"]}
    assert "partner.test." not in visible, "the zone must live in the other account only"
    proxy_client.reset_calls(w.stack.aws_endpoint_url)

    config = w.write_config([
        cert("partner", "partner.test", "*.partner.test", role_arn=ROLE),
        cert("www-partner", "www.partner.test", role_arn=ROLE),
        cert("home", "example.test"),
    ])
    code, report = run(w, config, capsys)
    assert code == 0, report
    assert {o for o, _ in outcomes(report).values()} == {"issued"}
    by_zone = batches_by_zone(w)
    assert {z: len(b) for z, b in by_zone.items()} == {partner: 2, w.zones["example.test"]: 2}
    assert proxy_client.calls(w.stack.aws_endpoint_url, "sts", "AssumeRole"), "the role was assumed"
    assert world.txt_records(other, partner) == {}


def test_a_role_that_sees_no_zone_for_the_name_fails_clearly(w, capsys):
    create_dns_role(w)
    config = w.write_config([cert("lost", "example.test", role_arn=ROLE), cert("shop", "shop.test")])
    code, report = run(w, config, capsys)
    assert code == 1
    outcome, reason = outcomes(report)["lost"]
    assert outcome == "failed" and "no Route53 hosted zone found for example.test" in reason
    assert outcomes(report)["shop"][0] == "issued"


def test_another_clients_value_on_the_same_name_survives_cleanup(w, capsys):
    zone = w.zones["example.test"]
    world.upsert_txt(w.route53, zone, "_acme-challenge.example.test", ["another-client-token"])
    proxy_client.reset_calls(w.stack.aws_endpoint_url)
    code, report = run(w, w.write_config([cert("site", "example.test", "*.example.test")]), capsys=capsys)
    assert code == 0, report
    assert world.txt_records(w.route53, zone) == {"_acme-challenge.example.test": ['"another-client-token"']}
    (kept,) = [s for s in w.route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
               if s["Type"] == "TXT"]
    assert kept["TTL"] == 60, "the other client's TTL is kept"
    publish, cleanup = batches_by_zone(w)[zone]
    other = ['"another-client-token"']
    assert [(c["action"], c["ttl"], len(c["values"])) for c in publish] == [("DELETE", 60, 1), ("CREATE", 60, 3)]
    assert publish[0]["values"] == other and publish[1]["values"][0] == other[0]
    assert [(c["action"], c["ttl"], c["values"]) for c in cleanup] == [("DELETE", 60, publish[1]["values"]),
                                                                        ("CREATE", 60, other)]


class Interleaving:
    """A Route53 client that lets another writer act between our read and our next change."""

    def __init__(self, client, other_writer):
        self._client, self._other_writer = client, other_writer

    def change_resource_record_sets(self, **kwargs):
        writer, self._other_writer = self._other_writer, None
        if writer:
            writer()
        return self._client.change_resource_record_sets(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_two_interleaving_writers_on_one_name_both_end_published(w):
    """Run B publishes (and later cleans up) between run A's read and A's change: Route53 (the
    strict proxy) refuses A's batch, A reads again; nobody's value is lost."""
    zone, name = w.zones["example.test"], "_acme-challenge.example.test"
    deadline = Deadline(SystemClock(), 60)
    clients = Clients("us-east-1")  # the product's clients (principal "renewer")
    run_b = Route53Dns(clients.route53_for, lookup_cname=lambda n: None)
    b_records = [run_b.locate(name, "from-run-b", CertificateSpec("b", ("example.test",)))]

    def a_run(between):
        return Route53Dns(lambda role: Interleaving(clients.route53_for(role), between), lookup_cname=lambda n: None)

    run_a = a_run(lambda: run_b.present(b_records, deadline))
    a_records = [run_a.locate(name, "from-run-a", CertificateSpec("a", ("*.example.test",)))]
    run_a.present(a_records, deadline)
    assert world.txt_records(w.route53, zone) == {name: ['"from-run-b"', '"from-run-a"']}
    refused = [c for c in route53_calls(w, "ChangeResourceRecordSets") if c.get("strict")]
    assert [(c["strict"], [x["action"] for x in c["changes"]]) for c in refused] == [("InvalidChangeBatch", ["CREATE"])]

    a_again = [run_a.locate(name, "a-second-order", CertificateSpec("a", ("*.example.test",)))]
    a_run(lambda: run_b.remove(b_records)).present(a_again, deadline)  # B cleans up while A publishes again
    assert world.txt_records(w.route53, zone) == {name: ['"from-run-a"', '"a-second-order"']}
    a_run(lambda: run_b.present(b_records, deadline)).remove(a_records + a_again)  # and the other way round
    assert world.txt_records(w.route53, zone) == {name: ['"from-run-b"']}
    run_b.remove(b_records)
    assert world.txt_records(w.route53, zone) == {}
    assert len([c for c in route53_calls(w, "ChangeResourceRecordSets") if c.get("strict")]) == 3


def test_the_proxy_refuses_change_batches_as_route53_does(w):
    zone, name = w.zones["example.test"], "_acme-challenge.www.example.test"

    def change(*changes):
        w.route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
            {"Action": action, "ResourceRecordSet": {"Name": name, "Type": "TXT", "TTL": ttl,
                                                     "ResourceRecords": [{"Value": v} for v in values]}}
            for action, values, ttl in changes]})

    change(("CREATE", ['"a"'], 60))
    for batch, message in [
        ([("CREATE", ['"b"'], 60)], "Tried to create resource record set [name='{}.', type='TXT'] "
                                    "but it already exists"),
        ([("DELETE", ['"b"'], 60), ("CREATE", ['"b"'], 60)],
         "Tried to delete resource record set [name='{}.', type='TXT'] but the values provided do not "
         "match the current values"),
        ([("DELETE", ['"a"'], 30)], "Tried to delete resource record set [name='{}.', type='TXT'] but the "
                                    "values provided do not match the current values"),
    ]:
        with pytest.raises(ClientError) as refused:
            change(*batch)
        assert refused.value.response["Error"]["Code"] == "InvalidChangeBatch"
        assert refused.value.response["Error"]["Message"] == message.format(name)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert world.txt_records(w.route53, zone) == {name: ['"a"']}, "a refused batch changes nothing"
    change(("DELETE", ['"a"'], 60), ("CREATE", ['"a"', '"b"'], 60))
    assert world.txt_records(w.route53, zone) == {name: ['"a"', '"b"']}


# Not a role of moto's IAM: refused once the devstack's strict STS rule is merged. Until then the
# fault below answers AssumeRole as AWS does for a role whose trust policy does not allow the caller.
REFUSING_ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/certrenew-dns-not-trusted"


def test_a_dns_role_that_cannot_be_assumed_fails_only_its_certificate_naming_the_role(w, capsys):
    # the role exists and the stack may assume it, but its trust policy names another principal:
    # STS refuses (the devstack's strict STS rule answers as AWS does)
    create_dns_role(w, w.zones["example.test"], role=REFUSING_ROLE, trusted="arn:aws:iam::999999999999:root")
    config = w.write_config([
        cert("partner", "www.example.test", hosted_zone_id=w.zones["example.test"], role_arn=REFUSING_ROLE),
        cert("shop", "shop.test"),
    ])
    code, report = run(w, config, capsys)
    assert code == 1, report
    outcome, reason = outcomes(report)["partner"]
    assert outcome == "failed"
    assert REFUSING_ROLE in reason and "AccessDenied" in reason
    assert "trust policy" in reason and "DnsRoleArns" in reason
    assert outcomes(report)["shop"][0] == "issued"
    assert w.acme_records() == {}


def test_a_route53_throttling_burst_is_ridden_out(w, capsys, monkeypatch):
    # botocore's standard retry mode (bootstrap's client config) retries both codes with jittered
    # exponential backoff. Its delays are shortened here so the test stays quick; the number of
    # retries and which calls are retried are botocore's own.
    retried = []
    real_delay = botocore_standard.ExponentialBackoff.delay_amount

    def short_delay(self, context):
        retried.append(context.get_error_code())
        return real_delay(self, context) / 20

    monkeypatch.setattr(botocore_standard.ExponentialBackoff, "delay_amount", short_delay)
    proxy_client.configure(w.stack.aws_endpoint_url, faults=[
        {"service": "route53", "operation": "ChangeResourceRecordSets", "status": 400, "code": "Throttling",
         "message": "Rate exceeded", "count": 3},
        {"service": "route53", "operation": "ChangeResourceRecordSets", "status": 400,
         "code": "PriorRequestNotComplete", "message": "still processing a prior request", "count": 2},
        {"service": "route53", "operation": "ListHostedZones", "status": 400, "code": "Throttling", "count": 2},
    ])
    code, report = run(w, w.write_config([cert("shop", "shop.test", "www.shop.test")]), capsys=capsys)
    assert code == 0, report
    assert outcomes(report)["shop"][0] == "issued"
    changes = route53_calls(w, "ChangeResourceRecordSets")
    assert [c.get("fault") for c in changes] == ["Throttling"] * 3 + ["PriorRequestNotComplete"] * 2 + [None, None]
    assert Counter(retried) == {"Throttling": 5, "PriorRequestNotComplete": 2}
    assert w.acme_records() == {}


def test_a_value_no_server_confirms_fails_naming_the_server_and_is_cleaned_up(w, capsys, monkeypatch):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes queries, never answers
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        monkeypatch.setenv("CERTRENEW_DNS_RESOLVERS", f"{w.stack.dns_host}:{w.stack.dns_port},127.0.0.1:{port}")
        config = w.write_config([cert("quiet", "quiet.example.test"), cert("shop", "shop.test")])
        code, report = run(w, config, capsys, "--timeout", "8")
    finally:
        silent.close()
    assert code == 1
    for name in ("quiet", "shop"):
        outcome, reason = outcomes(report)[name]
        assert outcome == "failed"
        assert reason.startswith("DNS propagation not confirmed")
        assert f"127.0.0.1:{port} (no answer)" in reason
        assert f"{w.stack.dns_host}:{w.stack.dns_port}" not in reason, "the bridge did serve the value"
    assert "_acme-challenge.quiet.example.test not seen by" in outcomes(report)["quiet"][1]
    assert w.acme_records() == {}


def test_the_dns_bridge_answers_a_burst_of_lookups_with_fresh_records(w):
    # Pebble validates every name of a run at once; the bridge shares moto reads between
    # concurrent queries but must still answer each with what was written before it was asked.
    import dns.message
    import dns.query
    from concurrent.futures import ThreadPoolExecutor

    zone = w.zones["example.test"]
    names = [f"_acme-challenge.h{i}.example.test" for i in range(60)]
    w.route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "UPSERT", "ResourceRecordSet": {"Name": n, "Type": "TXT", "TTL": 30,
                                                   "ResourceRecords": [{"Value": f'"v-{n}"'}]}} for n in names]})

    def ask(job):
        name, tcp = job
        query = dns.message.make_query(name, "TXT")
        send = dns.query.tcp if tcp else dns.query.udp
        response = send(query, w.stack.dns_host, port=w.stack.dns_port, timeout=10)
        return {b"".join(r.strings).decode() for rrset in response.answer for r in rrset}

    jobs = [(n, tcp) for n in names for tcp in (False, True)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        answers = list(pool.map(ask, jobs))
    assert answers == [{f"v-{n}"} for n, _ in jobs]

    world.upsert_txt(w.route53, zone, names[0], ["changed"])
    assert ask((names[0], False)) == {"changed"}, "a write is answered by the next query"
