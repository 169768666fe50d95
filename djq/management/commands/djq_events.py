"""``manage.py djq_events``: Celery's ``celery events`` (the live monitor, --dump, --json)."""

from __future__ import annotations

import argparse
import curses
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from djq import store
from djq.events import Receiver
from djq.events.monitor import Dumper, Monitor, json_line

#: events replayed into the monitor at start, so that it opens on a populated screen
MONITOR_BACKLOG = 1000
#: events printed by --once without --last
ONCE_BACKLOG = 100


def _non_negative(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"takes a number of events (0 or more), got {value!r}")
    return number


def _frequency(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not 0.05 <= number <= 60:
        raise argparse.ArgumentTypeError(f"takes seconds between 0.05 and 60, got {value!r}")
    return number


class Command(BaseCommand):
    help = (
        "Watch the event stream of workers started with -E: a live monitor, or "
        "--dump / --json one event a line."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "-d",
            "--dump",
            action="store_true",
            help="print events one a line (Celery's dump format)",
        )
        parser.add_argument(
            "-j", "--json", action="store_true", help="print events as one JSON object a line"
        )
        parser.add_argument(
            "--last", type=_non_negative, default=None, help="begin with the N newest stored events"
        )
        parser.add_argument(
            "--once", action="store_true", help="--dump/--json: print stored events and exit"
        )
        parser.add_argument(
            "-F",
            "--frequency",
            "--freq",
            type=_frequency,
            default=0.5,
            help="monitor: seconds between screen refreshes (0.5)",
        )
        parser.add_argument("-c", "--camera", help="Celery's snapshot camera: not needed")
        parser.add_argument("-r", "--maxrate", help="Celery's camera rate: not needed")
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        for name in ("camera", "maxrate"):
            if options[name]:
                self.stderr.write(
                    f"djq_events: --{name} is ignored: djq keeps no snapshots; "
                    "the events table is the history (see --last)"
                )
        if options["once"] and not (options["dump"] or options["json"]):
            raise CommandError("--once goes with --dump or --json")
        using = store.alias(options["database"])
        if using not in connections:
            raise CommandError(f"--database: no database alias {using!r}")
        if options["dump"] or options["json"]:
            self.dump(using, options)
        else:
            self.monitor(using, options)

    def dump(self, using: str, options: dict) -> None:
        last = options["last"]
        if last is None:
            last = ONCE_BACKLOG if options["once"] else 0
        receiver = Receiver(using=using, last=last)
        if options["json"]:
            write = lambda event: print(json_line(event), flush=True)  # noqa: E731
            sys.stderr.write("-> evdump: starting capture...\n")
        else:
            write = Dumper(sys.stdout).on_event
            print("-> evdump: starting capture...", flush=True)
        try:
            if options["once"]:
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

    def monitor(self, using: str, options: dict) -> None:
        if not sys.stdout.isatty():
            raise CommandError("the monitor needs a terminal; use --dump or --json in pipes")
        last = MONITOR_BACKLOG if options["last"] is None else options["last"]
        receiver = Receiver(using=using, last=last)
        monitor = Monitor(receiver, options["frequency"], f"{connections[using].vendor} ({using})")
        try:
            curses.wrapper(monitor.run)
        except KeyboardInterrupt:
            pass
        finally:
            receiver.close()
