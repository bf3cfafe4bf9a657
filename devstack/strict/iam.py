"""IAM: every call the product makes is judged by the role template.yaml gives the renewer.

A call of principal "renewer" (certrenew's own clients) is allowed only when the statements of
RenewerFunction (its inline FanoutSend and the attached RenewerPolicy), resolved for this
deployment's template parameters, allow every IAM action the call needs (IAM_ACTIONS_BY_CALL in
devstack/template_policy.py) on the resource the request names, with the statement's conditions
met (Route53 record names/types/actions, aws:TagKeys, aws:ResourceTag, kms:ViaService). Else
the proxy answers as AWS does: AccessDenied (or the service's spelling of it) with AWS's message.

A call of the product signed with credentials moto's AssumeRole handed out is judged by that
role's own policies in moto's IAM of the role's account (inline and attached): a test creates
the role and its policy as the README tells an operator to. Test set-up ("admin") is not judged,
whatever credentials it uses.

The deployment (template parameters, and the values of the stack's own resources such as
StateBucket) is set through the proxy's control API: `proxy_client.configure(endpoint,
deployment={...})`; /_devstack/reset forgets it. "auto" for HostedZoneIds, DistributionIds,
DnsRoleArns (also as one item of a list), NotificationTopic, WorkQueue.Arn, StateKey.Arn means
what exists in moto at the time of the call (every hosted zone, distribution, role, topic, queue; the state bucket's
default KMS key).
"""

from __future__ import annotations

import json
import re
import threading
import xml.etree.ElementTree as ET
from functools import lru_cache
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from devstack import aws_ops
from devstack import template_policy as tp
from devstack.strict import RULE_FACTORIES, AwsError, Call
from devstack.strict import s3 as strict_s3

ACCOUNT = tp.PSEUDO_PARAMETERS["AWS::AccountId"]
REGION = tp.PSEUDO_PARAMETERS["AWS::Region"]
RENEWER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/certrenew-renewer/certrenew"
AUTO = "auto"
MEMORY_KEY = "iam.deployment"
ASSUMED_KEY = "iam.assumed"  # access key id -> (role ARN, session ARN)

# The stack's own resources, as template_policy writes references to them ({{StateBucket}}...).
RESOURCE_VALUES = ("StateBucket", "StateKey.Arn", "NotificationTopic", "WorkQueue.Arn")
AUTO_PARAMETERS = ("HostedZoneIds", "DistributionIds", "DnsRoleArns")
AUTO_RESOURCES = ("StateKey.Arn", "NotificationTopic", "WorkQueue.Arn")
# What a deployment is unless told otherwise (template defaults for the other parameters).
DEFAULT_DEPLOYMENT: dict[str, Any] = {
    "HostedZoneIds": AUTO, "DistributionIds": AUTO, "DnsRoleArns": AUTO,
    "StateKey.Arn": AUTO, "NotificationTopic": AUTO, "WorkQueue.Arn": AUTO,
}

DENIED = {  # service -> (code, HTTP status) of its "access denied" answer
    "s3": ("AccessDenied", 403), "route53": ("AccessDenied", 403), "cloudfront": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403), "sqs": ("AccessDenied", 403), "sns": ("AuthorizationError", 403),
    "acm": ("AccessDeniedException", 400), "events": ("AccessDeniedException", 400),
    "ssm": ("AccessDeniedException", 400), "secretsmanager": ("AccessDeniedException", 400),
    "kms": ("AccessDeniedException", 400), "elasticloadbalancing": ("AccessDenied", 400),
    "apigateway": ("AccessDeniedException", 403),
}

_TEMPLATE_PARAMETERS = frozenset(tp.load_template().get("Parameters", {}))


# ---------------------------------------------------------------------------------- deployment

def check_deployment(data: Any) -> dict:
    """The deployment as the control API takes it: template parameters and resource values,
    each a string or a list of strings. Raises ValueError naming an unknown key or bad value."""
    if not isinstance(data, dict):
        raise ValueError(f"deployment must be an object, got {data!r}")
    unknown = set(data) - _TEMPLATE_PARAMETERS - set(RESOURCE_VALUES)
    if unknown:
        raise ValueError(f"unknown deployment keys: {sorted(unknown)} (template parameters or "
                         f"{', '.join(RESOURCE_VALUES)})")
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise ValueError(f"deployment {key} must be a string or a list of strings, got {value!r}")
    return dict(data)


