"""A status line on a terminal while a run waits: Route53 can take minutes to report INSYNC and
a CA a while to validate, and a silent `certrenew run` looks hung.

`for_stream(stream)` gives a `TerminalProgress` only when the stream is a terminal, else
`NoProgress`: the Lambda, pipes and files get their log lines exactly as before. On a terminal
the line is drawn after a carriage return and erased with ESC [K; while it is attached
(`for_run`), every log handler writing to the same stream writes through a wrapper that erases
the line before a record and draws it again after, so records are never garbled. A ticker
thread redraws the elapsed seconds (a write only when the text changes, at most every
`interval`); it runs only while a phase is shown and stops with `done`.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TextIO

from .ports import NO_PROGRESS, NoProgress, Progress

__all__ = ["TerminalProgress", "NoProgress", "NO_PROGRESS", "for_stream", "for_run", "status_text"]

ERASE = "\r\x1b[K"  # back to the start of the line, erase to its end
INTERVAL = 0.25  # seconds: the most often the line is redrawn by the ticker or by `advance`


def status_text(what: str, done: int, total: int, unit: str, elapsed: float) -> str:
    """`waiting for Route53 INSYNC: 3 of 10 changes, 42 s` (no count when `total` is 0)."""
    count = f": {min(done, total)} of {total}{' ' + unit if unit else ''}" if total else ""
    return f"{what}{count}, {int(elapsed)} s"


class TerminalProgress:
    """The Progress port on a terminal: one status line, redrawn in place (thread-safe)."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic,
                 interval: float = INTERVAL, ticking: bool = True) -> None:
        self.stream = stream
        self._clock = clock
        self._interval = interval
        self._ticking = ticking
        self._lock = threading.RLock()
        self._what: str | None = None
        self._total = self._done = 0
        self._unit = ""
        self._started = 0.0
        self._shown = ""  # the text on screen now ("" when no line is drawn)
        self._drawn_at = float("-inf")
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._wrapped: list[tuple[logging.StreamHandler, Any]] = []

    # -- the port -------------------------------------------------------------------------------

    def phase(self, what: str, total: int, unit: str = "") -> None:
        with self._lock:
            self._what, self._total, self._done, self._unit = what, max(0, total), 0, unit
            self._started = self._clock()
            self._draw(force=True)
            if self._ticking and self._ticker is None:
                self._stop.clear()
                self._ticker = threading.Thread(target=self._tick, name="certrenew-progress", daemon=True)
                self._ticker.start()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            if self._what is not None:
                self._done += n
                self._draw(force=False)

    def done(self) -> None:
        with self._lock:
            self._what = None
            self.erase()
            ticker, self._ticker = self._ticker, None
            self._stop.set()
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join()

    # -- drawing --------------------------------------------------------------------------------

    def text(self) -> str | None:
        """The status line as it would be drawn now (None when no phase is shown)."""
        with self._lock:
            if self._what is None:
                return None
            return status_text(self._what, self._done, self._total, self._unit, self._clock() - self._started)

    def erase(self) -> None:
        """Take the line off the screen (a log record is about to be written, or the run ended)."""
        with self._lock:
            if self._shown:
                self._write(ERASE)
                self._shown = ""

    def redraw(self) -> None:
        """Draw the line again after something else was written."""
        with self._lock:
            self._draw(force=True)

    def _draw(self, force: bool) -> None:
        text = self.text()
        if text is None:
            return
        text = text[:max(10, _width(self.stream) - 1)]  # a wrapped line could not be redrawn in place
        now = self._clock()
        if text == self._shown or (not force and now - self._drawn_at < self._interval):
            return
        self._write(f"\r{text}\x1b[K")
        self._shown, self._drawn_at = text, now

    def _write(self, data: str) -> None:
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal: the run goes on without its status line
            pass

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                self._draw(force=False)

    # -- log records on the same terminal -------------------------------------------------------

    def attach(self, logger: logging.Logger | None = None) -> None:
        """Every stream handler of `logger` (the root logger) that writes to our stream writes
        through a wrapper that erases the line before each record and redraws it after."""
        for handler in (logger or logging.getLogger()).handlers:
            if isinstance(handler, logging.StreamHandler) and _same_stream(handler.stream, self.stream):
                self._wrapped.append((handler, handler.setStream(_AroundStatus(handler.stream, self))))

    def close(self) -> None:
        """End of the run: the line erased, the ticker stopped, the log handlers restored."""
        self.done()
        while self._wrapped:
            handler, original = self._wrapped.pop()
            handler.setStream(original)


class _AroundStatus:
    """A log handler's stream on the status line's terminal: each record written on a clean line."""

    def __init__(self, stream: Any, progress: TerminalProgress) -> None:
        self._stream = stream
        self._progress = progress

    def write(self, data: str) -> int:
        with self._progress._lock:
            self._progress.erase()
            written = self._stream.write(data)
            if data.endswith("\n"):
                self._stream.flush()
                self._progress.redraw()
            return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def for_stream(stream: Any) -> Progress:
    """A status line on `stream` if it is a terminal that can erase a line, else nothing."""
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty or os.environ.get("TERM") == "dumb":
        return NO_PROGRESS
    return TerminalProgress(stream)


@contextmanager
def for_run(stream: Any, enabled: bool = True) -> Iterator[Progress]:
    """`for_stream(stream)` (NoProgress when not `enabled`), attached to the root logger's
    handlers on that stream for the block; afterwards the line is erased and the handlers are
    as they were, whatever happened."""
    progress = for_stream(stream) if enabled else NO_PROGRESS
    if not isinstance(progress, TerminalProgress):
        yield progress
        return
    progress.attach()
    try:
        yield progress
    finally:
        progress.close()


def _same_stream(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return a.fileno() == b.fileno()
    except (AttributeError, ValueError, OSError):
        return False


def _width(stream: Any) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80
