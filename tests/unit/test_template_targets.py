"""The template's permissions for the target kinds of issue 13: nothing without the parameter
that names the targets, and with it only what it names."""
from __future__ import annotations

import pytest

from devstack import template_policy as tp

LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::222222222222:role/certrenew-deploy"
PARAMETERS = {"TenantIds": "dt_2abc", "ListenerArns": LISTENER, "ApiDomainNames": "api.example.com",
              "SecretNamePrefix": "certrenew/", "ParameterPathPrefix": "/certrenew/", "DeployKmsKeyArns": KEY,
              "DeployRoleArns": ROLE}
NEW_PREFIXES = ("elasticloadbalancing:", "apigateway:", "secretsmanager:PutSecretValue", "ssm:PutParameter",
                "cloudfront:UpdateDistributionTenant", "kms:Encrypt", "kms:DescribeKey")


@pytest.fixture(scope="module")
def template() -> dict:
    return tp.load_template()


def statements(template, parameters):
    return {s.sid: s for s in tp.resolved_statements(parameters, template)}


def test_no_target_parameter_no_permission(template):
    allowed = tp.allowed_actions({})
    assert not [a for a in allowed if a.startswith(NEW_PREFIXES)]
    assert "AssumeDeployRoles" not in statements(template, {})


def test_each_permission_reaches_only_what_its_parameter_names(template):
    st = statements(template, PARAMETERS)
    assert st["CloudFrontTenantCertificate"].resources == ("arn:aws:cloudfront::*:distribution-tenant/dt_2abc",)
    assert st["ElbListenerCertificates"].resources == (LISTENER,)
    assert st["ElbDescribeListeners"].resources == ("*",)
    assert st["ApiGatewayDomainCertificate"].resources == ("arn:aws:apigateway:*::/domainnames/api.example.com",)
    (secrets,) = st["SecretsManagerPems"].resources
    assert secrets.startswith("arn:aws:secretsmanager:*:") and secrets.endswith(":secret:certrenew/*")
    assert st["SecretsManagerTagOnCreate"].conditions == {"ForAllValues:StringEquals": {"aws:TagKeys": ["certrenew:managed"]}}
    assert st["SsmPemParameters"].resources[0].endswith(":parameter/certrenew/*")
    assert st["DeployKeysThroughStores"].resources == (KEY,)
    assert "kms:ViaService" in str(st["DeployKeysThroughStores"].conditions)
    assert st["AssumeDeployRoles"].resources == (ROLE,)


@pytest.mark.parametrize("call", [
    ("elasticloadbalancing", "AddListenerCertificates"), ("elasticloadbalancing", "ModifyListener"),
    ("apigateway", "UpdateDomainName"), ("cloudfront", "UpdateDistributionTenant"),
    ("secretsmanager", "CreateSecret"), ("secretsmanager", "PutSecretValue"), ("ssm", "PutParameter"),
    ("sts", "AssumeRole"), ("kms", "DescribeKey"),
])
def test_every_call_of_the_new_adapters_is_allowed_with_its_parameter(call):
    assert tp.missing_permissions([call], PARAMETERS) == {}
