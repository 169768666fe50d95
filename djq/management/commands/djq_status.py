"""``manage.py djq_status``: the online workers (Celery's ``status``), by heartbeat."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from djq import store
from djq.conf import settings
from djq.models import Worker


class Command(BaseCommand):
    help = "List the workers whose heartbeat is fresh (by the database clock)."

    def add_arguments(self, parser):
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        using = store.alias(options["database"])
        fresh = store.db_now(using) - dt.timedelta(seconds=float(settings.WORKER_LEASE))
        online = Worker.objects.using(using).filter(
            stopped_at__isnull=True, last_heartbeat__gte=fresh
        )
        for worker in online:
            queues = ", ".join(worker.queues)
            self.stdout.write(
                f"-> {worker.name}: OK (pid {worker.pid}, {worker.pool} "
                f"x{worker.concurrency}, queues {queues})"
            )
        count = online.count()
        if not count:
            raise CommandError("No workers online.")
        self.stdout.write(f"\n{count} node{'s' if count != 1 else ''} online.")
