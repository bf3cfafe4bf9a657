"""The config document: parsing, defaults, and every problem reported with its path."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from acme_flow.config import (LETSENCRYPT, LETSENCRYPT_STAGING, MAX_ALIASES, MAX_DOCUMENT_BYTES,
                              parse_config)
from acme_flow.errors import ConfigError, InputError, Problem
from acme_flow.models import (AcmeSettings, CertificateSpec, Challenge, Config, DeploySpec, DnsSpec, Eab,
                              KeyType, NotifySpec, S3Export)

CONTRACT_EXAMPLE = """\
acme:
  directory: letsencrypt          # letsencrypt | letsencrypt-staging | https://...
  email: ops@example.com          # optional
  eab:                            # optional External Account Binding
    kid: "kid-123"
    hmac_key: "ssm:/certrenew/eab-hmac"   # a reference, never a literal secret in git
defaults:                         # every key here may also be set per certificate
  key: ec-p256                    # ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096
  profile: null                   # an ACME profile the CA advertises
  renew_before_days: null         # fallback when the CA has no ARI
  preferred_chain: null           # issuer common name of the root to prefer
certificates:
  - name: example-site            # [a-z0-9-]{1,63}, unique
    domains: [example.com, "*.example.com"]
    dns:                          # optional
      hosted_zone_id: Z0123456789 # override zone discovery
      role_arn: arn:aws:iam::111111111111:role/dns   # cross-account Route53
    deploy:
      acm: {regions: [us-east-1, us-west-2]}
      cloudfront: {distributions: [E2ABCDEF123456]}  # implies an ACM copy in us-east-1
      s3: {bucket: my-certs, prefix: example.com/}   # cert.pem chain.pem fullchain.pem privkey.pem
notify:
  sns_topic_arn: arn:aws:sns:us-east-1:111111111111:certrenew   # optional
