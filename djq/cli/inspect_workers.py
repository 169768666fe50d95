"""``manage.py djq_inspect``: Celery's ``inspect`` — ask the live workers what they are doing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandError

from djq import control
from djq.cli import Output

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


@dataclass(frozen=True)
class InspectConfig:
    method: str  # one of METHODS
    ids: list[str] = field(default_factory=list)  # query_task's task ids
    destination: str | None = None  # comma-separated worker names
    timeout: float = 1.0
    json: bool = False


def inspect(config: InspectConfig, output: Output) -> None:
    inspector = control.inspect(destination=config.destination, timeout=config.timeout)
    if config.method == "query_task":
        if not config.ids:
            raise CommandError("query_task needs one or more task ids")
        replies = inspector.query_task(*config.ids)
    else:
        replies = getattr(inspector, config.method)()
    if config.json:
        output.out(json.dumps(replies or {}, indent=2, default=str))
        return
    if not replies:
        raise CommandError(
            f"No workers replied within the time limit ({config.timeout:g}s; -t to wait longer)."
        )
    for worker, answer in replies.items():
        output.out(f"-> {worker}: {_describe(answer)}")
    output.out(f"\n{len(replies)} node{'s' if len(replies) != 1 else ''} online.")


def _describe(answer: Any) -> str:
    if isinstance(answer, dict) and set(answer) == {"ok"}:
        return f"OK {answer['ok']}"
    if isinstance(answer, dict) and set(answer) == {"clock"}:
        return f"clock {answer['clock']}"
    if isinstance(answer, list) and not answer:
        return "- empty -"
    return json.dumps(answer, indent=4, default=str)
