"""Read template.yaml back: a CloudFormation-aware YAML loader, a small intrinsic evaluator and
the functions' IAM policies as data.

A function's policy is its inline ``Policies`` plus every ``AWS::IAM::Policy`` resource attached
to its SAM-generated role (``Roles: [!Ref <Function>Role]``): the renewer and the worker share
``RenewerPolicy``; the renewer alone may send to the fan-out queue. The SQS poller permissions
SAM adds to the worker for its event source are not listed here.

Used by tests/unit/test_template.py and by the devstack proxy's strict IAM rule
(devstack/strict/iam.py), which judges every call the product makes by these statements:

    from devstack.template_policy import actions_for_call, allowed_actions, missing_permissions

    allowed_actions()                       # every action the role can get (all options on)
    allowed_actions({"DistributionIds": ""})  # ... with these parameter values
    actions_for_call("route53", "ChangeResourceRecordSets")  # -> ("route53:ChangeResourceRecordSets",)
    missing_permissions([("s3", "HeadBucket"), ("cloudfront", "GetDistribution")])
        # -> {("cloudfront", "GetDistribution"): ("cloudfront:GetDistribution",)}

Calls are (botocore service name, operation name) pairs, as botocore reports them in its
events (``before-call.s3.GetObject``) and as ``Stubber`` takes them; snake_case method names
(``get_object``) are accepted too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from acme_flow.lambda_template import CfnLoader

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
FUNCTION = "RenewerFunction"
WORKER = "WorkerFunction"
FUNCTIONS = (FUNCTION, WORKER)

# ---------------------------------------------------------------------------------------------
# YAML loader for CloudFormation short-form tags: the product's own (`certrenew invoke --function`
# reads template.yaml with it), so both read the template the same way.
CfnYamlLoader = CfnLoader


def load_template(path: Path | str = TEMPLATE_PATH) -> dict:
    """The template as plain data, short-form tags expanded to their long form."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=CfnYamlLoader)  # noqa: S506 - SafeLoader subclass


# ---------------------------------------------------------------------------------------------
# A small evaluator for the intrinsics the template uses

NO_VALUE = object()  # AWS::NoValue

PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "certrenew",
    "AWS::URLSuffix": "amazonaws.com",
}

# Parameter values that switch every optional permission on.
ALL_OPTIONS_PARAMETERS = {
    "HostedZoneIds": "Z0123456789ABC,Z0987654321DEF",
    "DnsRoleArns": "arn:aws:iam::210987654321:role/dns",
    "DistributionIds": "E2ABCDEF123456,E3ABCDEF654321",
    "ExportBucket": "my-certs",
    "ExportKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "ConfigLocation": "s3://my-config/certrenew/certificates.yaml",
    "TenantIds": "dt_2abc",
    "ListenerArns": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef",
    "ApiDomainNames": "api.example.com",
    "SecretNamePrefix": "certrenew/",
    "ParameterPathPrefix": "/certrenew/",
    "DeployKmsKeyArns": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "DeployRoleArns": "arn:aws:iam::222222222222:role/certrenew-deploy",
}


