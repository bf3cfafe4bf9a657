"""The deploy targets of issue 13 in the config: the contract's example parses to the models, each
target implies the ACM copy it uses, and every bad value is reported at its path."""
from __future__ import annotations

import pytest
import yaml

from acme_flow.config import parse_config
from acme_flow.errors import ConfigError
from acme_flow.models import ApiDomain, ParameterTarget, SecretTarget

LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:listener/app/web/0123456789abcdef/0123456789abcdef"
ROLE = "arn:aws:iam::222222222222:role/certrenew-deploy"
CONTRACT = f"""
certificates:
  - name: shop
    domains: [shop.example.com]
    deploy:
      acm: {{regions: [us-east-1, eu-west-1]}}
      cloudfront: {{distributions: [E2ABCDEF123456], tenants: [dt_2abc]}}
      elb: {{listeners: ["{LISTENER}"]}}
      apigateway: {{domains: [{{name: api.example.com, region: eu-west-1}}]}}
      secretsmanager: {{secrets: [{{name: certrenew/shop, region: eu-west-1, kms_key: alias/apps}}]}}
      ssm: {{parameters: [{{prefix: /certrenew/shop/, region: eu-west-1}}]}}
      s3: {{bucket: my-certs, prefix: shop/}}
    deploy_role_arn: {ROLE}
"""


def deploy_of(deploy: dict, **cert):
    text = yaml.safe_dump({"certificates": [{"name": "site", "domains": ["example.com"], "deploy": deploy, **cert}]})
    return parse_config(text).certificates[0].deploy


def problems(deploy: dict, **cert) -> dict[str, str]:
    text = yaml.safe_dump({"certificates": [{"name": "site", "domains": ["example.com"], "deploy": deploy, **cert}]})
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return {p.path: p.message for p in info.value.problems}


def test_the_contract_example_parses_to_every_target_kind():
    deploy = parse_config(CONTRACT).certificates[0].deploy
    assert deploy.tenants == ("dt_2abc",) and deploy.listeners == (LISTENER,)
    assert deploy.api_domains == (ApiDomain("api.example.com", "eu-west-1"),)
    assert deploy.secrets == (SecretTarget("certrenew/shop", "eu-west-1", "alias/apps"),)
    assert deploy.parameters == (ParameterTarget("/certrenew/shop/", "eu-west-1", None, "Intelligent-Tiering"),)
    assert deploy.role_arn == ROLE
    assert [str(t) for t in deploy.targets()] == [
        "acm:us-east-1", "acm:eu-west-1", "cloudfront:E2ABCDEF123456", "cloudfront-tenant:dt_2abc", f"elb:{LISTENER}",
        "apigateway:eu-west-1/api.example.com", "secretsmanager:eu-west-1/certrenew/shop",
        "ssm:eu-west-1:/certrenew/shop/", "s3://my-certs/shop/"]


def test_each_attached_target_implies_the_acm_copy_it_uses():
    assert deploy_of({"cloudfront": {"tenants": ["dt_1"]}}).acm_copies == ("us-east-1",)
    assert deploy_of({"elb": {"listeners": [LISTENER]}}).acm_copies == ("eu-west-1",)
    edge = deploy_of({"apigateway": {"domains": [{"name": "api.example.com", "region": "eu-west-1", "endpoint": "edge"}]}})
    assert edge.api_domains[0].edge and edge.acm_copies == ("us-east-1",)
    regional = deploy_of({"apigateway": {"domains": [{"name": "API.example.com", "region": "ap-south-1"}]}})
    assert regional.acm_copies == ("ap-south-1",) and regional.api_domains[0].name == "api.example.com"
    stores = deploy_of({"secretsmanager": {"secrets": [{"name": "s", "region": "eu-west-1"}]},
                        "ssm": {"parameters": [{"prefix": "/p/", "region": "eu-west-1"}]}})
    assert stores.acm_copies == (), "a secret store holds the PEMs: no ACM copy"


