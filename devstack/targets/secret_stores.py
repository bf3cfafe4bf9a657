"""Secrets Manager, SSM and KMS set-up and reads for tests and the demo: what a deployed secret or
parameter set holds, and a KMS key named by an alias. Plain admin boto3 clients on the devstack's
endpoint (the environment the tests' `aws` fixture sets), so strict IAM does not judge them."""
from __future__ import annotations

import json
from typing import Any

import boto3


def _client(service: str, region: str, session_kwargs: dict[str, Any] | None):
    return boto3.session.Session(**(session_kwargs or {})).client(service, region_name=region)


def read_secret(name: str, region: str, *, session_kwargs: dict[str, Any] | None = None) -> dict:
    """The AWSCURRENT SecretString of a secret, parsed (the adapter writes JSON)."""
    value = _client("secretsmanager", region, session_kwargs).get_secret_value(SecretId=name)
    return json.loads(value["SecretString"])


def secret_versions(name: str, region: str, *, session_kwargs: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """VersionId -> staging labels of every version of a secret."""
    sm = _client("secretsmanager", region, session_kwargs)
    return {v["VersionId"]: v.get("VersionStages", [])
            for v in sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]}


def read_parameters(prefix: str, region: str, *, session_kwargs: dict[str, Any] | None = None) -> dict[str, str]:
    """Every parameter directly under `prefix`, decrypted: {"cert.pem": ..., "privkey.pem": ..., ...}."""
    ssm = _client("ssm", region, session_kwargs)
    found: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix, WithDecryption=True):
        for p in page["Parameters"]:
            found[p["Name"].removeprefix(prefix)] = p["Value"]
    return found


def read_consistent_set(prefix: str, region: str, *, session_kwargs: dict[str, Any] | None = None) -> dict[str, str]:
    """The four PEMs at the versions `<prefix>current.json` names (the way a careful reader reads)."""
    ssm = _client("ssm", region, session_kwargs)
    marker = json.loads(ssm.get_parameter(Name=prefix + "current.json")["Parameter"]["Value"])
    names = [f"{prefix}{name}:{version}" for name, version in marker["versions"].items()]
    got = ssm.get_parameters(Names=names, WithDecryption=True)
    if got.get("InvalidParameters"):
        raise LookupError(f"versions named by {prefix}current.json are gone: {got['InvalidParameters']}")
    return {p["Name"].removeprefix(prefix).split(":")[0]: p["Value"] for p in got["Parameters"]}


def parameter_tiers(prefix: str, region: str, *, session_kwargs: dict[str, Any] | None = None) -> dict[str, dict]:
    """name -> {"Tier", "KeyId", "Type", "Version"} of every parameter under `prefix` (DescribeParameters)."""
    ssm = _client("ssm", region, session_kwargs)
    found = {}
    filters = [{"Key": "Path", "Option": "OneLevel", "Values": [prefix.rstrip("/")]}]
    for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=filters):
        for p in page["Parameters"]:
            found[p["Name"].removeprefix(prefix)] = {k: p.get(k) for k in ("Tier", "KeyId", "Type", "Version")}
    return found


def make_kms_key(region: str, alias: str | None = None, *, session_kwargs: dict[str, Any] | None = None) -> str:
    """A symmetric customer key (its id); `alias` ("alias/certs" or "certs") names it too."""
    kms = _client("kms", region, session_kwargs)
    key_id = kms.create_key(Description="certrenew devstack key")["KeyMetadata"]["KeyId"]
    if alias:
        kms.create_alias(AliasName=alias if alias.startswith("alias/") else f"alias/{alias}", TargetKeyId=key_id)
    return key_id
