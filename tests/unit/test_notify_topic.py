"""notify.sns_topic_arn and the stack's topic (CERTRENEW_SNS_TOPIC_ARN) must agree: the stack's
policy lets the function publish only to its own topic."""
from __future__ import annotations

import pytest

from acme_flow.bootstrap import Settings, load_config
from acme_flow.errors import ConfigError

STACK_TOPIC = "arn:aws:sns:us-east-1:123456789012:certrenew-NotificationTopic-ABC"
OTHER_TOPIC = "arn:aws:sns:eu-west-1:123456789012:ops"


def config_file(tmp_path, topic: str | None):
    notify = f"notify:\n  sns_topic_arn: {topic}\n" if topic else ""
    path = tmp_path / "certificates.yaml"
    path.write_text("acme:\n  directory: letsencrypt\ncertificates:\n  - name: site\n    domains: [example.com]\n"
                    + notify)
    return str(path)


def settings(path: str, stack_topic: str | None) -> Settings:
    env = {"CERTRENEW_SNS_TOPIC_ARN": stack_topic} if stack_topic else {}
    return Settings.from_env(env, config_ref=path)


def test_a_config_topic_the_stack_does_not_publish_to_is_a_config_error(tmp_path):
    path = config_file(tmp_path, OTHER_TOPIC)
    with pytest.raises(ConfigError) as err:
        load_config(settings(path, STACK_TOPIC))
    (problem,) = err.value.problems
    assert problem.path == "notify.sns_topic_arn"
    assert OTHER_TOPIC in problem.message and STACK_TOPIC in problem.message
    assert "NotificationTopicArn" in problem.message and "remove notify.sns_topic_arn" in problem.message
    assert err.value.exit_code == 2 and err.value.source == path


@pytest.mark.parametrize("config_topic, stack_topic", [
    (STACK_TOPIC, STACK_TOPIC),  # the same topic, said twice
    (None, STACK_TOPIC),  # the stack's topic
    (OTHER_TOPIC, None),  # no stack (CLI, devstack): the config names the topic
])
def test_agreeing_topics_are_accepted(tmp_path, config_topic, stack_topic):
    config = load_config(settings(config_file(tmp_path, config_topic), stack_topic))
    assert config.notify.sns_topic_arn == config_topic
