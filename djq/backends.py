"""``djq.backends.DjqBackend``: a backend for Django's Tasks framework (``django.tasks``) that
enqueues Django tasks as djq jobs, run by ``manage.py djq_worker``::

    TASKS = {
        "default": {
            "BACKEND": "djq.backends.DjqBackend",
            "QUEUES": ["default", "emails"],      # [] accepts any queue name
            "OPTIONS": {"JOB_OPTIONS": {"acks_late": True, "time_limit": 300}},
        }
    }

A Django task becomes a job of ``djq.django_task`` (see ``djq.django_tasks``) written in the
caller's transaction, like any djq job. Priorities keep their numbers: Django's -100..100 is a
part of djq's -100..255 and higher runs first in both. Results are read from the job row, as a
Django ``TaskResult`` (``get_result``) or as ``djq.AsyncResult(result.id)``.

Needs Django >= 6.0; on older Django ``manage.py check`` reports djq.E020.
"""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

try:
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.exceptions import TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued
except ImportError as exc:  # Django < 6.0
    raise ImproperlyConfigured(
        "djq.backends.DjqBackend needs Django's Tasks framework (django.tasks, Django >= 6.0)"
    ) from exc

from djq.calling.enqueue import build_row
from djq.calling.enqueue import enqueue as insert_rows
from djq.conf import settings
from djq.contrib import django_tasks

#: djq ``apply_async`` options that OPTIONS["JOB_OPTIONS"] may set for every job of the backend
#: (queue, priority and ETA come from the Django task; results are always kept)
JOB_OPTIONS = frozenset({"acks_late", "time_limit", "soft_time_limit", "expires", "headers"})


class DjqBackend(BaseTaskBackend):
    supports_defer = True  # run_after: the job's ETA
    supports_async_task = True  # coroutine functions run through Task.call (async_to_sync)
    supports_get_result = True  # results live in the database: readable from any process
    supports_priority = True  # djq claims higher priorities first

    def __init__(self, alias, params):
        super().__init__(alias, params)
        self.job_options = dict(self.options.get("JOB_OPTIONS") or {})

    def enqueue(self, task, args, kwargs):
        """Write the job (in the current transaction of ``DJQ_DATABASE``); return its result."""
        from django.tasks import TaskResult, TaskResultStatus

        self.validate_task(task)
        # Built first: Django's TaskResult rejects arguments that are not JSON ("Unsupported
        # type"), before anything is written.
        pending = TaskResult(
            task=task,
            id="",
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        headers = {
            **self.job_options.get("headers", {}),
            django_tasks.HEADER: django_tasks.header_for(task),
        }
        options = {**self.job_options, "headers": headers}
        row = build_row(
            django_tasks.TASK_NAME,
            pending.args,
            pending.kwargs,
            {
                "queue": task.queue_name,
                "priority": task.priority,
                "eta": task.run_after,
                "shadow": task.module_path,
                **options,
            },
        )
        # One transaction (or part of the caller's): the result is read back READY, before any
        # worker can see the job, with the database's enqueue time. (Validation is done: nothing
        # raised in here leaves the caller's transaction to roll back but a database error.)
        with transaction.atomic(using=settings.DATABASE, savepoint=False):
            insert_rows([row])
            result = self.get_result(row["id"])
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id):
        row = django_tasks.load_row(result_id)
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        return django_tasks.task_result(row, self.alias)

    def check(self, **kwargs):
        yield from super().check(**kwargs)
        from django.apps import apps

        if not apps.is_installed("djq"):
            yield checks.Error(
                f"TASKS[{self.alias!r}] uses DjqBackend, but djq is not in INSTALLED_APPS",
                hint="Add 'djq' to INSTALLED_APPS.",
                id="djq.E021",
            )
        unknown = set(self.options) - {"JOB_OPTIONS"}
        bad = set(self.job_options) - JOB_OPTIONS
        if unknown or bad:
            yield checks.Error(
                f"TASKS[{self.alias!r}]['OPTIONS']: unknown option(s) "
                f"{sorted(unknown) + [f'JOB_OPTIONS.{k}' for k in sorted(bad)]}",
                hint=f"OPTIONS takes JOB_OPTIONS, a dict of djq apply_async options among "
                f"{sorted(JOB_OPTIONS)}.",
                id="djq.E022",
            )

    def __repr__(self) -> str:
        return f"<DjqBackend {self.alias!r} database={settings.DATABASE!r}>"