def deployment(memory: dict) -> dict:
    return {**DEFAULT_DEPLOYMENT, **memory.get(MEMORY_KEY, {})}


def set_deployment(memory: dict, data: dict) -> None:
    """Replace the deployment (what is not given falls back to DEFAULT_DEPLOYMENT)."""
    memory[MEMORY_KEY] = check_deployment(data)


@lru_cache(maxsize=64)
def _statements(parameters: str) -> tuple[tp.Statement, ...]:
    return tuple(tp.resolved_statements(json.loads(parameters), template=_template(), function=tp.FUNCTION))


_TEMPLATE_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _template() -> dict:
    with _TEMPLATE_LOCK:  # the first burst of calls parses template.yaml once, not once per thread
        return _loaded_template()


@lru_cache(maxsize=1)
def _loaded_template() -> dict:
    return tp.load_template()


def statements_for(deploy: dict) -> tuple[tp.Statement, ...]:
    """The renewer's statements resolved for this deployment ("auto" left as a placeholder)."""
    parameters = {}
    for name, value in deploy.items():
        if name not in _TEMPLATE_PARAMETERS:
            continue
        if name in AUTO_PARAMETERS:  # "auto" alone or as one item of the list
            auto = "{{auto:%s}}" % name
            value = auto if value == AUTO else [auto if v == AUTO else v for v in value] if isinstance(value, list) else value
        parameters[name] = value
    return _statements(json.dumps(parameters, sort_keys=True))


# ---------------------------------------------------------------------------------- matching

def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcards: * any run of characters (also /), ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


class Placeholders:
    """Values of {{...}} in resolved statements, read from the deployment or moto on demand."""

    _PATTERN = re.compile(r"\{\{([^}]+)\}\}")

    def __init__(self, call: Call, deploy: dict) -> None:
        self.call, self.deploy = call, deploy
        self._cache: dict[str, list[str]] = {}

    def expand(self, pattern: str) -> list[str]:
        match = self._PATTERN.search(pattern)
        if not match:
            return [pattern]
        out = []
        for value in self.values(match.group(1)):
            out.extend(self.expand(pattern[:match.start()] + value + pattern[match.end():]))
        return out

    def values(self, name: str) -> list[str]:
        if name not in self._cache:
            self._cache[name] = self._values(name)
        return self._cache[name]

    def _values(self, name: str) -> list[str]:
        if name.startswith("auto:"):
            return _auto(self.call, name[len("auto:"):])
        given = self.deploy.get(name)
        if name == "StateBucket.Arn":
            return [f"arn:aws:s3:::{b}" for b in self.values("StateBucket")]
        if given == AUTO and name in AUTO_RESOURCES:
            return _auto(self.call, name, self.deploy)
        if given is None or given == "":
            return []
        return list(given) if isinstance(given, list) else [given]


def _auto(call: Call, name: str, deploy: dict | None = None) -> list[str]:
    """What exists in moto now, for an "auto" deployment value."""
    if name == "HostedZoneIds":
        zones = _pages(call.moto("route53", None).get_paginator("list_hosted_zones"), "HostedZones")
        return [z["Id"].rsplit("/", 1)[-1] for z in zones]
    if name == "DistributionIds":
        listing = call.moto("cloudfront", None).list_distributions().get("DistributionList", {})
        return [d["Id"] for d in listing.get("Items", [])]
    if name == "DnsRoleArns":
        return [r["Arn"] for r in _pages(call.moto("iam", None).get_paginator("list_roles"), "Roles")]
    if name == "NotificationTopic":
        return [t["TopicArn"] for t in call.moto("sns", call.region or REGION).list_topics().get("Topics", [])]
    if name == "WorkQueue.Arn":
        urls = call.moto("sqs", call.region or REGION).list_queues().get("QueueUrls", [])
        return [_queue_arn(url, call.region) for url in urls]
    if name == "StateKey.Arn":
        buckets = _as_list((deploy or {}).get("StateBucket") or [])
        return [key for key in (_bucket_default_key(call, b) for b in buckets) if key]
    raise ValueError(f"no auto value for {name}")


def _as_list(value: Any) -> list[str]:
    return list(value) if isinstance(value, list) else [value]


def _pages(paginator, key: str) -> list[dict]:
    return [item for page in paginator.paginate() for item in page.get(key, [])]


