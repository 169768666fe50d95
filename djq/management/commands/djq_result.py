"""``manage.py djq_result ID``: Celery's ``celery result``: a job's result (or traceback) by id."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from djq import states
from djq.calling.result import AsyncResult
from djq.exceptions import TimeoutError


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
        result = AsyncResult(options["id"], using=options["database"])
        if options["timeout"] < 0:
            raise CommandError(f"--timeout must be >= 0, got {options['timeout']:g}")
        if options["timeout"]:
            try:
                result.get(timeout=options["timeout"], propagate=False)
            except TimeoutError:
                pass
        if options["json"]:
            self.stdout.write(json.dumps(_as_dict(result), indent=2, default=str))
            return
        if options["traceback"]:
            self._traceback(result)
        else:
            self._result(result)

    def _result(self, result: AsyncResult) -> None:
        state = result.state
        if state == states.SUCCESS:
            self.stdout.write(json.dumps(result.result, indent=2, default=str))
            return
        if state in states.READY_STATES:
            raise CommandError(f"{result.name}[{result.id}] {state}: {result.result!r}")
        why = "no job has this id" if not result.exists() else "not finished"
        raise CommandError(f"{result.id}: {state} ({why}; --timeout S waits)")

    def _traceback(self, result: AsyncResult) -> None:
        if not result.traceback:  # (not CommandError: Django's --traceback would re-raise it)
            self.stderr.write(f"{result.id}: {result.state}, no traceback")
            sys.exit(1)
        self.stdout.write(result.traceback.rstrip())


def _as_dict(result: AsyncResult) -> dict:
    state = result.state
    value = result.result
    if isinstance(value, BaseException):
        value = f"{type(value).__name__}: {value}"
    return {
        "id": result.id,
        "task": result.name,
        "state": state,
        "exists": result.exists(),
        "result": value,
        "traceback": result.traceback,
        "date_done": result.date_done,
    }
