"""``manage.py djq_status``: the online workers (Celery's ``status``), by heartbeat."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.management.base import CommandError

from djq import store
from djq.cli import Output
from djq.conf import settings
from djq.models import Worker


@dataclass(frozen=True)
class StatusConfig:
    using: str | None = None


def status(config: StatusConfig, output: Output) -> None:
    """One line per worker whose heartbeat is fresh (by the database clock); none: an error."""
    using = store.alias(config.using)
    fresh = store.db_now(using) - dt.timedelta(seconds=float(settings.WORKER_LEASE))
    online = Worker.objects.using(using).filter(stopped_at__isnull=True, last_heartbeat__gte=fresh)
    for worker in online:
        queues = ", ".join(worker.queues)
        output.out(
            f"-> {worker.name}: OK (pid {worker.pid}, {worker.pool} "
            f"x{worker.concurrency}, queues {queues})"
        )
    count = online.count()
    if not count:
        raise CommandError("No workers online.")
    output.out(f"\n{count} node{'s' if count != 1 else ''} online.")
