"""template.yaml: the stack's security properties and the renewer's least-privilege policy.

Pure file reading: no AWS, no SAM CLI (tests/unit/test_sam_validate.py runs the linters)."""

from __future__ import annotations

import json
import re
import pytest

from devstack import template_policy as tp

# Actions that support no resource-level permission: the only ones allowed on "*".
NON_RESOURCE_SCOPED = {"route53:ListHostedZones", "acm:ListCertificates", "cloudfront:ListDistributions",
                       "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates"}

# The full policy with every option on. Growing it is a decision: update this list knowingly.
EXPECTED_ACTIONS = {
    "s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetBucketLocation",
    "s3:GetEncryptionConfiguration",
    "kms:GenerateDataKey", "kms:Decrypt",
    "route53:ListHostedZones", "route53:GetChange", "route53:GetHostedZone",
    "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets",
    "sts:AssumeRole",
    "acm:ListCertificates", "acm:ImportCertificate", "acm:DescribeCertificate", "acm:GetCertificate",
    "acm:AddTagsToCertificate", "acm:DeleteCertificate", "acm:ListTagsForCertificate",
    "cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution", "cloudfront:ListDistributions",
    "sns:Publish", "events:PutEvents", "ssm:GetParameter", "secretsmanager:GetSecretValue",
    "sqs:SendMessage",
    # the attached target kinds (issue 13)
    "cloudfront:GetDistributionTenant", "cloudfront:UpdateDistributionTenant", "cloudfront:GetManagedCertificateDetails",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:AddListenerCertificates", "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:ModifyListener", "apigateway:GET", "apigateway:PATCH",
    "secretsmanager:DescribeSecret", "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue",
    "secretsmanager:TagResource", "ssm:PutParameter", "ssm:GetParameters",
    "kms:DescribeKey", "kms:Encrypt",
}

ZONES = "Z0123456789ABC,Z0987654321DEF"


@pytest.fixture(scope="module")
def template() -> dict:
    return tp.load_template()


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def effective(template: dict, name: str) -> dict:
    """A function's properties as SAM applies them: Globals.Function, then its own (maps such
    as Environment.Variables merged)."""
    merged = json.loads(json.dumps(template.get("Globals", {}).get("Function", {})))
    for key, value in template["Resources"][name]["Properties"].items():
        if key == "Environment":
            merged.setdefault("Environment", {"Variables": {}})["Variables"].update(value["Variables"])
        else:
            merged[key] = value
    return merged


@pytest.fixture(scope="module")
def function(template) -> dict:
    return effective(template, "RenewerFunction")


@pytest.fixture(scope="module")
def worker(template) -> dict:
    return effective(template, "WorkerFunction")


def param_default(template, name):
    return template["Parameters"][name]["Default"]


def by_sid(statements):
    return {s.sid: s for s in statements}


# ------------------------------------------------------------------------------ loader


def test_loader_expands_short_form_tags():
    text = """
    a: !Ref X
    b: !Sub "x-${AWS::Region}"
    c: !GetAtt Bucket.Arn
    d: !If [Cond, !Split [",", !Join ["-", [p, q]]], !Ref AWS::NoValue]
    e: !Select [0, !GetAZs ""]
    f: !Not [!Equals [!Condition C, true]]
    """
    import yaml

    data = yaml.load(text, Loader=tp.CfnYamlLoader)
    assert data["a"] == {"Ref": "X"}
    assert data["b"] == {"Fn::Sub": "x-${AWS::Region}"}
    assert data["c"] == {"Fn::GetAtt": ["Bucket", "Arn"]}
    assert data["d"] == {"Fn::If": ["Cond", {"Fn::Split": [",", {"Fn::Join": ["-", ["p", "q"]]}]}, {"Ref": "AWS::NoValue"}]}
    assert data["e"] == {"Fn::Select": [0, {"Fn::GetAZs": ""}]}
    assert data["f"] == {"Fn::Not": [{"Fn::Equals": [{"Condition": "C"}, True]}]}


# ------------------------------------------------------------------------------ the function


def test_template_is_sam(template):
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    functions = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    assert functions == ["RenewerFunction", "WorkerFunction"]


@pytest.mark.parametrize("name, handler", [("RenewerFunction", "handler.app.lambda_handler"),
                                           ("WorkerFunction", "handler.worker.lambda_handler")])
def test_function_runtime_and_entry_point(template, name, handler):
    props = effective(template, name)
    assert props["CodeUri"] == "src/"
    assert props["Handler"] == handler
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] == 900
    assert props["MemorySize"] == {"Ref": "MemorySize"}
    assert param_default(template, "MemorySize") == 512


