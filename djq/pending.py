"""Deploy-safe queued jobs: would the waiting jobs still run with the code deployed now?

``check(...)`` reads every waiting job (PENDING, RETRY, scheduled, and RESERVED: claimed but not
started) and binds its stored arguments, brought to the task's current version by its upgrades
(djq.versioning), to the task's current signature (``inspect.signature(...).bind``). It lists
the jobs that would fail: an unknown task name, an upgrade that is missing or raises, arguments
that no longer fit. ``manage.py djq_check_pending`` prints it; the deploy system check
(djq.checks) runs it on a bounded sample.

Fast on 100,000 waiting jobs: rows are streamed (``iterator``) as tuples of JSON text; an
unknown name is decided once per name, and a job of the current version is bound once per
distinct shape
(argument count, keyword names), the only things ``bind`` looks at. Jobs of an older version
go through their upgrade one by one (an upgrade may look at values).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, TextField
from django.db.models.functions import Cast

from djq import states
from djq.calling.registry import tasks
from djq.models import Job
from djq.serialization import loads
from djq.versioning import UpgradeError, job_version, upgrade_arguments

#: the states of jobs that have not started: they will run with the code deployed now
NOT_STARTED = sorted(states.WAITING_STATES | {states.RESERVED})
CHUNK = 2000


@dataclass
class Problem:
    """Waiting jobs of one task that would fail for one reason."""

    task: str
    reason: str
    count: int = 0
    ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "reason": self.reason, "count": self.count, "ids": self.ids}


@dataclass
class Report:
    checked: int = 0
    problems: dict[tuple[str, str], Problem] = field(default_factory=dict)

    @property
    def failing(self) -> int:
        return sum(p.count for p in self.problems.values())

    def add(self, name: str, reason: str, job_id: str, keep_ids: int) -> None:
        problem = self.problems.setdefault((name, reason), Problem(name, reason))
        problem.count += 1
        if len(problem.ids) < keep_ids:
            problem.ids.append(job_id)

    def as_dict(self) -> dict[str, Any]:
        problems = sorted(self.problems.values(), key=lambda p: (-p.count, p.task, p.reason))
        return {
            "checked": self.checked,
            "failing": self.failing,
            "problems": [p.as_dict() for p in problems],
        }


def check(
    queue: str | None = None,
    limit: int | None = None,
    keep_ids: int = 5,
    using: str | None = None,
) -> Report:
    """Check the waiting jobs (of ``queue``; at most ``limit`` of them) against the code."""
    rows = Job.objects.using(using).filter(state__in=NOT_STARTED)
    if queue:
        rows = rows.filter(queue=queue)
    # as text, decoded here: Django's JSONField builds a decoder per value (4/5 of the time)
    values = rows.annotate(
        args_text=Cast("args", TextField()),
        kwargs_text=Cast("kwargs", TextField()),
        options_text=Cast("options", TextField()),
    ).values_list("id", "name", "args_text", "kwargs_text", "options_text")
    if limit:
        values = values[:limit]
    report = Report()
    shapes: dict[tuple, str | None] = {}  # (name, nargs, kwarg names) → why it fails, or None
    for job_id, name, args, kwargs, options in values.iterator(chunk_size=CHUNK):
        report.checked += 1
        try:
            args, kwargs, options = loads(args), loads(kwargs), loads(options)
        except (TypeError, ValueError) as exc:
            reason: str | None = f"malformed job payload: {exc}"
        else:
            reason = _reason(name, args, kwargs, options, shapes)
        if reason is not None:
            report.add(name, reason, job_id, keep_ids)
    return report


def _reason(name: str, args: Any, kwargs: Any, options: Any, shapes: dict) -> str | None:
    """Why this job would fail when it runs, or None."""
    task = tasks.get(name) if name in tasks else None
    if task is None:
        return "unknown task: no task of this name is registered in this code"
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return "malformed job payload: args must be a JSON array and kwargs a JSON object"
    version = job_version((options or {}).get("version") if isinstance(options, dict) else None)
    if version != task.version:
        try:
            args, kwargs = upgrade_arguments(task, version, args, kwargs)
        except UpgradeError as exc:
            return str(exc)
        return _bind(task, args, kwargs)
    key = (name, len(args), tuple(sorted(kwargs)))
    if key not in shapes:
        shapes[key] = _bind(task, args, kwargs)
    return shapes[key]


def _bind(task: Any, args: list, kwargs: dict) -> str | None:
    sig: inspect.Signature | None = task._signature() if task.typing else None
    if sig is None:
        return None
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        return f"arguments do not fit {task.name}{sig}: {exc}"
    return None


def unknown_names(using: str | None = None) -> dict[str, int]:
    """Waiting jobs per task name this code does not know (one GROUP BY: the deploy check)."""
    rows = Job.objects.using(using).filter(state__in=NOT_STARTED).order_by()
    counts = rows.values_list("name").annotate(n=Count("id")).values_list("name", "n")
    return {name: n for name, n in counts if name not in tasks}
