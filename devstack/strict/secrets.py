"""SSM Parameter Store and Secrets Manager as AWS checks them where moto 5.2.5 does not.

SSM PutParameter:
- a value of a Standard parameter (Tier Standard, or no Tier) is at most 4,096 characters, of any
  parameter at most 8,192 (moto stores any size in any tier);
- an Advanced parameter cannot go back to Standard (moto downgrades it);
- a SecureString's KeyId names a KMS key that exists in the caller's account and region, and is
  enabled: else InvalidKeyId with KMS's own message (moto accepts any KeyId).

Secrets Manager:
- CreateSecret's KmsKeyId names an existing, enabled key (moto accepts any); AWS answers
  InvalidParameterException (as reported for an unknown key or alias; the message here is ours);
- a SecretString is at most 65,536 bytes (moto stores more);
- PutSecretValue on a secret scheduled for deletion is refused with InvalidRequestException
  (moto writes the new version).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from devstack import aws_ops
from devstack.strict import RULE_FACTORIES, AwsError, Call

STANDARD_MAX = 4_096
ADVANCED_MAX = 8_192
MAX_SECRET_BYTES = 65_536


def _validation(message: str) -> AwsError:
    return AwsError("ValidationException", message, 400)


def _moto(call: Call, service: str):
    """A client reading moto's state as the caller's account (an assumed role's key is its account's)."""
    return call.moto(service, call.region, access_key=aws_ops.access_key_id(call.headers))


def key_problem(call: Call, key_id: str) -> str | None:
    """Why KMS would not encrypt with `key_id` for this caller (None: it would): KMS's message."""
    if key_id.startswith("alias/aws/"):
        return None  # the AWS managed keys are made on first use
    try:
        meta = _moto(call, "kms").describe_key(KeyId=key_id)["KeyMetadata"]
    except ClientError as exc:
        err = exc.response.get("Error", {})
        return f"{err.get('Message')} (Service: AWSKMS; Status Code: 400; Error Code: {err.get('Code')})"
    if meta.get("KeyState", "Enabled") != "Enabled":
        return (f"{meta['Arn']} is {meta['KeyState'].lower()}. (Service: AWSKMS; Status Code: 400; "
                "Error Code: KMSInvalidStateException)")
    return None


def _stored_tier(call: Call, name: str) -> str | None:
    try:
        found = _moto(call, "ssm").describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])["Parameters"]
    except ClientError:
        return None
    return found[0].get("Tier") if found else None


class PutParameterRule:
    """SSM PutParameter: value size by tier, no downgrade from Advanced, the KeyId exists."""

    def before(self, call: Call) -> None:
        if call.service != "ssm" or call.operation != "PutParameter":
            return
        params = call.json()
        size = len(str(params.get("Value", "")))
        tier = params.get("Tier") or "Standard"
        if size > ADVANCED_MAX:
            raise _validation(f"Advanced tier parameters support a maximum parameter value of {ADVANCED_MAX} characters.")
        if tier == "Standard" and size > STANDARD_MAX:
            raise _validation(
                f"Standard tier parameters support a maximum parameter value of {STANDARD_MAX} characters. To create "
                "a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more "
                "information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/"
                "parameter-store-advanced-parameters.html")
        if params.get("Tier") == "Standard" and _stored_tier(call, params.get("Name", "")) == "Advanced":
            raise _validation("This parameter uses the advanced-parameter tier. You can't downgrade a parameter from "
                              "the advanced-parameter tier to the standard-parameter tier. If necessary, you can "
                              "delete the advanced parameter and recreate it as a standard parameter.")
        key_id = params.get("KeyId")
        if params.get("Type") == "SecureString" and key_id:
            problem = key_problem(call, key_id)
            if problem:
                raise AwsError("InvalidKeyId", problem, 400)


class SecretRules:
    """Secrets Manager CreateSecret and PutSecretValue: size, KMS key, deletion."""

    def before(self, call: Call) -> None:
        if call.service != "secretsmanager" or call.operation not in ("CreateSecret", "PutSecretValue"):
            return
        params = call.json()
        size = len(str(params.get("SecretString", "")).encode("utf-8"))
        if size > MAX_SECRET_BYTES:
            raise _validation("1 validation error detected: Value at 'secretString' failed to satisfy constraint: "
                              f"Member must have length less than or equal to {MAX_SECRET_BYTES}")
        if call.operation == "CreateSecret" and params.get("KmsKeyId"):
            problem = key_problem(call, params["KmsKeyId"])
            if problem:
                raise AwsError("InvalidParameterException",
                               f"The KMS key {params['KmsKeyId']} cannot be used to encrypt the secret: {problem}", 400)
        if call.operation == "PutSecretValue" and self._scheduled_for_deletion(call, params.get("SecretId", "")):
            raise AwsError("InvalidRequestException", "You can't perform this operation on the secret because it "
                                                      "was marked for deletion.", 400)

    @staticmethod
    def _scheduled_for_deletion(call: Call, secret_id: str) -> bool:
        try:
            return bool(_moto(call, "secretsmanager").describe_secret(SecretId=secret_id).get("DeletedDate"))
        except ClientError:
            return False  # moto answers for a missing secret itself


RULE_FACTORIES.append(PutParameterRule)
RULE_FACTORIES.append(SecretRules)