def test_entry_points_exist():
    from handler import app, worker

    assert callable(app.lambda_handler) and callable(worker.lambda_handler)


def test_one_renewer_at_a_time_and_a_capped_worker(function, worker, template):
    ctx = tp.Context(template, {"HostedZoneIds": ZONES})
    assert ctx.eval(function["ReservedConcurrentExecutions"]) == 1
    assert ctx.eval(worker["ReservedConcurrentExecutions"]) == 2 == param_default(template, "WorkerConcurrency")
    # the escape hatch for accounts that cannot reserve concurrency drops the property
    ctx = tp.Context(template, {"HostedZoneIds": ZONES, "SingleConcurrentRun": "false"})
    assert ctx.eval(function["ReservedConcurrentExecutions"]) is tp.NO_VALUE
    assert ctx.eval(worker["ReservedConcurrentExecutions"]) is tp.NO_VALUE
    # ... while the event source still caps the worker
    (source,) = worker["Events"].values()
    assert source["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerConcurrency"}}


def test_crashed_run_is_not_retried_by_lambda(function):
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_environment(function, worker, template):
    assert worker["Environment"]["Variables"].items() <= function["Environment"]["Variables"].items()
    env = function["Environment"]["Variables"]
    assert env["CERTRENEW_STATE_BUCKET"] == {"Ref": "StateBucket"}
    assert env["CERTRENEW_STATE_KMS_KEY"] == {"Fn::GetAtt": ["StateKey", "Arn"]}
    assert env["CERTRENEW_CONFIG"] == {"Ref": "ConfigLocation"}
    assert param_default(template, "ConfigLocation") == "certificates.yaml"
    assert env["POWERTOOLS_SERVICE_NAME"] == "certrenew"
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert param_default(template, "LogLevel") == "INFO"
    # the topic the function publishes to: the stack's own unless one is given
    ctx = tp.Context(template, {"HostedZoneIds": ZONES})
    assert ctx.eval(env["CERTRENEW_SNS_TOPIC_ARN"]) == "{{NotificationTopic}}"
    given = "arn:aws:sns:us-east-1:123456789012:ops"
    ctx = tp.Context(template, {"HostedZoneIds": ZONES, "NotificationTopicArn": given})
    assert ctx.eval(env["CERTRENEW_SNS_TOPIC_ARN"]) == given
    assert env["CERTRENEW_CHECK_INTERVAL"] == {"Ref": "CheckInterval"}
    assert param_default(template, "CheckInterval") == "7d"
    # what only the handler reads (handler/settings.py)
    assert env["CERTRENEW_QUEUE_URL"] == {"Ref": "WorkQueue"}
    assert env["CERTRENEW_FANOUT_THRESHOLD"] == {"Ref": "FanoutThreshold"}
    assert param_default(template, "FanoutThreshold") == 10
    assert env["CERTRENEW_EVENT_BUS"] == {"Ref": "EventBusName"}
    assert param_default(template, "EventBusName") == "default"
    assert env["CERTRENEW_EXPIRING_DAYS"] == {"Ref": "ExpiryAlarmDays"}
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}


def test_settings_the_template_passes_are_read_by_the_handler(function):
    from acme_flow.bootstrap import Settings
    from handler.settings import HandlerSettings

    env = {"CERTRENEW_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
           "CERTRENEW_FANOUT_THRESHOLD": "10", "CERTRENEW_EVENT_BUS": "default", "CERTRENEW_EXPIRING_DAYS": "14"}
    assert set(env) <= set(function["Environment"]["Variables"])
    settings = HandlerSettings.from_env(env)
    core = Settings.from_env(env)
    assert (settings.queue_url, settings.fanout_threshold, core.event_bus, core.expiring_days) == (
        env["CERTRENEW_QUEUE_URL"], 10, "default", 14.0)


@pytest.mark.parametrize("value, ok", [("7d", True), ("1d", True), ("12h", True), ("1.5d", True), ("3600", True),
                                       ("7 days", False), ("", False), ("-1d", False)])
def test_check_interval_values_the_core_accepts(template, value, ok):
    from acme_flow.bootstrap import parse_interval
    from acme_flow.errors import SettingsError

    assert bool(re.fullmatch(template["Parameters"]["CheckInterval"]["AllowedPattern"], value)) is ok
    if ok:
        assert parse_interval(value, "CERTRENEW_CHECK_INTERVAL").total_seconds() > 0
    else:
        with pytest.raises(SettingsError):
            parse_interval(value or "x", "CERTRENEW_CHECK_INTERVAL")


