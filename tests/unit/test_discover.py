"""`certrenew discover`: judging what was found (certificate source, days left, coverable and why),
the proposed certificates and their merge into an existing config, comments kept."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from acme_flow import cli_discover, discover
from acme_flow.config import parse_config
from acme_flow.discover import (API_DOMAIN, DISTRIBUTION, LISTENER, TENANT, CertificateFacts, Found, assess,
                                certificate_name, merge_text, propose)
from acme_flow.errors import ConfigError, InputError, ZoneNotFound

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
ZONES = ("example.com", "shop.test")
DELEGATED = {"_acme-challenge.app.elsewhere.org": "_acme-challenge.app-elsewhere.shop.test",
             "_acme-challenge.lost.elsewhere.org": "_acme-challenge.lost.gone.net"}
LISTENER_ARN = "arn:aws:elasticloadbalancing:eu-west-1:111111111111:listener/app/web/0123456789abcdef/0123456789abcdef"
ACM = "arn:aws:acm:us-east-1:111111111111:certificate/"


def locate(record: str) -> str:
    """The zone lookup a run makes: names in ZONES, or delegated by CNAME into them."""
    target = DELEGATED.get(record, record)
    if not any(target == z or target.endswith("." + z) for z in ZONES):
        if target != record:
            raise ZoneNotFound(target, f"{record} -> CNAME {target}: the CNAME target is in no hosted zone")
        raise ZoneNotFound(record.removeprefix("_acme-challenge."))
    return target


def facts(arn: str, type_: str = "IMPORTED", names=("www.example.com",), days: int = 30, key="RSA_2048",
          tags=()) -> CertificateFacts:
    return CertificateFacts(arn, type_, NOW + dt.timedelta(days=days, hours=1), key, tuple(names), tuple(tags))


def dist(id_: str, aliases, cert: str | None = None) -> Found:
    return Found(DISTRIBUTION, id_, f"arn:aws:cloudfront::111111111111:distribution/{id_}", "us-east-1",
                 tuple(aliases), (cert,) if cert else (), None if cert else "cloudfront-default")


def judged(found, known=()):
    return assess(list(found), {f.arn: f for f in known}, locate, NOW)


def test_each_certificate_source_is_told_apart():
    certs = [facts(ACM + "a", "AMAZON_ISSUED"), facts(ACM + "b", tags=[("certrenew:managed", "true")]),
             facts(ACM + "c"), facts(ACM + "d", "PRIVATE"), CertificateFacts(ACM + "e", error="AccessDenied")]
    found = [dist(f"E{i}AAAAAAAAAA", ["www.example.com"], c.arn) for i, c in enumerate(certs)]
    found += [dist("EDEFAULTAAAA", ["www.example.com"]),
              Found(TENANT, "dt_1", "arn:t", "us-east-1", ("t.example.com",), (), "distribution"),
              Found(DISTRIBUTION, "EIAMAAAAAAA", "arn:i", "us-east-1", ("www.example.com",), (), "iam")]
    sources = [r.source for r in judged(found, certs)]
    assert sources == ["acm-issued", "certrenew", "imported", "acm-private", "unknown", "cloudfront-default",
                       "distribution", "iam"]


def test_covered_not_covered_and_delegated_names_with_the_reason():
    found = [dist("ECOVEREDAAAA", ["www.example.com", "*.example.com"]),
             dist("ENOZONEAAAAA", ["www.example.com", "www.nowhere.net"]),
             dist("EDELEGATEDAA", ["app.elsewhere.org"]),
             dist("ENOALIASAAAA", []),
             dist("ELOSTAAAAAAA", ["lost.elsewhere.org"])]
    covered, nozone, delegated, noalias, lost = judged(found)
    assert covered.coverable and "public hosted zone" in covered.reason
    assert not nozone.coverable and "www.nowhere.net" in nozone.reason and "www.example.com" not in nozone.reason
    assert delegated.coverable
    assert "_acme-challenge.app.elsewhere.org -> _acme-challenge.app-elsewhere.shop.test" in delegated.reason
    assert not noalias.coverable and "no aliases" in noalias.reason
    assert nozone.reason.startswith("in no public hosted zone") and nozone.reason.count("www.nowhere.net") == 1
    assert not lost.coverable and "the CNAME target is in no hosted zone" in lost.reason


def test_a_listener_takes_its_names_from_its_certificates_and_says_so():
    default, sni = facts(ACM.replace("us-east-1", "eu-west-1") + "d", names=("shop.test", "www.shop.test")), \
        facts(ACM.replace("us-east-1", "eu-west-1") + "s", names=("api.shop.test", "shop.test"))
    listener = Found(LISTENER, "app/web/0123456789abcdef/0123456789abcdef", LISTENER_ARN, "eu-west-1", (),
                     (default.arn, sni.arn))
    unknown = Found(LISTENER, "app/old/1/2", LISTENER_ARN.replace("web", "old"), "eu-west-1", (), (), "iam")
    (res, blind) = judged([listener, unknown], [default, sni])
    assert res.names == ("shop.test", "www.shop.test", "api.shop.test") and res.coverable
    assert any("no aliases of its own" in n for n in res.notes)
    out = res.to_dict()
    assert out["names_from"] == "certificates" and out["other_certificates"] == [sni.arn]
    assert out["certificate"]["arn"] == default.arn
    assert not blind.coverable and "no certificate names known" in blind.reason
    table = cli_discover.render([res, blind], list(ZONES), ["eu-west-1"])
    assert "(its certificates' names)" in table and "a listener has no aliases of its own" in table


def test_the_json_shape_has_expiry_days_left_and_key_type():
    cert = facts(ACM + "x", days=12, key="EC_prime256v1")
    (res,) = judged([dist("EAAAAAAAAAAA", ["WWW.Example.com."], cert.arn)], [cert])
    out = json.loads(json.dumps(res.to_dict()))
    assert out["kind"] == "cloudfront-distribution" and out["names"] == ["www.example.com"]
    assert out["certificate"] == {"arn": cert.arn, "source": "imported", "not_after": cert.not_after.isoformat(),
                                  "days_left": 12, "key_type": "ec-p256"}
    assert out["coverable"] is True and out["reason"]


def test_certificate_names_are_valid_and_never_reused():
    assert certificate_name("www.example.com", set()) == "www-example-com"
    assert certificate_name("*.example.com", set()) == "wildcard-example-com"
    assert certificate_name("www.example.com", {"www-example-com", "www-example-com-2"}) == "www-example-com-3"
    long = certificate_name("a" * 60 + ".example.com", {"a" * 60 + "-ex"})
    assert len(long) <= 63 and long.endswith("-2") and parse_config(yaml.safe_dump(
        {"certificates": [{"name": long, "domains": ["x.example.com"]}]}))


def sample():
    cert = facts(ACM + "acm", "AMAZON_ISSUED", names=("api.example.com",))
    found = [dist("ECOVEREDAAAA", ["www.example.com", "example.com"]),
             dist("ENOZONEAAAAA", ["www.nowhere.net"]),
             Found(TENANT, "dt_abc123", "arn:t", "us-east-1", ("t.shop.test",), (), "distribution", parent="EMT"),
             Found(LISTENER, "app/web/0123456789abcdef/0123456789abcdef", LISTENER_ARN, "eu-west-1", (), (cert.arn,)),
             Found(API_DOMAIN, "api.example.com", "arn:a", "us-east-1", ("api.example.com",), (cert.arn,), edge=True),
             Found(API_DOMAIN, "www.example.com", "arn:b", "eu-west-1", ("www.example.com",), ())]
    return judged(found, [cert])


def test_the_proposal_covers_what_it_can_and_explains_the_rest():
    proposal = propose(sample())
    assert [c["name"] for c in proposal.certificates] == [
        "www-example-com", "t-shop-test", "api-example-com", "api-example-com-2", "www-example-com-2"]
    by_name = {c["name"]: c for c in proposal.certificates}
    assert by_name["www-example-com"] == {"name": "www-example-com", "domains": ["www.example.com", "example.com"],
                                          "deploy": {"cloudfront": {"distributions": ["ECOVEREDAAAA"]}}}
    assert by_name["t-shop-test"]["deploy"] == {"cloudfront": {"tenants": ["dt_abc123"]}}
    assert by_name["api-example-com"]["deploy"] == {"elb": {"listeners": [LISTENER_ARN]}}
    assert by_name["api-example-com-2"]["deploy"] == {"apigateway": {"domains": [
        {"name": "api.example.com", "region": "us-east-1", "endpoint": "edge"}]}}
    assert by_name["www-example-com-2"]["deploy"] == {"apigateway": {"domains": [
        {"name": "www.example.com", "region": "eu-west-1"}]}}
    assert len(proposal.left_out) == 1 and "ENOZONEAAAAA" in proposal.left_out[0]
    assert "www.nowhere.net" in proposal.left_out[0]
    assert any("ACM-issued" in n for n in proposal.notes)
    parse_config(merge_text(None, proposal).text)


EXISTING = """\
# our certificates (keep this comment)
acme:
  directory: letsencrypt   # the real one
