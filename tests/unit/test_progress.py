"""The status line of a run on a terminal (progress.py), and the waits that report to it:
the use case's phases (issuance over the fakes), Route53's INSYNC wait, the propagation check."""
from __future__ import annotations

import io
import logging
import threading
from dataclasses import replace

import pytest

from acme_flow import progress as progress_mod
from acme_flow.adapters.dns_check import DnsPropagation
from acme_flow.adapters.route53 import Route53Dns
from acme_flow.bootstrap import Settings, build_renewer
from acme_flow.deadline import Deadline
from acme_flow.models import AcmeSettings, CertificateSpec, Config
from acme_flow.ports import NO_PROGRESS, TxtRecord
from acme_flow.progress import ERASE, TerminalProgress, for_run, for_stream, status_text
from acme_flow.renewal import RunOptions
from fakes import FakeClock, make_adapters, make_config, make_renewer
from test_dns_check import Servers
from test_route53 import FakeRoute53


class FakeTty(io.StringIO):
    """A terminal as far as the progress can tell."""

    def isatty(self) -> bool:
        return True


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def screen(output: str) -> list[str]:
    """The lines a terminal shows after `output`: \\r goes back to the start of the line, ESC [K
    erases to its end, \\n starts a new line (a tiny terminal, enough to see garbling)."""
    lines, col = [""], 0
    i = 0
    while i < len(output):
        if output.startswith("\x1b[K", i):
            lines[-1] = lines[-1][:col]
            i += 3
            continue
        ch = output[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("")
            col = 0
        else:
            line = lines[-1]
            lines[-1] = line[:col] + ch + line[col + 1:]
            col += 1
        i += 1
    return lines


def terminal(**kw) -> tuple[TerminalProgress, FakeTty, Ticks]:
    tty, ticks = FakeTty(), Ticks()
    kw.setdefault("ticking", False)
    return TerminalProgress(tty, clock=ticks, **kw), tty, ticks


# ---- the line -----------------------------------------------------------------------------------


def test_status_text_says_what_how_many_of_how_many_and_the_seconds():
    assert status_text("waiting for Route53 INSYNC", 3, 10, "changes", 42.7) == \
        "waiting for Route53 INSYNC: 3 of 10 changes, 42 s"
    assert status_text("publishing", 0, 0, "", 1.0) == "publishing, 1 s"
    assert status_text("finalizing", 5, 3, "", 0) == "finalizing: 3 of 3, 0 s"


def test_the_line_is_drawn_in_place_updated_and_erased_when_done():
    shown, tty, ticks = terminal()
    shown.phase("waiting for Route53 INSYNC", 10, "changes")
    assert tty.getvalue() == "\rwaiting for Route53 INSYNC: 0 of 10 changes, 0 s\x1b[K"
    ticks.t += 42
    shown.advance(3)
    assert screen(tty.getvalue()) == ["waiting for Route53 INSYNC: 3 of 10 changes, 42 s"]
    shown.done()
    assert tty.getvalue().endswith(ERASE)
    assert screen(tty.getvalue()) == [""]
    assert shown.text() is None


def test_redraws_are_rate_limited_and_only_when_the_text_changes():
    shown, tty, ticks = terminal(interval=0.25)
    shown.phase("waiting for the CA to validate", 100)
    for _ in range(50):  # no time passes: one draw for the phase, none for these
        shown.advance()
    assert tty.getvalue().count("\r") == 1
    ticks.t += 0.3
    shown.advance()
    assert tty.getvalue().count("\r") == 2
    assert screen(tty.getvalue()) == ["waiting for the CA to validate: 51 of 100, 0 s"]
    shown.redraw()  # same text: nothing written
    assert tty.getvalue().count("\r") == 2


def test_a_long_line_is_cut_to_the_width_of_the_terminal():
    shown, tty, _ = terminal()
    shown.phase("x" * 300, 1)
    assert len(screen(tty.getvalue())[0]) < 80


def test_advances_from_many_threads_all_count():
    shown, _, _ = terminal()
    shown.phase("finalizing orders", 800, "certificates")
    threads = [threading.Thread(target=lambda: [shown.advance() for _ in range(100)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shown.text() == "finalizing orders: 800 of 800 certificates, 0 s"


def test_the_ticker_redraws_the_seconds_and_stops_with_the_run():
    shown, tty, ticks = terminal(ticking=True, interval=0.01)
    shown.phase("waiting for Route53 INSYNC", 2, "changes")
    ticks.t += 7
    for _ in range(500):
        if "7 s" in tty.getvalue():
            break
        threading.Event().wait(0.01)
    assert screen(tty.getvalue()) == ["waiting for Route53 INSYNC: 0 of 2 changes, 7 s"]
    shown.done()
    assert not [t for t in threading.enumerate() if t.name == "certrenew-progress"]
    written = tty.getvalue()
    ticks.t += 5
    threading.Event().wait(0.05)
    assert tty.getvalue() == written, "nothing drawn after the run"


# ---- log records on the same terminal -----------------------------------------------------------


@pytest.fixture
def logger():
    log = logging.getLogger("test_progress.terminal")
    log.propagate = False
    log.setLevel(logging.INFO)
    yield log
    log.handlers.clear()


def test_log_records_are_written_on_a_clean_line_and_the_status_comes_back_below(logger):
    shown, tty, ticks = terminal()
    handler = logging.StreamHandler(tty)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    shown.attach(logger)
    shown.phase("waiting for Route53 INSYNC", 3, "changes")
    logger.info("zone Z1: publishing of 4 TXT names submitted")
    ticks.t += 1
    shown.advance()
    logger.warning("a retry")
    assert screen(tty.getvalue()) == ["INFO zone Z1: publishing of 4 TXT names submitted", "WARNING a retry",
                                      "waiting for Route53 INSYNC: 1 of 3 changes, 1 s"]
    shown.close()
    assert screen(tty.getvalue())[-1] == ""
    assert handler.stream is tty, "the handler writes to the terminal itself again"
    logger.info("after the run")
    assert tty.getvalue().endswith(ERASE + "INFO after the run\n")


def test_records_between_phases_are_left_alone(logger):
    shown, tty, _ = terminal()
    logger.addHandler(logging.StreamHandler(tty))
    shown.attach(logger)
    logger.info("before any wait")
    assert tty.getvalue() == "before any wait\n"


def test_handlers_on_other_streams_are_not_wrapped(logger):
    shown, tty, _ = terminal()
    elsewhere = io.StringIO()
    handler = logging.StreamHandler(elsewhere)
    logger.addHandler(handler)
    shown.attach(logger)
    shown.phase("starting orders", 2)
    logger.info("to a file")
    assert handler.stream is elsewhere and elsewhere.getvalue() == "to a file\n"


# ---- only on a terminal -------------------------------------------------------------------------


def test_not_a_terminal_gets_no_status_line_at_all(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    pipe = io.StringIO()
    silent = for_stream(pipe)
    assert silent is NO_PROGRESS
    silent.phase("waiting for Route53 INSYNC", 3, "changes")
    silent.advance()
    silent.done()
    assert pipe.getvalue() == ""
    assert isinstance(for_stream(FakeTty()), TerminalProgress)


def test_a_dumb_terminal_gets_none(monkeypatch):
    monkeypatch.setenv("TERM", "dumb")
    assert for_stream(FakeTty()) is NO_PROGRESS


def test_for_run_leaves_logging_as_it_is_without_a_terminal_or_when_disabled(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    root = logging.getLogger()
    tty = FakeTty()
    handler = logging.StreamHandler(tty)
    root.addHandler(handler)
    try:
        with for_run(tty, enabled=False) as shown:
            assert shown is NO_PROGRESS and handler.stream is tty
        with for_run(io.StringIO()) as shown:
            assert shown is NO_PROGRESS
        with for_run(tty) as shown:
            assert isinstance(shown, TerminalProgress) and handler.stream is not tty
            shown.phase("waiting for the CA to validate", 1)
        assert handler.stream is tty
        assert screen(tty.getvalue()) == [""], "the line is erased when the run ends"
    finally:
        root.removeHandler(handler)


def test_for_run_erases_the_line_when_the_run_fails(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    tty = FakeTty()
    with pytest.raises(KeyboardInterrupt):
        with for_run(tty) as shown:
            shown.phase("waiting for Route53 INSYNC", 1, "changes")
            raise KeyboardInterrupt
    assert tty.getvalue().endswith(ERASE)
    assert not [t for t in threading.enumerate() if t.name == "certrenew-progress"]


# ---- who reports ------------------------------------------------------------------------------


class Recorder:
    """A Progress that writes down every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.lock = threading.Lock()

    def phase(self, what, total, unit=""):
        with self.lock:
            self.calls.append(("phase", what, total))

    def advance(self, n=1):
        with self.lock:
            self.calls.append(("advance", n))

    def done(self):
        with self.lock:
            self.calls.append(("done",))

    def phases(self) -> list[tuple[str, int, int]]:
        """(what, total, advanced) per phase, in order."""
        out: list[list] = []
        for call in self.calls:
            if call[0] == "phase":
                out.append([call[1], call[2], 0])
            elif call[0] == "advance" and out:
                out[-1][2] += call[1]
        return [tuple(p) for p in out]


SITE = CertificateSpec("site", ("example.com", "*.example.com"))
OTHER = CertificateSpec("other", ("example.org",))


def test_a_run_reports_each_wait_of_its_round_then_done():
    recorder = Recorder()
    adapters = replace(make_adapters(), progress=recorder)
    renewer = make_renewer(make_config(SITE, OTHER), adapters)
    report = renewer.apply(renewer.plan(RunOptions()), Deadline(adapters.clock, 600))
    assert {r.name for r in report.results if r.outcome.value == "issued"} == {"site", "other"}
    assert recorder.phases() == [
        ("starting orders", 2, 2),
        ("publishing TXT values", 3, 0),  # the fake DNS counts nothing: Route53 does (below)
        ("waiting for the TXT values to be served", 3, 0),
        ("answering challenges", 2, 2),
        ("waiting for the CA to validate", 2, 2),
        ("finalizing orders", 2, 2),
    ]
    assert recorder.calls[-1] == ("done",)


def test_a_run_that_fails_at_publishing_still_ends_its_status():
    from acme_flow.errors import DnsError

    recorder = Recorder()
    adapters = replace(make_adapters(), progress=recorder)
    adapters.dns.present_error = DnsError("Route53 is down")
    renewer = make_renewer(make_config(SITE), adapters)
    report = renewer.apply(renewer.plan(RunOptions()), Deadline(adapters.clock, 600))
    assert report.results[0].outcome.value == "failed"
    assert [p[0] for p in recorder.phases()] == ["starting orders", "publishing TXT values"]
    assert recorder.calls[-1] == ("done",)


def test_route53_counts_values_published_then_changes_insync():
    clock, recorder = FakeClock(), Recorder()
    r53 = FakeRoute53(clock, insync_after=3)
    r53.add_zone("example.com")
    r53.add_zone("example.org")
    dns = Route53Dns(lambda role: r53, lookup_cname=lambda name: None, progress=recorder)
    names = ["a.example.com", "b.example.com", "c.example.org"]
    records = [dns.locate(f"_acme-challenge.{n}", f"v-{n}", CertificateSpec("c", (n,))) for n in names]
    recorder.phase("publishing TXT values", len(records))  # as issuance does
    dns.present(records, Deadline(clock, 600))
    assert recorder.phases() == [("publishing TXT values", 3, 3), ("waiting for Route53 INSYNC", 2, 2)]


def test_route53_insync_at_once_shows_no_wait():
    recorder = Recorder()
    r53 = FakeRoute53()
    r53.add_zone("example.com")
    dns = Route53Dns(lambda role: r53, lookup_cname=lambda name: None, progress=recorder)
    dns.present([dns.locate("_acme-challenge.example.com", "v", CertificateSpec("c", ("example.com",)))],
                Deadline(FakeClock(), 60))
    assert all(c[0] != "phase" for c in recorder.calls)


def test_the_propagation_check_counts_each_value_once_every_server_serves_it():
    clock, recorder = FakeClock(), Recorder()
    servers = Servers(clock)
    a, b = ("192.0.2.1", 53), ("192.0.2.2", 53)
    rec = TxtRecord("_acme-challenge.example.com", "value-1", "Z1")
    wild = TxtRecord("_acme-challenge.example.com", "value-2", "Z1")
    other = TxtRecord("_acme-challenge.www.example.org", "value-3", "Z2")
    for server in (a, b):
        servers.serve(server, rec.name, {"value-1", "value-2"})
    servers.serve(a, other.name, {"value-3"})
    servers.serve(b, other.name, {"value-3"}, from_time=2.0)  # one server late with one value
    check = DnsPropagation([a, b], query=servers.query, progress=recorder)
    check.wait_visible([rec, wild, other], Deadline(clock, 60))
    advances = [c[1] for c in recorder.calls if c[0] == "advance" and c[1]]
    assert advances == [2, 1], "two values seen everywhere on the first look, the third later"


def test_the_lambda_and_every_caller_that_does_not_ask_get_no_progress(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = Config(AcmeSettings("https://acme.example/dir"), (CertificateSpec("c", ("c.example",)),))
    settings = Settings(config_ref="unused", state_bucket="bucket", state_kms_key=None, ca_bundle=None,
                        dns_resolvers=None, region="us-east-1")
    assert build_renewer(config, settings).issuer.progress is NO_PROGRESS
    recorder = Recorder()
    assert build_renewer(config, settings, progress=recorder).issuer.progress is recorder


def test_the_module_offers_the_silent_progress_too():
    assert progress_mod.NoProgress is type(NO_PROGRESS)