def test_tracing_follows_the_parameter(function, template):
    assert function["Tracing"] == {"Ref": "TracingMode"}
    assert param_default(template, "TracingMode") == "Active"
    disabled = function["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"]
    assert tp.Context(template, {"HostedZoneIds": ZONES}).eval(disabled) == "false"
    assert tp.Context(template, {"HostedZoneIds": ZONES, "TracingMode": "PassThrough"}).eval(disabled) == "true"


@pytest.mark.parametrize("name, group", [("RenewerFunction", "RenewerLogGroup"), ("WorkerFunction", "WorkerLogGroup")])
def test_log_group_with_retention(resources, template, name, group):
    assert resources[group]["Type"] == "AWS::Logs::LogGroup"
    assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert param_default(template, "LogRetentionDays") == 90
    assert effective(template, name)["LoggingConfig"]["LogGroup"] == {"Ref": group}


def test_weekly_schedule_v2(function, template):
    events = function["Events"]
    assert len(events) == 1
    (event,) = events.values()
    assert event["Type"] == "ScheduleV2"
    props = event["Properties"]
    assert props["ScheduleExpression"] == {"Ref": "ScheduleExpression"}
    assert param_default(template, "ScheduleExpression") == "rate(7 days)"
    assert props["OmitName"] is True
    assert json.loads(props["Input"]) == {"action": "renew", "schedule": "<aws.scheduler.schedule-arn>",
                                          "scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert props["State"] == {"Ref": "ScheduleState"}
    assert template["Parameters"]["ScheduleState"]["AllowedValues"] == ["ENABLED", "DISABLED"]
    assert param_default(template, "ScheduleState") == "ENABLED"
    assert "RetryPolicy" in props


# ------------------------------------------------------------------------------ state


def test_state_key_rotates_and_account_administers_it(resources):
    key = resources["StateKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    (statement,) = key["Properties"]["KeyPolicy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
    assert key["DeletionPolicy"] == "Retain"


def test_state_bucket_is_versioned_and_retained(resources):
    bucket = resources["StateBucket"]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"


def test_state_bucket_sse_kms_with_stack_key(resources):
    (rule,) = resources["StateBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["StateKey", "Arn"]},
    }
    assert rule["BucketKeyEnabled"] is True


def test_state_bucket_public_access_fully_blocked(resources):
    props = resources["StateBucket"]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_state_bucket_lifecycle_never_expires_current_objects(resources, template):
    rules = resources["StateBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(
        r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == {"Ref": "NoncurrentVersionRetentionDays"}
        for r in rules
    )
    assert param_default(template, "NoncurrentVersionRetentionDays") == 90
    for rule in rules:
        assert not {"ExpirationInDays", "ExpirationDate", "Transitions", "Transition"} & set(rule), rule


def test_state_bucket_removes_delete_markers_left_alone(resources):
    """Deleted challenge ledgers (and any deleted object) leave a delete marker in the versioned
    bucket; once its noncurrent versions expire it is an expired delete marker: removed."""
    rules = resources["StateBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r.get("ExpiredObjectDeleteMarker")]
    assert rule["ExpiredObjectDeleteMarker"] is True and rule["Status"] == "Enabled"
    # S3/CloudFormation refuse it together with ExpirationInDays, ExpirationDate or TagFilters
    assert not {"ExpirationInDays", "ExpirationDate", "TagFilters"} & set(rule), rule


def test_state_bucket_denies_plain_http(resources):
    policy = resources["StateBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "StateBucket"}
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    tls = [s for s in denies if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert len(tls) == 1
    (statement,) = tls
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["StateBucket", "Arn"]},
        {"Fn::Sub": "${StateBucket.Arn}/*"},
    ]


# ------------------------------------------------------------------------------ parameters


def _names_used(value, found):
    """Parameter/resource names a value refers to (Ref, GetAtt, ${...} in Sub)."""
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref":
                found.add(arg)
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found.update(n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text))
            _names_used(arg, found)
    elif isinstance(value, list):
        for item in value:
            _names_used(item, found)
    return found


def test_every_parameter_is_documented_and_used(template):
    used = _names_used([template.get("Conditions", {}), template.get("Globals", {}), template["Resources"],
                        template["Outputs"]], set())
    for name, spec in template["Parameters"].items():
        assert spec.get("Description", "").strip(), f"{name} has no Description"
        assert name in used, f"parameter {name} is never used"
    grouped = {
        p for group in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"] for p in group["Parameters"]
    }
    assert grouped == set(template["Parameters"])


def test_optional_list_parameters_default_to_empty(template):
    for name in ("DistributionIds", "DnsRoleArns"):
        assert template["Parameters"][name]["Type"] == "CommaDelimitedList"
        assert template["Parameters"][name]["Default"] == ""
    assert template["Parameters"]["HostedZoneIds"]["Type"] == "CommaDelimitedList"
    assert "Default" not in template["Parameters"]["HostedZoneIds"]  # required


def test_outputs(template):
    outputs = template["Outputs"]
    assert outputs["RenewerFunctionName"]["Value"] == {"Ref": "RenewerFunction"}
    assert outputs["RenewerFunctionArn"]["Value"] == {"Fn::GetAtt": ["RenewerFunction", "Arn"]}
    assert outputs["StateBucketName"]["Value"] == {"Ref": "StateBucket"}
    assert outputs["StateKeyArn"]["Value"] == {"Fn::GetAtt": ["StateKey", "Arn"]}
    assert outputs["WorkerFunctionName"]["Value"] == {"Ref": "WorkerFunction"}
    assert outputs["WorkQueueUrl"]["Value"] == {"Ref": "WorkQueue"}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": "DeadLetterQueue"}
    assert "NotificationTopicArn" in outputs and "DashboardUrl" in outputs
    # for the trust policy of a cross-account DNS role
    assert outputs["RenewerRoleArn"]["Value"] == {"Fn::GetAtt": ["RenewerFunctionRole", "Arn"]}
    assert outputs["WorkerRoleArn"]["Value"] == {"Fn::GetAtt": ["WorkerFunctionRole", "Arn"]}


def test_every_reference_names_something_declared(template):
    """A Ref/GetAtt/${} to a name that is neither a parameter, a resource (or a role SAM
    generates for a function) nor a pseudo parameter fails to deploy."""
    declared = set(template["Parameters"]) | set(template["Resources"]) | set(tp.PSEUDO_PARAMETERS) | {"AWS::NoValue"}
    declared |= {f"{n}Role" for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    subs = {"ZoneIds", "DistIds", "BucketAndKey", "Ns", "TopicRegion", "Ids", "Names"}  # Fn::Sub variables
    used = _names_used([template.get("Globals", {}), template["Resources"], template["Outputs"]], set())
    assert used - declared - subs == set()


# ------------------------------------------------------------------------------ fan-out


def test_work_queue_redrives_to_the_dead_letter_queue(resources, worker, template):
    queue = resources["WorkQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": {"Ref": "WorkerMaxReceiveCount"}}
    assert param_default(template, "WorkerMaxReceiveCount") == 3
    # a batch still running must not be delivered again: at least six times the worker's timeout
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["SqsManagedSseEnabled"] is True
    dlq = resources["DeadLetterQueue"]["Properties"]
    assert dlq["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"]


def test_worker_reports_partial_batch_failures(worker, template):
    (source,) = worker["Events"].values()
    assert source["Type"] == "SQS"
    props = source["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == {"Ref": "WorkerBatchSize"}
    batch = template["Parameters"]["WorkerBatchSize"]
    assert batch["Default"] == 10 and batch["MaxValue"] <= 10000
    # more than ten per batch needs a batching window
    assert batch["MaxValue"] <= 10 or props["MaximumBatchingWindowInSeconds"] >= 1
    assert template["Parameters"]["WorkerConcurrency"]["MinValue"] >= 2  # SQS MaximumConcurrency minimum


def test_only_the_renewer_may_send_to_the_queue(template):
    (send,) = tp.statements_allowing("sqs:SendMessage", {"HostedZoneIds": ZONES})
    assert send.resources == ("{{WorkQueue.Arn}}",)
    assert send.actions == ("sqs:SendMessage",)
    assert "sqs:SendMessage" not in tp.allowed_actions(tp.ALL_OPTIONS_PARAMETERS, tp.WORKER)
    assert tp.missing_permissions([("sqs", "SendMessageBatch")]) == {}
    assert tp.missing_permissions([("sqs", "SendMessageBatch")], function=tp.WORKER) == {
        ("sqs", "SendMessageBatch"): ("sqs:SendMessage",)}


def test_renewer_and_worker_share_the_renewal_policy(template):
    assert tp.attached_policies(template, tp.FUNCTION) == tp.attached_policies(template, tp.WORKER) == ["RenewerPolicy"]
    renewer = tp.allowed_actions(tp.ALL_OPTIONS_PARAMETERS, tp.FUNCTION)
    worker = tp.allowed_actions(tp.ALL_OPTIONS_PARAMETERS, tp.WORKER)
    assert renewer - worker == {"sqs:SendMessage"}
    assert worker <= renewer


# ------------------------------------------------------------------------------ monitoring


def _alarms(resources):
    return {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_alarms_read_the_metrics_the_handler_emits(resources, function, template):
    from handler import metrics as emitted

    alarms = _alarms(resources)
    assert set(alarms) == {"ExpiringCertificateAlarm", "ExpiringPersistRecordAlarm", "FailedRenewalAlarm",
                           "DeadLetterAlarm", "RenewerErrorsAlarm", "WorkerErrorsAlarm"}
    record = alarms["ExpiringPersistRecordAlarm"]
    assert (record["MetricName"], record["Statistic"], record["Threshold"]) == (
        "PersistRecordDaysLeft", "Minimum", {"Ref": "ExpiryAlarmDays"})
    assert "PersistRecordDaysLeft" in (emitted.__doc__ or "")
    expiring = alarms["ExpiringCertificateAlarm"]
    assert expiring["MetricName"] == "DaysToExpiry" and expiring["Statistic"] == "Minimum"
    assert expiring["Threshold"] == {"Ref": "ExpiryAlarmDays"} and param_default(template, "ExpiryAlarmDays") == 14
    assert expiring["ComparisonOperator"] == "LessThanThreshold"
    failed = alarms["FailedRenewalAlarm"]
    assert failed["MetricName"] == emitted.OUTCOME_METRICS[emitted.Outcome.FAILED]
    assert failed["Statistic"] == "Sum" and failed["Threshold"] == 1
    env = function["Environment"]["Variables"]
    for alarm in (expiring, failed, record):
        # the namespace and the one dimension Powertools writes
        assert alarm["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
        assert alarm["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
    dlq = alarms["DeadLetterAlarm"]
    assert (dlq["Namespace"], dlq["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    for name, target in (("RenewerErrorsAlarm", "RenewerFunction"), ("WorkerErrorsAlarm", "WorkerFunction")):
        assert (alarms[name]["Namespace"], alarms[name]["MetricName"]) == ("AWS/Lambda", "Errors")
        assert alarms[name]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": target}}]


def test_alarms_notify_the_topic(resources, template):
    ctx = tp.Context(template, {"HostedZoneIds": ZONES})
    for name, alarm in _alarms(resources).items():
        assert ctx.eval(alarm["AlarmActions"]) == ["{{NotificationTopic}}"], name
        assert alarm["TreatMissingData"] in ("notBreaching", "ignore"), name
    given = "arn:aws:sns:us-east-1:123456789012:ops"
    ctx = tp.Context(template, {"HostedZoneIds": ZONES, "NotificationTopicArn": given})
    assert all(ctx.eval(a["AlarmActions"]) == [given] for a in _alarms(resources).values())


def test_email_subscription_only_when_an_address_is_given(resources, template):
    sub = resources["NotificationEmailSubscription"]
    assert sub["Condition"] == "HasNotificationEmail"
    assert sub["Properties"]["Protocol"] == "email"
    assert not tp.Context(template, {"HostedZoneIds": ZONES}).condition("HasNotificationEmail")
    assert tp.Context(template, {"HostedZoneIds": ZONES, "NotificationEmail": "ops@example.com"}).condition(
        "HasNotificationEmail")


def test_dashboard_is_json_and_shows_the_emitted_metrics(resources, template):
    from handler import metrics as emitted

    ctx = tp.Context(template, {"HostedZoneIds": ZONES})
    body = json.loads(ctx.eval(resources["Dashboard"]["Properties"]["DashboardBody"]))
    names = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            names |= {item for item in row if isinstance(item, str) and item[:1].isupper() and item != "AWS/Lambda"}
    known = set(emitted.OUTCOME_METRICS.values()) | {emitted.QUEUED_METRIC, "DaysToExpiry", "IssuanceDuration",
                                                      "DnsWait", "RunDuration"}
    ours = names & (known | {n for n in names if n.startswith("Certificates")})
    assert ours <= known, ours - known
    assert {"DaysToExpiry", "CertificatesFailed", "IssuanceDuration", "DnsWait"} <= ours
    log_widget = next(w for w in body["widgets"] if w["type"] == "log")
    assert "{{RenewerLogGroup}}" in log_widget["properties"]["query"]
    assert "{{WorkerLogGroup}}" in log_widget["properties"]["query"]


def test_outcome_events_only_with_a_bus(template):
    (events,) = tp.statements_allowing("events:PutEvents", {"HostedZoneIds": ZONES, "EventBusName": "certs"})
    assert events.resources == ("arn:aws:events:us-east-1:123456789012:event-bus/certs",)
    assert "events:PutEvents" not in tp.allowed_actions({"HostedZoneIds": ZONES, "EventBusName": ""})


def test_a_dns_persist_only_stack_may_not_change_dns_at_all(template):
    """DnsChallengeWrites "false": every Route53 write goes; reading the zones stays (the run
    checks the persistent records before answering)."""
    default = tp.allowed_actions({"HostedZoneIds": ZONES})
    persistent = tp.allowed_actions({"HostedZoneIds": ZONES, "DnsChallengeWrites": "false"})
    assert "route53:ChangeResourceRecordSets" in default
    assert "route53:ChangeResourceRecordSets" not in persistent
    assert {"route53:ListResourceRecordSets", "route53:ListHostedZones"} <= persistent
    assert default - persistent == {"route53:ChangeResourceRecordSets"}


# ------------------------------------------------------------------------------ the policy


def test_statements_are_allow_with_unique_sids(template):
    statements = tp.policy_statements(template)
    sids = [s.sid for s in statements]
    assert all(sids) and len(sids) == len(set(sids))
    assert {s.effect for s in statements} == {"Allow"}


def test_no_wildcard_actions(template):
    for statement in tp.policy_statements(template):
        for action in statement.actions:
            service, _, name = action.partition(":")
            assert service and name, action
            assert "*" not in action and "?" not in action, f"{statement.sid}: wildcard action {action}"


def test_star_resource_only_for_non_resource_scoped_actions(template):
    for statement in tp.resolved_statements(tp.ALL_OPTIONS_PARAMETERS, template):
        if "*" in statement.resources:
            assert statement.resources == ("*",), statement
            assert set(statement.actions) <= NON_RESOURCE_SCOPED, statement
            assert not statement.conditions
    star = {a for s in tp.resolved_statements(tp.ALL_OPTIONS_PARAMETERS, template) if "*" in s.resources for a in s.actions}
    assert star == NON_RESOURCE_SCOPED


def test_full_policy_is_exactly_the_expected_actions():
    assert tp.allowed_actions() == EXPECTED_ACTIONS


def test_state_permissions(template):
    st = by_sid(tp.resolved_statements({}, template))
    assert st["StateBucketList"].actions == ("s3:ListBucket",)
    assert st["StateBucketList"].resources == ("{{StateBucket.Arn}}",)
    assert set(st["StateObjects"].actions) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert st["StateObjects"].resources == ("{{StateBucket.Arn}}/*",)
    assert set(st["StateKeyViaS3"].actions) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert st["StateKeyViaS3"].resources == ("{{StateKey.Arn}}",)


def test_route53_writes_only_acme_txt_records_in_listed_zones(template):
    (change,) = tp.statements_allowing("route53:ChangeResourceRecordSets", {"HostedZoneIds": ZONES})
    assert change.actions == ("route53:ChangeResourceRecordSets",)
    assert change.resources == (
        "arn:aws:route53:::hostedzone/Z0123456789ABC",
        "arn:aws:route53:::hostedzone/Z0987654321DEF",
    )
    assert change.conditions == {
        "ForAllValues:StringLike": {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"],
        },
        "ForAllValues:StringEquals": {
            "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
            "route53:ChangeResourceRecordSetsActions": ["CREATE", "DELETE"],  # never UPSERT: see route53.py
        },
    }
    (read,) = tp.statements_allowing("route53:ListResourceRecordSets", {"HostedZoneIds": ZONES})
    assert read.resources == change.resources
    assert set(read.actions) == {"route53:GetHostedZone", "route53:ListResourceRecordSets"}
    (get_change,) = tp.statements_allowing("route53:GetChange", {"HostedZoneIds": ZONES})
    assert get_change.resources == ("arn:aws:route53:::change/*",)


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_zone_arns_follow_the_partition(template, partition):
    statements = tp.resolved_statements({"HostedZoneIds": "ZA,ZB,ZC"}, template, pseudo={"AWS::Partition": partition})
    (change,) = [s for s in statements if "route53:ChangeResourceRecordSets" in s.actions]
    assert change.resources == tuple(f"arn:{partition}:route53:::hostedzone/{z}" for z in ("ZA", "ZB", "ZC"))


def test_single_zone(template):
    (change,) = tp.statements_allowing("route53:ChangeResourceRecordSets", {"HostedZoneIds": "Z1"})
    assert change.resources == ("arn:aws:route53:::hostedzone/Z1",)


def test_acm_permissions(template):
    st = by_sid(tp.resolved_statements({}, template))
    cert_arns = ("arn:aws:acm:*:123456789012:certificate/*",)
    assert set(st["AcmImport"].actions) == {"acm:ImportCertificate", "acm:DescribeCertificate",
                                            "acm:GetCertificate", "acm:ListTagsForCertificate"}
    assert st["AcmImport"].resources == cert_arns
    # a re-import carries no tags: no request-tag condition may guard ImportCertificate
    assert not st["AcmImport"].conditions
    assert st["AcmTagOnImport"].resources == cert_arns
    assert st["AcmTagOnImport"].conditions == {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["certrenew:managed", "certrenew:name"]}
    }
    assert st["AcmDeleteManagedOnly"].actions == ("acm:DeleteCertificate",)
    assert st["AcmDeleteManagedOnly"].conditions == {"StringEquals": {"aws:ResourceTag/certrenew:managed": "true"}}


def test_cloudfront_only_for_listed_distributions(template):
    assert not any(a.startswith("cloudfront:") for a in tp.allowed_actions({"HostedZoneIds": ZONES}))
    (cf,) = tp.statements_allowing("cloudfront:UpdateDistribution", {"DistributionIds": "E2ABCDEF123456,E3XYZ"})
    assert set(cf.actions) == {"cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution"}
    assert cf.resources == (
        "arn:aws:cloudfront::*:distribution/E2ABCDEF123456",
        "arn:aws:cloudfront::*:distribution/E3XYZ",
    )


def test_cross_account_dns_roles_only_when_given(template):
    assert "sts:AssumeRole" not in tp.allowed_actions({"HostedZoneIds": ZONES})
    roles = "arn:aws:iam::111111111111:role/dns,arn:aws:iam::222222222222:role/dns"
    (assume,) = tp.statements_allowing("sts:AssumeRole", {"DnsRoleArns": roles})
    assert assume.resources == tuple(roles.split(","))


def test_export_permissions_only_when_a_bucket_is_given(template):
    st = by_sid(tp.resolved_statements({}, template))
    assert "ExportObjects" not in st and "ExportKey" not in st
    key = tp.ALL_OPTIONS_PARAMETERS["ExportKmsKeyArn"]
    # a key without a bucket grants nothing
    assert "ExportKey" not in by_sid(tp.resolved_statements({"ExportKmsKeyArn": key}, template))
    assert "ExportBucketLocation" not in st
    st = by_sid(tp.resolved_statements({"ExportBucket": "my-certs"}, template))
    assert st["ExportObjects"].actions == ("s3:PutObject",)
    assert st["ExportObjects"].resources == ("arn:aws:s3:::my-certs/*",)
    assert st["ExportBucketLocation"].actions == ("s3:GetBucketLocation", "s3:GetEncryptionConfiguration")
    assert st["ExportBucketLocation"].resources == ("arn:aws:s3:::my-certs",)
    assert "ExportKey" not in st
    st = by_sid(tp.resolved_statements({"ExportBucket": "my-certs", "ExportKmsKeyArn": key}, template))
    assert st["ExportKey"].actions == ("kms:GenerateDataKey",)
    assert st["ExportKey"].resources == (key,)


def test_the_export_key_is_its_own_parameter_never_the_state_key(function, template):
    env = function["Environment"]["Variables"]
    assert env["CERTRENEW_EXPORT_KMS_KEY"] == {"Ref": "ExportKmsKeyArn"}
    assert param_default(template, "ExportKmsKeyArn") == ""
    from acme_flow.bootstrap import Settings
    settings = Settings.from_env({"CERTRENEW_STATE_KMS_KEY": "arn:aws:kms:us-east-1:123456789012:key/state",
                                  "CERTRENEW_EXPORT_KMS_KEY": ""})
    assert settings.export_kms_key is None, "an empty ExportKmsKeyArn means the bucket's default encryption"


def test_config_and_secret_reads(template):
    st = by_sid(tp.resolved_statements({}, template))
    assert "ConfigObject" not in st  # the packaged certificates.yaml needs no permission
    assert st["ConfigAndEabParameters"].resources == ("arn:aws:ssm:us-east-1:123456789012:parameter/certrenew/*",)
    assert st["EabSecrets"].resources == ("arn:aws:secretsmanager:us-east-1:123456789012:secret:certrenew/*",)
    st = by_sid(tp.resolved_statements({"ConfigLocation": "s3://cfg-bucket/path/certificates.yaml"}, template))
    assert st["ConfigObject"].actions == ("s3:GetObject",)
    assert st["ConfigObject"].resources == ("arn:aws:s3:::cfg-bucket/path/certificates.yaml",)
    st = by_sid(tp.resolved_statements({"ConfigLocation": "ssm:/certrenew/config"}, template))
    assert "ConfigObject" not in st


def test_notification_and_events(template):
    st = by_sid(tp.resolved_statements({}, template))
    assert st["Notify"].resources == ("{{NotificationTopic}}",)
    given = "arn:aws:sns:eu-west-1:123456789012:ops"
    st = by_sid(tp.resolved_statements({"NotificationTopicArn": given}, template))
    assert st["Notify"].resources == (given,)
    assert st["OutcomeEvents"].resources == ("arn:aws:events:us-east-1:123456789012:event-bus/default",)


def test_a_given_topic_encrypted_with_a_customer_key_may_be_published_to(template):
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    given = "arn:aws:sns:eu-west-1:123456789012:ops"
    assert "NotifyTopicKey" not in by_sid(tp.resolved_statements({}, template))
    assert "NotifyTopicKey" not in by_sid(tp.resolved_statements({"NotificationTopicArn": given}, template))
    # the stack's own topic has no customer key: a key without a given topic grants nothing
    assert "NotifyTopicKey" not in by_sid(tp.resolved_statements({"NotificationTopicKmsKeyArn": key}, template))
    st = by_sid(tp.resolved_statements({"NotificationTopicArn": given, "NotificationTopicKmsKeyArn": key}, template))
    assert set(st["NotifyTopicKey"].actions) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert st["NotifyTopicKey"].resources == (key,)
    assert st["NotifyTopicKey"].conditions == {"StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}}
    assert st["Notify"].resources == (given,)


def test_topic_created_only_without_a_given_arn(resources, template):
    assert resources["NotificationTopic"]["Condition"] == "CreateNotificationTopic"
    assert tp.Context(template, {"HostedZoneIds": ZONES}).condition("CreateNotificationTopic")
    assert not tp.Context(
        template, {"HostedZoneIds": ZONES, "NotificationTopicArn": "arn:aws:sns:us-east-1:123456789012:x"}
    ).condition("CreateNotificationTopic")


# ------------------------------------------------------------------------------ the helper API


def test_calls_map_to_granted_actions():
    calls = [
        ("s3", "HeadBucket"), ("s3", "get_object"), ("s3", "PutObject"), ("s3", "DeleteObject"),
        ("route53", "ListHostedZones"), ("route53", "ChangeResourceRecordSets"), ("route53", "GetChange"),
        ("acm", "ImportCertificate"), ("acm", "DescribeCertificate"), ("acm", "ListCertificates"),
        ("cloudfront", "GetDistributionConfig"), ("cloudfront", "UpdateDistribution"),
        ("sns", "Publish"), ("events", "PutEvents"), ("ssm", "GetParameter"), ("sqs", "SendMessageBatch"),
        ("secretsmanager", "GetSecretValue"), ("sts", "AssumeRole"),
    ]
    assert tp.missing_permissions(calls) == {}
    assert tp.missing_permissions([("cloudfront", "GetDistribution")]) == {
        ("cloudfront", "GetDistribution"): ("cloudfront:GetDistribution",)}
    with pytest.raises(KeyError, match="IAM_ACTIONS_BY_CALL"):
        tp.actions_for_call("s3", "PutBucketPolicy")


def test_every_mapped_action_names_a_real_service_prefix():
    prefixes = {a.split(":")[0] for actions in tp.IAM_ACTIONS_BY_CALL.values() for a in actions}
    assert prefixes <= {"s3", "kms", "route53", "sts", "acm", "cloudfront", "sns", "events", "ssm", "secretsmanager",
                        "sqs", "elasticloadbalancing", "apigateway"}


# ------------------------------------------------------------------------------ samconfig.toml


def test_samconfig_deploy_defaults():
    import tomllib

    config = tomllib.loads((tp.REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    default = config["default"]
    assert default["global"]["parameters"]["stack_name"] == "certrenew"
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["confirm_changeset"] is True
    assert deploy["resolve_s3"] is True
