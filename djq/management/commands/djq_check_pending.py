"""``manage.py djq_check_pending``: would the waiting jobs still run with this code?"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from djq import pending


class Command(BaseCommand):
    help = (
        "Bind every waiting job's stored arguments (upgraded to the task's current version) to "
        "the current task signatures; list the jobs that would fail. Exit status 1 if any."
    )

    def add_arguments(self, parser):
        parser.add_argument("-Q", "--queue", help="only the jobs of this queue")
        parser.add_argument("--limit", type=_non_negative, help="check at most N waiting jobs")
        parser.add_argument(
            "--ids", type=_non_negative, default=5, help="example job ids shown per problem (5)"
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        report = pending.check(
            queue=options["queue"],
            limit=options["limit"],
            keep_ids=options["ids"],
            using=options["database"],
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self._print(report)
        if report.failing:
            raise CommandError(
                f"{report.failing} of {report.checked} waiting job(s) would fail", returncode=1
            )

    def _print(self, report: pending.Report) -> None:
        for problem in report.as_dict()["problems"]:
            self.stdout.write(f"{problem['task']}: {problem['count']} job(s): {problem['reason']}")
            self.stdout.write(f"    e.g. {', '.join(problem['ids'])}")
        if not report.failing:
            self.stdout.write(f"{report.checked} waiting job(s) checked: all fit the code.")


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number
