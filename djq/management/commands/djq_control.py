"""``manage.py djq_control``: Celery's ``control`` — change what the live workers do."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from djq import control


def _revoke(o) -> list[str]:
    """One line per id: what the revoke did (a finished or unknown job is left alone)."""
    rows = control.revoke(o["arguments"], terminate=o["terminate"], signal=o["signal"])
    found = {job_id: (state, worker) for job_id, state, worker in rows}
    lines = []
    for job_id in o["arguments"]:
        state, worker = found.get(job_id, (None, ""))
        if state is None:
            lines.append(f"{job_id}: not revoked (finished, or no such job)")
        elif worker and state == "STARTED":
            action = "terminating" if o["terminate"] else "revoked; it runs to its end"
            lines.append(f"{job_id}: running on {worker}: {action}")
        else:
            lines.append(f"{job_id}: revoked")
    return lines


COMMANDS = {
    # name: (number of positional arguments ("+" = one or more), function(options))
    "revoke": ("+", _revoke),
    "rate_limit": (2, lambda o: control.rate_limit(*o["arguments"], **_remote(o))),
    "time_limit": (
        3,
        lambda o: control.time_limit(
            o["arguments"][0], _float(o["arguments"][1]), _float(o["arguments"][2]), **_remote(o)
        ),
    ),
    "add_consumer": (1, lambda o: control.add_consumer(o["arguments"][0], **_remote(o))),
    "cancel_consumer": (1, lambda o: control.cancel_consumer(o["arguments"][0], **_remote(o))),
    "pool_grow": (1, lambda o: control.pool_grow(int(o["arguments"][0]), **_remote(o))),
    "pool_shrink": (1, lambda o: control.pool_shrink(int(o["arguments"][0]), **_remote(o))),
    "autoscale": (2, lambda o: control.autoscale(*map(int, o["arguments"]), **_remote(o))),
    "shutdown": (0, lambda o: control.shutdown(**_remote(o))),
    "enable_events": (0, lambda o: control.enable_events(**_remote(o))),
    "disable_events": (0, lambda o: control.disable_events(**_remote(o))),
    "purge": (0, lambda o: control.purge(o["queue"])),
    "pause_queue": (1, lambda o: control.pause_queue(o["arguments"][0])),
    "resume_queue": (1, lambda o: control.resume_queue(o["arguments"][0])),
    "concurrency_limit": (
        2,
        lambda o: control.concurrency_limit(o["arguments"][0], _int_or_none(o["arguments"][1])),
    ),
}


def _int_or_none(value: str) -> int | None:
    return None if value in ("none", "None", "") else int(value)


def _float(value: str) -> float | None:
    return None if value in ("none", "None", "") else float(value)


def _remote(options) -> dict:
    return {"destination": options["destination"], "reply": True, "timeout": options["timeout"]}


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
        arity, run = COMMANDS[options["command"]]
        given = len(options["arguments"])
        if (arity == "+" and not given) or (arity != "+" and given != arity):
            raise CommandError(f"{options['command']} takes {arity} argument(s), got {given}")
        try:
            result = run(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, default=str))
        elif isinstance(result, list):
            for reply in result:
                if isinstance(reply, str):
                    self.stdout.write(reply)
                    continue
                for worker, answer in reply.items():
                    self.stdout.write(f"-> {worker}: {answer}")
        elif result is not None:
            self.stdout.write(str(result))
