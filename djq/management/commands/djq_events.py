"""``manage.py djq_events``: Celery's ``celery events`` (the live monitor, --dump, --json)."""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand

from djq.cli import Output
from djq.cli.events import EventsConfig, watch


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
        config = EventsConfig(
            dump=options["dump"],
            json=options["json"],
            last=options["last"],
            once=options["once"],
            frequency=options["frequency"],
            camera=options["camera"],
            maxrate=options["maxrate"],
            using=options["database"],
        )
        watch(config, Output(self.stdout.write, self.stderr.write))
