"""Logs per attempt: the log records (and, opt-in, the prints) of a running task, kept with it.

``capture()`` wraps one run of a task in a worker: one handler on the root logger (installed
once per process) hands each record to the capture of the thread that emitted it, so the tasks
of a threads pool keep their own records apart. The text is capped at
``DJQ_TASK_LOG_MAX_BYTES`` (UTF-8) and ends with a marker saying what was dropped. The worker
records it with the outcome (``djq.job_logs``); the job's admin page shows it per attempt.

Loggers filter before handlers: so that a task's ``logger.info(...)`` is made at all, the root
logger is lowered to ``DJQ_TASK_LOG_LEVEL`` when it is higher (as Celery's worker sets the root
logger to its ``-l``); records no other handler would have taken still reach Python's last
resort (warnings on stderr), as before.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from djq.conf import settings
from djq.serialization import safe_text

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MARKER = "\n… log truncated at {limit} bytes: {records} more record(s), {size} byte(s) dropped\n"

# the capture of the task running in this context: per thread, and per asyncio task (the asyncio
# pool runs many jobs in one thread; sync_to_async carries the context into its thread)
_active: contextvars.ContextVar[_Buffer | None] = contextvars.ContextVar(
    "djq_task_log", default=None
)
_install_lock = threading.Lock()
_installed: list[_Handler] = []


def level() -> int | None:
    """``DJQ_TASK_LOG_LEVEL`` as a number (None: logs are not kept); bad values are named."""
    value = settings.TASK_LOG_LEVEL
    if value is None or settings.TASK_LOG_MAX_BYTES == 0:
        return None
    number = logging.getLevelName(value.upper()) if isinstance(value, str) else value
    if not isinstance(number, int) or isinstance(number, bool):
        raise ValueError(f"DJQ_TASK_LOG_LEVEL: {value!r} is not a log level name or number")
    return number


class _Buffer:
    """One attempt's text, kept up to ``limit`` bytes; what does not fit is counted."""

    def __init__(self, limit: int):
        self.parts: list[str] = []
        self.limit, self.size = limit, 0
        self.dropped_records = self.dropped_bytes = 0

    def add(self, text: str) -> None:
        size = len(text.encode("utf-8", "backslashreplace"))
        if self.dropped_records or self.size + size > self.limit:
            room = self.limit - self.size
            if room > 0 and not self.dropped_records:  # the start of the record that overflows
                self.parts.append(
                    text.encode("utf-8", "backslashreplace")[:room].decode("utf-8", "ignore")
                )
                self.size, size = self.limit, size - room
            self.dropped_records += 1
            self.dropped_bytes += size
            return
        self.parts.append(text)
        self.size += size

    def result(self) -> dict[str, Any] | None:
        if not self.parts and not self.dropped_records:
            return None
        text = "".join(self.parts)
        if self.dropped_records:
            text += MARKER.format(
                limit=self.limit, records=self.dropped_records, size=self.dropped_bytes
            )
        return {"text": safe_text(text), "truncated": bool(self.dropped_records)}


class _Handler(logging.Handler):
    """Root handler: a record goes to the capture of its thread, if any."""

    capture_level: int  # the lowest level kept, set by ``_install``

    def emit(self, record: logging.LogRecord) -> None:
        buffer = _active.get()
        if buffer is not None and record.levelno >= self.capture_level:
            try:
                buffer.add(self.format(record) + "\n")
            except Exception:  # (a record that cannot be formatted must not fail the task)
                self.handleError(record)
        last = logging.lastResort
        if last is not None and _unhandled(record):  # (_unhandled is False without one)
            last.handle(record)


def _unhandled(record: logging.LogRecord) -> bool:
    """Whether Python would have given the record to its last resort, were this handler not
    on the root logger (no other handler on the record's way up)."""
    last = logging.lastResort
    if last is None or record.levelno < last.level:
        return False
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(h is not _installed[0] for h in logger.handlers):
            return False
        if not logger.propagate:
            return True
        logger = logger.parent
    return True


class _Tee:
    """sys.stdout / sys.stderr while prints are kept: a capturing thread's text is kept and
    still written to the real stream."""

    def __init__(self, stream: IO[str], label: str):
        self.stream, self.label = stream, label

    def write(self, text: str) -> int:
        buffer = _active.get()
        if buffer is not None and text:
            buffer.add(text if self.label == "stdout" else f"[stderr] {text}")
        return int(self.stream.write(text))

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _install(number: int) -> None:
    with _install_lock:
        if not _installed:
            handler = _Handler()
            handler.setFormatter(logging.Formatter(FORMAT))
            _installed.append(handler)
            logging.getLogger().addHandler(handler)
        if settings.TASK_LOG_PRINT and not isinstance(sys.stdout, _Tee):
            sys.stdout, sys.stderr = _Tee(sys.stdout, "stdout"), _Tee(sys.stderr, "stderr")
        _installed[0].capture_level = number
        root = logging.getLogger()
        if root.level > number:
            root.setLevel(number)


@contextmanager
def capture(outcome_holder: dict[str, Any]) -> Iterator[None]:
    """Keep the logs of the task run in this block; ``outcome_holder["log"]`` gets them
    ({"text", "truncated"}) when there are any and logs are kept."""
    number = level()
    if number is None:
        yield
        return
    _install(number)
    buffer = _Buffer(int(settings.TASK_LOG_MAX_BYTES))
    token = _active.set(buffer)
    try:
        yield
    finally:
        _active.reset(token)
        kept = buffer.result()
        if kept is not None:
            outcome_holder["log"] = kept
