"""ELBv2 listener certificates as AWS keeps them, and ACM's `InUseBy` as listeners fill it.

moto 5.2.5 keeps one list per listener (its first entry the default certificate) and is lenient:
- AddListenerCertificates takes any ARN (another region's, one that does not exist), adds an ARN
  already listed a second time, and takes certificates on an HTTP listener;
- ModifyListener with Certificates replaces the whole list (the SNI entries are lost);
- RemoveListenerCertificates removes the default certificate (the listener is left without one)
  and says nothing of an ARN that is not listed;
- DescribeListeners shows every certificate of the list, where AWS shows the default only;
- ACM's InUseBy names a listener only for the certificate it was created with, for ever.
AWS: a certificate on a listener is an ACM certificate of the listener's region and account (or
an IAM server certificate), else CertificateNotFound; only HTTPS and TLS listeners hold
certificates; the default certificate is changed by ModifyListener, which leaves the SNI list
alone, and cannot be removed (OperationNotPermitted); adding a listed ARN changes nothing.

The checks answer before moto sees the call; the list moto keeps is brought to what AWS would
hold after it (through moto directly), so DescribeListenerCertificates answers as AWS does.
"""

from __future__ import annotations

import dataclasses
import re

from devstack import aws_ops
from devstack.strict import RULE_FACTORIES, AwsError, Call
from devstack.strict.cloudfront import INUSE_SOURCES

SERVICE = "elasticloadbalancing"
SECURE = ("HTTPS", "TLS")
_ACM_ARN = re.compile(r"^arn:aws[a-z-]*:acm:([a-z0-9-]+):(\d{12}):certificate/[\w-]+$")
_IAM_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:server-certificate/")
_CERTIFICATES = re.compile(rb"(<Certificates>\s*<member>.*?</member>)(.*?)(\s*</Certificates>)", re.DOTALL)


def _elb(call: Call):
    """elbv2 straight to moto, in the caller's account (moto knows it by the access key)."""
    return call.moto("elbv2", call.region, access_key=aws_ops.access_key_id(call.headers))


def _certificate_arns(params: dict[str, str]) -> list[str]:
    found, n = [], 1
    while f"Certificates.member.{n}.CertificateArn" in params:
        found.append(params[f"Certificates.member.{n}.CertificateArn"])
        n += 1
    return found


def _not_found(arn: str) -> AwsError:
    return AwsError("CertificateNotFound", f"Certificate '{arn}' not found", 400)


def check_usable(call: Call, arn: str) -> None:
    """An IAM server certificate, or an ACM certificate of the call's region and account that exists."""
    if _IAM_ARN.match(arn):
        return
    match = _ACM_ARN.match(arn)
    if not match or match.group(1) != call.region:
        raise _not_found(arn)
    try:
        call.moto("acm", call.region, access_key=aws_ops.access_key_id(call.headers)).describe_certificate(
            CertificateArn=arn)
    except Exception:  # noqa: BLE001 - unknown in this account and region
        raise _not_found(arn) from None


class ListenerCertificatesRule:
    """Add/Modify/RemoveListenerCertificates as AWS answers them; moto's list kept as AWS's."""

    OPERATIONS = ("AddListenerCertificates", "RemoveListenerCertificates", "ModifyListener")

    def before(self, call: Call) -> None:
        if call.service != SERVICE or call.operation not in self.OPERATIONS:
            return
        params = call.form()
        arns = _certificate_arns(params)
        if call.operation == "ModifyListener" and not arns:
            return
        listener_arn = params.get("ListenerArn", "")
        try:
            elb = _elb(call)
            listener = elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
            current = [c["CertificateArn"] for c in
                       elb.describe_listener_certificates(ListenerArn=listener_arn)["Certificates"]]
        except Exception:  # noqa: BLE001 - no such listener: moto answers ListenerNotFound itself
            return
        protocol = params.get("Protocol") or listener.get("Protocol")
        if protocol not in SECURE:
            raise AwsError("InvalidConfigurationRequest",
                           f"Certificates cannot be used on a listener with protocol '{protocol}'.", 400)
        if call.operation == "RemoveListenerCertificates":
            self._check_remove(current, arns)
        else:
            for arn in arns:
                check_usable(call, arn)
        if listener.get("Protocol") == "HTTPS":  # moto leaves a TLS listener's certificates alone
            call.scratch["elb_before"] = (listener_arn, current)

    @staticmethod
    def _check_remove(current: list[str], arns: list[str]) -> None:
        for arn in arns:
            if current and arn == current[0] and arn not in current[1:]:
                raise AwsError("OperationNotPermitted", "Default certificate cannot be removed", 400)
            if arn not in current[1:]:
                raise _not_found(arn)

    def after(self, call: Call, resp):
        if call.service != SERVICE:
            return resp
        if call.operation == "DescribeListeners" and resp.status == 200:
            body = _CERTIFICATES.sub(lambda m: m.group(1) + m.group(3), resp.body)
            return dataclasses.replace(resp, body=body)
        before = call.scratch.get("elb_before")
        if before and resp.status == 200:
            self._mend(call, call.operation, *before)
        return resp

    @staticmethod
    def _mend(call: Call, operation: str, listener_arn: str, before: list[str]) -> None:
        """Undo what moto got wrong, from moto's list as it is now (not from `before` alone:
        another call may have changed the list meanwhile, as AWS would let it): ModifyListener
        dropped the SNI entries (added back), AddListenerCertificates listed one twice (kept once)."""
        elb = _elb(call)
        now = [c["CertificateArn"] for c in elb.describe_listener_certificates(ListenerArn=listener_arn)["Certificates"]]
        if operation == "ModifyListener":
            lost = [a for a in before[1:] if a not in now]
            if lost:
                elb.add_listener_certificates(ListenerArn=listener_arn, Certificates=[{"CertificateArn": a} for a in lost])
            return
        unique = list(dict.fromkeys(now))
        if operation == "AddListenerCertificates" and unique != now:
            elb.modify_listener(ListenerArn=listener_arn, Certificates=[{"CertificateArn": unique[0]}])
            if unique[1:]:
                elb.add_listener_certificates(ListenerArn=listener_arn,
                                              Certificates=[{"CertificateArn": a} for a in unique[1:]])


def listeners_using(call: Call, cert_arn: str) -> list[str]:
    """The listeners (of the certificate's region and account) whose default or SNI list holds it."""
    match = _ACM_ARN.match(cert_arn)
    if not match:
        return []
    elb = call.moto("elbv2", match.group(1), account=match.group(2))
    found = []
    for page in elb.get_paginator("describe_load_balancers").paginate():
        for lb in page.get("LoadBalancers") or []:
            for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"]).get("Listeners") or []:
                if listener.get("Protocol") not in SECURE:
                    continue
                listed = elb.describe_listener_certificates(ListenerArn=listener["ListenerArn"])["Certificates"]
                if any(c["CertificateArn"] == cert_arn for c in listed):
                    found.append(listener["ListenerArn"])
    return found


INUSE_SOURCES.append(listeners_using)
RULE_FACTORIES.append(ListenerCertificatesRule)
