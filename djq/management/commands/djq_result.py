"""``manage.py djq_result ID``: Celery's ``celery result``: a job's result (or traceback) by id."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.cli import Output
from djq.cli.result import ResultConfig, show_result


class Command(BaseCommand):
    help = (
        "Print the result of a job by id (any task id); --traceback: its traceback. Exits 1 "
        "unless the job succeeded (with --traceback: unless it has a traceback)."
    )

    def add_arguments(self, parser):
        parser.add_argument("id", help="the task id")
        # --traceback is Django's own option (every command has it): here it also means "print
        # the failure's traceback instead of the result", as ``celery result --traceback`` does
        parser.add_argument("-t", "--task", help="(Celery's option; the id alone finds the job)")
        parser.add_argument(
            "--timeout",
            type=float,
            default=0.0,
            help="wait up to this many seconds for the job to finish",
        )
        parser.add_argument(
            "-j", "--json", action="store_true", help="print state, result, traceback … as JSON"
        )
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        config = ResultConfig(
            id=options["id"],
            traceback=options["traceback"],
            timeout=options["timeout"],
            json=options["json"],
            using=options["database"],
        )
        show_result(config, Output(self.stdout.write, self.stderr.write))
