"""``manage.py djq_control``: Celery's ``control`` — change what the live workers do."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from djq.cli import Output
from djq.cli.control import COMMANDS, ControlConfig, run_control


class Command(BaseCommand):
    help = "Control workers and queues: " + ", ".join(COMMANDS)

    def add_arguments(self, parser):
        parser.add_argument("command", choices=sorted(COMMANDS))
        # (dest "arguments", not "args": Django passes options["args"] as *args to handle())
        parser.add_argument("arguments", nargs="*", metavar="args")
        parser.add_argument("-d", "--destination", help="comma-separated worker names")
        parser.add_argument("-t", "--timeout", type=float, default=1.0)
        parser.add_argument("-Q", "--queue", help="purge: only this queue")
        parser.add_argument("--terminate", action="store_true", help="revoke: kill if running")
        parser.add_argument("--signal", default="SIGTERM", help="revoke --terminate: signal")
        parser.add_argument("-j", "--json", action="store_true")

    def handle(self, *args, **options):
        config = ControlConfig(
            command=options["command"],
            arguments=list(options["arguments"]),
            destination=options["destination"],
            timeout=options["timeout"],
            queue=options["queue"],
            terminate=options["terminate"],
            signal=options["signal"],
            json=options["json"],
        )
        run_control(config, Output(self.stdout.write, self.stderr.write))
