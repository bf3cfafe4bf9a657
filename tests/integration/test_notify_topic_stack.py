"""A config topic the stack may not publish to is refused before anything is written."""
from __future__ import annotations

import boto3
import pytest

from acme_flow import cli
from devstack_world import STATE_BUCKET, make_world


@pytest.fixture
def w(aws, tmp_path, monkeypatch):
    monkeypatch.setenv("CERTRENEW_STATE_BUCKET", STATE_BUCKET)
    return make_world(aws, tmp_path, zones=("example.test",))


def test_a_config_topic_other_than_the_stacks_exits_2_and_writes_nothing(w, capsys, monkeypatch):
    sns = boto3.client("sns")
    stack_topic = sns.create_topic(Name="certrenew-stack")["TopicArn"]
    other = sns.create_topic(Name="ops-elsewhere")["TopicArn"]
    monkeypatch.setenv("CERTRENEW_SNS_TOPIC_ARN", stack_topic)
    config = w.write_config([{"name": "site", "domains": ["example.test"]}], notify={"sns_topic_arn": other})
    code = cli.main(["run", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "notify.sns_topic_arn" in err and other in err and stack_topic in err
    assert w.writes() == [] and w.state_keys() == []
