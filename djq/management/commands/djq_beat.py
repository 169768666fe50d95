"""``manage.py djq_beat``: run a beat (any number may run; one leads at a time)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.beat import DEFAULT_LEASE, BeatConfig
from djq.cli.beat import BeatCommand, run_beat
from djq.cli.service import ServiceOptions
from djq.contrib.celery_flags import BEAT_FLAGS, add_flags


class Command(BaseCommand):
    help = "Run the periodic scheduler: enqueue DJQ_BEAT_SCHEDULE and admin schedules on time."

    def add_arguments(self, parser):
        parser.add_argument("-l", "--loglevel", default="INFO")
        parser.add_argument(
            "--max-interval",
            type=float,
            default=1.0,
            help="longest sleep between looks at the schedule (s); edits are seen this fast",
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=DEFAULT_LEASE,
            help="leader lease (s): a dead leader is replaced after it",
        )
        parser.add_argument(
            "--no-sync", action="store_true", help="do not sync DJQ_BEAT_SCHEDULE to the database"
        )
        parser.add_argument("--pidfile")
        parser.add_argument("-f", "--logfile")
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")
        add_flags(parser, BEAT_FLAGS)

    def handle(self, *args, **options):
        beat = BeatConfig(
            max_interval=options["max_interval"],
            lease=options["lease"],
            using=options["database"],
            sync=not options["no_sync"],
        )
        service = ServiceOptions(
            loglevel=options["loglevel"], logfile=options["logfile"], pidfile=options["pidfile"]
        )
        flags = {flag.dest: options.get(flag.dest) for flag in BEAT_FLAGS}
        run_beat(BeatCommand(beat, service, flags))
