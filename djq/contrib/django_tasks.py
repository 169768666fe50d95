"""Django's own Tasks framework (``django.tasks``, Django >= 6.0) on djq: the worker side.

``djq.backends.DjqBackend`` enqueues a Django ``Task`` as a job of the djq task ``djq.django_task``
with the task's own arguments; the job's ``headers`` name the Django task (its module path) and
the ``Task`` fields it was enqueued with. In the worker, ``djq.django_task`` imports the task,
sends Django's ``task_started``/``task_finished`` signals and calls it (with a ``TaskContext``
when it ``takes_context``). ``task_result`` turns a job row into Django's ``TaskResult``.

This module is imported by djq's app config on every Django version, so ``django.tasks`` is only
imported inside functions: djq stays usable on Django 5.2, where a system check explains that the
backend needs Django 6.0.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import inspect
import sys
import traceback as traceback_module

from django.conf import settings as django_settings
from django.core.checks import Error, register

from djq import states
from djq.conf import settings
from djq.models import Job
from djq.task import task

#: the djq task every Django task runs through
TASK_NAME = "djq.django_task"
#: the job header that names the Django task and the ``Task`` fields it was enqueued with
HEADER = "django_task"
BACKEND_PATH = "djq.backends.DjqBackend"

#: djq state → Django ``TaskResultStatus`` (RETRY: "ready to be executed again")
STATUS = {
    states.PENDING: "READY",
    states.RETRY: "READY",
    states.RESERVED: "READY",  # claimed ahead of demand, not started
    states.STARTED: "RUNNING",
    states.SUCCESS: "SUCCESSFUL",
    states.IGNORED: "SUCCESSFUL",
    states.FAILURE: "FAILED",
    states.REVOKED: "FAILED",
}
ROW_FIELDS = (
    "id",
    "name",
    "state",
    "result",
    "traceback",
    "args",
    "kwargs",
    "options",
    "created_at",
    "started_at",
    "finished_at",
    "attempt",
    "worker",
    "history",
)


def has_django_tasks() -> bool:
    try:
        return importlib.util.find_spec("django.tasks") is not None
    except ImportError:
        return False


# --- enqueue side ---------------------------------------------------------------------------
def header_for(django_task) -> dict:
    """What the worker needs to rebuild the exact ``Task`` that was enqueued."""
    run_after = django_task.run_after
    return {
        "path": django_task.module_path,
        "backend": django_task.backend,
        "priority": django_task.priority,
        "queue_name": django_task.queue_name,
        "run_after": run_after.isoformat() if run_after is not None else None,
        "takes_context": django_task.takes_context,
    }


def rebuild_task(header: dict):
    """The Django ``Task`` named by a job header, with the fields it was enqueued with."""
    from django.tasks import Task

    path = header["path"]
    found = imported_object(path)
    if not isinstance(found, Task):
        raise ValueError(f"Expected {path!r} to point to a Task instance.")
    run_after = header.get("run_after")
    return dataclasses.replace(
        found,
        backend=header["backend"],
        priority=header["priority"],
        queue_name=header["queue_name"],
        run_after=dt.datetime.fromisoformat(run_after) if run_after else None,
        takes_context=header["takes_context"],
    )


def imported_object(path: str):
    """``module.attr`` from a module this process has imported already (installed apps'
    ``tasks`` modules and ``DJQ_IMPORTS`` are, at start-up), looked up statically. The path
    comes from a job row: importing it would run whatever module the row's writer named."""
    if not isinstance(path, str) or "." not in path:
        raise ValueError(f"Expected {path!r} to point to a Task instance.")
    module_name, _, attr = path.rpartition(".")
    module = sys.modules.get(module_name)
    if module is None:
        raise ValueError(
            f"Expected {path!r} to point to a Task instance: module {module_name!r} is not "
            "imported by this process (djq imports each installed app's tasks module and "
            "DJQ_IMPORTS, never a module named by a job)."
        )
    try:
        return inspect.getattr_static(module, attr)
    except AttributeError:
        raise ValueError(f"Expected {path!r} to point to a Task instance.") from None


# --- job row → TaskResult -------------------------------------------------------------------
def load_row(job_id: str, using: str | None = None) -> dict | None:
    """The job row of a Django task result, or None (unknown id, or not a Django task's job)."""
    row = (
        Job.objects.using(using or settings.DATABASE)
        .filter(id=job_id, name=TASK_NAME)
        .values(*ROW_FIELDS)
        .first()
    )
    if row is None or HEADER not in ((row["options"] or {}).get("headers") or {}):
        return None
    return row


