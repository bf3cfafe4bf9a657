"""Reading a function's configuration from a SAM template (acme_flow.lambda_template), as
`certrenew invoke --function` does: short tags, Globals merged under the function, parameters from
overrides or defaults, !Sub and !If, resource references from the caller, errors that say how."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from acme_flow import lambda_template as lt
from acme_flow.errors import InputError

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Threshold: {Type: Number, Default: 10, MinValue: 0}
  Level: {Type: String, Default: INFO, AllowedValues: [DEBUG, INFO]}
  TopicArn: {Type: String, Default: ""}
  Memory: {Type: Number, Default: 512}
  Zones: {Type: CommaDelimitedList}
Conditions:
  CreateTopic: !Equals [!Ref TopicArn, ""]
  Debugging: !Equals [!Ref Level, DEBUG]
Globals:
  Function:
    CodeUri: src/
    Runtime: python3.13
    Timeout: 900
    MemorySize: !Ref Memory
    Environment:
      Variables:
        SHARED: from-globals
        LEVEL: !Ref Level
        BUCKET: !Ref Bucket
        TOPIC: !If [CreateTopic, !Ref Topic, !Ref TopicArn]
        DEBUGGING: !If [Debugging, "yes", !Ref AWS::NoValue]
Resources:
  Bucket: {Type: AWS::S3::Bucket}
  Topic: {Type: AWS::SNS::Topic, Condition: CreateTopic}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handler.app.lambda_handler
      Timeout: 60
      Environment:
        Variables:
          SHARED: from-function
          THRESHOLD: !Ref Threshold
          NAME: !Sub "certrenew-${Level}-${AWS::Region}"
          NAMED: !Sub ["${Prefix}/x", {Prefix: !Ref Level}]
  Other:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handler.worker.lambda_handler
      MemorySize: 1024
Outputs:
  BucketName: {Value: !Ref Bucket}
"""


@pytest.fixture
def template(tmp_path) -> dict:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return lt.load_template(path)


CALLER = {"BUCKET": "my-bucket", "TOPIC": "arn:aws:sns:us-east-1:123456789012:t", "AWS_REGION": "eu-west-1"}


def config(template, name="Fn", **kwargs):
    kwargs.setdefault("caller_env", CALLER)
    return lt.function_config(template, name, template_dir=Path("/repo"), **kwargs)


