"""Deploy a certificate to a secret store: a Secrets Manager secret, or SSM Parameter Store
SecureString parameters, for applications that read their PEMs from there.

Secrets Manager: one secret, its SecretString a JSON object (the shape other Lambda renewers
write, so readers written for them work unchanged):

    {"certificate": leaf PEM, "chain": intermediates PEM, "fullchain": leaf + chain,
     "private_key": key PEM, "serial": lowercase hex, "not_after": "2027-03-01T12:00:00Z",
     "names": ["example.com", "*.example.com"]}

A missing secret is created (tagged certrenew:managed=true, encrypted with `kms_key`); an existing
one gets a new version (PutSecretValue, AWSCURRENT moves to it). The ClientRequestToken is a UUID
derived from the serial, so a retried call does not add a second version. An existing secret is
never re-encrypted: when it is encrypted with another key than the configured one, the deploy
fails and says both (DescribeSecret shows the key as it was given at creation, alias, id or ARN:
the two are compared as written, and through KMS DescribeKey when only that can tell).

SSM: see `SsmParameterWriter`. Both validate sizes and names before any write, as AWS would
refuse them after a partial write.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from .. import pki
from ..errors import DeployError
from ..models import CertificateInfo, CertificateMaterial, ParameterTarget, SecretTarget
from ..deploy_targets import SECRETSMANAGER, SSM, Target

log = logging.getLogger("certrenew.secret_stores")

MAX_SECRET_BYTES = 65_536
MANAGED_TAG = "certrenew:managed"
SECRET_FORMAT = "certrenew-secret-v1"  # bump when the JSON shape changes: the token must change with it
TOKEN_NAMESPACE = uuid.UUID("5d1c3e4a-8f0b-4c1e-9a7d-2b6f0e9c4d31")
ACCESS_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
AWS_MANAGED_SECRET_KEY = "alias/aws/secretsmanager"
AWS_MANAGED_SSM_KEY = "alias/aws/ssm"


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _failure(target: str, service: str, action: str, what: str, exc: Exception) -> DeployError:
    """A DeployError naming the action and the AWS error; access denied says what to grant."""
    if isinstance(exc, ClientError):
        code, message = _code(exc), exc.response.get("Error", {}).get("Message", "")
        if code in ACCESS_DENIED:
            return DeployError(target, f"access denied to {service}:{action} on {what} ({code}: {message}); "
                                       f"grant {service}:{action} to the renewer's role (or the deploy role)")
        return DeployError(target, f"{service}:{action} on {what} failed ({code}: {message})")
    return DeployError(target, f"{service}:{action} on {what} failed ({exc})")


# ---- Secrets Manager --------------------------------------------------------------------------


def secret_document(material: CertificateMaterial, info: CertificateInfo) -> str:
    """The SecretString: JSON of the PEMs and what a reader wants to know without parsing them."""
    return json.dumps({"certificate": material.cert_pem, "chain": material.chain_pem,
                       "fullchain": material.fullchain_pem, "private_key": material.key_pem,
                       "serial": info.serial, "not_after": _iso(info.not_after), "names": list(info.names)})


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_token(serial: str) -> str:
    """The ClientRequestToken (and so the VersionId) of the version holding this certificate."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, f"{SECRET_FORMAT}:{serial}"))


def key_reference(key: str | None, default_alias: str) -> str | None:
    """A KMS key as written, in one canonical form: a key id, or `alias/<name>`; None for the
    AWS managed key of the service (not given, or given as its alias)."""
    if not key:
        return None
    if key.startswith("arn:"):
        resource = key.split(":", 5)[-1]  # key/<id> or alias/<name>
        key = resource.removeprefix("key/")
    return None if key == default_alias else key


