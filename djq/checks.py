"""System checks for djq's settings (``manage.py check``)."""

from __future__ import annotations

import inspect

from django.core.checks import Error, Warning, register
from django.db import DatabaseError, connections

from djq import pending
from djq.calling.registry import tasks
from djq.conf import ANNOTATION_KEYS, settings
from djq.limits import fair_weights
from djq.models import PRIORITY_MAX, PRIORITY_MIN
from djq.running.task_log import level


@register()
def check_database(app_configs, **kwargs):
    alias = settings.DATABASE
    if alias not in connections.settings:
        return [Error(f"DJQ_DATABASE names {alias!r}, which is not in DATABASES", id="djq.E001")]
    vendor = connections[alias].vendor
    if vendor not in ("postgresql", "sqlite"):
        return [Error(f"djq supports PostgreSQL and SQLite, not {vendor}", id="djq.E002")]
    return []


@register()
def check_routes(app_configs, **kwargs):
    routes = settings.TASK_ROUTES
    entries = routes if isinstance(routes, (list, tuple)) else [routes]
    errors = []
    for entry in entries:
        if callable(entry):
            continue
        if not isinstance(entry, dict):
            errors.append(
                Error(f"DJQ_TASK_ROUTES entries must be dicts, got {entry!r}", id="djq.E003")
            )
            continue
        for pattern, target in entry.items():
            if not _valid_route(target):
                errors.append(
                    Error(
                        f"DJQ_TASK_ROUTES[{pattern!r}] must be a queue name or a dict with 'queue' "
                        f"(a non-empty string) and/or 'priority' (an integer "
                        f"{PRIORITY_MIN}..{PRIORITY_MAX})",
                        id="djq.E004",
                    )
                )
    return errors


def _valid_route(target) -> bool:
    """A route every enqueue of its tasks can use (what ``djq.enqueue`` would accept); a string
    is a queue name (Celery's short form)."""
    if isinstance(target, str):
        target = {"queue": target}
    if not isinstance(target, dict) or not set(target) <= {"queue", "priority"}:
        return False
    queue, priority = target.get("queue"), target.get("priority")
    if queue is not None and not (isinstance(queue, str) and 0 < len(queue) <= 200):
        return False
    if priority is not None and (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not PRIORITY_MIN <= priority <= PRIORITY_MAX
    ):
        return False
    return True


@register()
def check_eager(app_configs, **kwargs):
    if settings.TASK_ALWAYS_EAGER:
        return [
            Warning(
                "DJQ_TASK_ALWAYS_EAGER is on: tasks run inline, no worker is used", id="djq.W001"
            )
        ]
    return []


@register()
def check_annotations(app_configs, **kwargs):
    """DJQ_TASK_ANNOTATIONS keys that djq does not read would be silently ignored: say so."""
    annotations = settings.TASK_ANNOTATIONS or {}
    if not isinstance(annotations, dict):
        return [
            Warning("DJQ_TASK_ANNOTATIONS must be a dict of task name → options", id="djq.W005")
        ]
    found = []
    for name, options in annotations.items():
        unknown = sorted(set(options) - ANNOTATION_KEYS) if isinstance(options, dict) else []
        if unknown:
            found.append(
                Warning(
                    f"DJQ_TASK_ANNOTATIONS[{name!r}]: {', '.join(unknown)} not read (djq reads "
                    f"{', '.join(sorted(ANNOTATION_KEYS))})",
                    id="djq.W005",
                )
            )
    return found


@register()
def check_events(app_configs, **kwargs):
    """The monitoring events' settings (djq.events): two switches and a positive expiry."""
    errors = []
    for name in ("WORKER_SEND_TASK_EVENTS", "TASK_SEND_SENT_EVENT"):
        value = getattr(settings, name)
        if not isinstance(value, bool):
            errors.append(Error(f"DJQ_{name} must be True or False, not {value!r}", id="djq.E030"))
    expires = settings.EVENTS_EXPIRES
    try:
        seconds = expires.total_seconds() if hasattr(expires, "total_seconds") else float(expires)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        errors.append(
            Error(
                f"DJQ_EVENTS_EXPIRES must be a positive number of seconds or a "
                f"timedelta, not {expires!r}",
                id="djq.E031",
            )
        )
    return errors