class Condition:
    """The condition block of one statement, judged against the call's context keys."""

    def __init__(self, block: dict, context: Callable[[str], list[str] | None]) -> None:
        self.block, self.context = block, context

    def holds(self) -> bool:
        return all(self._operator(op, tests) for op, tests in self.block.items())

    def _operator(self, operator: str, tests: dict) -> bool:
        qualifier, _, base = operator.rpartition(":")
        if_exists = base.endswith("IfExists")
        base = base[: -len("IfExists")] if if_exists else base
        for key, wanted in tests.items():
            wanted = [str(w) for w in _as_list(wanted)]
            values = self.context(key)
            if qualifier == "ForAllValues":
                ok = not values or all(_compare(base, v, wanted) for v in values)
            elif qualifier == "ForAnyValue":
                ok = bool(values) and any(_compare(base, v, wanted) for v in values)
            elif values is None:
                ok = if_exists
            else:
                ok = any(_compare(base, v, wanted) for v in values)
            if not ok:
                return False
        return True


def _compare(base: str, value: str, wanted: list[str]) -> bool:
    negated = "Not" in base
    kind = base.replace("Not", "")
    if kind in ("StringEquals", "ArnEquals"):
        hit = value in wanted
    elif kind == "StringEqualsIgnoreCase":
        hit = value.lower() in [w.lower() for w in wanted]
    elif kind in ("StringLike", "ArnLike"):
        hit = any(_glob(w, value) for w in wanted)
    elif kind == "Bool":
        hit = value.lower() in [w.lower() for w in wanted]
    else:
        raise ValueError(f"condition operator {base} is not evaluated by devstack/strict/iam.py")
    return not hit if negated else hit


def statement_allows(statement, action: str, resource: str, placeholders: Placeholders | None,
                     context: Callable[[str], list[str] | None]) -> bool:
    """Does this statement match (action, resource) with its conditions met?"""
    if not any(_glob(a, action, ignore_case=True) for a in statement.actions):
        return False
    patterns = [p for r in statement.resources
                for p in (placeholders.expand(r) if placeholders else [r])]
    if not any(p == "*" or _glob(p, resource) for p in patterns):
        return False
    return Condition(statement.conditions or {}, context).holds()


def decide(statements: Iterable, action: str, resource: str, placeholders: Placeholders | None,
           context: Callable[[str], list[str] | None]) -> bool:
    """IAM's evaluation for one identity policy set: an explicit Deny wins, else an Allow is needed."""
    allowed = False
    for statement in statements:
        if statement_allows(statement, action, resource, placeholders, context):
            if statement.effect == "Deny":
                return False
            allowed = True
    return allowed


# ---------------------------------------------------------------------------------- requests

def requirements(call: Call) -> list[tuple[str, str]]:
    """(IAM action, resource ARN) pairs the call needs. Raises KeyError for an unmapped call."""
    actions = tp.actions_for_call(call.service, call.operation)
    if call.service == "s3":
        return _s3_requirements(call, actions)
    if call.service == "acm" and call.operation == "ImportCertificate" and not call.json().get("Tags"):
        actions = tuple(a for a in actions if a != "acm:AddTagsToCertificate")
    if call.service == "secretsmanager" and call.operation == "CreateSecret" and not call.json().get("Tags"):
        actions = tuple(a for a in actions if a != "secretsmanager:TagResource")
    return [(action, resource) for action in actions for resource in resources_of(call)]


def caller_account(call: Call) -> str:
    """The account the call acts in: an assumed role's (its keys, remembered), else the stack's."""
    assumed = call.memory.get(ASSUMED_KEY, {}).get(aws_ops.access_key_id(call.headers) or "")
    return assumed[0].split(":")[4] if assumed else ACCOUNT