class SecretsManagerWriter:
    """`client_for(region, role_arn)` -> a Secrets Manager client; `kms_for(region, role_arn)`
    (optional) -> a KMS client, used only to tell whether an alias and a key id name the same key."""

    def __init__(self, client_for: Callable[[str, str | None], Any],
                 kms_for: Callable[[str, str | None], Any] | None = None) -> None:
        self._client_for = client_for
        self._kms_for = kms_for

    def check(self, secret: SecretTarget, role_arn: str | None) -> None:
        """The secret exists and can take a new version under the configured key, or is missing
        (then the deploy creates it)."""
        target = _secret_target(secret)
        described = self._describe(self._client_for(secret.region, role_arn), secret, target)
        if described is not None:
            self._check_usable(described, secret, role_arn, target)

    def put(self, secret: SecretTarget, material: CertificateMaterial, info: CertificateInfo,
            role_arn: str | None) -> None:
        target = _secret_target(secret)
        document = secret_document(material, info)
        size = len(document.encode("utf-8"))
        if size > MAX_SECRET_BYTES:
            raise DeployError(target, f"the secret value would be {size} bytes; Secrets Manager holds at most "
                                      f"{MAX_SECRET_BYTES}: deploy this certificate to S3 instead")
        sm = self._client_for(secret.region, role_arn)
        token = request_token(info.serial)
        described = self._describe(sm, secret, target)
        if described is None and self._create(sm, secret, document, token, target):
            log.info("created secret %s holding %s", secret.name, info.serial)
            return
        if described is None:  # created meanwhile by someone else: judge it as any existing one
            described = self._describe(sm, secret, target) or {}
        self._check_usable(described, secret, role_arn, target)
        try:
            sm.put_secret_value(SecretId=secret.name, SecretString=document, ClientRequestToken=token)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(target, "secretsmanager", "PutSecretValue", secret.name, exc) from None
        log.info("secret %s now holds %s", secret.name, info.serial)

    def _create(self, sm, secret: SecretTarget, document: str, token: str, target: str) -> bool:
        """Create the secret; False when it exists after all (a racing creator)."""
        args: dict[str, Any] = {"Name": secret.name, "SecretString": document, "ClientRequestToken": token,
                                "Description": "TLS certificate and private key deployed by certrenew",
                                "Tags": [{"Key": MANAGED_TAG, "Value": "true"}]}
        if secret.kms_key:
            args["KmsKeyId"] = secret.kms_key
        try:
            sm.create_secret(**args)
            return True
        except ClientError as exc:
            if _code(exc) == "ResourceExistsException":
                log.info("secret %s appeared while creating it: writing a new version instead", secret.name)
                return False
            raise _failure(target, "secretsmanager", "CreateSecret", secret.name, exc) from None
        except BotoCoreError as exc:
            raise _failure(target, "secretsmanager", "CreateSecret", secret.name, exc) from None

    @staticmethod
    def _describe(sm, secret: SecretTarget, target: str) -> dict | None:
        try:
            return sm.describe_secret(SecretId=secret.name)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise _failure(target, "secretsmanager", "DescribeSecret", secret.name, exc) from None
        except BotoCoreError as exc:
            raise _failure(target, "secretsmanager", "DescribeSecret", secret.name, exc) from None

    def _check_usable(self, described: dict, secret: SecretTarget, role_arn: str | None, target: str) -> None:
        if described.get("DeletedDate"):
            raise DeployError(target, f"the secret is scheduled for deletion (on {described['DeletedDate']}); "
                                      f"restore it (aws secretsmanager restore-secret --secret-id {secret.name}) "
                                      "or configure another secret name")
        actual = described.get("KmsKeyId")
        if not self._same_key(secret.kms_key, actual, secret.region, role_arn, target):
            shown = actual or f"the AWS managed key {AWS_MANAGED_SECRET_KEY}"
            wanted = secret.kms_key or f"the AWS managed key {AWS_MANAGED_SECRET_KEY}"
            raise DeployError(target, f"the secret is encrypted with {shown}, the config says {wanted}; certrenew "
                                      "does not re-encrypt a secret: set kms_key to the secret's key, or change "
                                      "the secret's key yourself (aws secretsmanager update-secret --kms-key-id)")

    def _same_key(self, configured: str | None, actual: str | None, region: str, role_arn: str | None,
                  target: str) -> bool:
        """Whether two keys as written are one key: equal canonical forms are; two key ids (or a
        key id and the AWS managed key) that differ are not; an alias on either side is resolved
        through KMS DescribeKey."""
        left, right = key_reference(configured, AWS_MANAGED_SECRET_KEY), key_reference(actual, AWS_MANAGED_SECRET_KEY)
        if left == right:
            return True
        if not any(side and side.startswith("alias/") for side in (left, right)):
            return False  # two key ids, or a key id and the AWS managed key (whose id no one configures)
        if self._kms_for is None:
            raise DeployError(target, f"cannot tell whether the secret's key {actual or AWS_MANAGED_SECRET_KEY} is "
                                      f"the configured {configured or AWS_MANAGED_SECRET_KEY}: write kms_key as "
                                      "the secret shows it (aws secretsmanager describe-secret)")
        kms = self._kms_for(region, role_arn)
        return self._key_id(kms, left, target) == self._key_id(kms, right, target)

    @staticmethod
    def _key_id(kms, key: str | None, target: str) -> str:
        try:
            return kms.describe_key(KeyId=key or AWS_MANAGED_SECRET_KEY)["KeyMetadata"]["KeyId"]
        except (ClientError, BotoCoreError) as exc:
            raise _failure(target, "kms", "DescribeKey", key or AWS_MANAGED_SECRET_KEY, exc) from None


