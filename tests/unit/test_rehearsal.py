"""`certrenew rehearse` over the in-memory fakes: the staging directory chosen for the configured
CA, issuance end to end through the same Issuer/Ordering, and nothing kept: no pointer, version,
lease, deploy or notification; the report says per certificate what would have failed."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from acme_flow.cli import _parser
from acme_flow.bootstrap import read_rehearsal_roots as read_roots
from acme_flow.cli_rehearse import render
from acme_flow.config import parse_config
from acme_flow.config.schema import LETSENCRYPT, LETSENCRYPT_STAGING
from acme_flow.deadline import Deadline
from acme_flow.errors import AcmeTransientProblem, ConfigError, EventError, InputError, SettingsError
from acme_flow.models import AcmeSettings, CertificateSpec, DeploySpec, S3Export
from acme_flow.rehearsal import Rehearsal, failure_stage, staged, staging_directory
from certfactory import MiniCA
from fakes import DIST, FakeCa, FakeClock, FakeDns, make_adapters, make_config
from handler.events import Request, parse_event

STAGING = "https://staging.ca.test/dir"
SITE = CertificateSpec("site", ("example.com", "*.example.com"),
                       deploy=DeploySpec(acm_regions=("eu-west-1",), cloudfront=(DIST,), s3=S3Export("exports", "site/")))
OTHER = CertificateSpec("other", ("example.org",), deploy=DeploySpec(acm_regions=("eu-west-1",)))
NOWHERE = CertificateSpec("nowhere", ("shop.example.net",))


def rehearsal_of(*specs, roots=(), mini=None):
    """The rehearsal of a config whose CA is a production CA with `acme.rehearsal_directory`,
    over fakes whose CA is the staging one (as bootstrap builds it from the staged config)."""
    config = make_config(*specs)
    config = staged(replace(config, acme=AcmeSettings(config.acme.directory, rehearsal_directory=STAGING)))
    clock = FakeClock()
    dns = FakeDns()
    adapters = make_adapters(clock=clock, dns=dns, ca=FakeCa(mini, clock, dns, directory=STAGING))
    return Rehearsal.from_adapters(config, adapters, roots=roots, workers=4), adapters


def rehearse(*specs, only=(), **kw):
    rehearsal, adapters = rehearsal_of(*specs, **kw)
    return rehearsal.run(only, Deadline(adapters.clock, 600)), adapters


def by_name(report):
    return {r.name: r for r in report.results}


# ---- the staging directory ---------------------------------------------------------------------


def test_lets_encrypt_rehearses_on_its_staging_directory():
    assert staging_directory(AcmeSettings(LETSENCRYPT)) == LETSENCRYPT_STAGING
    assert staging_directory(AcmeSettings(LETSENCRYPT_STAGING)) == LETSENCRYPT_STAGING


def test_the_rehearsal_directory_setting_wins():
    assert staging_directory(AcmeSettings(LETSENCRYPT, rehearsal_directory=STAGING)) == STAGING


def test_another_ca_without_a_rehearsal_directory_is_an_error_naming_the_setting():
    with pytest.raises(InputError) as err:
        staging_directory(AcmeSettings("https://acme.zerossl.com/v2/DV90"))
    assert "acme.rehearsal_directory" in str(err.value) and "zerossl" in str(err.value)
    assert err.value.exit_code == 2


def test_the_staged_config_has_only_the_staging_ca_and_no_eab():
    from acme_flow.models import Eab
    config = make_config(SITE)
    config = type(config)(AcmeSettings(LETSENCRYPT, "ops@example.com", Eab("kid", "ssm:/x"),
                                       fallback=(AcmeSettings("https://other.test/dir"),)), config.certificates)
    acme = staged(config).acme
    assert (acme.directory, acme.email, acme.eab, acme.fallback) == (LETSENCRYPT_STAGING, "ops@example.com", None, ())


def config_text(rehearsal: str) -> bytes:
    return (f"acme:\n  directory: https://ca.example/dir\n  rehearsal_directory: {rehearsal}\n"
            "certificates:\n  - name: site\n    domains: [example.com]\n").encode()


def test_the_config_accepts_an_https_rehearsal_directory():
    assert parse_config(config_text("https://staging.ca.example/dir"), "c.yaml").acme.rehearsal_directory == \
        "https://staging.ca.example/dir"


@pytest.mark.parametrize("value, said", [
    ("http://staging.ca.example/dir", "https"),
    ("letsencrypt-staging", "https:// URL"),
    ("'42'", "https:// URL"),
    ("https://ca.example/dir", "production"),
    (LETSENCRYPT, "production"),
])
def test_a_bad_rehearsal_directory_is_a_config_error_naming_it(value, said):
    with pytest.raises(ConfigError) as err:
        parse_config(config_text(value), "c.yaml")
    assert "acme.rehearsal_directory" in str(err.value) and said in str(err.value)


# ---- a rehearsal keeps nothing -----------------------------------------------------------------


def test_a_good_certificate_rehearses_and_nothing_is_kept_deployed_or_notified():
    report, adapters = rehearse(SITE)
    (result,) = report.results
    assert report.ok and report.exit_code == 0 and result.ok, result
    assert report.directory == STAGING and result.serial and result.root == "Test Root X1"
    assert result.challenge == "dns-01"
    state = adapters.state
    assert state.pointers == {} and state.versions == {} and state.acquired == [] and state.challenges == {}
    assert set(state.accounts) == {STAGING}  # its own staging account, kept for the next rehearsal
    assert adapters.dns.presented and adapters.dns.removed and adapters.dns.published == set()
    touched = [e for fake in (adapters.state, adapters.importer, adapters.cloudfront, adapters.exporter)
               for e in fake.journal.events()]
    assert touched and not [e for e in touched if e.startswith(("acm.", "cloudfront.", "s3.", "state.", "lease."))]
    assert adapters.notifier.reports == []
    assert adapters.ca.ordered and adapters.ca.ordered[0].get("replaces") is None


def test_a_rehearsal_neither_takes_nor_waits_for_a_lease():
    rehearsal, adapters = rehearsal_of(SITE)
    adapters.state.hold("site")  # a real run is renewing it now
    report = rehearsal.run((), Deadline(adapters.clock, 600))
    assert report.ok and adapters.state.holder("site") == "another-run"


def test_a_certificate_in_no_hosted_zone_fails_with_the_reason_and_the_others_rehearse():
    report, adapters = rehearse(SITE, NOWHERE, OTHER)
    results = by_name(report)
    assert not report.ok and report.exit_code == 1
    assert results["nowhere"].stage == "zone not found"
    assert "no Route53 hosted zone found for _acme-challenge.shop.example.net" in results["nowhere"].reason
    assert results["site"].ok and results["other"].ok
    assert [r.name for r in report.results] == ["site", "nowhere", "other"]  # the config's order
    assert not any(d == ("shop.example.net",) for d in (o["domains"] for o in adapters.ca.ordered))


def test_a_failed_validation_says_validation_and_cleans_up():
    rehearsal, adapters = rehearsal_of(SITE, OTHER)
    adapters.ca.fail_validation["example.org"] = "incorrect TXT record"
    report = rehearsal.run((), Deadline(adapters.clock, 600))
    results = by_name(report)
    assert results["other"].stage == "validation" and "incorrect TXT record" in results["other"].reason
    assert results["site"].ok and adapters.dns.published == set() and adapters.state.challenges == {}


def test_a_missing_deploy_target_fails_before_ordering():
    spec = CertificateSpec("site", ("example.com",), deploy=DeploySpec(cloudfront=("EUNKNOWN",)))
    report, adapters = rehearse(spec)
    (result,) = report.results
    assert result.stage == "deploy target" and "EUNKNOWN" in result.reason and adapters.ca.ordered == []


def test_only_selects_and_an_unknown_name_is_bad_input():
    report, _ = rehearse(SITE, OTHER, only=("other",))
    assert [r.name for r in report.results] == ["other"]
    with pytest.raises(InputError):
        rehearse(SITE, only=("nope",))


def test_the_chain_is_checked_against_the_staging_roots_when_given():
    mini = MiniCA()
    report, _ = rehearse(SITE, mini=mini, roots=(mini.root_pem,))
    assert report.ok
    report, _ = rehearse(SITE, mini=mini, roots=(MiniCA("Other Root").root_pem,))
    (result,) = report.results
    assert result.stage == "chain" and "not signed by any of the 1 staging root" in result.reason


def test_failure_stages_name_rate_limits_and_caa():
    assert failure_stage(AcmeTransientProblem("urn:ietf:params:acme:error:rateLimited", "too many")) == "rate limit"
    from acme_flow.errors import AcmeProblem, ValidationFailed
    assert failure_stage(AcmeProblem("urn:ietf:params:acme:error:caa", "forbidden")) == "caa"
    assert failure_stage(ValidationFailed({"a.example": "CAA record forbids issuance"})) == "caa"


def test_the_report_as_json_and_as_a_table():
    report, _ = rehearse(SITE, NOWHERE)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["rehearsal"] is True and data["ok"] is False and data["directory"] == STAGING
    assert data["counts"] == {"rehearsed": 1, "failed": 1}
    assert {c["name"]: c["outcome"] for c in data["certificates"]} == {"site": "rehearsed", "nowhere": "failed"}
    assert "PRIVATE KEY" not in json.dumps(data)
    text = render(report)
    assert "zone not found" in text and "1 rehearsed, 1 failed" in text and STAGING in text


# ---- wiring: the CLI and the Lambda event --------------------------------------------------------


def test_the_cli_has_rehearse_with_only_and_json():
    args = _parser().parse_args(["rehearse", "--only", "a", "b", "--json", "--config", "c.yaml"])
    assert args.only == ["a", "b"] and args.json and args.config == "c.yaml" and callable(args.func)


def test_the_rehearse_event_action():
    assert parse_event({"action": "rehearse", "certificates": ["site"]}) == \
        Request(action="rehearse", certificates=("site",), source="manual")
    with pytest.raises(EventError) as err:
        parse_event({"action": "rehearse", "force": True})
    assert "force" in str(err.value)
    with pytest.raises(EventError):  # a scheduled input is never a rehearsal
        parse_event({"action": "rehearse", "schedule": "arn:aws:scheduler:x"})


def test_the_staging_roots_file(tmp_path):
    mini = MiniCA()
    path = tmp_path / "roots.pem"
    path.write_text(mini.root_pem)
    assert read_roots({"CERTRENEW_REHEARSAL_ROOTS": str(path)}) == (mini.root_pem,)
    assert read_roots({}) == ()
    path.write_text("nothing")
    with pytest.raises(SettingsError):
        read_roots({"CERTRENEW_REHEARSAL_ROOTS": str(path)})
    with pytest.raises(SettingsError):
        read_roots({"CERTRENEW_REHEARSAL_ROOTS": str(tmp_path / "missing.pem")})
