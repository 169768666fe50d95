"""``manage.py djq_call NAME``: Celery's ``celery call``: enqueue a task by name, print its id."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.cli import Output
from djq.cli.call import CallConfig, call


class Command(BaseCommand):
    help = (
        "Enqueue a job of the named task (registered or not: send_task) with JSON arguments, "
        "and print its id."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the task's registered name, e.g. app.tasks.add")
        # (dest: Django passes options["args"] to handle() as *args)
        parser.add_argument(
            "-a", "--args", dest="call_args", default="[]", help="positional arguments, a JSON list"
        )
        parser.add_argument(
            "-k",
            "--kwargs",
            dest="call_kwargs",
            default="{}",
            help="keyword arguments, a JSON object",
        )
        parser.add_argument("-Q", "--queue", help="the queue (default: the task's route)")
        parser.add_argument("--countdown", type=float, help="run no sooner than in S seconds")
        parser.add_argument("--eta", help="run no sooner than this ISO 8601 time")
        parser.add_argument("--expires", help="seconds, or an ISO 8601 time")
        parser.add_argument("--priority", type=int, help="-100..255, higher first")
        parser.add_argument("--task-id", help="the job's id (any string; default: a UUID)")
        parser.add_argument("--database", help="database alias (DJQ_DATABASE)")

    def handle(self, *args, **options):
        config = CallConfig(
            name=options["name"],
            args=options["call_args"],
            kwargs=options["call_kwargs"],
            queue=options["queue"],
            countdown=options["countdown"],
            eta=options["eta"],
            expires=options["expires"],
            priority=options["priority"],
            task_id=options["task_id"],
            using=options["database"],
        )
        call(config, Output(self.stdout.write, self.stderr.write))
