"""The devstack's strict IAM evaluator (devstack/strict/iam.py) on its own: wildcards, condition
operators, Route53's normalized names, explicit Deny, the deployment's parameters."""
from __future__ import annotations

from email.message import Message
from types import SimpleNamespace

import pytest

from devstack.strict import iam
from devstack.template_policy import Statement

ROUTE53_CONDITION = {
    "ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]},
    "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
                                  "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"]},
}


def context(**values):
    return lambda key: values.get(key.replace(":", "_").replace("/", "_"))


def holds(block, **values) -> bool:
    return iam.Condition(block, context(**values)).holds()


@pytest.mark.parametrize("pattern, value, expected", [
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b/certificates/x/current.json", True),
    ("arn:aws:s3:::b/*", "arn:aws:s3:::bb/k", False),
    ("arn:aws:acm:*:123456789012:certificate/*", "arn:aws:acm:eu-west-1:123456789012:certificate/abc", True),
    ("arn:aws:acm:*:123456789012:certificate/*", "arn:aws:acm:eu-west-1:210987654321:certificate/abc", False),
    ("arn:aws:s3:::b?", "arn:aws:s3:::bx", True),
    ("arn:aws:s3:::[b]", "arn:aws:s3:::b", False),  # brackets are literal in IAM
])
def test_resource_wildcards_are_iams(pattern, value, expected):
    assert iam._glob(pattern, value) is expected


def test_route53_conditions_take_only_acme_challenge_txt_upserts_and_deletes():
    names = "route53_ChangeResourceRecordSetsNormalizedRecordNames"
    ok = {names: ["_acme-challenge.example.test", "_acme-challenge.\\052.example.test"],
          "route53_ChangeResourceRecordSetsRecordTypes": ["TXT"],
          "route53_ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"]}
    assert holds(ROUTE53_CONDITION, **ok)
    assert not holds(ROUTE53_CONDITION, **{**ok, names: ["_acme-challenge.example.test", "www.example.test"]})
    assert not holds(ROUTE53_CONDITION, **{**ok, "route53_ChangeResourceRecordSetsRecordTypes": ["TXT", "A"]})
    assert not holds(ROUTE53_CONDITION, **{**ok, "route53_ChangeResourceRecordSetsActions": ["CREATE"]})


def test_for_all_values_holds_for_no_values_and_single_valued_operators_need_the_key():
    assert holds({"ForAllValues:StringEquals": {"aws:TagKeys": ["certrenew:managed"]}})
    assert not holds({"ForAnyValue:StringEquals": {"aws:TagKeys": ["certrenew:managed"]}})
    tag = {"StringEquals": {"aws:ResourceTag/certrenew:managed": "true"}}
    assert not holds(tag)
    assert holds(tag, aws_ResourceTag_certrenew_managed=["true"])
    assert not holds(tag, aws_ResourceTag_certrenew_managed=["false"])
    assert holds({"StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})


def test_unknown_condition_operators_are_named_not_ignored():
    with pytest.raises(ValueError, match="NumericLessThan"):
        holds({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, aws_MultiFactorAuthAge=["10"])


def test_normalized_record_names_are_lowercase_without_the_dot_and_with_the_octal_star():
    assert iam.normalized_record_name("_acme-challenge.*.Example.TEST.") == "_acme-challenge.\\052.example.test"


def test_an_explicit_deny_wins_over_an_allow():
    allow = Statement("a", "Allow", ("s3:*",), ("*",))
    deny = Statement("d", "Deny", ("s3:PutObject",), ("arn:aws:s3:::b/secret*",))
    assert iam.decide([allow, deny], "s3:PutObject", "arn:aws:s3:::b/k", None, context())
    assert not iam.decide([allow, deny], "s3:PutObject", "arn:aws:s3:::b/secret.pem", None, context())
    assert not iam.decide([deny], "s3:GetObject", "arn:aws:s3:::b/k", None, context())


def test_the_deployment_picks_the_statements():
    def sids(deploy):
        return {s.sid for s in iam.statements_for({**iam.DEFAULT_DEPLOYMENT, **deploy})}

    assert {"ExportObjects", "CloudFrontViewerCertificate", "AssumeCrossAccountDnsRoles"} <= sids({"ExportBucket": "e"})
    without = sids({"DistributionIds": "", "DnsRoleArns": ""})
    assert not {"ExportObjects", "CloudFrontViewerCertificate", "AssumeCrossAccountDnsRoles", "ConfigObject"} & without
    zones = next(s for s in iam.statements_for({"HostedZoneIds": ["auto", "Z1"]}) if s.sid == "Route53ReadZones")
    assert zones.resources == ("arn:aws:route53:::hostedzone/{{auto:HostedZoneIds}}", "arn:aws:route53:::hostedzone/Z1")


def test_a_deployment_with_an_unknown_key_is_refused():
    with pytest.raises(ValueError, match="StateBuckett"):
        iam.check_deployment({"StateBuckett": "b"})
    with pytest.raises(ValueError, match="HostedZoneIds"):
        iam.check_deployment({"HostedZoneIds": [1]})


def _delete(**headers) -> SimpleNamespace:
    message = Message()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return SimpleNamespace(operation="DeleteObject", path="/b/locks/site.json", headers=message)


def test_a_conditional_delete_on_an_etag_also_needs_get_object():
    """As AWS documents for conditional deletes: If-Match with an ETag needs s3:GetObject too."""
    key = "arn:aws:s3:::b/locks/site.json"
    assert iam._s3_requirements(_delete(), ("s3:DeleteObject",)) == [("s3:DeleteObject", key)]
    assert iam._s3_requirements(_delete(If_Match="*"), ("s3:DeleteObject",)) == [("s3:DeleteObject", key)]
    assert iam._s3_requirements(_delete(If_Match='"3858f62230ac3c915f300c664312c63f"'), ("s3:DeleteObject",)) \
        == [("s3:DeleteObject", key), ("s3:GetObject", key)]
