"""``manage.py djq_purge``: remove expired results (and, on request, waiting jobs)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.cli import Output
from djq.cli.purge import PurgeConfig, purge


class Command(BaseCommand):
    help = "Delete finished jobs older than DJQ_RESULT_EXPIRES; with --waiting, waiting jobs too."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, help="seconds (DJQ_RESULT_EXPIRES)")
        parser.add_argument("--waiting", action="store_true", help="also delete waiting jobs")
        parser.add_argument("-Q", "--queue", help="with --waiting: only this queue")
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        config = PurgeConfig(
            older_than=options["older_than"],
            waiting=options["waiting"],
            queue=options["queue"],
            using=options["database"],
        )
        purge(config, Output(self.stdout.write, self.stderr.write))
