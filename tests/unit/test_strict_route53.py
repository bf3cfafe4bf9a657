"""The devstack's strict Route53 rule against moto in-process: a change batch is refused as
Route53 refuses it (moto would accept it)."""
from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devstack.strict import AwsError, Call
from devstack.strict.route53 import ChangeBatchRule

NAME = "_acme-challenge.example.test"


@pytest.fixture
def r53(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("route53", region_name="us-east-1")


@pytest.fixture
def zone(r53):
    return r53.create_hosted_zone(Name="example.test", CallerReference="t")["HostedZone"]["Id"].rsplit("/", 1)[-1]


def change(action, values, ttl=30, name=NAME):
    return {"Action": action, "ResourceRecordSet": {"Name": name, "Type": "TXT", "TTL": ttl,
                                                    "ResourceRecords": [{"Value": v} for v in values]}}


def body(changes) -> bytes:
    parts = []
    for c in changes:
        rr = c["ResourceRecordSet"]
        values = "".join(f"<ResourceRecord><Value>{v['Value']}</Value></ResourceRecord>" for v in rr["ResourceRecords"])
        parts.append(f"<Change><Action>{c['Action']}</Action><ResourceRecordSet><Name>{rr['Name']}</Name>"
                     f"<Type>{rr['Type']}</Type><TTL>{rr['TTL']}</TTL><ResourceRecords>{values}</ResourceRecords>"
                     f"</ResourceRecordSet></Change>")
    return ('<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch>'
            f"<Changes>{''.join(parts)}</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>").encode()


@dataclass
class Response:
    status: int
    headers: list
    body: bytes
    reason: str = ""


def call_for(r53, zone, *changes) -> Call:
    return Call(service="route53", region="us-east-1", operation="ChangeResourceRecordSets", method="POST",
                path=f"/2013-04-01/hostedzone/{zone}/rrset/", query={}, headers={}, body=body(changes),
                principal="renewer", moto=lambda service, region, **_: r53)


def forward(r53, zone, *changes):
    """What the proxy does: ask the rule, send the batch to moto, let the rule see the answer."""
    rule, call = ChangeBatchRule(), call_for(r53, zone, *changes)
    rule.before(call)
    try:
        r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": list(changes)})
        return rule.after(call, Response(200, [], b"<ok/>"))
    except ClientError as exc:
        message = exc.response["Error"]["Message"].encode()
        return rule.after(call, Response(400, [], b"<ErrorResponse>" + message + b"</ErrorResponse>"))


def check(r53, zone, *changes):
    """Ask the rule about the batch; when it lets it through, apply it to moto (as the proxy would)."""
    call = Call(service="route53", region="us-east-1", operation="ChangeResourceRecordSets", method="POST",
                path=f"/2013-04-01/hostedzone/{zone}/rrset/", query={}, headers={}, body=body(changes),
                principal="renewer", moto=lambda service, region, **_: r53)
    ChangeBatchRule().before(call)
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": list(changes)})


def txt(r53, zone):
    sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return [(s["TTL"], sorted(r["Value"] for r in s["ResourceRecords"])) for s in sets if s["Type"] == "TXT"]


def test_moto_alone_is_lenient(r53, zone):
    """Why the rule exists: moto takes a CREATE of an existing set, and a DELETE of values the
    set held once (moto looks in its change journal), not of the values it holds now."""
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [change("CREATE", ['"a"'])]})
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [change("CREATE", ['"b"'])]})
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [change("UPSERT", ['"c"'])]})
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [change("DELETE", ['"a"'])]})
    assert ['"c"'] not in [values for _, values in txt(r53, zone)], "moto deleted a set holding other values"


def test_create_of_an_existing_set_is_refused_with_route53s_message(r53, zone):
    check(r53, zone, change("CREATE", ['"a"']))
    with pytest.raises(AwsError) as refused:
        check(r53, zone, change("CREATE", ['"b"']))
    assert (refused.value.code, refused.value.status) == ("InvalidChangeBatch", 400)
    assert refused.value.message == (f"Tried to create resource record set [name='{NAME}.', type='TXT'] "
                                     "but it already exists")
    assert txt(r53, zone) == [(30, ['"a"'])]


