"""STS AssumeRole as AWS decides it: the role exists and its trust policy allows the caller.

moto hands out credentials for any role ARN. AWS answers 403 AccessDenied ("User: <caller> is
not authorized to perform: sts:AssumeRole on resource: <role>") when the role does not exist or
its trust policy does not allow the caller (it does not tell the two apart).

The devstack's callers: "renewer" (the product) is arn:aws:iam::123456789012:role/certrenew-renewer,
"admin" (test set-up) is the account's root, arn:aws:iam::123456789012:root. A trust policy allows
the caller when no Deny statement for sts:AssumeRole names it and an Allow statement does, by
Principal AWS "*", the account id, the account's root ARN, or the caller's ARN. Conditions are not
evaluated (a statement with a Condition counts as written).
"""

from __future__ import annotations

import fnmatch
import json
import re
from urllib.parse import unquote

from devstack.strict import RULE_FACTORIES, AwsError, Call

ACCOUNT = "123456789012"  # moto's default account: the account the devstack's callers live in
CALLERS = {
    # the function's role session, as AWS names a Lambda's caller (trust policies match its role)
    "renewer": f"arn:aws:sts::{ACCOUNT}:assumed-role/certrenew-renewer/certrenew",
    "admin": f"arn:aws:iam::{ACCOUNT}:root",
}
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")
_ASSUMED_ROLE = re.compile(r"^arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([^/]+)/[^/]+$")


def caller_arn(principal: str) -> str:
    return CALLERS.get(principal, principal)


def caller_names(arn: str) -> set[str]:
    """Every way a trust policy can name this caller (its ARN, its account, the account's root)."""
    assumed = _ASSUMED_ROLE.match(arn)
    if assumed:  # a role session is named in trust policies by its role's ARN
        arn = f"arn:aws:iam::{assumed.group(1)}:role/{assumed.group(2)}"
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    return {arn, account, f"arn:aws:iam::{account}:root"}


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _names_action(statement: dict) -> bool:
    """Does the statement's Action (maybe a wildcard like sts:* or sts:Assume*) cover sts:AssumeRole?"""
    return any(fnmatch.fnmatchcase("sts:assumerole", action.lower())
               for action in _as_list(statement.get("Action")) if isinstance(action, str))


def _names_caller(statement: dict, names: set[str]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(p == "*" or p in names for p in _as_list(principal.get("AWS")))


def trust_allows(policy: dict, caller: str) -> bool:
    names = caller_names(caller)
    matching = [s for s in _as_list(policy.get("Statement"))
                if isinstance(s, dict) and _names_action(s) and _names_caller(s, names)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return False
    return any(s.get("Effect") == "Allow" for s in matching)


class AssumeRoleRule:
    """AssumeRole: an existing role whose trust policy allows the caller."""

    def before(self, call: Call) -> None:
        if call.service != "sts" or call.operation != "AssumeRole":
            return
        role_arn = call.form().get("RoleArn", "")
        caller = caller_arn(call.principal)
        policy = self._trust_policy(call, role_arn)
        if policy is None or not trust_allows(policy, caller):
            raise AwsError("AccessDenied", f"User: {caller} is not authorized to perform: sts:AssumeRole "
                           f"on resource: {role_arn}", 403)

    def _trust_policy(self, call: Call, role_arn: str) -> dict | None:
        """The role's trust policy, None when there is no such role."""
        match = _ROLE_ARN.match(role_arn)
        if not match:
            return None
        try:
            role = call.moto("iam", None, account=match.group(1)).get_role(RoleName=match.group(2))["Role"]
        except Exception:  # noqa: BLE001 - NoSuchEntity: AWS answers AccessDenied all the same
            return None
        if role.get("Arn") != role_arn:  # same name, other path
            return None
        document = role.get("AssumeRolePolicyDocument")
        if isinstance(document, str):
            document = json.loads(unquote(document))
        return document or {}


RULE_FACTORIES.append(AssumeRoleRule)
