"""Running the handler locally (handler.local) and the CLI commands built on it: `certrenew invoke`
runs the real handler through `handler.local.invoke`; `certrenew devstack` and `certrenew demo`
load the devstack only when they run, and say what to do where it is not installed."""
from __future__ import annotations

import inspect
import json
import logging
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from acme_flow import cli
from handler import app, local
from acme_flow.lambda_template import FunctionConfig
from handler.local import Invocation, LocalContext, invoke, invoke_function, lambda_environment, logs_to_stderr


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_context_counts_down_from_its_timeout_on_the_clock():
    clock = FakeClock()
    context = LocalContext(30, clock=clock)
    assert context.get_remaining_time_in_millis() == 30_000
    clock.now += 12.5
    assert context.get_remaining_time_in_millis() == 17_500
    clock.now += 60
    assert context.get_remaining_time_in_millis() == 0, "never negative, as in Lambda"


def test_the_context_reads_the_monotonic_clock_by_default(monkeypatch):
    clock = FakeClock(50.0)
    monkeypatch.setattr(time, "monotonic", clock)
    monkeypatch.setattr(time, "time", lambda: pytest.fail("the wall clock can jump: not used"))
    context = LocalContext(900)
    clock.now += 100
    assert context.get_remaining_time_in_millis() == 800_000


def test_the_context_has_what_the_handler_and_powertools_read():
    default, sized = LocalContext(), LocalContext(60, memory_mb=1769)
    assert default.get_remaining_time_in_millis() > 850_000, "the default timeout is Lambda's maximum, 900 s"
    assert (default.memory_limit_in_mb, sized.memory_limit_in_mb) == (512, 1769)
    assert default.function_name == "certrenew-local"
    assert default.invoked_function_arn == "arn:aws:lambda:us-east-1:000000000000:function:certrenew-local"
    assert (default.aws_request_id, default.function_version) == ("local-invoke", "$LATEST")
    assert (default.log_group_name, default.log_stream_name) == ("/aws/lambda/certrenew-local", "local")


@pytest.fixture
def stdout_log(capsys):
    """Adds a handler of the `certrenew` logger that writes to (the captured) stdout, as Powertools'
    does; afterwards every handler of the logger writes where it did before."""
    logger = logging.getLogger("certrenew")
    streams = [(h, h.stream) for h in logger.handlers if isinstance(h, logging.StreamHandler)]
    added = []

    def add() -> logging.StreamHandler:
        added.append(logging.StreamHandler(sys.stdout))  # capsys swaps sys.stdout between setup and call
        logger.addHandler(added[-1])
        return added[-1]

    yield add
    for handler in added:
        logger.removeHandler(handler)
    for existing, stream in streams:
        existing.setStream(stream)


def test_logs_to_stderr_moves_the_stdout_handlers_only(stdout_log, tmp_path):
    to_stdout = stdout_log()
    with (tmp_path / "log").open("w") as file:
        to_file = logging.StreamHandler(file)
        logging.getLogger("certrenew").addHandler(to_file)
        try:
            logs_to_stderr()
        finally:
            logging.getLogger("certrenew").removeHandler(to_file)
        assert to_file.stream is file
    assert to_stdout.stream is sys.stderr


def test_invoke_runs_the_handler_with_a_local_context_and_logs_on_stderr(stdout_log, capsys):
    stdout_log()
    calls = []

    def handler(event, context):
        calls.append((event, context.get_remaining_time_in_millis(), context.memory_limit_in_mb))
        logging.getLogger("certrenew.local-test").warning("renewing %s", event["action"])
        return {"ok": True, "certificates": []}

    assert invoke({"action": "renew"}, timeout=42, handler=handler) == {"ok": True, "certificates": []}
    [(event, remaining, memory)] = calls
    assert event == {"action": "renew"} and 0 < remaining <= 42_000 and memory == 512
    out, err = capsys.readouterr()
    assert "renewing renew" in err and "renewing" not in out, "stdout is kept for the result"