certificates:
  # the shop
  - name: www-example-com
    domains: [www.example.com, example.com]
    deploy:
      cloudfront: {distributions: [ECOVEREDAAAA]}   # done by hand
  - name: legacy
    domains:
      - legacy.example.com
    deploy:
      apigateway:
        domains:
          - name: www.example.com
            region: eu-west-1
# who hears about it
notify:
  sns_topic_arn: arn:aws:sns:us-east-1:111111111111:certrenew
"""


def test_merging_appends_as_text_keeping_comments_and_every_entry():
    existing = yaml.safe_load(EXISTING)
    proposal = propose(sample(), existing)
    names = [c["name"] for c in proposal.certificates]
    assert names == ["t-shop-test", "api-example-com", "api-example-com-2"], "deployed targets are skipped"
    assert sum("already deployed to by certificate" in n for n in proposal.notes) == 2
    merged = merge_text(EXISTING, proposal)
    assert merged.how == "appended"
    for line in EXISTING.splitlines():
        assert line in merged.text.splitlines()
    assert merged.text.index("dt_abc123") < merged.text.index("# who hears about it"), "inside the list"
    config = parse_config(merged.text)
    assert config.names() == ["www-example-com", "legacy"] + names
    assert config.notify.sns_topic_arn.endswith(":certrenew")
    assert "# cloudfront-tenant dt_abc123" in merged.text


@pytest.mark.parametrize("indent", [0, 4])
def test_appending_follows_the_list_indentation(indent):
    pad = " " * indent
    text = f"certificates:\n{pad}- name: a\n{pad}  domains: [a.example.com]\n{pad}  key: |\n{pad}    ec-p256\n"
    merged = merge_text(text.replace("  key: |\n" + pad + "    ec-p256\n", "  key: ec-p256\n"),
                        propose(sample()[:1]))
    assert merged.how == "appended"
    assert f"\n{pad}- name: www-example-com\n" in merged.text
    assert parse_config(merged.text).names() == ["a", "www-example-com"]


def test_a_flow_list_or_json_is_rewritten():
    flow = "certificates: [{name: a, domains: [a.example.com]}]  # a comment\n"
    merged = merge_text(flow, propose(sample()[:1]))
    assert merged.how == "rewritten" and parse_config(merged.text).names() == ["a", "www-example-com"]
    as_json = json.dumps({"certificates": [{"name": "a", "domains": ["a.example.com"]}]})
    merged = merge_text(as_json, propose(sample()[:1]))
    assert merged.how == "rewritten" and json.loads(merged.text)["certificates"][1]["name"] == "www-example-com"


def test_write_keeps_a_backup_when_it_rewrites(tmp_path, capsys):
    path = tmp_path / "certificates.yaml"
    original = "certificates: [{name: a, domains: [a.example.com]}]  # mine\n"
    path.write_text(original)
    cli_discover.write_proposal(path, sample(), cli_discover.read_existing(str(path)))
    assert (tmp_path / "certificates.yaml.bak").read_text() == original
    assert parse_config(path.read_text()).names()[0] == "a"
    err = capsys.readouterr().err
    assert "left out: cloudfront-distribution ENOZONEAAAAA" in err and ".bak" in err


def test_nothing_new_writes_nothing(tmp_path, capsys):
    path = tmp_path / "certificates.yaml"
    cli_discover.write_proposal(path, [sample()[1]], None)
    assert not path.exists() and "not written" in capsys.readouterr().err


def test_an_invalid_existing_file_stops_before_anything_is_read_or_written(tmp_path, capsys):
    path = tmp_path / "certificates.yaml"
    path.write_text("certificates:\n  - name: Bad Name\n    domains: [a.example.com]\n")
    with pytest.raises(ConfigError, match=r"certificates\[0\]\.name"):
        cli_discover.read_existing(str(path))
    assert "not a valid config now" in capsys.readouterr().err


def test_regions_default_and_bad_ones():
    assert cli_discover.regions_of(None, "eu-west-1") == ["eu-west-1", "us-east-1"]
    assert cli_discover.regions_of(None, "us-east-1") == ["us-east-1"]
    with pytest.raises(InputError, match="'mars-1'"):
        cli_discover.regions_of(["eu-west-1", "mars-1"], "us-east-1")


def test_the_subcommand_is_registered():
    from acme_flow.cli import _parser

    args = _parser().parse_args(["discover", "--write", "c.yaml", "--regions", "eu-west-1", "--json"])
    assert args.func is cli_discover.cmd_discover and args.regions == ["eu-west-1"] and args.json


def test_the_module_has_no_io():
    assert "boto3" not in discover.__dict__ and "now(" not in open(discover.__file__).read()