def _secret_target(secret: SecretTarget) -> str:
    return str(Target(SECRETSMANAGER, f"{secret.region}/{secret.name}"))


# ---- SSM Parameter Store ----------------------------------------------------------------------

STANDARD_MAX = 4_096  # bytes (SSM counts characters; PEM is ASCII)
ADVANCED_MAX = 8_192
MAX_NAME = 1_011  # including the ARN before the name: arn:aws:ssm:<region>:<account>:parameter
MAX_LEVELS = 15
FILES = ("privkey.pem", "fullchain.pem", "cert.pem", "chain.pem")  # the order they are written in
MARKER = "current.json"
_PATH = re.compile(r"^/(?:[A-Za-z0-9_.-]+/)*$")


def parameter_values(material: CertificateMaterial) -> dict[str, str]:
    pems = {"privkey.pem": material.key_pem, "fullchain.pem": material.fullchain_pem,
            "cert.pem": material.cert_pem, "chain.pem": material.chain_pem}
    return {name: pems[name] for name in FILES}


def prefix_problem(prefix: str, region: str) -> str | None:
    """Why SSM would refuse parameters under `prefix` (None: it would take them)."""
    if not _PATH.match(prefix) or prefix == "/":
        return (f"{prefix!r} is not an SSM path prefix: it starts and ends with '/', and between them holds "
                "names of letters, digits, '.', '-' and '_' separated by single '/', e.g. /certs/example.com/")
    first = prefix.split("/")[1].lower()
    if first.startswith(("aws", "ssm")):
        return f"{prefix!r}: SSM reserves names beginning with 'aws' or 'ssm' (any case)"
    levels = prefix.count("/")  # the levels of the prefix, plus the file name's
    if levels > MAX_LEVELS:
        return f"{prefix!r} makes parameter names {levels} levels deep; SSM allows {MAX_LEVELS}"
    arn = f"arn:{_partition(region)}:ssm:{region}:123456789012:parameter"
    longest = len(arn) + len(prefix) + max(len(n) for n in (*FILES, MARKER))
    if longest > MAX_NAME:
        return (f"{prefix!r} is too long: SSM allows {MAX_NAME} characters for a name with its ARN "
                f"({arn}...), and {prefix}fullchain.pem needs {longest}")
    return None


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