"""


def problems_of(text: str | bytes) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def assert_problem(problems: list[Problem], path: str, fragment: str) -> None:
    for p in problems:
        if p.path == path and fragment in p.message:
            return
    listing = "\n".join(f"  {p.path!r}: {p.message}" for p in problems)
    raise AssertionError(f"no problem at {path!r} containing {fragment!r}; got:\n{listing}")


def cert(**fields: Any) -> dict[str, Any]:
    return {"name": "site", "domains": ["example.com"], **fields}


def doc(*certs: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"certificates": list(certs) or [cert()], **top}


CF = {"cloudfront": {"distributions": ["E2ABCDEF123456"]}}


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# ---- good documents --------------------------------------------------------------------------


def test_contract_example_parses_to_the_expected_models():
    config = parse_config(CONTRACT_EXAMPLE, source="s3://bucket/certificates.yaml")
    assert config == Config(
        acme=AcmeSettings(directory=LETSENCRYPT, email="ops@example.com",
                          eab=Eab(kid="kid-123", hmac_ref="ssm:/certrenew/eab-hmac")),
        certificates=(CertificateSpec(
            name="example-site",
            domains=("example.com", "*.example.com"),
            key=KeyType.EC_P256,
            profile=None,
            renew_before_days=None,
            preferred_chain=None,
            dns=DnsSpec(hosted_zone_id="Z0123456789",
                        role_arn="arn:aws:iam::111111111111:role/dns"),
            deploy=DeploySpec(acm_regions=("us-east-1", "us-west-2"),
                              cloudfront=("E2ABCDEF123456",),
                              s3=S3Export(bucket="my-certs", prefix="example.com/")),
        ),),
        notify=NotifySpec(sns_topic_arn="arn:aws:sns:us-east-1:111111111111:certrenew"),
        source="s3://bucket/certificates.yaml",
    )
    assert config.certificates[0].deploy.acm_copies == ("us-east-1", "us-west-2")
    assert config.names() == ["example-site"]


def test_minimal_document_gets_the_documented_defaults():
    config = parse_config("certificates:\n  - name: a\n    domains: [a.example.com]\n")
    assert config.acme == AcmeSettings(directory=LETSENCRYPT)
    assert config.notify == NotifySpec()
    assert config.source == "certificates.yaml"
    spec = config.certificates[0]
    assert spec == CertificateSpec(name="a", domains=("a.example.com",))
    assert spec.key is KeyType.EC_P256
    assert spec.dns == DnsSpec() and spec.deploy == DeploySpec()


def test_defaults_are_inherited_and_overridden_per_certificate():
    text = dump({
        "defaults": {"key": "rsa-2048", "profile": "tlsserver", "renew_before_days": 20,
                     "preferred_chain": "ISRG Root X1"},
        "certificates": [
            {"name": "inherits", "domains": ["a.example.com"]},
            {"name": "overrides", "domains": ["b.example.com"], "key": "ec-p384",
             "profile": None, "renew_before_days": 7, "preferred_chain": "ISRG Root X2"},
            {"name": "partly", "domains": ["c.example.com"], "profile": "shortlived"},
        ],
    })
    inherits, overrides, partly = parse_config(text).certificates
    assert (inherits.key, inherits.profile, inherits.renew_before_days,
            inherits.preferred_chain) == (KeyType.RSA_2048, "tlsserver", 20, "ISRG Root X1")
    # an explicit null overrides the default too: no profile is sent
    assert (overrides.key, overrides.profile, overrides.renew_before_days,
            overrides.preferred_chain) == (KeyType.EC_P384, None, 7, "ISRG Root X2")
    assert (partly.key, partly.profile, partly.renew_before_days) == \
        (KeyType.RSA_2048, "shortlived", 20)


def test_the_challenge_is_dns01_unless_set_and_inherits_from_defaults():
    text = dump({
        "defaults": {"challenge": "auto"},
        "certificates": [
            {"name": "inherits", "domains": ["a.example.com"]},
            {"name": "persist", "domains": ["b.example.com", "*.b.example.com"], "challenge": "dns-persist-01"},
            {"name": "classic", "domains": ["c.example.com"], "challenge": "dns-01"},
        ],
    })
    assert [c.challenge for c in parse_config(text).certificates] == [
        Challenge.AUTO, Challenge.DNS_PERSIST01, Challenge.DNS01]
    plain = parse_config(dump({"certificates": [{"name": "a", "domains": ["a.example.com"]}]}))
    assert plain.certificates[0].challenge is Challenge.DNS01


@pytest.mark.parametrize("value, shown", [("dns-02", "'dns-02'"), (1, "an integer 1"), ("DNS-01", "'DNS-01'")])
def test_an_unknown_challenge_is_named_with_the_choices(value, shown):
    text = dump({"certificates": [{"name": "a", "domains": ["a.example.com"], "challenge": value}]})
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    (problem,) = err.value.problems
    assert problem.path == "certificates[0].challenge"
    assert shown in problem.message and "dns-01, dns-persist-01, auto" in problem.message


def test_fallback_cas_are_tried_in_order_with_their_own_eab_and_the_primary_email():
    text = dump({"acme": {"directory": "letsencrypt", "email": "ops@example.com", "fallback": [
        {"directory": "https://dv.acme-v02.api.pki.goog/directory",
         "eab": {"kid": "k1", "hmac_key": "ssm:/certrenew/gts-hmac"}},
        {"directory": "https://acme.zerossl.com/v2/DV90", "email": "zerossl@example.com"}]},
        "certificates": [{"name": "a", "domains": ["a.example.com"]}]})
    acme = parse_config(text).acme
    assert [f.directory for f in acme.fallback] == ["https://dv.acme-v02.api.pki.goog/directory",
                                                     "https://acme.zerossl.com/v2/DV90"]
    assert acme.fallback[0].eab == Eab("k1", "ssm:/certrenew/gts-hmac") and acme.fallback[0].email == "ops@example.com"
    assert acme.fallback[1].email == "zerossl@example.com" and acme.fallback[1].eab is None
    assert acme.all_directories() == (LETSENCRYPT, *(f.directory for f in acme.fallback))


@pytest.mark.parametrize("fallback, path, words", [
    ([{"directory": "letsencrypt"}], "acme.fallback[0].directory", "is already acme.directory"),
    ([{"directory": "https://a.test/dir"}, {"directory": "https://a.test/dir"}], "acme.fallback[1].directory",
     "is already acme.fallback[0].directory"),
    ([{"email": "x@example.com"}], "acme.fallback[0].directory", "fallback CA's directory"),
    ([{"directory": "https://a.test/dir", "eab": {"kid": "k", "hmac_key": "literal-secret"}}],
     "acme.fallback[0].eab.hmac_key", "not a secret reference"),
    ([], "acme.fallback", "a list of 1 to 3 CAs"),
    ({"directory": "https://a.test/dir"}, "acme.fallback", "a list of 1 to 3 CAs"),
    ([{"directory": "https://a.test/dir", "profile": "x"}], "acme.fallback[0].profile", ""),
])
def test_bad_fallbacks_are_named(fallback, path, words):
    text = dump({"acme": {"directory": "letsencrypt", "fallback": fallback},
                 "certificates": [{"name": "a", "domains": ["a.example.com"]}]})
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert [p.path for p in err.value.problems] == [path], err.value.problems
    assert words in err.value.problems[0].message


def test_json_input_works_as_text_and_bytes_and_with_tabs():
    data = json.loads(json.dumps({
        "acme": {"directory": "letsencrypt-staging"},
        "certificates": [{"name": "j", "domains": ["example.org", "*.example.org"],
                          "deploy": {"acm": {"regions": ["eu-west-1"]}}}],
    }))
    for text in (json.dumps(data), json.dumps(data).encode(), json.dumps(data, indent="\t")):
        config = parse_config(text)
        assert config.acme.directory == LETSENCRYPT_STAGING
        assert config.certificates[0].domains == ("example.org", "*.example.org")
        assert config.certificates[0].deploy.acm_regions == ("eu-west-1",)


def test_custom_directory_zone_prefix_default_and_s3_prefix_default():
    text = dump(doc(cert(name="my-site",
                         dns={"hosted_zone_id": "/hostedzone/Z2ABCDEF"},
                         deploy={"s3": {"bucket": "certs.example.com"}}),
                    acme={"directory": "https://localhost:14000/dir"}))
    config = parse_config(text)
    assert config.acme.directory == "https://localhost:14000/dir"
    spec = config.certificates[0]
    assert spec.dns.hosted_zone_id == "Z2ABCDEF"
    assert spec.deploy.s3 == S3Export(bucket="certs.example.com", prefix="my-site/")


def test_null_optional_sections_mean_absent():
    text = "acme:\ndefaults:\nnotify:\ncertificates:\n  - name: a\n    domains: [a.example.com]\n" \
           "    dns:\n    deploy:\n"
    config = parse_config(text)
    assert config.acme.directory == LETSENCRYPT
    assert config.certificates[0].deploy == DeploySpec()


def test_accepted_names_and_the_same_domain_in_two_certificates():
    text = dump({"certificates": [
        {"name": "one", "domains": ["example.com", "*.example.com", "xn--bcher-kva.example",
                                    "a-b.c1.example.co.uk", "xy.io", "123.example.com"]},
        {"name": "2nd-cert", "domains": ["example.com"]},
    ]})
    config = parse_config(text)
    assert config.names() == ["one", "2nd-cert"]
    assert config.certificates[0].domains[2] == "xn--bcher-kva.example"


def test_ec_p384_default_is_fine_when_the_cloudfront_certificate_overrides_the_key():
    text = dump(doc(cert(key="rsa-2048", deploy=CF),
                    cert(name="other", deploy={"acm": {"regions": ["us-east-1"]}}),
                    defaults={"key": "ec-p384"}))
    first, second = parse_config(text).certificates
    assert first.key is KeyType.RSA_2048 and second.key is KeyType.EC_P384


def test_yaml_anchors_and_merge_keys_within_the_alias_limit():
    text = """\
