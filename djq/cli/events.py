"""``manage.py djq_events``: Celery's ``celery events`` (the live monitor, --dump, --json)."""

from __future__ import annotations

import curses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError
from django.db import connections

from djq import store
from djq.cli import Output
from djq.events import Receiver
from djq.events.monitor import Dumper, Monitor, json_line

#: events replayed into the monitor at start, so that it opens on a populated screen
MONITOR_BACKLOG = 1000
#: events printed by --once without --last
ONCE_BACKLOG = 100


@dataclass(frozen=True)
class EventsConfig:
    dump: bool = False  # one event a line, Celery's dump format
    json: bool = False  # one JSON object a line
    last: int | None = None  # begin with the N newest stored events
    once: bool = False  # --dump/--json: print the stored events and exit
    frequency: float = 0.5  # monitor: seconds between screen refreshes
    camera: str | None = None  # (Celery's snapshot camera: ignored)
    maxrate: str | None = None  # (Celery's camera rate: ignored)
    using: str | None = None


def watch(config: EventsConfig, output: Output) -> None:
    """The live monitor, or the event stream printed (--dump, --json)."""
    for name, value in (("camera", config.camera), ("maxrate", config.maxrate)):
        if value:
            output.err(
                f"djq_events: --{name} is ignored: djq keeps no snapshots; "
                "the events table is the history (see --last)"
            )
    if config.once and not (config.dump or config.json):
        raise CommandError("--once goes with --dump or --json")
    using = store.alias(config.using)
    if using not in connections:
        raise CommandError(f"--database: no database alias {using!r}")
    if config.dump or config.json:
        _dump(using, config)
    else:
        _monitor(using, config)


def _dump(using: str, config: EventsConfig) -> None:
    last = config.last
    if last is None:
        last = ONCE_BACKLOG if config.once else 0
    receiver = Receiver(using=using, last=last)
    write: Callable[[Any], object]
    if config.json:
        write = lambda event: print(json_line(event), flush=True)  # noqa: E731
        sys.stderr.write("-> evdump: starting capture...\n")
    else:
        write = Dumper(sys.stdout).on_event
        print("-> evdump: starting capture...", flush=True)
    try:
        if config.once:
            for event in receiver.poll():
                write(event)
            return
        for event in receiver.itercapture():
            receiver.process(event)
            write(event)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        receiver.close()


def _monitor(using: str, config: EventsConfig) -> None:
    if not sys.stdout.isatty():
        raise CommandError("the monitor needs a terminal; use --dump or --json in pipes")
    last = MONITOR_BACKLOG if config.last is None else config.last
    receiver = Receiver(using=using, last=last)
    monitor = Monitor(receiver, config.frequency, f"{connections[using].vendor} ({using})")
    try:
        curses.wrapper(monitor.run)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.close()
