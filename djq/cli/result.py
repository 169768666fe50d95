"""``manage.py djq_result ID``: Celery's ``celery result``: a job's result (or traceback) by id."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandError

from djq import states
from djq.calling.result import AsyncResult
from djq.cli import Output
from djq.exceptions import TimeoutError


@dataclass(frozen=True)
class ResultConfig:
    id: str
    traceback: bool = False  # print the failure's traceback instead of the result
    timeout: float = 0.0  # wait up to this long for the job to finish
    json: bool = False
    using: str | None = None


def show_result(config: ResultConfig, output: Output) -> None:
    """Print the result (exit 1 unless the job succeeded), its traceback, or all as JSON."""
    result = AsyncResult(config.id, using=config.using)
    if config.timeout < 0:
        raise CommandError(f"--timeout must be >= 0, got {config.timeout:g}")
    if config.timeout:
        try:
            result.get(timeout=config.timeout, propagate=False)
        except TimeoutError:
            pass
    if config.json:
        output.out(json.dumps(_as_dict(result), indent=2, default=str))
    elif config.traceback:
        _traceback(result, output)
    else:
        _result(result, output)


def _result(result: AsyncResult, output: Output) -> None:
    state = result.state
    if state == states.SUCCESS:
        output.out(json.dumps(result.result, indent=2, default=str))
        return
    if state in states.READY_STATES:
        raise CommandError(f"{result.name}[{result.id}] {state}: {result.result!r}")
    why = "no job has this id" if not result.exists() else "not finished"
    raise CommandError(f"{result.id}: {state} ({why}; --timeout S waits)")


def _traceback(result: AsyncResult, output: Output) -> None:
    if not result.traceback:  # (not CommandError: Django's --traceback would re-raise it)
        output.err(f"{result.id}: {result.state}, no traceback")
        sys.exit(1)
    output.out(result.traceback.rstrip())


def _as_dict(result: AsyncResult) -> dict[str, Any]:
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