class Context:
    """Parameter values (defaults, then overrides), pseudo parameters and conditions.

    A reference to a resource evaluates to a placeholder: ``{{StateBucket}}`` for
    ``!Ref StateBucket``, ``{{StateKey.Arn}}`` for ``!GetAtt StateKey.Arn``."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
        pseudo: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.pseudo = {**PSEUDO_PARAMETERS, **(pseudo or {})}
        declared = template.get("Parameters", {})
        unknown = set(parameters or {}) - set(declared)
        if unknown:
            raise KeyError(f"unknown template parameters: {sorted(unknown)}")
        self.parameters: dict[str, Any] = {}
        for name, spec in declared.items():
            if parameters and name in parameters:
                value = parameters[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise KeyError(f"parameter {name} has no default: pass a value")
            if spec["Type"] == "CommaDelimitedList":
                value = value if isinstance(value, list) else str(value).split(",")
                value = [item.strip() for item in value]
            self.parameters[name] = value
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self._conditions[name]

    def eval(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if isinstance(value, list):
            items = [self.eval(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.pseudo:
                    return self.pseudo[arg]
                if arg in self.parameters:
                    return self.parameters[arg]
                if arg in self.template.get("Resources", {}):
                    return "{{%s}}" % arg
                raise KeyError(f"Ref to unknown name {arg!r}")
            if key == "Fn::GetAtt":
                resource, attribute = arg
                return "{{%s.%s}}" % (resource, attribute)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.eval(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.eval(item) for item in arg)
                return left == right
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Fn::And":
                return all(self.eval(item) for item in arg)
            if key == "Fn::Or":
                return any(self.eval(item) for item in arg)
            if key == "Fn::Join":
                delimiter, items = arg
                if not isinstance(delimiter, str):
                    raise ValueError("Fn::Join takes no function as its delimiter")
                return delimiter.join(str(item) for item in self.eval(items))
            if key == "Fn::Split":
                delimiter, source = arg
                if not isinstance(delimiter, str):
                    raise ValueError("Fn::Split takes no function as its delimiter")
                return self.eval(source).split(delimiter)
            if key == "Fn::Select":
                index, items = arg
                return self.eval(items)[int(self.eval(index))]
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not evaluated by template_policy")
        evaluated = {key: self.eval(item) for key, item in value.items()}
        return {key: item for key, item in evaluated.items() if item is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, variables = arg[0], {k: self.eval(v) for k, v in arg[1].items()}
        if not isinstance(text, str):
            raise ValueError("Fn::Sub takes no function as its template string")

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                return "{{%s}}" % name
            resolved = self.eval({"Ref": name})
            if isinstance(resolved, list):
                raise ValueError(f"Fn::Sub cannot insert the list parameter {name}")
            return str(resolved)

        return re.sub(r"\$\{([^}]+)\}", replace, text)


# ---------------------------------------------------------------------------------------------
# The renewer's policy


@dataclass(frozen=True)
class Statement:
    """One statement of the function's inline policy.

    ``actions`` are as written; ``resources`` and ``conditions`` are the raw template values
    (intrinsics in long form) unless the statement came from ``resolved_statements``, where
    they are plain strings. ``only_if`` names the template condition that wraps the statement
    (``!If [Cond, statement, !Ref AWS::NoValue]``), or None when it is always present."""

    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[Any, ...]
    conditions: Mapping[str, Any] = field(default_factory=dict)
    only_if: str | None = None


def _as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, list) else (value,)


def attached_policies(template: Mapping[str, Any], function: str) -> list[str]:
    """Logical ids of the AWS::IAM::Policy resources attached to the function's role."""
    role = {"Ref": f"{function}Role"}
    return [name for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::IAM::Policy" and role in resource["Properties"].get("Roles", [])]


def _raw_statements(template: Mapping[str, Any], function: str) -> list[tuple[str | None, dict]]:
    props = template["Resources"][function]["Properties"]
    documents = []
    for policy in props.get("Policies", []):
        if not isinstance(policy, dict) or "Statement" not in policy:
            raise AssertionError(f"{function}: only inline policy documents are expected, got {policy!r}")
        documents.append(policy)
    documents += [template["Resources"][name]["Properties"]["PolicyDocument"]
                  for name in attached_policies(template, function)]
    out: list[tuple[str | None, dict]] = []
    for policy in documents:
        for item in policy["Statement"]:
            if set(item) == {"Fn::If"}:
                name, when_true, when_false = item["Fn::If"]
                if when_false != {"Ref": "AWS::NoValue"}:
                    raise AssertionError(f"statement under !If {name} must fall back to AWS::NoValue")
                out.append((name, when_true))
            else:
                out.append((None, item))
    return out


def policy_statements(template: Mapping[str, Any] | None = None, function: str = FUNCTION) -> list[Statement]:
    """Every statement of the function's policies (inline and attached), conditional ones included."""
    template = template if template is not None else load_template()
    statements = []
    for only_if, raw in _raw_statements(template, function):
        statements.append(
            Statement(
                sid=raw.get("Sid", ""),
                effect=raw["Effect"],
                actions=_as_tuple(raw["Action"]),
                resources=_as_tuple(raw["Resource"]),
                conditions=raw.get("Condition", {}),
                only_if=only_if,
            )
        )
    return statements


def resolved_statements(
    parameters: Mapping[str, Any] | None = None,
    template: Mapping[str, Any] | None = None,
    function: str = FUNCTION,
    pseudo: Mapping[str, str] | None = None,
) -> list[Statement]:
    """The statements the deployed role would get for these parameter values (defaults for
    the rest; HostedZoneIds needs a value, a sample one is used when not given), with
    resources and conditions evaluated to strings."""
    template = template if template is not None else load_template()
    parameters = {"HostedZoneIds": ALL_OPTIONS_PARAMETERS["HostedZoneIds"], **(parameters or {})}
    ctx = Context(template, parameters, pseudo)
    out = []
    for statement in policy_statements(template, function):
        if statement.only_if and not ctx.condition(statement.only_if):
            continue
        resources: list[str] = []
        for resource in statement.resources:
            value = ctx.eval(resource)
            resources.extend(value if isinstance(value, list) else [value])
        out.append(
            Statement(
                sid=statement.sid,
                effect=statement.effect,
                actions=statement.actions,
                resources=tuple(resources),
                conditions=ctx.eval(statement.conditions),
                only_if=statement.only_if,
            )
        )
    return out


def allowed_actions(parameters: Mapping[str, Any] | None = None, function: str = FUNCTION) -> set[str]:
    """IAM actions the function's role allows. No parameters: with every option switched on
    (``ALL_OPTIONS_PARAMETERS``); otherwise for exactly these parameter values."""
    if parameters is None:
        parameters = ALL_OPTIONS_PARAMETERS
    return {
        action
        for statement in resolved_statements(parameters, function=function)
        if statement.effect == "Allow"
        for action in statement.actions
    }


def statements_allowing(action: str, parameters: Mapping[str, Any] | None = None,
                        function: str = FUNCTION) -> list[Statement]:
    """The resolved statements that allow ``action`` (for resource and condition checks)."""
    if parameters is None:
        parameters = ALL_OPTIONS_PARAMETERS
    return [s for s in resolved_statements(parameters, function=function)
            if s.effect == "Allow" and action in s.actions]


# ---------------------------------------------------------------------------------------------
# AWS calls -> IAM actions they need
#
# Keyed by (botocore service name, operation name). S3 object calls on the state bucket also
# need the KMS actions of SSE-KMS. An entry whose actions the policy does not grant is on
# purpose: a call the code must not make (or the policy must grow, knowingly).

IAM_ACTIONS_BY_CALL: dict[tuple[str, str], tuple[str, ...]] = {
    # state bucket (SSE-KMS with the stack key)
    ("s3", "HeadBucket"): ("s3:ListBucket",),
    ("s3", "ListObjectsV2"): ("s3:ListBucket",),
    ("s3", "ListObjects"): ("s3:ListBucket",),
    ("s3", "GetObject"): ("s3:GetObject", "kms:Decrypt"),
    ("s3", "HeadObject"): ("s3:GetObject", "kms:Decrypt"),
    ("s3", "PutObject"): ("s3:PutObject", "kms:GenerateDataKey"),
    ("s3", "DeleteObject"): ("s3:DeleteObject",),
    ("s3", "DeleteObjects"): ("s3:DeleteObject",),
    ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey"),
    ("s3", "GetObjectVersion"): ("s3:GetObjectVersion",),
    ("s3", "ListObjectVersions"): ("s3:ListBucketVersions",),
    ("s3", "GetBucketLocation"): ("s3:GetBucketLocation",),  # the export bucket's region (preflight)
    ("s3", "GetBucketEncryption"): ("s3:GetEncryptionConfiguration",),  # its default key (preflight)
    # DNS-01
    ("route53", "ListHostedZones"): ("route53:ListHostedZones",),
    ("route53", "ListHostedZonesByName"): ("route53:ListHostedZonesByName",),
    ("route53", "GetHostedZone"): ("route53:GetHostedZone",),
    ("route53", "ListResourceRecordSets"): ("route53:ListResourceRecordSets",),
    ("route53", "ChangeResourceRecordSets"): ("route53:ChangeResourceRecordSets",),
    ("route53", "GetChange"): ("route53:GetChange",),
    ("sts", "AssumeRole"): ("sts:AssumeRole",),
    ("sts", "GetCallerIdentity"): (),  # needs no permission
    # ACM (ImportCertificate with Tags is also authorized as AddTagsToCertificate)
    ("acm", "ImportCertificate"): ("acm:ImportCertificate", "acm:AddTagsToCertificate"),
    ("acm", "DescribeCertificate"): ("acm:DescribeCertificate",),
    ("acm", "ListCertificates"): ("acm:ListCertificates",),
    ("acm", "AddTagsToCertificate"): ("acm:AddTagsToCertificate",),
    ("acm", "DeleteCertificate"): ("acm:DeleteCertificate",),
    ("acm", "GetCertificate"): ("acm:GetCertificate",),
    ("acm", "ListTagsForCertificate"): ("acm:ListTagsForCertificate",),
    # CloudFront
    ("cloudfront", "GetDistributionConfig"): ("cloudfront:GetDistributionConfig",),
    ("cloudfront", "UpdateDistribution"): ("cloudfront:UpdateDistribution",),
    ("cloudfront", "GetDistribution"): ("cloudfront:GetDistribution",),
    ("cloudfront", "ListDistributions"): ("cloudfront:ListDistributions",),
    # the attached target kinds (issue 13)
    ("cloudfront", "GetDistributionTenant"): ("cloudfront:GetDistributionTenant",),
    ("cloudfront", "UpdateDistributionTenant"): ("cloudfront:UpdateDistributionTenant",),
    ("cloudfront", "GetManagedCertificateDetails"): ("cloudfront:GetManagedCertificateDetails",),
    ("elasticloadbalancing", "DescribeListeners"): ("elasticloadbalancing:DescribeListeners",),
    ("elasticloadbalancing", "DescribeListenerCertificates"): ("elasticloadbalancing:DescribeListenerCertificates",),
    ("elasticloadbalancing", "AddListenerCertificates"): ("elasticloadbalancing:AddListenerCertificates",),
    ("elasticloadbalancing", "RemoveListenerCertificates"): ("elasticloadbalancing:RemoveListenerCertificates",),
    ("elasticloadbalancing", "ModifyListener"): ("elasticloadbalancing:ModifyListener",),
    ("apigateway", "GetDomainName"): ("apigateway:GET",),
    ("apigateway", "UpdateDomainName"): ("apigateway:PATCH",),
    ("secretsmanager", "DescribeSecret"): ("secretsmanager:DescribeSecret",),
    ("secretsmanager", "CreateSecret"): ("secretsmanager:CreateSecret", "secretsmanager:TagResource"),
    ("secretsmanager", "PutSecretValue"): ("secretsmanager:PutSecretValue",),
    ("ssm", "PutParameter"): ("ssm:PutParameter",),
    ("kms", "DescribeKey"): ("kms:DescribeKey",),
    # notification, outcome events
    ("sns", "Publish"): ("sns:Publish",),
    ("events", "PutEvents"): ("events:PutEvents",),
    # fan-out (the renewer sends; the worker is fed by its event source, not by its own calls)
    ("sqs", "SendMessageBatch"): ("sqs:SendMessage",),
    ("sqs", "SendMessage"): ("sqs:SendMessage",),
    # config document, EAB HMAC key
    ("ssm", "GetParameter"): ("ssm:GetParameter",),
    ("ssm", "GetParameters"): ("ssm:GetParameters",),
    ("secretsmanager", "GetSecretValue"): ("secretsmanager:GetSecretValue",),
}

_BY_NORMALIZED = {
    (service, operation.lower()): actions for (service, operation), actions in IAM_ACTIONS_BY_CALL.items()
}


def actions_for_call(service: str, operation: str) -> tuple[str, ...]:
    """IAM actions one call needs. ``operation`` is ``GetObject`` or ``get_object``.
    An unknown call raises KeyError: add it to IAM_ACTIONS_BY_CALL (and to the template if
    the policy must allow it)."""
    key = (service.lower(), operation.replace("_", "").lower())
    try:
        return _BY_NORMALIZED[key]
    except KeyError:
        raise KeyError(
            f"no IAM mapping for {service}.{operation}: add it to IAM_ACTIONS_BY_CALL in {__file__}"
        ) from None


def missing_permissions(
    calls: Iterable[tuple[str, str]], parameters: Mapping[str, Any] | None = None, function: str = FUNCTION
) -> dict[tuple[str, str], tuple[str, ...]]:
    """For each call whose actions the function's policy does not all allow: the missing actions."""
    allowed = allowed_actions(parameters, function)
    missing = {}
    for service, operation in calls:
        lacking = tuple(a for a in actions_for_call(service, operation) if a not in allowed)
        if lacking:
            missing[(service, operation)] = lacking
    return missing


if __name__ == "__main__":  # a readable dump: python -m devstack.template_policy
    for st in resolved_statements(ALL_OPTIONS_PARAMETERS):  # the renewer's (the worker's lacks FanoutSend)
        print(json.dumps({"Sid": st.sid, "Action": st.actions, "Resource": st.resources,
                          "Condition": st.conditions, "OnlyIf": st.only_if}, indent=1))