x-deploy: &deploy
  acm: {regions: [us-east-1]}
certificates:
  - name: a
    domains: [a.example.com]
    deploy: *deploy
"""
    problems = problems_of(text)  # x-deploy is an unknown top-level key...
    assert_problem(problems, "x-deploy", "unknown key 'x-deploy'")
    text = """\
certificates:
  - &first
    name: a
    domains: [a.example.com]
    deploy: {acm: {regions: [us-east-1]}}
  - <<: *first
    name: b
"""
    a, b = parse_config(text).certificates
    assert b.name == "b" and b.deploy == a.deploy and b.domains == a.domains


def test_exactly_100_names_and_25_with_shortlived_are_accepted():
    names = [f"h{i}.example.com" for i in range(100)]
    assert len(parse_config(dump(doc(cert(domains=names)))).certificates[0].domains) == 100
    parse_config(dump(doc(cert(domains=names[:25], profile="shortlived"))))


# ---- bad documents: one problem each, at an exact path --------------------------------------


BAD_CASES: list[tuple[str, Any, str, str]] = [
    # unknown keys at every level, with a suggestion
    ("unknown top-level key", doc(notfy={}), "notfy",
     "unknown key 'notfy' (did you mean 'notify'?)"),
    ("unknown acme key", doc(acme={"directry": "letsencrypt"}), "acme.directry",
     "unknown key 'directry' (did you mean 'directory'?)"),
    ("unknown eab key", doc(acme={"eab": {"kid": "k", "hmac_key": "ssm:/x", "hmac": "y"}}),
     "acme.eab.hmac", "did you mean 'hmac_key'?"),
    ("unknown defaults key", doc(defaults={"kye": "rsa-2048"}), "defaults.kye",
     "did you mean 'key'?"),
    ("unknown certificate key", doc(cert(domain=["a.example.com"])), "certificates[0].domain",
     "did you mean 'domains'?"),
    ("unknown dns key", doc(cert(dns={"zone_id": "Z1"})), "certificates[0].dns.zone_id",
     "did you mean 'hosted_zone_id'?"),
    ("unknown deploy key", doc(cert(deploy={"cloudfrnt": {}})), "certificates[0].deploy.cloudfrnt",
     "did you mean 'cloudfront'?"),
    ("unknown acm key", doc(cert(deploy={"acm": {"region": ["us-east-1"]}})),
     "certificates[0].deploy.acm.region", "did you mean 'regions'?"),
    ("unknown s3 key", doc(cert(deploy={"s3": {"bucket": "b-b-b", "prefx": "x/"}})),
     "certificates[0].deploy.s3.prefx", "did you mean 'prefix'?"),
    ("unknown notify key", doc(notify={"sns_topic": "x"}), "notify.sns_topic",
     "did you mean 'sns_topic_arn'?"),
    ("unknown key without a close match", doc(acme={"zzz": 1}), "acme.zzz",
     "expected one of directory, email, eab"),
    # acme
    ("directory typo", doc(acme={"directory": "letsencrypt-stagin"}), "acme.directory",
     "'letsencrypt-stagin' is not a known CA (did you mean 'letsencrypt-staging'?)"),
    ("plain http directory", doc(acme={"directory": "http://localhost:14000/dir"}),
     "acme.directory", "must use https://"),
    ("directory without host", doc(acme={"directory": "https:///dir"}), "acme.directory",
     "is not a valid https:// URL"),
    ("directory with another scheme", doc(acme={"directory": "ftp://ca.example/dir"}),
     "acme.directory", "'ftp://ca.example/dir' is not a valid https:// URL"),
    ("key null", doc(cert(key=None)), "certificates[0].key", "null is not a key type"),
    ("directory not a string", doc(acme={"directory": ["letsencrypt"]}), "acme.directory",
     "got a list ['letsencrypt']"),
    ("bad email", doc(acme={"email": "ops at example.com"}), "acme.email",
     "'ops at example.com' is not an email address"),
    ("email without a dot in the domain", doc(acme={"email": "ops@localhost"}), "acme.email",
     "is not an email address"),
    ("literal EAB secret", doc(acme={"eab": {"kid": "k", "hmac_key": "c2VjcmV0LWhtYWMta2V5"}}),
     "acme.eab.hmac_key", "secrets must be references, not literal values"),
    ("empty EAB kid", doc(acme={"eab": {"kid": "", "hmac_key": "secretsmanager:eab"}}),
     "acme.eab.kid", "got an empty string"),
    ("EAB without hmac_key", doc(acme={"eab": {"kid": "k"}}), "acme.eab.hmac_key", "required"),
    # defaults and per-certificate settings
    ("bad key type", doc(cert(key="ec-p521")), "certificates[0].key",
     "'ec-p521' is not a key type: use one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096"),
    ("bad default key type", doc(defaults={"key": "RSA2048"}), "defaults.key",
     "'RSA2048' is not a key type"),
    ("bad profile", doc(cert(profile="Classic!")), "certificates[0].profile",
     "'Classic!' is not an ACME profile name"),
    ("profile not a string", doc(defaults={"profile": 3}), "defaults.profile",
     "got an integer 3"),
    ("renew_before_days 0", doc(defaults={"renew_before_days": 0}), "defaults.renew_before_days",
     "0 is out of range: expected a whole number of days from 1 to 365"),
    ("renew_before_days 366", doc(cert(renew_before_days=366)),
     "certificates[0].renew_before_days", "366 is out of range"),
    ("renew_before_days quoted", doc(cert(renew_before_days="7")),
     "certificates[0].renew_before_days", "got a string '7' (write it without quotes)"),
    ("renew_before_days true", doc(cert(renew_before_days=True)),
     "certificates[0].renew_before_days", "got a boolean true"),
    ("renew_before_days float", doc(cert(renew_before_days=7.5)),
     "certificates[0].renew_before_days", "got a number 7.5"),
    ("preferred_chain empty", doc(cert(preferred_chain="")), "certificates[0].preferred_chain",
     "got an empty string"),
    ("preferred_chain too long", doc(cert(preferred_chain="R" * 201)),
     "certificates[0].preferred_chain", "is too long"),
    # names
    ("uppercase name", doc(cert(name="Example_Site")), "certificates[0].name",
     "'Example_Site' is not a valid name: use 1-63 characters of a-z, 0-9 and '-'"),
    ("name ending with a dash", doc(cert(name="site-")), "certificates[0].name",
     "not starting or ending with '-'"),
    ("name too long", doc(cert(name="a" * 64)), "certificates[0].name", "is not a valid name"),
    ("name missing", doc({"domains": ["a.example.com"]}), "certificates[0].name", "required"),
    ("name not a string", doc(cert(name=12)), "certificates[0].name", "got an integer 12"),
    ("duplicate name", doc(cert(), cert(domains=["b.example.com"]), cert(name="site")),
     "certificates[2].name", "duplicate name 'site' (first used by certificates[0])"),
    # domains
    ("uppercase domain", doc(cert(domains=["Example.COM"])), "certificates[0].domains[0]",
     "'Example.COM' has uppercase letters: write 'example.com'"),
    ("trailing dot", doc(cert(domains=["example.com", "www.example.com."])),
     "certificates[0].domains[1]",
     "'www.example.com.' has a trailing dot: write 'www.example.com'"),
    ("IDN domain", doc(cert(domains=["bücher.example"])), "certificates[0].domains[0]",
     "write 'xn--bcher-kva.example'"),
    ("IDN wildcard", doc(cert(domains=["*.Bücher.example"])), "certificates[0].domains[0]",
     "write '*.xn--bcher-kva.example'"),
    ("wildcard in the middle", doc(cert(domains=["a.*.example.com"])),
     "certificates[0].domains[0]", "a wildcard is allowed only as the whole first label"),
    ("double wildcard", doc(cert(domains=["*.*.example.com"])), "certificates[0].domains[0]",
     "a wildcard is allowed only as the whole first label"),
    ("partial wildcard label", doc(cert(domains=["*example.com"])), "certificates[0].domains[0]",
     "a wildcard is allowed only as the whole first label"),
    ("bare wildcard", doc(cert(domains=["*"])), "certificates[0].domains[0]",
     "a wildcard needs at least two labels after '*.'"),
    ("wildcard over a TLD", doc(cert(domains=["*.com"])), "certificates[0].domains[0]",
     "a wildcard needs at least two labels"),
    ("label too long", doc(cert(domains=["a" * 64 + ".example.com"])),
     "certificates[0].domains[0]", "is 64 characters long; at most 63"),
    ("name too long", doc(cert(domains=[".".join(["a" * 60] * 4) + ".example.com"])),
     "certificates[0].domains[0]", "characters long; a DNS name has at most 253"),
    ("IPv4 address", doc(cert(domains=["192.0.2.1"])), "certificates[0].domains[0]",
     "'192.0.2.1' is an IP address"),
    ("IPv6 address", doc(cert(domains=["2001:db8::1"])), "certificates[0].domains[0]",
     "is an IP address"),
    ("single label", doc(cert(domains=["localhost"])), "certificates[0].domains[0]",
     "'localhost' is a single label"),
    ("numeric TLD", doc(cert(domains=["host.123"])), "certificates[0].domains[0]",
     "the top-level label '123' is all digits"),
    ("underscore", doc(cert(domains=["a_b.example.com"])), "certificates[0].domains[0]",
     "label 'a_b' may contain only a-z, 0-9 and '-'"),
    ("label ending with a dash", doc(cert(domains=["a-.example.com"])),
     "certificates[0].domains[0]", "label 'a-' must not start or end with '-'"),
    ("empty label", doc(cert(domains=["a..example.com"])), "certificates[0].domains[0]",
     "has an empty label"),
    ("duplicate domain", doc(cert(domains=["example.com", "www.example.com", "example.com"])),
     "certificates[0].domains[2]", "duplicate of domains[0]"),
    ("101 names", doc(cert(domains=[f"h{i}.example.com" for i in range(101)])),
     "certificates[0].domains", "101 names: a certificate allows at most 100"),
    ("26 names with shortlived", doc(cert(domains=[f"h{i}.example.com" for i in range(26)],
                                          profile="shortlived")),
     "certificates[0].domains", "26 names: the 'shortlived' profile allows at most 25"),
    ("26 names with tlsserver from defaults",
     doc(cert(domains=[f"h{i}.example.com" for i in range(26)]), defaults={"profile": "tlsserver"}),
     "certificates[0].domains", "the 'tlsserver' profile allows at most 25"),
    ("domains is a string", doc(cert(domains="example.com")), "certificates[0].domains",
     "expected a non-empty list of DNS names; got a string 'example.com'"),
    ("domains empty", doc(cert(domains=[])), "certificates[0].domains", "got an empty list"),
    ("domains missing", doc({"name": "x"}), "certificates[0].domains", "required"),
    ("domain not a string", doc(cert(domains=[["a.example.com"]])), "certificates[0].domains[0]",
     "expected a DNS name"),
    # dns
    ("bad zone id", doc(cert(dns={"hosted_zone_id": "z0123456789"})),
     "certificates[0].dns.hosted_zone_id",
     "'z0123456789' is not a Route53 hosted zone id (like Z0123456789ABC) "
     "(did you mean 'Z0123456789'?)"),
    ("zone id with a bad prefix", doc(cert(dns={"hosted_zone_id": "hostedzone/Z1"})),
     "certificates[0].dns.hosted_zone_id", "is not a Route53 hosted zone id"),
    ("bad role arn", doc(cert(dns={"role_arn": "arn:aws:iam::1111:role/dns"})),
     "certificates[0].dns.role_arn", "'arn:aws:iam::1111:role/dns' is not an IAM role ARN"),
    ("user arn is not a role", doc(cert(dns={"role_arn": "arn:aws:iam::111111111111:user/dns"})),
     "certificates[0].dns.role_arn", "is not an IAM role ARN"),
    # deploy
    ("bad region", doc(cert(deploy={"acm": {"regions": ["us-east-1", "mars-1"]}})),
     "certificates[0].deploy.acm.regions[1]", "'mars-1' is not an AWS region"),
    ("duplicate region", doc(cert(deploy={"acm": {"regions": ["eu-west-1", "eu-west-1"]}})),
     "certificates[0].deploy.acm.regions[1]", "duplicate of regions[0]"),
    ("regions is a string", doc(cert(deploy={"acm": {"regions": "us-east-1"}})),
     "certificates[0].deploy.acm.regions", "got a string 'us-east-1'"),
    ("regions empty", doc(cert(deploy={"acm": {"regions": []}})),
     "certificates[0].deploy.acm.regions", "got an empty list"),
    ("acm without regions", doc(cert(deploy={"acm": {}})), "certificates[0].deploy.acm.regions",
     "required"),
    ("bad distribution id", doc(cert(deploy={"cloudfront": {"distributions": ["d111111abcdef8"]}})),
     "certificates[0].deploy.cloudfront.distributions[0]",
     "'d111111abcdef8' is not a CloudFront distribution id"),
    ("duplicate distribution",
     doc(cert(deploy={"cloudfront": {"distributions": ["E2ABCDEF123456", "E2ABCDEF123456"]}})),
     "certificates[0].deploy.cloudfront.distributions[1]", "duplicate of distributions[0]"),
    ("bad bucket", doc(cert(deploy={"s3": {"bucket": "My_Bucket"}})),
     "certificates[0].deploy.s3.bucket", "'My_Bucket' is not an S3 bucket name"),
    ("bucket too short", doc(cert(deploy={"s3": {"bucket": "ab"}})),
     "certificates[0].deploy.s3.bucket", "is not an S3 bucket name"),
    ("bucket with ..", doc(cert(deploy={"s3": {"bucket": "my..certs"}})),
     "certificates[0].deploy.s3.bucket", "no '..' allowed"),
    ("bucket like an IP", doc(cert(deploy={"s3": {"bucket": "192.168.5.4"}})),
     "certificates[0].deploy.s3.bucket", "looks like an IP address"),
    ("prefix with a leading slash",
     doc(cert(deploy={"s3": {"bucket": "my-certs", "prefix": "/x/"}})),
     "certificates[0].deploy.s3.prefix", "'/x/' starts with '/'"),
    ("prefix with ..", doc(cert(deploy={"s3": {"bucket": "my-certs", "prefix": "a/../b/"}})),
     "certificates[0].deploy.s3.prefix", "'a/../b/' has a '..' segment"),
    ("prefix not a string", doc(cert(deploy={"s3": {"bucket": "my-certs", "prefix": 5}})),
     "certificates[0].deploy.s3.prefix", "got an integer 5"),
    ("deploy is a list", doc(cert(deploy=["acm"])), "certificates[0].deploy",
     "expected a mapping with keys acm, cloudfront, elb, apigateway, secretsmanager, ssm, s3; got a list ['acm']"),
    ("s3 is a string", doc(cert(deploy={"s3": "my-certs"})), "certificates[0].deploy.s3",
     "expected a mapping with keys bucket, prefix, role_arn; got a string 'my-certs'"),
    # key/target combinations
    ("ec-p384 with cloudfront", doc(cert(key="ec-p384", deploy=CF)), "certificates[0].key",
     "ec-p384 cannot be used with CloudFront (RSA 1024-4096 or EC P-256 only)"),
    ("ec-p384 inherited with cloudfront",
     doc(cert(), cert(name="cdn", deploy=CF), defaults={"key": "ec-p384"}), "defaults.key",
     "certificates[1] ('cdn') inherits this key and deploys to CloudFront"),
    # notify
    ("bad sns arn", doc(notify={"sns_topic_arn": "arn:aws:sqs:us-east-1:111111111111:q"}),
     "notify.sns_topic_arn", "is not an SNS topic ARN"),
    ("notify is a string", doc(notify="arn:aws:sns:us-east-1:111111111111:t"), "notify",
     "expected a mapping with keys sns_topic_arn"),
    # the document's shape
    ("certificates empty", {"certificates": []}, "certificates",
     "expected a non-empty list of certificates"),
    ("certificates missing", {"acme": {}}, "certificates", "required"),
    ("certificates is a mapping", {"certificates": {"site": {"domains": ["a.example.com"]}}},
     "certificates", "got a mapping"),
    ("certificate is a string", doc("site"), "certificates[0]", "got a string 'site'"),
    ("defaults is a list", doc(defaults=["key"]), "defaults", "expected a mapping"),
]


@pytest.mark.parametrize("data,path,fragment",
                         [pytest.param(d, p, f, id=i) for i, d, p, f in BAD_CASES])
def test_bad_config_reports_path_and_message(data, path, fragment):
    assert_problem(problems_of(dump(data)), path, fragment)


@pytest.mark.parametrize("text,fragment", [
    pytest.param("certificates:\n  - name: a\n   domains: [a.example.com]\n",
                 "invalid YAML at line 3", id="bad indentation"),
    pytest.param("certificates: [a, b\n", "invalid YAML at line 2", id="unclosed list"),
    pytest.param("acme: {directory: letsencrypt\ncertificates: []\n", "line ", id="unclosed map"),
    pytest.param("- name: a\n- name: b\n", "the document is a list", id="list document"),
    pytest.param("just a string\n", "the document is a string 'just a string'", id="scalar"),
    pytest.param("", "the document is empty", id="empty"),
    pytest.param("# nothing\n", "the document is empty", id="only comments"),
    pytest.param("certificates: []\ncertificates: [x]\n",
                 "line 2, column 1: duplicate key 'certificates' (first at line 1)",
                 id="duplicate yaml key"),
    pytest.param('{"certificates": [], "certificates": [1]}', "duplicate key 'certificates'",
                 id="duplicate json key"),
    pytest.param("a: 2024-13-45\n", "a value cannot be read", id="impossible date"),
    pytest.param("[" * 5000, "nested more than", id="deep nesting"),
    pytest.param("--- {}\n--- {}\n", "expected a single document", id="two documents"),
    pytest.param("a: \x07\n", "not readable as YAML", id="control character"),
])
def test_unreadable_documents(text, fragment):
    problems = problems_of(text)
    assert len(problems) <= 2
    assert any(p.path == "" and fragment in p.message for p in problems), problems


def test_oversized_document_is_rejected_before_parsing():
    text = "certificates: [" + "x" * MAX_DOCUMENT_BYTES + "\n"  # would not parse either
    [problem] = problems_of(text)
    assert problem.path == ""
    assert f"at most {MAX_DOCUMENT_BYTES:,} are accepted" in problem.message
    [problem] = problems_of(b" " * (MAX_DOCUMENT_BYTES + 1))
    assert "1,000,001 bytes" in problem.message


def _laughs(levels: int) -> list[str]:
    lines = ["x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"x-a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return lines


def test_too_many_aliases_are_refused():
    problems = problems_of("\n".join(_laughs(40)) + "\n")  # 351 aliases
    assert [p.path for p in problems] == [""]
    assert f"more than {MAX_ALIASES} aliases" in problems[0].message
    assert "line 35" in problems[0].message


@pytest.mark.timeout(10)
def test_billion_laughs_under_the_alias_limit_is_never_expanded():
    # 81 aliases stand for 9**9 strings; nothing in parsing or validation may walk them all
    lines = _laughs(10) + [
        "acme: {directory: *a9, email: *a9, eab: *a9}",
        "defaults: {key: *a9, profile: *a9, preferred_chain: *a9, renew_before_days: *a9}",
        "certificates:",
        "  - {name: *a9, domains: *a9, dns: *a9, deploy: {acm: {regions: *a9}, s3: *a9}}",
        "  - *a9",
    ]
    problems = problems_of("\n".join(lines) + "\n")
    assert_problem(problems, "certificates[0].domains[0]", "expected a DNS name")
    assert_problem(problems, "certificates[1]", "expected a mapping")
    assert all(len(str(p)) < 600 for p in problems)


def test_every_problem_is_reported_at_once():
    text = dump({
        "acme": {"directry": "letsencrypt", "eab": {"kid": "k", "hmac_key": "literal"}},
        "defaults": {"key": "ec-p521"},
        "certificates": [
            {"name": "Bad Name", "domains": ["Example.com", "a.*.b.com"]},
            {"name": "ok", "domains": ["ok.example.com"],
             "deploy": {"acm": {"regions": ["mars-1"]}}},
        ],
        "notify": {"sns_topic_arn": "nope"},
        "extra": 1,
    })
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="conf/certificates.yaml")
    paths = [p.path for p in info.value.problems]
    assert sorted(paths) == sorted([
        "extra", "acme.directry", "acme.eab.hmac_key", "defaults.key", "certificates[0].name",
        "certificates[0].domains[0]", "certificates[0].domains[1]",
        "certificates[1].deploy.acm.regions[0]", "notify.sns_topic_arn",
    ])
    error = info.value
    assert isinstance(error, InputError) and error.exit_code == 2
    assert error.source == "conf/certificates.yaml"
    assert str(error).startswith("invalid config in conf/certificates.yaml (9 problems):")
    assert "  - certificates[0].domains[0]: 'Example.com' has uppercase letters" in str(error)


def test_a_literal_secret_is_never_echoed():
    secret = "c2VjcmV0LWhtYWMta2V5LXRoYXQtbXVzdC1ub3QtbGVhaw"
    error = pytest.raises(ConfigError, parse_config,
                          dump(doc(acme={"eab": {"kid": "k", "hmac_key": secret}}))).value
    assert secret not in str(error)
    assert_problem(error.problems, "acme.eab.hmac_key", "value not shown")
    error = pytest.raises(ConfigError, parse_config,
                          dump(doc(acme={"eab": {"kid": "k", "hmac_key": 12345678}}))).value
    assert "12345678" not in str(error)


def test_long_values_are_truncated_in_messages():
    problems = problems_of(dump(doc(cert(name="X" * 5000))))
    message = problems[0].message
    assert len(message) < 400 and "(5000 characters)" in message
    problems = problems_of(dump(doc(cert(domains=[list(range(1000))]))))
    assert len(problems[0].message) < 400


def test_huge_domain_lists_are_bounded():
    names = [f"h{i}.example.com" for i in range(5000)] + ["BAD.example.com"]
    problems = problems_of(dump(doc(cert(domains=names))))
    assert [p.path for p in problems] == ["certificates[0].domains"]


def test_one_bad_name_gives_a_bounded_number_of_problems():
    problems = problems_of(dump(doc(cert(domains=["-." * 100 + "a_b.com"]))))
    assert len(problems) <= 3
    assert_problem(problems, "certificates[0].domains[0]", "label '-' must not start or end")


def test_parse_config_rejects_non_text():
    with pytest.raises(TypeError):
        parse_config({"certificates": []})  # type: ignore[arg-type]


def test_bad_cases_are_independent_of_each_other():
    # guard against the table sharing mutable structures between cases
    assert len(BAD_CASES) >= 35
    for _, data, _, _ in BAD_CASES:
        assert data == copy.deepcopy(data)