def test_short_tags_load_as_their_long_form(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["BUCKET"] == {"Ref": "Bucket"}
    assert env["TOPIC"] == {"Fn::If": ["CreateTopic", {"Ref": "Topic"}, {"Ref": "TopicArn"}]}
    assert template["Conditions"]["CreateTopic"] == {"Fn::Equals": [{"Ref": "TopicArn"}, ""]}


def test_globals_merge_under_the_function_and_the_function_wins(template):
    fn = config(template)
    assert (fn.handler, fn.timeout, fn.memory_mb, fn.runtime) == ("handler.app.lambda_handler", 60.0, 512, "python3.13")
    assert fn.code_dir == Path("/repo/src")
    assert fn.variables["SHARED"] == "from-function", "the function's own variable wins"
    assert fn.variables["LEVEL"] == "INFO", "Globals' variables are kept"
    other = config(template, "Other")
    assert (other.memory_mb, other.timeout, other.variables["SHARED"]) == (1024, 900.0, "from-globals")
    assert "THRESHOLD" not in other.variables


def test_parameters_take_their_default_or_the_override(template):
    assert config(template).variables["THRESHOLD"] == "10", "a Number default, as CloudFormation passes it"
    fn = config(template, overrides={"Threshold": "0", "Memory": "1769"})
    assert (fn.variables["THRESHOLD"], fn.memory_mb) == ("0", 1769)


def test_sub_inserts_parameters_pseudo_parameters_and_its_own_variables(template):
    fn = config(template, overrides={"Level": "DEBUG"})
    assert fn.variables["NAME"] == "certrenew-DEBUG-eu-west-1", "AWS::Region is the caller's region"
    assert fn.variables["NAMED"] == "DEBUG/x"


def test_if_follows_its_condition_and_no_value_drops_the_variable(template):
    default = config(template)
    assert "DEBUGGING" not in default.variables, "!Ref AWS::NoValue: no such variable"
    assert default.variables["TOPIC"] == CALLER["TOPIC"], "CreateTopic: !Ref Topic, a resource: the caller's"
    assert default.sources["TOPIC"] == "!Ref Topic (a resource of the deployed stack): your environment's TOPIC"
    given = config(template, overrides={"TopicArn": "arn:aws:sns:eu-west-1:123456789012:mine", "Level": "DEBUG"},
                   caller_env={"BUCKET": "b"})
    assert given.variables["TOPIC"] == "arn:aws:sns:eu-west-1:123456789012:mine", "the parameter, no resource"
    assert "TOPIC" not in given.sources
    assert given.variables["DEBUGGING"] == "yes"


def test_a_resource_reference_nobody_gives_is_an_error_that_says_how(template):
    with pytest.raises(InputError) as caught:
        config(template, caller_env={})
    text = str(caught.value)
    assert "Environment.Variables.BUCKET: !Ref Bucket (a resource of the deployed stack) cannot be resolved" in text
    assert "export BUCKET=... (the stack's output BucketName" in text
    assert '--env-vars FILE as {"Fn": {"BUCKET": "..."}}' in text
    assert "Environment.Variables.TOPIC" in text, "every unresolved variable at once"


def test_env_vars_give_what_the_template_cannot_and_override_it(template):
    env_vars = lt.parse_env_vars(json.dumps({"Parameters": {"BUCKET": "everyone", "SHARED": "all"},
                                             "Fn": {"BUCKET": "mine", "LEVEL": 5, "UNKNOWN": "x"}}), "env.json")
    fn = config(template, env_vars=env_vars, caller_env={"TOPIC": "t"})
    assert fn.variables["BUCKET"] == "mine", "the function's section over Parameters"
    assert (fn.variables["SHARED"], fn.variables["LEVEL"]) == ("all", "5")
    assert fn.sources["BUCKET"] == "--env-vars"
    assert "UNKNOWN" not in fn.variables and fn.ignored == ("UNKNOWN",), "as sam local: template variables only"


def test_a_parameter_without_default_is_asked_for_only_when_used(template):
    template["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["ZONES"] = {
        "Fn::Join": [",", {"Ref": "Zones"}]}
    with pytest.raises(InputError, match="parameter Zones \\(no Default\\): give --parameter-overrides Zones=VALUE"):
        config(template)
    assert config(template, overrides={"Zones": "Z1, Z2"}).variables["ZONES"] == "Z1,Z2"
    assert "ZONES" not in config(template, "Other").variables


@pytest.mark.parametrize("overrides, message", [
    ({"Nope": "1"}, "Nope: no such template parameter (there are: Level, Memory, Threshold, TopicArn, Zones)"),
    ({"Level": "LOUD"}, "Level: 'LOUD' is not one of ['DEBUG', 'INFO']"),
    ({"Threshold": "many"}, "Threshold: 'many' is not a number"),
    ({"Threshold": "-1"}, "Threshold: -1 is below MinValue 0"),
])
def test_bad_overrides_are_refused_by_name(template, overrides, message):
    with pytest.raises(InputError, match="--parameter-overrides") as caught:
        config(template, overrides=overrides)
    assert message in str(caught.value)


def test_an_unknown_function_names_the_template_s_functions(template):
    with pytest.raises(InputError, match="--function Nope: the template has no such function \\(it has: Fn, Other\\)"):
        config(template, "Nope")


@pytest.mark.parametrize("items, expected", [
    (["Threshold=0 Level=DEBUG"], {"Threshold": "0", "Level": "DEBUG"}),
    (["Threshold=0", "Level=DEBUG"], {"Threshold": "0", "Level": "DEBUG"}),
    (['Name="a b" Empty='], {"Name": "a b", "Empty": ""}),
    (["ParameterKey=Threshold,ParameterValue=3"], {"Threshold": "3"}),
    (["Url=s3://b/k?x=1"], {"Url": "s3://b/k?x=1"}),
])
def test_parameter_overrides_in_sam_s_syntax(items, expected):
    assert lt.parse_parameter_overrides(items) == expected


def test_a_parameter_override_without_equals_is_refused():
    with pytest.raises(InputError, match="'Threshold' is not Key=Value"):
        lt.parse_parameter_overrides(["Threshold"])


@pytest.mark.parametrize("text, message", [
    ("{nope", "not JSON"),
    ("[1]", "must be an object"),
    ('{"Fn": "x"}', "Fn: must be an object of VAR: value"),
    ('{"Fn": {"A": {"b": 1}}}', "Fn.A: must be a string, number or boolean"),
])
def test_bad_env_vars_files_are_refused_by_name(text, message):
    with pytest.raises(InputError, match="env.json") as caught:
        lt.parse_env_vars(text, "env.json")
    assert message in str(caught.value)


def test_the_template_is_found_here_or_in_the_checkout_and_missing_says_why(tmp_path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    assert lt.find_template(cwd=tmp_path, repo_root=tmp_path / "nowhere") == tmp_path / "template.yaml"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert lt.find_template(cwd=empty, repo_root=tmp_path) == tmp_path / "template.yaml"
    with pytest.raises(InputError, match="an installed package does not; run from the checkout or give --template"):
        lt.find_template(cwd=empty, repo_root=empty)
    with pytest.raises(InputError, match="--template missing.yaml: no such file"):
        lt.find_template("missing.yaml")


def test_the_project_s_template_configures_both_functions():
    path = lt.find_template(cwd=REPO)
    caller = {"CERTRENEW_STATE_BUCKET": "state", "CERTRENEW_STATE_KMS_KEY": "", "CERTRENEW_SNS_TOPIC_ARN": "topic",
              "CERTRENEW_QUEUE_URL": "queue"}
    renewer = lt.function_config(lt.load_template(path), "RenewerFunction", template_dir=REPO,
                                 overrides={"FanoutThreshold": "0", "MemorySize": "1024"}, caller_env=caller)
    assert renewer.handler == "handler.app.lambda_handler" and renewer.code_dir == REPO / "src"
    assert (renewer.timeout, renewer.memory_mb) == (900.0, 1024)
    assert renewer.variables["CERTRENEW_FANOUT_THRESHOLD"] == "0"
    assert renewer.variables["CERTRENEW_QUEUE_URL"] == "queue"
    assert renewer.variables["CERTRENEW_CONFIG"] == "certificates.yaml", "ConfigLocation's default"
    assert renewer.variables["POWERTOOLS_TRACE_DISABLED"] == "false", "TracingMode Active"
    worker = lt.function_config(lt.load_template(path), "WorkerFunction", template_dir=REPO, caller_env=caller)
    assert worker.handler == "handler.worker.lambda_handler"
    assert "CERTRENEW_QUEUE_URL" not in worker.variables and "CERTRENEW_FANOUT_THRESHOLD" not in worker.variables
