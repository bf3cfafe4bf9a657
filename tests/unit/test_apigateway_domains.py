"""ApiGatewayDomains against a fake `apigateway` client: every branch of check and attach."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from acme_flow.adapters.apigateway import ApiGatewayDomains
from acme_flow.deploy_targets import ApiDomain
from acme_flow.errors import DeployError

ACCOUNT = "123456789012"
EU = f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/11111111-2222-3333-4444-555555555555"
EU_NEW = f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/66666666-2222-3333-4444-555555555555"
US = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/77777777-2222-3333-4444-555555555555"
US_NEW = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/88888888-2222-3333-4444-555555555555"
REGIONAL = ApiDomain("api.example.com", "eu-west-1")
EDGE = ApiDomain("edge.example.com", "eu-west-1", edge=True)


def _error(code: str, message: str = "refused", op: str = "GetDomainName") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


class FakeApiGateway:
    def __init__(self, domains: dict[str, dict], get_error: str | None = None, update_error: str | None = None):
        self.domains, self.get_error, self.update_error = domains, get_error, update_error
        self.updates: list[tuple[str, list]] = []

    def get_domain_name(self, domainName):
        if self.get_error:
            raise _error(self.get_error)
        if domainName not in self.domains:
            raise _error("NotFoundException", "Invalid domain name identifier specified")
        return dict(self.domains[domainName])

    def update_domain_name(self, domainName, patchOperations):
        if self.update_error:
            raise _error(self.update_error, op="UpdateDomainName")
        self.updates.append((domainName, patchOperations))
        return {}


def _regional(arn=EU, **extra) -> dict:
    return {"domainName": REGIONAL.name, "endpointConfiguration": {"types": ["REGIONAL"]},
            "regionalCertificateArn": arn, "securityPolicy": "TLS_1_2", **extra}


def _edge(arn=US) -> dict:
    return {"domainName": EDGE.name, "endpointConfiguration": {"types": ["EDGE"]}, "certificateArn": arn}


def _adapter(fake, asked=None):
    def client_for(region, role):
        if asked is not None:
            asked.append((region, role))
        return fake
    return ApiGatewayDomains(client_for)


def test_attach_replaces_only_the_regional_certificate():
    fake, asked = FakeApiGateway({REGIONAL.name: _regional()}), []
    assert _adapter(fake, asked).attach(REGIONAL, EU_NEW, None) is True
    assert fake.updates == [(REGIONAL.name, [{"op": "replace", "path": "/regionalCertificateArn", "value": EU_NEW}])]
    assert asked == [("eu-west-1", None)]


def test_attach_replaces_the_edge_certificate_in_us_east_1():
    fake = FakeApiGateway({EDGE.name: _edge()})
    assert _adapter(fake).attach(EDGE, US_NEW, None) is True
    assert fake.updates == [(EDGE.name, [{"op": "replace", "path": "/certificateArn", "value": US_NEW}])]


def test_attach_of_the_same_arn_writes_nothing():
    fake = FakeApiGateway({REGIONAL.name: _regional(EU_NEW)})
    assert _adapter(fake).attach(REGIONAL, EU_NEW, None) is False
    assert fake.updates == []


def test_a_domain_without_endpoint_configuration_is_edge_as_aws_defaults():
    fake = FakeApiGateway({EDGE.name: {"domainName": EDGE.name, "certificateArn": US}})
    assert _adapter(fake).attach(EDGE, US_NEW, None) is True
    with pytest.raises(DeployError, match="is an EDGE domain"):
        _adapter(FakeApiGateway({REGIONAL.name: {"domainName": REGIONAL.name}})).check(REGIONAL, None)


@pytest.mark.parametrize("arn, why", [
    (US, "is in us-east-1: a REGIONAL domain uses an ACM certificate in eu-west-1"),
    ("arn:aws:iam::123456789012:server-certificate/x", "is not an ACM certificate ARN"),
])
def test_attach_refuses_a_certificate_of_the_wrong_region_or_service(arn, why):
    fake = FakeApiGateway({REGIONAL.name: _regional()})
    with pytest.raises(DeployError, match=why) as err:
        _adapter(fake).attach(REGIONAL, arn, None)
    assert err.value.target == "apigateway:eu-west-1/api.example.com"
    assert fake.updates == []


def test_an_edge_domain_needs_a_us_east_1_certificate():
    with pytest.raises(DeployError, match="is in eu-west-1: an EDGE domain uses an ACM certificate in us-east-1"):
        _adapter(FakeApiGateway({EDGE.name: _edge()})).attach(EDGE, EU, None)


def test_a_certificate_of_another_account_than_the_roles_is_refused():
    role = "arn:aws:iam::222222222222:role/certrenew-deploy"
    fake = FakeApiGateway({REGIONAL.name: _regional()})
    with pytest.raises(DeployError, match="belongs to account 123456789012, the domain to 222222222222"):
        _adapter(fake).attach(REGIONAL, EU_NEW, role)
    same = f"arn:aws:iam::{ACCOUNT}:role/certrenew-deploy"
    asked = []
    assert _adapter(fake, asked).attach(REGIONAL, EU_NEW, same) is True
    assert asked == [("eu-west-1", same)]


def test_check_passes_for_the_configured_type():
    _adapter(FakeApiGateway({REGIONAL.name: _regional()})).check(REGIONAL, None)
    _adapter(FakeApiGateway({EDGE.name: _edge()})).check(EDGE, None)


def test_check_names_the_setting_for_an_endpoint_type_mismatch():
    edge_as_regional = ApiDomain(EDGE.name, EDGE.region)
    with pytest.raises(DeployError, match="is an EDGE domain: set `endpoint: edge` in its deploy.apigateway entry"):
        _adapter(FakeApiGateway({EDGE.name: _edge()})).check(edge_as_regional, None)
    regional_as_edge = ApiDomain(REGIONAL.name, REGIONAL.region, edge=True)
    with pytest.raises(DeployError, match="is a REGIONAL domain: remove `endpoint: edge`"):
        _adapter(FakeApiGateway({REGIONAL.name: _regional()})).check(regional_as_edge, None)


def test_a_mismatch_stops_attach_before_any_write():
    fake = FakeApiGateway({REGIONAL.name: _regional()})
    with pytest.raises(DeployError, match="REGIONAL domain"):
        _adapter(fake).attach(ApiDomain(REGIONAL.name, REGIONAL.region, edge=True), US_NEW, None)
    assert fake.updates == []


def test_a_private_domain_is_not_supported():
    fake = FakeApiGateway({REGIONAL.name: _regional(endpointConfiguration={"types": ["PRIVATE"]})})
    with pytest.raises(DeployError, match="is a PRIVATE custom domain name: certrenew attaches certificates to "
                                          "EDGE and REGIONAL domains only"):
        _adapter(fake).check(REGIONAL, None)


def test_an_unknown_domain_says_so():
    with pytest.raises(DeployError, match="no custom domain name api.example.com in eu-west-1 \\(NotFoundException\\)"):
        _adapter(FakeApiGateway({})).check(REGIONAL, None)


@pytest.mark.parametrize("code", ["AccessDeniedException", "UnauthorizedException"])
def test_a_refused_read_names_the_permission(code):
    with pytest.raises(DeployError, match=f"{code}: refused.*apigateway:GET on "
                                          "arn:aws:apigateway:eu-west-1::/domainnames/api.example.com"):
        _adapter(FakeApiGateway({}, get_error=code)).check(REGIONAL, None)


def test_another_read_error_carries_its_code():
    with pytest.raises(DeployError, match=r"cannot read the custom domain name \(TooManyRequestsException"):
        _adapter(FakeApiGateway({}, get_error="TooManyRequestsException")).check(REGIONAL, None)


@pytest.mark.parametrize("code, why", [
    ("AccessDeniedException", "apigateway:PATCH on arn:aws:apigateway:eu-west-1::/domainnames/api.example.com"),
    ("ConflictException", "is being changed .*a later run tries again"),
    ("NotFoundException", "went away during the deploy"),
    ("BadRequestException", r"API Gateway refused the certificate \(BadRequestException: refused\)"),
])
def test_a_refused_update_is_translated(code, why):
    fake = FakeApiGateway({REGIONAL.name: _regional()}, update_error=code)
    with pytest.raises(DeployError, match=why):
        _adapter(fake).attach(REGIONAL, EU_NEW, None)