def test_invoke_runs_the_renewer_by_default(monkeypatch):
    calls = []
    monkeypatch.setattr(app, "lambda_handler", lambda event, context: calls.append(event) or {"ok": True})
    assert invoke({"action": "plan"}) == {"ok": True}
    assert calls == [{"action": "plan"}]
    assert inspect.signature(invoke).parameters["timeout"].default == 900


def test_certrenew_invoke_prints_what_invoke_returns(monkeypatch, tmp_path, capsys):
    calls = []

    def fake_invoke(event, *, timeout):
        calls.append((event, timeout))
        return {"batchItemFailures": [{"itemIdentifier": "m-1"}]}

    monkeypatch.setattr(local, "invoke", fake_invoke)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "plan"}))
    assert cli.main(["invoke", str(event), "--timeout", "30"]) == 1, "a failed batch item fails the command"
    assert calls == [({"action": "plan"}, 30.0)]
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def test_certrenew_invoke_names_an_unreadable_event_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(local, "invoke", lambda *a, **k: pytest.fail("nothing runs on a bad event file"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["invoke", str(bad)]) == 2
    assert f"cannot read the event file {bad}" in capsys.readouterr().err


@pytest.fixture
def no_devstack(monkeypatch):
    """As in the Lambda package, where only src/ is installed: `import devstack` fails."""
    for name in [n for n in sys.modules if n == "devstack" or n.startswith("devstack.")] + ["devstack"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize("argv", [["devstack", "up"], ["devstack", "env"], ["demo", "--keep"]])
def test_devstack_commands_without_the_devstack_say_where_to_get_it(no_devstack, argv, capsys):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"certrenew: `certrenew {argv[0]}` needs the devstack"), err
    assert "development tooling available from a source checkout" in err
    assert "pip install -e '.[dev]'" in err and "make demo" in err
    assert "Traceback" not in err


def test_certrenew_demo_runs_the_devstack_demo(monkeypatch):
    runs = []
    monkeypatch.setitem(sys.modules, "devstack.demo", SimpleNamespace(run=lambda keep: runs.append(keep) or 3))
    assert cli.main(["demo", "--keep"]) == 3
    assert runs == [True]


# ----------------------------------------------------------------- a function as the template says

def test_the_context_carries_the_function_s_name_and_request_id():
    context = LocalContext(60, memory_mb=1024, function_name="RenewerFunction", request_id="r-1", region="eu-west-1")
    assert context.function_name == "RenewerFunction" and context.aws_request_id == "r-1"
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:000000000000:function:RenewerFunction"
    assert context.log_group_name == "/aws/lambda/RenewerFunction"


def function(tmp_path: Path, **kwargs) -> FunctionConfig:
    """A function whose handler is tests' module `fake_fn_<n>.handle`, in a code directory of its own."""
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    module = f"fake_fn_{abs(hash(str(tmp_path))) % 10**8}"
    (code / f"{module}.py").write_text(
        "import os, json\n"
        "AT_IMPORT = os.environ.get('LEVEL')\n"
        "def handle(event, context):\n"
        "    if event.get('boom'):\n"
        "        raise RuntimeError('boom')\n"
        "    return {'event': event, 'at_import': AT_IMPORT, 'cwd': os.getcwd(),\n"
        "            'env': {k: os.environ.get(k) for k in ('LEVEL', 'CALLER', 'SHADOWED', 'AWS_LAMBDA_FUNCTION_NAME',\n"
        "                   'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_TIMEOUT', 'LAMBDA_TASK_ROOT',\n"
        "                   '_HANDLER', 'AWS_SAM_LOCAL', 'AWS_REGION')},\n"
        "            'context': [context.function_name, context.memory_limit_in_mb,\n"
        "                        context.get_remaining_time_in_millis(), context.aws_request_id]}\n")
    settings = dict(name="RenewerFunction", handler=f"{module}.handle", code_dir=code, runtime="python3.13",
                    timeout=60.0, memory_mb=256, variables={"LEVEL": "DEBUG", "SHADOWED": "function"})
    settings.update(kwargs)
    return FunctionConfig(**settings)


def test_the_lambda_environment_puts_the_function_s_variables_over_lambda_s_over_the_caller_s(tmp_path):
    config = function(tmp_path, variables={"SHADOWED": "function", "AWS_REGION": "from-template"})
    env = lambda_environment(config, {"CALLER": "kept", "SHADOWED": "caller", "AWS_LAMBDA_FUNCTION_NAME": "caller's",
                                      "AWS_DEFAULT_REGION": "eu-west-1"})
    assert env["CALLER"] == "kept" and env["SHADOWED"] == "function"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "RenewerFunction"
    assert (env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], env["AWS_LAMBDA_FUNCTION_TIMEOUT"]) == ("256", "60")
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13" and env["AWS_SAM_LOCAL"] == "true"
    assert env["AWS_REGION"] == "from-template", "the function's own variables win, even over Lambda's"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["LAMBDA_TASK_ROOT"] == str(tmp_path / "code")