@pytest.mark.parametrize("values,ttl", [(['"a"'], 30), (['"a"', '"b"', '"c"'], 30), (['"a"', '"b"'], 60)])
def test_delete_must_name_exactly_the_current_values_and_ttl(r53, zone, values, ttl):
    check(r53, zone, change("CREATE", ['"a"', '"b"']))
    with pytest.raises(AwsError) as refused:
        check(r53, zone, change("DELETE", values, ttl=ttl))
    assert refused.value.code == "InvalidChangeBatch"
    assert refused.value.message == (f"Tried to delete resource record set [name='{NAME}.', type='TXT'] "
                                     "but the values provided do not match the current values")
    check(r53, zone, change("DELETE", ['"a"', '"b"']))
    assert txt(r53, zone) == []


def test_delete_of_a_missing_set_is_refused(r53, zone):
    with pytest.raises(AwsError, match=r"Tried to delete resource record set \[name='_acme-challenge.example.test.', "
                                       r"type='TXT'\] but it was not found"):
        check(r53, zone, change("DELETE", ['"a"']))


def test_delete_then_create_in_one_batch_replaces_the_set(r53, zone):
    check(r53, zone, change("CREATE", ['"a"'], ttl=60))
    check(r53, zone, change("DELETE", ['"a"'], ttl=60), change("CREATE", ['"a"', '"b"'], ttl=60))
    assert txt(r53, zone) == [(60, ['"a"', '"b"'])]
    with pytest.raises(AwsError, match="already exists"):  # the batch is checked change by change
        check(r53, zone, change("UPSERT", ['"x"']), change("CREATE", ['"y"']))


def test_other_calls_and_upserts_pass(r53, zone):
    check(r53, zone, change("UPSERT", ['"a"']))
    check(r53, zone, change("UPSERT", ['"b"'], ttl=10))
    assert txt(r53, zone) == [(10, ['"b"'])]


def test_valid_batches_moto_refuses_are_applied_as_route53_would(r53, zone):
    """moto refuses a CREATE it has journalled before, and a DELETE of values in another order."""
    assert forward(r53, zone, change("CREATE", ['"b"'])).status == 200
    assert forward(r53, zone, change("DELETE", ['"b"']), change("CREATE", ['"b"', '"a"'])).status == 200
    answer = forward(r53, zone, change("DELETE", ['"b"', '"a"']), change("CREATE", ['"b"']))
    assert answer.status == 200 and b"<ChangeInfo><Id>" in answer.body
    assert txt(r53, zone) == [(30, ['"b"'])]
    forward(r53, zone, change("DELETE", ['"b"']), change("CREATE", ['"a"', '"c"']))
    answer = forward(r53, zone, change("DELETE", ['"c"', '"a"']))  # Route53 compares values as a set
    assert answer.status == 200
    assert txt(r53, zone) == []


@pytest.mark.parametrize("value", ['0 issue "letsencrypt.org"', '128 tbs "x"', '0 iodef "mailto:a@example.com"',
                                   '0 issue ";"'])
def test_a_well_formed_caa_value_passes(value):
    from devstack.strict.route53 import check_caa_value

    check_caa_value(value)


@pytest.mark.parametrize("value", ['0 issue "open', "issue letsencrypt.org", '256 issue "x"', '0 is-sue "x"', ""])
def test_a_malformed_caa_value_is_refused_as_route53_does(value):
    """moto stores any CAA value; Route53 refuses the whole batch."""
    from devstack.strict.route53 import check_caa_value

    with pytest.raises(AwsError) as refused:
        check_caa_value(value)
    assert refused.value.code == "InvalidChangeBatch" and refused.value.status == 400
