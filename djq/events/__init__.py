"""Monitoring events with Celery's names and fields, carried by the database.

Task events: ``task-sent`` (by the caller, with ``DJQ_TASK_SEND_SENT_EVENT``), ``task-received``,
``task-started``, ``task-succeeded``, ``task-failed``, ``task-retried``, ``task-revoked``,
``task-rejected``; worker events: ``worker-online``, ``worker-heartbeat``, ``worker-offline``.

Publishers (an :class:`EventDispatcher`) append events to the ``djq_event_batch`` table, a batch
a row: the sender's fields (``hostname``, ``pid``, ``utcoffset``) once, then the events, as one
JSON text encoded in one call (``djq.store.insert_events``), with a NOTIFY on PostgreSQL. So a
worker pays one INSERT and one encoding per turn of its loop, however many jobs the turn handled.
Readers (a :class:`Receiver`) follow the table in id order, woken by the NOTIFY or polling on
SQLite, and hand out one dict per event.

An event is a dict: ``type``, ``hostname``, ``timestamp`` (the sender's ``time.time()``),
``utcoffset``, ``pid`` and its own fields. Readers add ``clock`` (from the row id and the place
in the batch: one order for the whole cluster) and ``local_received``. Events are best effort, as
in Celery: a batch that cannot be written is dropped, never retried into the job path.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connections, transaction
from django.db.models import Q

from djq import __version__, signals, store
from djq.conf import settings
from djq.listen import Listener
from djq.models import EventBatch
from djq.store.postgres import EVENTS_CHANNEL

logger = logging.getLogger("djq.events")

TASK_EVENTS = (
    "task-sent",
    "task-received",
    "task-started",
    "task-succeeded",
    "task-failed",
    "task-retried",
    "task-revoked",
    "task-rejected",
)
WORKER_EVENTS = ("worker-online", "worker-heartbeat", "worker-offline")
EVENT_TYPES = TASK_EVENTS + WORKER_EVENTS

SW_IDENT = "djq"
SW_SYS = platform.system()
#: a reader re-asks for ids it skipped (a transaction not yet committed) for this long (seconds)
GRACE = 10.0
#: a reader polls this often when nothing wakes it (SQLite; PostgreSQL's safety net is 4 × this)
POLL_INTERVAL = 0.25
#: at most this many rows (batches) per read
READ_ROWS = 200
#: at most this many events a row; an event's clock is its row id × this + its place in the row
ROW_EVENTS = 1000
#: the worker's frequent events travel compact, as [type, timestamp, *values] in this order of
#: fields (a third less to encode than dicts); readers hand out dicts all the same
COMPACT = {
    "task-received": (
        "uuid",
        "name",
        "args",
        "kwargs",
        "retries",
        "eta",
        "expires",
        "root_id",
        "parent_id",
    ),
    "task-started": ("uuid",),
    "task-succeeded": ("uuid", "result", "runtime"),
}
#: a publisher never holds more unwritten events than this (older ones are dropped)
MAX_BUFFER = 100_000


def _jsonable(value):
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


_encode = json.JSONEncoder(default=_jsonable, separators=(",", ":")).encode


def sw_ver() -> str:
    return __version__


def utcoffset() -> int:
    """Hours west of UTC, as Celery's events carry it (``celery.utils.time.utcoffset``)."""
    return (time.altzone if time.localtime().tm_isdst else time.timezone) // 3600