class Ticks:
    """perf_counter stand-in: each call moves on by `step` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_invoke_function_runs_the_handler_as_lambda_would_and_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLER", "kept")
    monkeypatch.setenv("SHADOWED", "caller")
    before_env, before_cwd, before_path = dict(os.environ), os.getcwd(), list(sys.path)
    log = (tmp_path / "log").open("w+")
    done = invoke_function(function(tmp_path), {"action": "plan"}, log=log, clock=Ticks(0.1234),
                           memory=lambda: 87)
    result = done.result
    assert result["event"] == {"action": "plan"}
    assert result["at_import"] == "DEBUG", "the module is imported with the function's environment (cold start)"
    assert result["env"] == {"LEVEL": "DEBUG", "CALLER": "kept", "SHADOWED": "function",
                             "AWS_LAMBDA_FUNCTION_NAME": "RenewerFunction", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                             "AWS_LAMBDA_FUNCTION_TIMEOUT": "60", "LAMBDA_TASK_ROOT": str(tmp_path / "code"),
                             "_HANDLER": function(tmp_path).handler, "AWS_SAM_LOCAL": "true",
                             "AWS_REGION": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                             or "us-east-1"}
    assert result["cwd"] == str(tmp_path / "code"), "the working directory is the task root"
    name, memory, remaining, request_id = result["context"]
    assert (name, memory, request_id) == ("RenewerFunction", 256, done.request_id) and 0 < remaining <= 60_000
    assert (dict(os.environ), os.getcwd(), sys.path) == (before_env, before_cwd, before_path), "all restored"
    log.seek(0)
    start, end, report = log.read().splitlines()
    assert start == f"START RequestId: {done.request_id} Version: $LATEST"
    assert end == f"END RequestId: {done.request_id}"
    assert report == (f"REPORT RequestId: {done.request_id}\tInit Duration: 123.40 ms\tDuration: 123.40 ms\t"
                      "Billed Duration: 124 ms\tMemory Size: 256 MB\tMax Memory Used: 87 MB")
    assert done.stopped_because() is None


def test_a_second_invocation_is_warm_and_an_error_still_reports(tmp_path):
    config = function(tmp_path)
    log = (tmp_path / "log").open("w+")
    invoke_function(config, {}, log=log, memory=lambda: 1)
    with pytest.raises(RuntimeError, match="boom"):
        invoke_function(config, {"boom": True}, log=log, memory=lambda: 1)
    log.seek(0)
    reports = [line for line in log.read().splitlines() if line.startswith("REPORT")]
    assert len(reports) == 2, "the failed invocation reports too"
    assert "Init Duration" in reports[0] and "Init Duration" not in reports[1]
    ok = invoke_function(config, {}, log=log, memory=lambda: 1)
    assert ok.init_ms is None, "the module is loaded: no init"


@pytest.mark.parametrize("duration_ms, peak, status, why", [
    (61_000.0, 87, "Status: timeout", "Task timed out after 60.00 seconds"),
    (1_000.0, 300, "Status: error\tError Type: Runtime.OutOfMemory", "Max Memory Used 300 MB is over"),
])
def test_past_the_timeout_or_the_memory_the_report_says_lambda_would_have_stopped_it(duration_ms, peak, status, why):
    done = Invocation({"ok": True}, "r", duration_ms, None, 256, peak, 60.0)
    assert done.report_line().endswith(status)
    assert done.stopped_because().startswith(why)


@pytest.fixture
def repo_template(monkeypatch, tmp_path):
    """certrenew invoke --function with the project's template, the handler faked."""
    calls = []

    def fake(config, event):
        calls.append((config, event, dict(os.environ)))
        return Invocation({"ok": True, "certificates": []}, "r", 10.0, None, config.memory_mb, 50, config.timeout)

    monkeypatch.setattr(local, "invoke_function", fake)
    for name, value in {"CERTRENEW_STATE_BUCKET": "state", "CERTRENEW_STATE_KMS_KEY": "",
                        "CERTRENEW_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
                        "CERTRENEW_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q"}.items():
        monkeypatch.setenv(name, value)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "plan"}))
    return calls, event