class SsmParameterWriter:
    """`<prefix>privkey.pem`, `fullchain.pem`, `cert.pem`, `chain.pem` as SecureString, then the
    marker `<prefix>current.json` (a String, not secret):

        {"serial": "...", "not_after": "...", "versions": {"cert.pem": 7, "chain.pem": 7, ...}}

    SSM has no transaction over several parameters, so between the writes a reader can see a new
    key with the old certificate (or, in any other order, the old key with a new certificate): no
    order avoids a broken pair. The key goes first, the marker last. A reader that wants a
    consistent set reads the marker, then the four parameters at exactly those versions (one
    GetParameters call with names `<prefix>cert.pem:7`, ...): that set is always one
    certificate's, even while a renewal writes. A reader that reads the plain names should check
    that the key matches the certificate (TLS libraries refuse a mismatched pair) and read again
    a moment later when it does not.

    A write that fails half-way (throttling, a key policy) leaves the marker at the earlier set,
    so careful readers keep it; the target is not recorded as deployed and the next run writes
    all five again. Sizes are checked before the first write (a refusal half-way would leave a
    broken set for plain readers): with
    tier Standard every value must be at most 4,096 bytes, in every tier at most 8,192;
    Intelligent-Tiering (the default) makes a parameter Advanced only when its value needs it.
    """

    def __init__(self, client_for: Callable[[str, str | None], Any]) -> None:
        self._client_for = client_for

    def check(self, parameters: ParameterTarget, role_arn: str | None) -> None:
        """A valid prefix, and the parameters can be read (missing ones are fine)."""
        target = _ssm_target(parameters)
        problem = prefix_problem(parameters.prefix, parameters.region)
        if problem:
            raise DeployError(target, problem)
        names = [parameters.prefix + n for n in (*FILES, MARKER)]
        try:
            self._client_for(parameters.region, role_arn).get_parameters(Names=names, WithDecryption=False)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(target, "ssm", "GetParameters", f"{parameters.prefix}*", exc) from None

    def put(self, parameters: ParameterTarget, material: CertificateMaterial, role_arn: str | None) -> None:
        target = _ssm_target(parameters)
        problem = prefix_problem(parameters.prefix, parameters.region)
        if problem:
            raise DeployError(target, problem)
        values = parameter_values(material)
        for name, value in values.items():
            _check_size(target, parameters, name, len(value.encode("utf-8")))
        ssm = self._client_for(parameters.region, role_arn)
        versions = {name: self._put(ssm, parameters, name, value, target) for name, value in values.items()}
        described = pki.describe(material.cert_pem)
        marker = json.dumps({"serial": described.serial, "not_after": _iso(described.not_after),
                             "versions": {name: versions[name] for name in sorted(versions)}})
        self._put(ssm, parameters, MARKER, marker, target, secure=False)
        log.info("parameters under %s now hold %s", parameters.prefix, described.serial)

    @staticmethod
    def _put(ssm, parameters: ParameterTarget, name: str, value: str, target: str, secure: bool = True) -> int:
        full = parameters.prefix + name
        args: dict[str, Any] = {"Name": full, "Value": value, "Overwrite": True,
                                "Type": "SecureString" if secure else "String",
                                "Tier": parameters.tier if secure else "Standard"}
        if secure and parameters.kms_key:
            args["KeyId"] = parameters.kms_key
        try:
            return int(ssm.put_parameter(**args)["Version"])
        except ClientError as exc:
            if _code(exc) == "InvalidKeyId":
                message = exc.response.get("Error", {}).get("Message", "")
                raise DeployError(target, f"SSM cannot encrypt {full} with the key "
                                          f"{parameters.kms_key or AWS_MANAGED_SSM_KEY} (InvalidKeyId: {message}); "
                                          "check that the key exists in this region and account, is enabled, "
                                          "and allows the renewer's role to use it") from None
            raise _failure(target, "ssm", "PutParameter", full, exc) from None
        except BotoCoreError as exc:
            raise _failure(target, "ssm", "PutParameter", full, exc) from None


def _check_size(target: str, parameters: ParameterTarget, name: str, size: int) -> None:
    full = parameters.prefix + name
    if size > ADVANCED_MAX:
        raise DeployError(target, f"{full} would be {size} bytes; SSM parameters hold at most {ADVANCED_MAX} "
                                  "(Advanced tier): deploy this certificate to Secrets Manager or S3 instead")
    if parameters.tier == "Standard" and size > STANDARD_MAX:
        raise DeployError(target, f"{full} would be {size} bytes; the Standard tier holds at most {STANDARD_MAX}: "
                                  "set tier to Intelligent-Tiering (Advanced only where needed) or Advanced "
                                  "(Advanced parameters are charged)")


def _ssm_target(parameters: ParameterTarget) -> str:
    return str(Target(SSM, f"{parameters.region}:{parameters.prefix}"))
