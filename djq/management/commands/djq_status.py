"""``manage.py djq_status``: the online workers (Celery's ``status``), by heartbeat."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.cli import Output
from djq.cli.status import StatusConfig, status


class Command(BaseCommand):
    help = "List the workers whose heartbeat is fresh (by the database clock)."

    def add_arguments(self, parser):
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        status(
            StatusConfig(using=options["database"]), Output(self.stdout.write, self.stderr.write)
        )
