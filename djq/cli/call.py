"""``manage.py djq_call NAME``: Celery's ``celery call``: enqueue a task by name, print its id."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError
from django.utils import timezone

from djq.calling.enqueue import send_task
from djq.cli import Output
from djq.serialization import Decoder


@dataclass(frozen=True)
class CallConfig:
    """The options as given (texts: checked by ``call``, so each error names its option)."""

    name: str
    args: str = "[]"  # a JSON list
    kwargs: str = "{}"  # a JSON object
    queue: str | None = None
    countdown: float | None = None
    eta: str | None = None  # an ISO 8601 time
    expires: str | None = None  # seconds, or an ISO 8601 time
    priority: int | None = None
    task_id: str | None = None
    using: str | None = None


def call(config: CallConfig, output: Output) -> None:
    """Enqueue the job (``send_task``) and print its id."""
    call_args = _json(config.args, "--args", list, "a JSON list")
    call_kwargs = _json(config.kwargs, "--kwargs", dict, "a JSON object")
    extra = {
        "queue": config.queue,
        "countdown": config.countdown,
        "eta": _time(config.eta, "--eta") if config.eta else None,
        "expires": _expires(config.expires),
        "priority": config.priority,
        "task_id": config.task_id,
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    try:
        result = send_task(config.name, call_args, call_kwargs, using=config.using, **extra)
    except (TypeError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    output.out(result.id)


def _json(text: str, option: str, kind: type, what: str) -> Any:
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


def _expires(text: str | None) -> float | dt.datetime | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return _time(text, "--expires")