def resources_of(call: Call) -> list[str]:
    """The ARNs an identity policy judges this (non-S3) call by, in the caller's account."""
    service, op, region = call.service, call.operation, call.region or REGION
    ACCOUNT = caller_account(call)  # noqa: N806 - the module's account, or an assumed role's
    if service == "route53":
        if op not in ("ListHostedZones", "ListHostedZonesByName") and (zone := aws_ops.route53_zone_id(call.path)):
            return [f"arn:aws:route53:::hostedzone/{zone}"]
        if change := aws_ops.route53_change_id(call.path):
            return [f"arn:aws:route53:::change/{change}"]
        return ["*"]
    if service == "cloudfront":
        if m := re.search(r"/distribution/([^/]+)", call.path):
            return [f"arn:aws:cloudfront::{ACCOUNT}:distribution/{m.group(1)}"]
        if m := re.search(r"/(?:distribution-tenant|managed-certificate)/([^/]+)", call.path):
            return [f"arn:aws:cloudfront::{ACCOUNT}:distribution-tenant/{m.group(1)}"]
        return ["*"]
    if service == "acm":
        if op == "ListCertificates":
            return ["*"]
        return [call.json().get("CertificateArn") or f"arn:aws:acm:{region}:{ACCOUNT}:certificate/*"]
    if service == "sns":
        form = call.form()
        return [form.get("TopicArn") or form.get("TargetArn") or "*"]
    if service == "ssm":
        body = call.json()
        names = body.get("Names") or [body.get("Name", "")]
        return [n if n.startswith("arn:") else f"arn:aws:ssm:{region}:{ACCOUNT}:parameter/{n.lstrip('/')}"
                for n in names]
    if service == "elasticloadbalancing":
        return [call.form().get("ListenerArn") or "*"] if op not in (
            "DescribeListeners", "DescribeListenerCertificates") else ["*"]
    if service == "apigateway":
        if m := re.fullmatch(r"/domainnames/([^/]+)", call.path):
            return [f"arn:aws:apigateway:{region}::/domainnames/{unquote(m.group(1))}"]
        return ["*"]
    if service == "kms":
        key = call.json().get("KeyId", "")
        return [key if key.startswith("arn:") else f"arn:aws:kms:{region}:{ACCOUNT}:{key if key.startswith('alias/') else 'key/' + key}"]
    if service == "secretsmanager":
        secret = call.json().get("SecretId") or call.json().get("Name", "")
        return [secret if secret.startswith("arn:") else f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secret}"]
    if service == "events":
        buses = {e.get("EventBusName") or "default" for e in call.json().get("Entries", [])} or {"default"}
        return sorted(b if b.startswith("arn:") else f"arn:aws:events:{region}:{ACCOUNT}:event-bus/{b}"
                      for b in buses)
    if service == "sqs":
        url = call.json().get("QueueUrl") or call.form().get("QueueUrl", "")
        return [_queue_arn(url, region)]
    if service == "sts":
        return [call.form().get("RoleArn") or "*"]
    return ["*"]


def _queue_arn(url: str, region: str) -> str:
    return f"arn:aws:sqs:{region or REGION}:{ACCOUNT}:{url.rstrip('/').rsplit('/', 1)[-1]}"


def _s3_target(call: Call) -> tuple[str, str]:
    bucket, _, key = call.path.lstrip("/").partition("/")
    return bucket, unquote(key)


def _s3_requirements(call: Call, actions: tuple[str, ...]) -> list[tuple[str, str]]:
    bucket, key = _s3_target(call)
    s3_actions = [a for a in actions if not a.startswith("kms:")]
    if call.operation == "CopyObject":
        source = call.headers.get("x-amz-copy-source", "").split("?", 1)[0].lstrip("/")
        src_bucket, _, src_key = unquote(source).partition("/")
        out = [("s3:GetObject", f"arn:aws:s3:::{src_bucket}/{src_key}"),
               ("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}")]
        out += [("kms:Decrypt", k) for k in _stored_key(call, src_bucket, src_key)]
        out += [("kms:GenerateDataKey", k) for k in _write_key(call, bucket)]
        return out
    if call.operation == "DeleteObjects":
        keys = _delete_keys(call.body)
        return [(a, f"arn:aws:s3:::{bucket}/{k}") for a in s3_actions for k in keys]
    resource = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
    out = [(a, resource) for a in s3_actions]
    if call.operation == "DeleteObject" and call.headers.get("if-match", "*") != "*":
        # AWS: a conditional delete on an ETag needs s3:GetObject as well as s3:DeleteObject
        out.append(("s3:GetObject", resource))
    if "kms:GenerateDataKey" in actions:
        out += [("kms:GenerateDataKey", k) for k in _write_key(call, bucket)]
    if "kms:Decrypt" in actions and call.operation in ANSWER_JUDGED_READS:
        call.scratch[DECRYPT_AFTER] = True  # judged by the answer's encryption headers, not a HeadObject
    elif "kms:Decrypt" in actions:
        out += [("kms:Decrypt", k) for k in _stored_key(call, bucket, key)]
    return out


