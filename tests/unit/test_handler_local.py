"""Running the handler locally (handler.local) and the CLI commands built on it: `certrenew invoke`
runs the real handler through `handler.local.invoke`; `certrenew devstack` and `certrenew demo`
load the devstack only when they run, and say what to do where it is not installed."""
from __future__ import annotations

import inspect
import json
import logging
import sys
import time
from types import SimpleNamespace

import pytest

from acme_flow import cli
from handler import app, local
from handler.local import LocalContext, invoke, logs_to_stderr


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


def test_invoke_runs_the_renewer_by_default():
    assert inspect.signature(invoke).parameters["handler"].default is app.lambda_handler
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