def task_result(row: dict, backend_alias: str | None = None):
    """Django's ``TaskResult`` for a job row (``load_row``)."""
    from django.tasks import TaskResult, TaskResultStatus

    header = row["options"]["headers"][HEADER]
    status = TaskResultStatus(STATUS.get(row["state"], "RUNNING"))  # custom states: running
    result = TaskResult(
        task=rebuild_task(header),
        id=str(row["id"]),
        status=status,
        enqueued_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        last_attempted_at=row["started_at"],
        args=row["args"],
        kwargs=row["kwargs"],
        backend=backend_alias or header["backend"],
        errors=_errors(row),
        worker_ids=_worker_ids(row),
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", row["result"])
    return result


def _worker_ids(row: dict) -> list[str]:
    """One entry per attempt: the worker that claimed it (from the job's history)."""
    ids = [entry[2] for entry in row["history"] or () if entry and entry[0] == states.STARTED]
    if len(ids) < row["attempt"]:  # a history trimmed by hand: still one entry per attempt
        ids += [row["worker"]] * (row["attempt"] - len(ids))
    return ids


def _errors(row: dict) -> list:
    """The stored exception as Django's ``TaskError`` (djq keeps the latest one)."""
    from django.tasks.base import TaskError

    value = row["result"]
    if row["state"] not in states.EXCEPTION_STATES or not isinstance(value, dict):
        return []
    if "exc_type" not in value:
        return []
    path = f"{value.get('exc_module') or 'builtins'}.{value['exc_type']}"
    return [TaskError(exception_class_path=path, traceback=row["traceback"] or "")]


# --- worker side ----------------------------------------------------------------------------
@task(name=TASK_NAME, bind=True, max_retries=0)
def run_django_task(self, *args, **kwargs):
    """Run the Django task the job's header names, as Django's backends do: signals, context,
    return value normalized to JSON (anything else fails the job, as in Django)."""
    from django.tasks import TaskContext, TaskResultStatus
    from django.tasks.signals import task_finished, task_started
    from django.utils import timezone
    from django.utils.json import normalize_json

    row = load_row(self.request.id)
    if row is None:  # not enqueued by DjqBackend (e.g. send_task("djq.django_task"))
        raise ValueError(f"job {self.request.id} has no {HEADER!r} header")
    result = task_result(row)
    django_task, sender = result.task, type(result.task.get_backend())
    _set(result, status=TaskResultStatus.RUNNING)
    task_started.send(sender=sender, task_result=result)
    try:
        if django_task.takes_context:
            value = django_task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = django_task.call(*args, **kwargs)
        value = normalize_json(value)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too, as Django's ImmediateBackend
        error = _task_error(exc)
        _set(result, status=TaskResultStatus.FAILED, finished_at=timezone.now())
        result.errors.append(error)
        task_finished.send(sender=sender, task_result=result)  # inside except: exc_info is set
        raise
    _set(
        result, status=TaskResultStatus.SUCCESSFUL, finished_at=timezone.now(), _return_value=value
    )
    task_finished.send(sender=sender, task_result=result)
    return value


def _set(result, **fields) -> None:
    for name, value in fields.items():
        object.__setattr__(result, name, value)


def _task_error(exc: BaseException):
    from django.tasks.base import TaskError

    cls = type(exc)
    return TaskError(
        exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
        traceback="".join(traceback_module.format_exception(exc)),
    )


# --- system check ----------------------------------------------------------------------------
@register()
def check_django_tasks(app_configs, **kwargs):
    """``TASKS`` names DjqBackend but this Django has no ``django.tasks`` (before 6.0)."""
    tasks_setting = getattr(django_settings, "TASKS", None) or {}
    uses = [
        alias
        for alias, params in tasks_setting.items()
        if str((params or {}).get("BACKEND", "")).startswith("djq.backends.")
    ]
    if not uses or has_django_tasks():
        return []
    import django

    return [
        Error(
            f"TASKS[{alias!r}] uses {BACKEND_PATH}, but the installed Django "
            f"({django.get_version()}) has no django.tasks (Django's Tasks framework arrived in "
            "Django 6.0).",
            hint="Upgrade to Django >= 6.0, or remove the TASKS entry and define tasks with "
            "djq's own @task (from djq import task).",
            id="djq.E020",
        )
        for alias in uses
    ]