# A read's kms:Decrypt is judged from moto's answer (`answer_key`): it names the object's
# encryption, so the proxy need not ask moto for the object's metadata first (that doubled the
# cost of every GetObject on the devstack). Only the answer is withheld on a denial, as AWS does.
ANSWER_JUDGED_READS = ("GetObject", "HeadObject")
DECRYPT_AFTER = "kms:Decrypt after the answer"


def answer_key(call: Call, resp) -> list[str]:
    """The customer KMS key an S3 answer says its object is encrypted with (see _stored_key)."""
    headers = {name.lower(): value for name, value in resp.headers}
    if not headers.get("x-amz-server-side-encryption", "").startswith("aws:kms"):
        return []
    return _customer_key(call, headers.get("x-amz-server-side-encryption-aws-kms-key-id"))


def _delete_keys(body: bytes) -> list[str]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return []
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]


def _write_key(call: Call, bucket: str) -> list[str]:
    """The customer KMS key a write is encrypted with (none for SSE-S3 and the AWS-managed aws/s3)."""
    sse = call.headers.get("x-amz-server-side-encryption")
    if sse:
        if sse not in ("aws:kms", "aws:kms:dsse"):
            return []
        return _customer_key(call, call.headers.get("x-amz-server-side-encryption-aws-kms-key-id"))
    key = _bucket_default_key(call, bucket)
    return [key] if key else []


def _bucket_default_key(call: Call, bucket: str) -> str | None:
    keys = _customer_key(call, strict_s3.default_key(call, bucket))
    return keys[0] if keys else None


def _stored_key(call: Call, bucket: str, key: str) -> list[str]:
    """The customer KMS key the stored object is encrypted with (reading it needs kms:Decrypt)."""
    try:
        head = call.moto("s3", None).head_object(Bucket=bucket, Key=key)
    except Exception:  # noqa: BLE001 - no such object: S3 answers NoSuchKey before any KMS call
        return []
    if not head.get("ServerSideEncryption", "").startswith("aws:kms"):
        return []
    return _customer_key(call, head.get("SSEKMSKeyId"))


