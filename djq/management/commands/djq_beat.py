"""``manage.py djq_beat``: run a beat (any number may run; one leads at a time)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.beat import DEFAULT_LEASE, Beat, BeatConfig
from djq.contrib.celery_flags import BEAT_FLAGS, add_flags, warn_given
from djq.management.commands.djq_worker import _setup_logging, _write_pidfile, run_service


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
        _setup_logging(options["loglevel"], options["logfile"])
        warn_given(options, BEAT_FLAGS, "djq_beat")
        if options["pidfile"]:
            _write_pidfile(options["pidfile"])
        config = BeatConfig(
            max_interval=options["max_interval"],
            lease=options["lease"],
            using=options["database"],
            sync=not options["no_sync"],
        )
        run_service(Beat(config).run, options["pidfile"])
