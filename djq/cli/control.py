"""``manage.py djq_control``: Celery's ``control`` — change what the live workers do."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandError

from djq import control
from djq.cli import Output


@dataclass(frozen=True)
class ControlConfig:
    command: str  # one of COMMANDS
    arguments: list[str] = field(default_factory=list)
    destination: str | None = None  # comma-separated worker names
    timeout: float = 1.0
    queue: str | None = None  # purge: only this queue
    terminate: bool = False  # revoke: kill if running
    signal: str = "SIGTERM"  # revoke --terminate: the signal
    json: bool = False


def _revoke(o: ControlConfig) -> list[str]:
    """One line per id: what the revoke did (a finished or unknown job is left alone)."""
    rows = control.revoke(o.arguments, terminate=o.terminate, signal=o.signal)
    found = {job_id: (state, worker) for job_id, state, worker in rows}
    lines = []
    for job_id in o.arguments:
        state, worker = found.get(job_id, (None, ""))
        if state is None:
            lines.append(f"{job_id}: not revoked (finished, or no such job)")
        elif worker and state == "STARTED":
            action = "terminating" if o.terminate else "revoked; it runs to its end"
            lines.append(f"{job_id}: running on {worker}: {action}")
        else:
            lines.append(f"{job_id}: revoked")
    return lines


def _int_or_none(value: str) -> int | None:
    return None if value in ("none", "None", "") else int(value)


def _float(value: str) -> float | None:
    return None if value in ("none", "None", "") else float(value)


def _remote(o: ControlConfig) -> dict[str, Any]:
    return {"destination": o.destination, "reply": True, "timeout": o.timeout}


#: name: (number of positional arguments ("+" = one or more), function(config))
COMMANDS: dict[str, tuple[int | str, Callable[[ControlConfig], Any]]] = {
    "revoke": ("+", _revoke),
    "rate_limit": (2, lambda o: control.rate_limit(o.arguments[0], o.arguments[1], **_remote(o))),
    "time_limit": (
        3,
        lambda o: control.time_limit(
            o.arguments[0], _float(o.arguments[1]), _float(o.arguments[2]), **_remote(o)
        ),
    ),
    "add_consumer": (1, lambda o: control.add_consumer(o.arguments[0], **_remote(o))),
    "cancel_consumer": (1, lambda o: control.cancel_consumer(o.arguments[0], **_remote(o))),
    "pool_grow": (1, lambda o: control.pool_grow(int(o.arguments[0]), **_remote(o))),
    "pool_shrink": (1, lambda o: control.pool_shrink(int(o.arguments[0]), **_remote(o))),
    "autoscale": (
        2,
        lambda o: control.autoscale(int(o.arguments[0]), int(o.arguments[1]), **_remote(o)),
    ),
    "shutdown": (0, lambda o: control.shutdown(**_remote(o))),
    "enable_events": (0, lambda o: control.enable_events(**_remote(o))),
    "disable_events": (0, lambda o: control.disable_events(**_remote(o))),
    "purge": (0, lambda o: control.purge(o.queue)),
    "pause_queue": (1, lambda o: control.pause_queue(o.arguments[0])),
    "resume_queue": (1, lambda o: control.resume_queue(o.arguments[0])),
    "concurrency_limit": (
        2,
        lambda o: control.concurrency_limit(o.arguments[0], _int_or_none(o.arguments[1])),
    ),
}


def run_control(config: ControlConfig, output: Output) -> None:
    """Check the number of arguments, run the command, print its replies (or JSON)."""
    arity, run = COMMANDS[config.command]
    given = len(config.arguments)
    if (arity == "+" and not given) or (arity != "+" and given != arity):
        raise CommandError(f"{config.command} takes {arity} argument(s), got {given}")
    try:
        result = run(config)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if config.json:
        output.out(json.dumps(result, indent=2, default=str))
    elif isinstance(result, list):
        for reply in result:
            if isinstance(reply, str):
                output.out(reply)
                continue
            for worker, answer in reply.items():
                output.out(f"-> {worker}: {answer}")
    elif result is not None:
        output.out(str(result))