def _customer_key(call: Call, key_id: str | None) -> list[str]:
    """The key's ARN, or nothing for the AWS-managed aws/s3 key (no KMS permission needed)."""
    if not key_id or key_id == "alias/aws/s3" or key_id.endswith(":alias/aws/s3"):
        return []
    region = key_id.split(":")[3] if key_id.startswith("arn:") else (call.region or REGION)
    try:
        meta = call.moto("kms", region).describe_key(KeyId=key_id)["KeyMetadata"]
    except Exception:  # noqa: BLE001 - unknown to moto: judge the id as given
        return [key_id if key_id.startswith("arn:") else f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"]
    return [] if meta.get("KeyManager") == "AWS" else [meta["Arn"]]


# ---------------------------------------------------------------------------------- context keys

class Context:
    """The request's condition keys, read lazily (some need moto's state)."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self._cache: dict[str, list[str] | None] = {}

    def __call__(self, key: str) -> list[str] | None:
        if key not in self._cache:
            self._cache[key] = self._value(key)
        return self._cache[key]

    def _value(self, key: str) -> list[str] | None:
        call = self.call
        if key.startswith("route53:ChangeResourceRecordSets"):
            return self._route53(key)
        if key == "aws:TagKeys":
            tags = call.json().get("Tags")
            return None if tags is None else [t.get("Key", "") for t in tags]
        if key.startswith("aws:RequestTag/"):
            tag = key.split("/", 1)[1]
            found = [t.get("Value", "") for t in call.json().get("Tags") or [] if t.get("Key") == tag]
            return found or None
        if key.startswith("aws:ResourceTag/") and call.service == "acm":
            return self._acm_tag(key.split("/", 1)[1])
        if key == "kms:ViaService" and call.service == "s3":
            return [f"s3.{call.region or REGION}.amazonaws.com"]
        return None

    def _route53(self, key: str) -> list[str] | None:
        changes = aws_ops.parse_change_batch(self.call.body)
        if key.endswith("NormalizedRecordNames"):
            return [normalized_record_name(c["name"]) for c in changes]
        if key.endswith("RecordTypes"):
            return [c["type"] for c in changes]
        if key.endswith("Actions"):
            return [c["action"] for c in changes]
        return None

    def _acm_tag(self, tag: str) -> list[str] | None:
        arn = self.call.json().get("CertificateArn")
        if not arn:
            return None
        region = arn.split(":")[3] or self.call.region
        try:
            tags = self.call.moto("acm", region).list_tags_for_certificate(CertificateArn=arn).get("Tags", [])
        except Exception:  # noqa: BLE001 - no such certificate: no tags
            return None
        found = [t.get("Value", "") for t in tags if t.get("Key") == tag]
        return found or None


def normalized_record_name(name: str) -> str:
    """As Route53 gives it to the condition: lowercase, no trailing dot, * written \\052."""
    return name.rstrip(".").lower().replace("*", "\\052")


# ---------------------------------------------------------------------------------- assumed roles

def remember_assumed_role(call: Call, resp) -> None:
    """After a successful AssumeRole: its access key id -> the role and session it stands for."""
    if resp.status != 200:
        return
    key = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", resp.body)
    session = re.search(rb"<Arn>([^<]+)</Arn>", resp.body)
    role = call.form().get("RoleArn")
    if key and role:
        call.memory.setdefault(ASSUMED_KEY, {})[key.group(1).decode()] = (
            role, session.group(1).decode() if session else role)


def role_statements(call: Call, role_arn: str) -> list[tp.Statement]:
    """The role's own policies in moto's IAM of its account (inline and attached), as statements."""
    iam = call.moto("iam", None, account=role_arn.split(":")[4])
    name = role_arn.rsplit("/", 1)[-1]
    documents = []
    try:
        for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
            documents.append(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
        for attached in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)[
                "PolicyVersion"]["Document"])
    except Exception:  # noqa: BLE001 - a role deleted since: it allows nothing
        return []
    out = []
    for document in documents:
        if isinstance(document, str):
            document = json.loads(unquote(document))
        for raw in _as_list(document.get("Statement", [])):
            out.append(tp.Statement(sid=raw.get("Sid", ""), effect=raw.get("Effect", "Deny"),
                                    actions=tuple(_as_list(raw.get("Action", []))),
                                    resources=tuple(_as_list(raw.get("Resource", []))),
                                    conditions=raw.get("Condition", {})))
    return out


# ---------------------------------------------------------------------------------- the rule

def denial(call: Call, who: str, action: str, resource: str) -> AwsError:
    code, status = DENIED.get(call.service, ("AccessDenied", 403))
    return AwsError(code, f'User: {who} is not authorized to perform: {action} on resource: "{resource}" '
                          f"because no identity-based policy allows the {action} action", status)


class RenewerPolicy:
    """Strict rule: the renewer's calls (and assumed roles' calls) under their IAM policies."""

    def before(self, call: Call) -> None:
        if call.principal != "renewer":
            return  # test set-up, also when it uses a role's credentials
        assumed = call.memory.get(ASSUMED_KEY, {}).get(aws_ops.access_key_id(call.headers) or "")
        if assumed:
            self._judge(call, assumed[1], role_statements(call, assumed[0]), None)
        else:
            deploy = deployment(call.memory)
            self._judge(call, RENEWER_ARN, statements_for(deploy), Placeholders(call, deploy))

    def after(self, call: Call, resp):
        if call.service == "sts" and call.operation == "AssumeRole":
            remember_assumed_role(call, resp)
        judged = call.scratch.pop(DECRYPT_AFTER, None)
        if isinstance(judged, tuple) and 200 <= resp.status < 300:
            who, statements, placeholders = judged
            for key in answer_key(call, resp):
                if not decide(statements, "kms:Decrypt", key, placeholders, Context(call)):
                    raise denial(call, who, "kms:Decrypt", key)
        return resp

    def _judge(self, call: Call, who: str, statements, placeholders: Placeholders | None) -> None:
        try:
            needed = requirements(call)
        except KeyError:
            code, status = DENIED.get(call.service, ("AccessDenied", 403))
            raise AwsError(code, f"User: {who} is not authorized to perform: {call.service}:{call.operation} "
                                 f"(devstack: the call {call.service}.{call.operation} has no IAM mapping: add "
                                 f"it to IAM_ACTIONS_BY_CALL in devstack/template_policy.py)", status) from None
        context = Context(call)
        for action, resource in needed:
            if not decide(statements, action, resource, placeholders, context):
                raise denial(call, who, action, resource)
        if call.scratch.get(DECRYPT_AFTER):
            call.scratch[DECRYPT_AFTER] = (who, statements, placeholders)


RULE_FACTORIES.append(RenewerPolicy)
