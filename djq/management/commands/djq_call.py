"""``manage.py djq_call NAME``: Celery's ``celery call``: enqueue a task by name, print its id."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from djq.calling.enqueue import send_task
from djq.serialization import Decoder


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
        call_args = _json(options["call_args"], "--args", list, "a JSON list")
        call_kwargs = _json(options["call_kwargs"], "--kwargs", dict, "a JSON object")
        extra = {
            "queue": options["queue"],
            "countdown": options["countdown"],
            "eta": _time(options["eta"], "--eta") if options["eta"] else None,
            "expires": _expires(options["expires"]),
            "priority": options["priority"],
            "task_id": options["task_id"],
        }
        extra = {k: v for k, v in extra.items() if v is not None}
        try:
            result = send_task(
                options["name"], call_args, call_kwargs, using=options["database"], **extra
            )
        except (TypeError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(result.id)


def _json(text: str, option: str, kind: type, what: str):
    try:
        value = json.loads(text, cls=Decoder)
    except ValueError as exc:
        raise CommandError(f"{option} must be {what}, got {text!r} ({exc})") from None
    if not isinstance(value, kind):
        raise CommandError(f"{option} must be {what}, got {text!r}")
    return value


def _time(text: str, option: str) -> dt.datetime:
    """An ISO 8601 time; a naive one is in Django's current time zone."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option} must be an ISO 8601 time, got {text!r}") from None
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _expires(text: str | None):
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return _time(text, "--expires")
