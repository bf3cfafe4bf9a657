"""ELB listeners on the devstack: our certificate as an SNI entry or the default, moved to a new ARN
(the old one out, after the new one is in), ACM's InUseBy and DeleteCertificate as AWS answers
them, and the listener rules moto lacks (devstack/strict/elbv2.py) refusing what AWS refuses."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters.elb import ElbListeners
from acme_flow.errors import DeployError
from certfactory import MiniCA
from devstack import proxy_client
from devstack.targets.elb import add_sni_certificate, listener_certificates, make_https_listener

REGION = "eu-west-1"


def imported(region: str = REGION, names=("www.example.test",)) -> str:
    material = MiniCA().leaf(names)
    return boto3.client("acm", region_name=region).import_certificate(
        Certificate=material.cert_pem.encode(), PrivateKey=material.key_pem.encode(),
        CertificateChain=material.chain_pem.encode())["CertificateArn"]


def adapter() -> ElbListeners:
    def client_for(region, role_arn):
        assert role_arn is None
        return boto3.client("elbv2", region_name=region)  # no certrenew app id: strict IAM lets it be
    return ElbListeners(client_for)


def in_use_by(arn: str) -> list[str]:
    return boto3.client("acm", region_name=REGION).describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"]


def refused(call) -> str:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response["Error"]["Code"]


def test_an_sni_entry_is_added_then_moved_to_a_new_arn(aws):
    theirs, first, second = imported(), imported(), imported()
    listener = make_https_listener(REGION, theirs)
    listeners = adapter()
    listeners.check(listener, None)

    assert listeners.attach(listener, first, None, None) is True
    assert listener_certificates(listener) == (theirs, [first])
    assert listeners.attach(listener, first, None, None) is False, "a same-ARN renewal writes nothing"
    assert listener in in_use_by(first)

    assert listeners.attach(listener, second, first, None) is True
    assert listener_certificates(listener) == (theirs, [second])
    calls = [c["operation"] for c in proxy_client.calls(aws.aws_endpoint_url, service="elasticloadbalancing")
             if c["operation"] in ("AddListenerCertificates", "RemoveListenerCertificates")]
    assert calls[-2:] == ["AddListenerCertificates", "RemoveListenerCertificates"], "new in before old out"
    assert listener in in_use_by(second) and listener not in in_use_by(first)

    acm = boto3.client("acm", region_name=REGION)
    assert refused(lambda: acm.delete_certificate(CertificateArn=second)) == "ResourceInUseException"
    acm.delete_certificate(CertificateArn=first)  # nothing uses it any more


def test_the_default_certificate_moved_stays_the_default_and_the_sni_list_is_kept(aws):
    ours, theirs, new = imported(), imported(), imported()
    listener = make_https_listener(REGION, ours)
    add_sni_certificate(listener, theirs)

    assert adapter().attach(listener, new, ours, None) is True
    assert listener_certificates(listener) == (new, [theirs])
    assert listener in in_use_by(new) and listener in in_use_by(theirs)
    assert listener not in in_use_by(ours), "moto's InUseBy from the listener's creation is gone with it"
    boto3.client("acm", region_name=REGION).delete_certificate(CertificateArn=ours)
    assert adapter().attach(listener, new, ours, None) is False


def test_check_and_attach_refuse_what_cannot_hold_our_certificate(aws):
    http = make_https_listener(REGION, None, protocol="HTTP", port=80)
    with pytest.raises(DeployError, match="an HTTP listener cannot use a certificate"):
        adapter().check(http, None)
    with pytest.raises(DeployError, match="no such listener"):
        adapter().check(http[:-4] + "0000", None)
    https = make_https_listener(REGION, imported())
    elsewhere = imported("us-east-1")
    with pytest.raises(DeployError, match="not an ACM certificate of region eu-west-1"):
        adapter().attach(https, elsewhere, None, None)
    assert elsewhere not in listener_certificates(https)[1]


def test_the_listener_rules_refuse_what_aws_refuses(aws):
    default, sni = imported(), imported()
    listener = make_https_listener(REGION, default)
    elb = boto3.client("elbv2", region_name=REGION)

    def add(arn):
        return elb.add_listener_certificates(ListenerArn=listener, Certificates=[{"CertificateArn": arn}])

    assert refused(lambda: add(imported("us-east-1"))) == "CertificateNotFound"
    assert refused(lambda: add(default[:-4] + "0000")) == "CertificateNotFound"
    assert refused(lambda: elb.modify_listener(ListenerArn=listener, Certificates=[
        {"CertificateArn": imported("us-east-1")}])) == "CertificateNotFound"
    assert refused(lambda: elb.remove_listener_certificates(ListenerArn=listener, Certificates=[
        {"CertificateArn": default}])) == "OperationNotPermitted"
    assert refused(lambda: elb.remove_listener_certificates(ListenerArn=listener, Certificates=[
        {"CertificateArn": sni}])) == "CertificateNotFound"
    http = make_https_listener(REGION, None, protocol="HTTP", port=80)
    assert refused(lambda: elb.add_listener_certificates(ListenerArn=http, Certificates=[
        {"CertificateArn": sni}])) == "InvalidConfigurationRequest"
    assert listener_certificates(listener) == (default, [])

    add(sni)
    add(sni)  # AWS adds a listed certificate once
    other = imported()
    elb.modify_listener(ListenerArn=listener, Certificates=[{"CertificateArn": other}])  # the SNI list stays
    assert listener_certificates(listener) == (other, [sni])
    shown = elb.describe_listeners(ListenerArns=[listener])["Listeners"][0]["Certificates"]
    assert shown == [{"CertificateArn": other}], "DescribeListeners shows the default only"


def test_certificates_added_at_the_same_time_by_two_runs_are_all_listed(aws):
    """Two certificates attach to one listener at once (as a run's workers do): AWS keeps both;
    the devstack's mending of moto's list must not lose either (it once rewrote the list from
    what it read before the call)."""
    from concurrent.futures import ThreadPoolExecutor

    theirs = imported()
    mine = [imported() for _ in range(6)]
    listener = make_https_listener(REGION, theirs)
    listeners = adapter()
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda arn: listeners.attach(listener, arn, None, None), mine))
    default, sni = listener_certificates(listener)
    assert default == theirs and sorted(sni) == sorted(mine)
