"""Opt-in regions: AWS answers every call to a region the account has not enabled as if the
credentials were unknown there ("The security token included in the request is invalid.").

Regions launched after 2019-03-20 are disabled by default in a new account (AWS Account
Management, "Enable or disable AWS Regions in your account"); moto serves every region. The
set the devstack account has enabled is the `enabled_regions` setting of /_devstack/config
(default: none, like a new account).
"""

from __future__ import annotations

from devstack import aws_ops
from devstack.strict import RULE_FACTORIES, AwsError, Call

# The opt-in regions of the aws partition (disabled by default), as AWS documents them.
OPT_IN_REGIONS = frozenset({
    "af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-6", "ap-southeast-7", "ca-west-1", "eu-central-2", "eu-south-1", "eu-south-2", "il-central-1",
    "me-central-1", "me-south-1", "mx-central-1",
})
INVALID_TOKEN = "The security token included in the request is invalid."


class OptInRegionsNotEnabled:
    config_defaults = {"enabled_regions": []}

    @staticmethod
    def validate(data: dict) -> None:
        if "enabled_regions" in data:
            value = data["enabled_regions"]
            if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
                raise ValueError(f"enabled_regions must be a list of region names, got {value!r}")

    def before(self, call: Call) -> None:
        if call.region not in OPT_IN_REGIONS:
            return
        if call.region in call.memory.get("config", {}).get("enabled_regions", []):
            return
        raise refusal(call)


def refusal(call: Call) -> AwsError:
    """AWS's answer in a region the account has not enabled, in the service's own words."""
    if call.service == "s3":
        return AwsError("InvalidToken", "The provided token is malformed or otherwise invalid.", 400)
    if aws_ops.protocol(call.service, call.query, call.headers, call.body) == "query":
        return AwsError("InvalidClientTokenId", INVALID_TOKEN, 403)
    return AwsError("UnrecognizedClientException", INVALID_TOKEN, 400)


RULE_FACTORIES.append(OptInRegionsNotEnabled)
