"""``manage.py djq_purge``: remove expired results (and, on request, waiting jobs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from djq import store
from djq.cli import Output
from djq.conf import settings


@dataclass(frozen=True)
class PurgeConfig:
    older_than: float | None = None  # seconds; None: DJQ_RESULT_EXPIRES (None there: keep)
    waiting: bool = False
    queue: str | None = None  # with ``waiting``: only this queue
    using: str | None = None


def purge(config: PurgeConfig, output: Output) -> None:
    expires = config.older_than
    if expires is None:
        expires = settings.RESULT_EXPIRES
    if isinstance(expires, dt.timedelta):
        expires = expires.total_seconds()
    if expires is not None:
        before = store.db_now(config.using) - dt.timedelta(seconds=float(expires))
        removed = store.purge_finished(before, using=config.using)
        output.out(f"Removed {removed} finished job(s) older than {expires:g}s.")
    if config.waiting:
        removed = store.purge_waiting(config.queue, using=config.using)
        where = f" of queue {config.queue!r}" if config.queue else ""
        output.out(f"Removed {removed} waiting job(s){where}.")