@register()
def check_task_logs(app_configs, **kwargs):
    """Logs per attempt (djq.task_log): a log level, a byte cap, a switch."""
    errors = []
    try:
        level()
    except ValueError as exc:
        errors.append(Error(str(exc), id="djq.E040"))
    cap = settings.TASK_LOG_MAX_BYTES
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        errors.append(
            Error(
                f"DJQ_TASK_LOG_MAX_BYTES must be a whole number of bytes (0: keep "
                f"none), not {cap!r}",
                id="djq.E041",
            )
        )
    if not isinstance(settings.TASK_LOG_PRINT, bool):
        errors.append(
            Error(
                f"DJQ_TASK_LOG_PRINT must be True or False, not {settings.TASK_LOG_PRINT!r}",
                id="djq.E042",
            )
        )
    return errors


#: how many waiting jobs the deploy check binds (djq_check_pending checks them all)
PENDING_SAMPLE = 1000


@register(deploy=True)
def check_pending_jobs(app_configs, **kwargs):
    """At deploy (``manage.py check --deploy``): waiting jobs this code would fail. Cheap: one
    GROUP BY for unknown task names, and the arguments of a bounded sample of waiting jobs."""
    alias = settings.DATABASE
    try:
        unknown = pending.unknown_names(using=alias)
        sample = pending.check(limit=PENDING_SAMPLE, keep_ids=3, using=alias)
    except DatabaseError:  # no table yet (before migrate), no server: nothing is waiting here
        return []
    found = [
        Warning(
            f"{n} waiting job(s) of task {name!r}, which this code does not define: they "
            "will fail with NotRegistered",
            hint="Keep the task (or an alias of its name) until they ran; "
            "`manage.py djq_check_pending` lists them.",
            id="djq.W150",
        )
        for name, n in sorted(unknown.items())
    ]
    for problem in sample.problems.values():
        if problem.task in unknown:
            continue
        found.append(
            Warning(
                f"{problem.count} of the first {sample.checked} waiting job(s) of task "
                f"{problem.task!r} would fail: {problem.reason} (e.g. {', '.join(problem.ids)})",
                hint="Accept the old arguments, or @task(version=N, upgrade={...}) them; "
                "`manage.py djq_check_pending` checks every waiting job.",
                id="djq.W151",
            )
        )
    return found


@register()
def check_fair_keys(app_configs, **kwargs):
    """DJQ_FAIR_KEYS is read by every worker's claim: a bad value would stop the workers, so
    ``manage.py check`` (a deploy) names it first."""
    try:
        fair_weights(settings.FAIR_KEYS)
    except ValueError as exc:
        return [Error(str(exc), id="djq.E050")]
    return []


@register()
def check_concurrency_keys(app_configs, **kwargs):
    """A ``concurrency_key`` naming no argument of its task passes the decorator (which checks
    only that it is a name or a callable) and would fail every call: find it at deploy."""
    errors = []
    for name in tasks.regular():
        task = tasks[name]
        spec = inspect.getattr_static(task, "concurrency_key", None)
        if spec is None or callable(spec) or isinstance(spec, (staticmethod, classmethod)):
            continue
        sig = task._signature()
        if sig is None:
            continue
        param = sig.parameters.get(spec)
        if param is None:
            if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
                continue  # (it may come as a keyword argument: resolved at each call)
            problem = "is not an argument of the task"
        elif param.kind is inspect.Parameter.VAR_POSITIONAL:
            problem = f"names *{spec}, not one argument"
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            problem = f"names **{spec}, not one argument"
        else:
            continue
        errors.append(
            Error(f"task {name}: concurrency_key={spec!r} {problem} {name}{sig}", id="djq.E051")
        )
    return errors