@pytest.mark.parametrize("deploy, path, fragment", [
    ({"cloudfront": {"tenants": ["E2ABCDEF123456"]}}, "certificates[0].deploy.cloudfront.tenants[0]", "tenant id"),
    ({"cloudfront": {}}, "certificates[0].deploy.cloudfront", "distributions"),
    ({"elb": {"listeners": ["arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/x/1"]}},
     "certificates[0].deploy.elb.listeners[0]", "listener ARN"),
    ({"elb": {}}, "certificates[0].deploy.elb.listeners", "required"),
    ({"apigateway": {"domains": [{"region": "eu-west-1"}]}}, "certificates[0].deploy.apigateway.domains[0].name",
     "custom domain name"),
    ({"apigateway": {"domains": [{"name": "api.example.com"}]}},
     "certificates[0].deploy.apigateway.domains[0].region", "required"),
    ({"apigateway": {"domains": [{"name": "api.example.com", "region": "eu-west-1", "endpoint": "private"}]}},
     "certificates[0].deploy.apigateway.domains[0].endpoint", "regional or edge"),
    ({"apigateway": {"domains": [{"name": "-bad-.example.com", "region": "eu-west-1"}]}},
     "certificates[0].deploy.apigateway.domains[0].name", ""),
    ({"secretsmanager": {"secrets": [{"name": "has space", "region": "eu-west-1"}]}},
     "certificates[0].deploy.secretsmanager.secrets[0].name", "secret name"),
    ({"secretsmanager": {"secrets": [{"name": "s", "region": "eu-west-1", "kms_key": "my-key"}]}},
     "certificates[0].deploy.secretsmanager.secrets[0].kms_key", "KMS key"),
    ({"ssm": {"parameters": [{"prefix": "/no/trailing", "region": "eu-west-1"}]}},
     "certificates[0].deploy.ssm.parameters[0].prefix", "ends with '/'"),
    ({"ssm": {"parameters": [{"prefix": "/aws/x/", "region": "eu-west-1"}]}},
     "certificates[0].deploy.ssm.parameters[0].prefix", "reserves"),
    ({"ssm": {"parameters": [{"prefix": "/p/", "region": "eu-west-1", "tier": "standard"}]}},
     "certificates[0].deploy.ssm.parameters[0].tier", "Intelligent-Tiering, Standard, Advanced"),
    ({"secretsmanager": {"secrets": [{"name": "s", "region": "eu-west-1"}, {"name": "s", "region": "eu-west-1"}]}},
     "certificates[0].deploy.secretsmanager.secrets[1]", "duplicate"),
])
def test_a_bad_target_is_reported_at_its_path(deploy, path, fragment):
    found = problems(deploy)
    assert path in found and fragment in found[path], found


def test_a_bad_deploy_role_is_named():
    found = problems({}, deploy_role_arn="arn:aws:iam::222222222222:user/someone")
    assert "IAM role ARN" in found["certificates[0].deploy_role_arn"]


def test_ec_p384_is_refused_for_tenants_and_edge_domains_as_for_cloudfront():
    edge = {"apigateway": {"domains": [{"name": "api.example.com", "region": "eu-west-1", "endpoint": "edge"}]}}
    for deploy in ({"cloudfront": {"tenants": ["dt_1"]}}, edge):
        assert "cannot be used with CloudFront" in problems(deploy, key="ec-p384")["certificates[0].key"]
    assert deploy_of({"elb": {"listeners": [LISTENER]}}, key="ec-p384").listeners == (LISTENER,), "ALB takes P-384"


def test_a_section_may_live_in_another_account_with_its_own_role():
    other = "arn:aws:iam::333333333333:role/certrenew-deploy"
    deploy = deploy_of({"acm": {"regions": ["eu-west-1"]}, "cloudfront": {"distributions": ["E2ABCDEF123456"]},
                        "elb": {"listeners": [LISTENER], "role_arn": other},
                        "secretsmanager": {"secrets": [{"name": "s", "region": "eu-west-1"}], "role_arn": ROLE}},
                       deploy_role_arn=ROLE)
    assert deploy.section_roles == (("elb", other),), "a section's role equal to the certificate's is no override"
    assert deploy.role_for("elb") == other and deploy.role_for("cloudfront") == ROLE
    assert deploy.acm_copies == ("eu-west-1", "us-east-1", "eu-west-1@333333333333")
    assert deploy.copy_location("eu-west-1@333333333333") == ("eu-west-1", other)
    assert deploy.copy_location("us-east-1") == ("us-east-1", ROLE)
    assert deploy.copy_location("eu-west-1@444444444444") is None
    found = problems({"elb": {"listeners": [LISTENER], "role_arn": "nope"}})
    assert "IAM role ARN" in found["certificates[0].deploy.elb.role_arn"]
