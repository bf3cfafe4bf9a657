"""Parse and validate the config document (`certificates.yaml`, or the same as JSON).

Pure: text in, frozen `Config` out. No I/O, no boto3, no clock; where the text comes from
(a file, `s3://`, `ssm:`) is the caller's business.

Every problem in the document is collected and raised at once as a `ConfigError`, each with
its path (`acme.directory`, `certificates[2].domains[0]`) and a message that says what is
wrong, shows the offending value (secrets excepted) and what would be accepted.

- `loading`: the hardened YAML/JSON loader (size, aliases, nesting, duplicate keys) to plain data.
- `kit`: the validation kit: collect problems, check one value at one path, the `BAD` sentinel.
- `schema`: the document's keys, the ACME account, inherited settings, the certificates.
- `names`: the DNS names a certificate asks for (per-profile limits, punycode, wildcards, labels).
- `targets`: the AWS side: Route53 zone and role, deploy targets (ACM, CloudFront, S3), SNS.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..models import Config
from .loading import MAX_ALIASES, MAX_DEPTH, MAX_DOCUMENT_BYTES, load_document
from .schema import LETSENCRYPT, LETSENCRYPT_STAGING, build_config

__all__ = ["LETSENCRYPT", "LETSENCRYPT_STAGING", "MAX_DOCUMENT_BYTES", "MAX_ALIASES", "MAX_DEPTH",
           "parse_config"]


def parse_config(text: str | bytes, source: str = "certificates.yaml") -> Config:
    """Parse and validate a config document (YAML or JSON).

    Raises ConfigError listing every problem found, each with its path.
    """
    loaded = load_document(text)
    config = loaded if isinstance(loaded, list) else build_config(loaded.data, source)
    if isinstance(config, list):
        raise ConfigError(config, source)
    return config