def anon_nodename() -> str:
    """The node name of a process that is not a worker (Celery's ``gen<pid>@<host>``)."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


def events_expire() -> dt.timedelta:
    expires = settings.EVENTS_EXPIRES
    return expires if isinstance(expires, dt.timedelta) else dt.timedelta(seconds=float(expires))


class EventDispatcher:
    """Sends events of one process (Celery's ``app.events.Dispatcher``).

    With ``buffered``, ``send`` only collects and ``flush`` writes the batch in one statement:
    the worker flushes once per turn of its loop. Otherwise ``send`` writes at once, in the
    caller's transaction (it is visible, and NOTIFYed, when that commits).
    """

    def __init__(
        self, hostname: str, enabled: bool = True, using: str | None = None, buffered: bool = False
    ):
        self.hostname = hostname
        self.enabled = enabled
        self.using = store.alias(using)
        self.buffered = buffered
        self.sender = {"hostname": hostname, "pid": os.getpid(), "utcoffset": utcoffset()}
        self.buffer: list[dict | tuple] = []  # dicts, or compact tuples (COMPACT)

    def event(self, type: str, fields: dict) -> dict:  # noqa: A002 - Celery's field name
        return {"type": type, "timestamp": time.time(), **fields}

    def send(self, type: str, **fields) -> None:  # noqa: A002
        if not self.enabled:
            return
        self.buffer.append(self.event(type, fields))
        if not self.buffered:
            self.flush()
        elif len(self.buffer) > MAX_BUFFER:
            del self.buffer[: len(self.buffer) - MAX_BUFFER]

    def flush(self) -> None:
        """Write the buffered events in one statement (dropped, with a warning, on failure)."""
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        write(self.sender, batch, self.using)

    def publish(self, type: str, **fields) -> None:  # noqa: A002
        """Write one event now, whatever ``buffered`` says (a heartbeat thread uses this)."""
        if self.enabled:
            write(self.sender, [self.event(type, fields)], self.using)


def write(sender: dict, batch: list[dict], using: str | None = None) -> None:
    """Append ``batch`` (events of ``sender``) to the event table, then send ``event_sent``."""
    chunks = [batch[i : i + ROW_EVENTS] for i in range(0, len(batch), ROW_EVENTS)]
    payloads = [_encode({"sender": sender, "events": chunk}) for chunk in chunks]
    hostnames, counts = [sender["hostname"]] * len(chunks), [len(c) for c in chunks]
    db = store.alias(using)
    try:
        if connections[db].in_atomic_block:  # a failure must not abort the caller's transaction
            with transaction.atomic(using=db):
                store.insert_events(hostnames, counts, payloads, using=db)
        else:
            store.insert_events(hostnames, counts, payloads, using=db)
    except Exception as exc:  # events are best effort: never fail the job path for them
        logger.warning("Dropped %d event(s): %s: %s", len(batch), type(exc).__name__, exc)
        return
    if signals.event_sent.has_listeners():
        for event in batch:
            signals.event_sent.send(sender=EventDispatcher, event={**sender, **unpack(event)})


def task_sent(
    rows: Sequence[dict[str, Any]], skipped: dict[str, str], using: str | None = None
) -> None:
    """``task-sent`` for jobs just inserted (``djq.enqueue``), in the caller's transaction."""
    dispatcher = EventDispatcher(anon_nodename(), using=using, buffered=True)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        if row["id"] in skipped:
            continue
        eta = row["eta"] or (
            now + dt.timedelta(seconds=row["countdown"]) if row["countdown"] else None
        )
        dispatcher.send(
            "task-sent",
            uuid=str(row["id"]),
            name=row["name"],
            args=row["args"],
            kwargs=row["kwargs"],
            retries=row["retries"],
            eta=eta,
            expires=row["expires"],
            queue=row["queue"],
            exchange="",
            routing_key=row["queue"],
            root_id=row["root_id"],
            parent_id=row["parent_id"],
        )
    dispatcher.flush()


class Receiver:
    """Follows the event table (Celery's ``app.events.Receiver``).

    ``handlers`` maps an event type to a function of the event; ``"*"`` catches every type.
    Starts after the newest stored event, or ``last`` events before it. Ids are handed out when
    a row is inserted but become visible at commit, so an id skipped over is asked for again
    for ``GRACE`` seconds: an event of a long transaction arrives late, not never.
    """

    def __init__(
        self, handlers: dict[str, Callable] | None = None, using: str | None = None, last: int = 0
    ):
        self.handlers = dict(handlers or {})
        self.using = store.alias(using)
        self.batches = EventBatch.objects.using(self.using)
        self.cursor = self.batches.order_by("-id").values_list("id", flat=True).first() or 0
        self.backlog = max(0, int(last))
        self.holes: dict[int, float] = {}  # skipped ids → when first missed
        self.listener = None

    # --- reading ------------------------------------------------------------------------
    def poll(self) -> list[dict]:
        """The events stored since the last call (the ``last`` stored ones first)."""
        if self.backlog:
            return self._read_backlog()
        query = Q(id__gt=self.cursor)
        if self.holes:
            query |= Q(id__in=sorted(self.holes))
        rows = list(
            self.batches.filter(query).order_by("id").values_list("id", "payload")[:READ_ROWS]
        )
        self._track(rows)
        return [event for pk, payload in rows for event in _expand(pk, payload)]

    def _read_backlog(self) -> list[dict]:
        """The ``last`` newest events: rows newest first until they hold enough."""
        wanted, self.backlog = self.backlog, 0
        rows, total = [], 0
        newest = self.batches.filter(id__lte=self.cursor).order_by("-id")
        for pk, count, payload in newest.values_list("id", "count", "payload").iterator(100):
            rows.append((pk, payload))
            total += count
            if total >= wanted:
                break
        events = [event for pk, payload in reversed(rows) for event in _expand(pk, payload)]
        return events[-wanted:]

    def _track(self, rows: list[tuple[int, dict]]) -> None:
        now = time.monotonic()
        for pk, _ in rows:
            self.holes.pop(pk, None)
            if pk > self.cursor:
                for missing in range(self.cursor + 1, min(pk, self.cursor + 1 + READ_ROWS)):
                    self.holes.setdefault(missing, now)
                self.cursor = pk
        if self.holes:
            self.holes = {pk: t for pk, t in self.holes.items() if now - t < GRACE}

    def wait(self, timeout: float) -> None:
        """Sleep until events may have arrived (a NOTIFY on PostgreSQL) or ``timeout``."""
        if self.listener is None and _wants_listener(self.using):
            self._connect()
        if self.listener is None:
            time.sleep(max(0.0, min(timeout, POLL_INTERVAL)))
            return
        try:
            self.listener.wait(min(timeout, POLL_INTERVAL * 4))
        except Exception as exc:  # the connection broke: poll until it is back
            logger.warning("LISTEN connection lost (%s); polling", exc)
            self.close()
            time.sleep(max(0.0, min(timeout, POLL_INTERVAL)))

    def _connect(self) -> None:
        listener = Listener(self.using, [EVENTS_CHANNEL])
        try:
            listener.connect()
        except Exception as exc:
            logger.warning("LISTEN failed (%s); polling", exc)
            return
        self.listener = listener

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    # --- dispatching --------------------------------------------------------------------
    def itercapture(self, limit: int | None = None, timeout: float | None = None) -> Iterator[dict]:
        """Yield events as they come: ``limit`` events at most, for ``timeout`` seconds at most
        (``None``: for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        count = 0
        while limit is None or count < limit:
            for event in self.poll():
                yield event
                count += 1
                if limit is not None and count >= limit:
                    return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            self.wait(POLL_INTERVAL * 4 if left is None else left)

    def capture(self, limit: int | None = None, timeout: float | None = None) -> None:
        """Run the handlers on events as they come (see ``itercapture``)."""
        try:
            for event in self.itercapture(limit, timeout):
                self.process(event)
        finally:
            self.close()

    def process(self, event: dict) -> None:
        signals.event_received.send(sender=Receiver, event=event)
        handler = self.handlers.get(event["type"]) or self.handlers.get("*")
        if handler is not None:
            handler(event)


def unpack(event: dict | list | tuple) -> dict:
    """An event as a dict, from either form a batch holds (see ``COMPACT``)."""
    if isinstance(event, dict):
        return event
    kind, stamp, *values = event
    return {"type": kind, "timestamp": stamp, **dict(zip(COMPACT[kind], values, strict=True))}


def _expand(pk: int, payload: str) -> list[dict]:
    """The events of one row, each with its sender's fields, ``clock`` and ``local_received``."""
    data = json.loads(payload)
    sender, now, base = data["sender"], time.time(), pk * ROW_EVENTS
    return [
        {**sender, **unpack(event), "clock": base + n, "local_received": now}
        for n, event in enumerate(data["events"])
    ]


def _wants_listener(using: str) -> bool:
    return settings.LISTEN and connections[using].vendor == "postgresql"