def test_certrenew_invoke_function_reads_the_template(repo_template, tmp_path, capsys):
    calls, event = repo_template
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"RenewerFunction": {"CERTRENEW_CONFIG": "/tmp/c.yaml", "NOT_THERE": "x"}}))
    code = cli.main(["invoke", "--function", "RenewerFunction", "--env-vars", str(env_vars),
                     "--parameter-overrides", "FanoutThreshold=0 MemorySize=1024", "LogLevel=DEBUG", str(event)])
    assert code == 0
    [(config, sent, _)] = calls
    assert sent == {"action": "plan"}, "the event after --parameter-overrides is the event"
    assert (config.name, config.memory_mb, config.timeout) == ("RenewerFunction", 1024, 900.0)
    assert config.variables["CERTRENEW_FANOUT_THRESHOLD"] == "0"
    assert config.variables["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert config.variables["CERTRENEW_CONFIG"] == "/tmp/c.yaml"
    out, err = capsys.readouterr()
    assert json.loads(out) == {"ok": True, "certificates": []}
    assert "# CERTRENEW_STATE_BUCKET='state' <- !Ref StateBucket" in err
    assert "# CERTRENEW_CONFIG <- --env-vars" in err and "/tmp/c.yaml" not in err
    assert "# --env-vars NOT_THERE ignored" in err


def test_certrenew_invoke_function_names_what_it_cannot_resolve(repo_template, monkeypatch, capsys):
    calls, event = repo_template
    monkeypatch.delenv("CERTRENEW_QUEUE_URL")
    assert cli.main(["invoke", "--function", "RenewerFunction", str(event)]) == 2
    err = capsys.readouterr().err
    assert "Environment.Variables.CERTRENEW_QUEUE_URL: !Ref WorkQueue" in err
    assert "export CERTRENEW_QUEUE_URL=... (the stack's output WorkQueueUrl" in err
    assert calls == []
    assert cli.main(["invoke", "--function", "WorkerFunction", str(event)]) == 0, "the worker has no queue variable"


@pytest.mark.parametrize("argv, message", [
    (["--parameter-overrides", "A=1"], "--parameter-overrides configure a function of template.yaml: add --function"),
    (["--function", "RenewerFunction", "--timeout", "30"], "the timeout is the function's Timeout in template.yaml"),
    (["--function", "Nope"], "--function Nope: the template has no such function"),
    (["--function", "RenewerFunction", "--template", "/nonexistent/t.yaml"], "--template /nonexistent/t.yaml: no such file"),
])
def test_certrenew_invoke_refuses_mixed_up_flags(repo_template, argv, message, capsys):
    calls, event = repo_template
    assert cli.main(["invoke", *argv, str(event)]) == 2
    assert message in capsys.readouterr().err
    assert calls == []


def test_certrenew_invoke_function_fails_when_lambda_would_have_stopped_it(repo_template, monkeypatch, capsys):
    _, event = repo_template
    monkeypatch.setattr(local, "invoke_function", lambda config, event: Invocation(
        {"ok": True}, "r", 10.0, None, config.memory_mb, config.memory_mb + 1, config.timeout))
    assert cli.main(["invoke", "--function", "RenewerFunction", str(event)]) == 1
    assert "the deployed function would have been stopped" in capsys.readouterr().err
