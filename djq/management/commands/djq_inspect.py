"""``manage.py djq_inspect``: Celery's ``inspect`` — ask the live workers what they are doing."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.cli import Output
from djq.cli.inspect_workers import METHODS, InspectConfig, inspect


class Command(BaseCommand):
    help = "Inspect live workers: " + ", ".join(METHODS)

    def add_arguments(self, parser):
        parser.add_argument("method", choices=METHODS)
        parser.add_argument("ids", nargs="*", help="task ids (query_task)")
        parser.add_argument("-d", "--destination", help="comma-separated worker names")
        parser.add_argument("-t", "--timeout", type=float, default=1.0)
        parser.add_argument("-j", "--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        config = InspectConfig(
            method=options["method"],
            ids=list(options["ids"]),
            destination=options["destination"],
            timeout=options["timeout"],
            json=options["json"],
        )
        inspect(config, Output(self.stdout.write, self.stderr.write))
