"""``manage.py djq_purge``: remove expired results (and, on request, waiting jobs)."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand

from djq import store
from djq.conf import settings


class Command(BaseCommand):
    help = "Delete finished jobs older than DJQ_RESULT_EXPIRES; with --waiting, waiting jobs too."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, help="seconds (DJQ_RESULT_EXPIRES)")
        parser.add_argument("--waiting", action="store_true", help="also delete waiting jobs")
        parser.add_argument("-Q", "--queue", help="with --waiting: only this queue")
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        using = options["database"]
        expires = options["older_than"]
        if expires is None:
            expires = settings.RESULT_EXPIRES
        if isinstance(expires, dt.timedelta):
            expires = expires.total_seconds()
        if expires is not None:
            before = store.db_now(using) - dt.timedelta(seconds=float(expires))
            removed = store.purge_finished(before, using=using)
            self.stdout.write(f"Removed {removed} finished job(s) older than {expires:g}s.")
        if options["waiting"]:
            removed = store.purge_waiting(options["queue"], using=using)
            where = f" of queue {options['queue']!r}" if options["queue"] else ""
            self.stdout.write(f"Removed {removed} waiting job(s){where}.")
