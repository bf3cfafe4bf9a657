"""The use case with the target kinds of issue 13 (over fakes): a first issue reaches every kind
through the ACM copy it needs, a renewal re-imports into the same ARNs and writes nothing to the
attached kinds, a key type change moves every one to the new ARN and retires the old, and a
certificate in another account works through its deploy role, failing alone when that role
cannot be assumed."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

from acme_flow.deadline import Deadline
from acme_flow.models import ApiDomain, CertificateSpec, DeploySpec, KeyType, Outcome, ParameterTarget, SecretTarget
from acme_flow.renewal import RunOptions
from fakes import make_adapters, make_config, make_renewer
from fakes_attached import FakeDomains, FakeListeners, FakeTenants

LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef"
API = ApiDomain("api.example.com", "eu-west-1")
EDGE = ApiDomain("edge.example.com", "eu-central-1", edge=True)
ROLE = "arn:aws:iam::222222222222:role/certrenew-deploy"
SHOP = CertificateSpec("shop", ("example.com", "*.example.com"), deploy=DeploySpec(
    tenants=("dt_shop",), listeners=(LISTENER,), api_domains=(API, EDGE),
    secrets=(SecretTarget("certrenew/shop", "eu-west-1", "alias/apps"),),
    parameters=(ParameterTarget("/certrenew/shop/", "eu-west-1"),)))


def adapters_for_shop(**kw):
    parts = dict(tenants=FakeTenants(("dt_shop",)), listeners=FakeListeners((LISTENER,)),
                 api_domains=FakeDomains((API, EDGE)))
    return make_adapters(**{**parts, **kw})


def run(adapters, *specs, force=False):
    renewer = make_renewer(make_config(*specs), adapters)
    return renewer.apply(renewer.plan(RunOptions(force=force)), Deadline(adapters.clock, 600))


def copy(adapters, name, region):
    return adapters.state.current(name).deployment.acm_arn(region)


def test_a_first_issue_reaches_every_kind_through_the_copy_it_needs():
    adapters = adapters_for_shop()
    (result,) = run(adapters, SHOP).results
    assert result.outcome is Outcome.ISSUED, result.reason
    us, eu = copy(adapters, "shop", "us-east-1"), copy(adapters, "shop", "eu-west-1")
    assert adapters.tenants.certificate == {"dt_shop": us}
    assert adapters.listeners.sni[LISTENER] == [eu], "a first attachment is an SNI entry"
    assert adapters.api_domains.certificate == {"eu-west-1/api.example.com": eu, "eu-central-1/edge.example.com": us}
    assert adapters.secrets.values[("eu-west-1", "certrenew/shop")]["serial"] == result.serial
    assert ("eu-west-1", "/certrenew/shop/privkey.pem") in adapters.parameters.values
    assert {"cloudfront-tenant:dt_shop", f"elb:{LISTENER}", "apigateway:eu-west-1/api.example.com",
            "secretsmanager:eu-west-1/certrenew/shop", "ssm:eu-west-1:/certrenew/shop/"} <= set(result.targets)


def test_a_renewal_into_the_same_arns_writes_nothing_to_the_attached_kinds_and_new_pems_to_the_stores():
    adapters = adapters_for_shop()
    run(adapters, SHOP)
    attached = [list(k.writes) for k in (adapters.tenants, adapters.listeners, adapters.api_domains)]
    adapters.clock.advance(dt.timedelta(days=70))
    (result,) = run(adapters, SHOP).results
    assert result.outcome is Outcome.RENEWED, result.reason
    assert [k.writes for k in (adapters.tenants, adapters.listeners, adapters.api_domains)] == attached
    assert adapters.secrets.values[("eu-west-1", "certrenew/shop")]["serial"] == result.serial
    assert len(adapters.secrets.writes) == 2 and len(adapters.parameters.writes) == 2


def test_a_key_type_change_moves_every_attached_kind_to_the_new_arns_and_retires_the_old():
    adapters = adapters_for_shop()
    run(adapters, SHOP)
    old_us, old_eu = copy(adapters, "shop", "us-east-1"), copy(adapters, "shop", "eu-west-1")
    (result,) = run(adapters, replace(SHOP, key=KeyType.RSA_2048)).results
    assert result.outcome is Outcome.RENEWED, result.reason
    us, eu = copy(adapters, "shop", "us-east-1"), copy(adapters, "shop", "eu-west-1")
    assert us != old_us and eu != old_eu
    assert adapters.tenants.certificate["dt_shop"] == us
    assert adapters.listeners.sni[LISTENER] == [eu], "the old SNI entry left the list"
    assert adapters.api_domains.certificate["eu-west-1/api.example.com"] == eu
    assert set(adapters.importer.deleted) == {old_us, old_eu}


def test_a_listener_whose_default_was_ours_keeps_the_new_one_as_its_default():
    adapters = adapters_for_shop()
    run(adapters, SHOP)
    eu = copy(adapters, "shop", "eu-west-1")
    adapters.listeners.default[LISTENER], adapters.listeners.sni[LISTENER] = eu, []  # someone made ours the default
    run(adapters, replace(SHOP, key=KeyType.RSA_2048))
    new = copy(adapters, "shop", "eu-west-1")
    assert adapters.listeners.default[LISTENER] == new and adapters.listeners.sni[LISTENER] == []


def test_a_missing_target_fails_its_certificate_before_anything_is_ordered_or_written():
    adapters = adapters_for_shop(listeners=FakeListeners(()))
    other = CertificateSpec("other", ("example.org",), deploy=DeploySpec(acm_regions=("eu-west-1",)))
    report = {r.name: r for r in run(adapters, SHOP, other).results}
    assert report["shop"].outcome is Outcome.FAILED and f"elb:{LISTENER}: not found" in report["shop"].reason
    assert report["other"].outcome is Outcome.ISSUED
    assert [i[1] for i in adapters.importer.imports] == ["other"], "nothing of shop was imported"
    assert adapters.state.current("shop") is None


def test_targets_in_another_account_go_through_the_deploy_role_and_acm_copies_live_there():
    adapters = adapters_for_shop()
    spec = replace(SHOP, deploy=replace(SHOP.deploy, role_arn=ROLE))
    (result,) = run(adapters, spec).results
    assert result.outcome is Outcome.ISSUED, result.reason
    assert copy(adapters, "shop", "us-east-1").startswith("arn:aws:acm:us-east-1:222222222222:")
    for kind in (adapters.tenants, adapters.listeners, adapters.api_domains, adapters.secrets, adapters.parameters):
        assert set(kind.roles) == {ROLE}, kind
    assert set(adapters.importer.roles) == {ROLE}


def test_a_deploy_role_that_cannot_be_assumed_fails_its_certificate_alone_naming_the_role():
    adapters = adapters_for_shop()
    adapters.importer.refused_roles.add(ROLE)
    other = CertificateSpec("other", ("example.org",), deploy=DeploySpec(acm_regions=("eu-west-1",)))
    report = {r.name: r for r in run(adapters, replace(SHOP, deploy=replace(SHOP.deploy, role_arn=ROLE)), other).results}
    assert report["shop"].outcome is Outcome.FAILED
    assert ROLE in report["shop"].reason and "sts:AssumeRole" in report["shop"].reason
    assert report["other"].outcome is Outcome.ISSUED


def test_a_section_in_another_account_gets_its_own_acm_copy_there_and_the_rest_stays_home():
    adapters = adapters_for_shop()
    spec = replace(SHOP, deploy=replace(SHOP.deploy, section_roles=(("elb", ROLE),)))
    (result,) = run(adapters, spec).results
    assert result.outcome is Outcome.ISSUED, result.reason
    home, there = copy(adapters, "shop", "eu-west-1"), copy(adapters, "shop", "eu-west-1@222222222222")
    assert home.split(":")[4] == "123456789012" and there.split(":")[4] == "222222222222"
    assert adapters.listeners.sni[LISTENER] == [there] and set(adapters.listeners.roles) == {ROLE}
    assert adapters.api_domains.certificate["eu-west-1/api.example.com"] == home
    assert set(adapters.tenants.roles) == {None}
    run(adapters, replace(spec, key=KeyType.RSA_2048))
    assert {home, there} <= set(adapters.importer.deleted), "each old copy retired in its own account"
    assert ROLE in adapters.importer.roles
