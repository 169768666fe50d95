"""``manage.py djq_inspect``: Celery's ``inspect`` — ask the live workers what they are doing."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from djq import control

METHODS = (
    "ping",
    "clock",
    "active",
    "scheduled",
    "reserved",
    "revoked",
    "registered",
    "stats",
    "active_queues",
    "conf",
    "query_task",
)


class Command(BaseCommand):
    help = "Inspect live workers: " + ", ".join(METHODS)

    def add_arguments(self, parser):
        parser.add_argument("method", choices=METHODS)
        parser.add_argument("ids", nargs="*", help="task ids (query_task)")
        parser.add_argument("-d", "--destination", help="comma-separated worker names")
        parser.add_argument("-t", "--timeout", type=float, default=1.0)
        parser.add_argument("-j", "--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        inspector = control.inspect(destination=options["destination"], timeout=options["timeout"])
        method = options["method"]
        if method == "query_task":
            if not options["ids"]:
                raise CommandError("query_task needs one or more task ids")
            replies = inspector.query_task(*options["ids"])
        else:
            replies = getattr(inspector, method)()
        if options["json"]:
            self.stdout.write(json.dumps(replies or {}, indent=2, default=str))
            return
        if not replies:
            raise CommandError(
                f"No workers replied within the time limit "
                f"({options['timeout']:g}s; -t to wait longer)."
            )
        for worker, answer in replies.items():
            self.stdout.write(f"-> {worker}: {_describe(answer)}")
        self.stdout.write(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")


def _describe(answer) -> str:
    if isinstance(answer, dict) and set(answer) == {"ok"}:
        return f"OK {answer['ok']}"
    if isinstance(answer, dict) and set(answer) == {"clock"}:
        return f"clock {answer['clock']}"
    if isinstance(answer, list) and not answer:
        return "- empty -"
    return json.dumps(answer, indent=4, default=str)
