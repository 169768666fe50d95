"""DjqBackend for Django's Tasks framework, in this process (no worker): enqueue, results,
validation, signals, checks. The worker side is in tests/system/test_django_tasks_worker.py.

Each test names the test of Django's own suite (django/django ``tests/tasks/``) whose behaviour it
mirrors for our backend: ``test_tasks.TaskTestCase`` (the API every backend must honour) and
``test_dummy_backend.DummyBackendTestCase`` (a backend that stores results without running them,
which is what DjqBackend is until a worker runs the job).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

django_tasks = pytest.importorskip("django.tasks")

from asgiref.sync import async_to_sync  # noqa: E402
from django.db import transaction  # noqa: E402
from django.tasks import TaskResultStatus, default_task_backend, task_backends  # noqa: E402
from django.tasks.exceptions import (  # noqa: E402
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultMismatch,
)
from django.tasks.signals import task_enqueued  # noqa: E402
from django.utils import timezone  # noqa: E402

from djq import AsyncResult, states  # noqa: E402
from djq.backends import DjqBackend  # noqa: E402
from djq.contrib.django_tasks import TASK_NAME  # noqa: E402
from djq.models import Job  # noqa: E402
from testproject.djtasks import tasks as djt  # noqa: E402
from tests.helpers import run_python, worker_env  # noqa: E402

pytestmark = pytest.mark.django_db


def test_the_default_backend_is_djq():
    """ImmediateBackendTestCase.test_using_correct_backend"""
    assert default_task_backend == task_backends["default"]
    assert isinstance(task_backends["default"], DjqBackend)
    assert default_task_backend.alias == "default"
    assert default_task_backend.options == {}
    assert default_task_backend.queues == {"default", "other"}


def test_supports_flags_are_true():
    """Each flag is backed by a test: defer (run_after), async tasks, get_result from another
    process, priority order (tests/system/test_django_tasks_worker.py)."""
    backend = default_task_backend
    assert backend.supports_defer is True
    assert backend.supports_async_task is True
    assert backend.supports_get_result is True
    assert backend.supports_priority is True


@pytest.mark.parametrize("task", [djt.noop_task, djt.noop_task_async], ids=["sync", "async"])
def test_enqueue_task(task):
    """DummyBackendTestCase.test_enqueue_task: READY, not started, no return value yet."""
    result = task.enqueue(1, two=3)
    assert result.status == TaskResultStatus.READY
    assert result.is_finished is False
    assert result.started_at is None and result.finished_at is None
    assert result.last_attempted_at is None
    assert result.enqueued_at is not None
    with pytest.raises(ValueError, match="Task has not finished yet"):
        result.return_value  # noqa: B018
    assert result.task == task
    assert result.args == [1]
    assert result.kwargs == {"two": 3}
    assert result.attempts == 0 and result.worker_ids == [] and result.errors == []
    # the job: djq.django_task with the task's own arguments, in the task's queue
    job = Job.objects.get(id=result.id)
    assert (job.name, job.queue, job.priority, job.state) == (TASK_NAME, "default", 0, "PENDING")
    assert (job.args, job.kwargs) == ([1], {"two": 3})
    assert job.options["shadow"] == task.module_path


@pytest.mark.parametrize("task", [djt.noop_task, djt.noop_task_async], ids=["sync", "async"])
def test_aenqueue_task(task):
    """DummyBackendTestCase.test_enqueue_task_async / TaskTestCase.test_enqueue_task_async"""
    result = async_to_sync(task.aenqueue)()
    assert result.status == TaskResultStatus.READY
    assert result.task == task
    assert (result.args, result.kwargs) == ([], {})
    assert Job.objects.filter(id=result.id).exists()


def test_get_result():
    """DummyBackendTestCase.test_get_result / TaskTestCase.test_get_result: equal results."""
    result = default_task_backend.enqueue(djt.noop_task, (), {})
    assert default_task_backend.get_result(result.id) == result
    assert djt.noop_task.get_result(result.id) == result


def test_aget_result():
    """DummyBackendTestCase.test_get_result_async / TaskTestCase.test_get_result_async"""
    result = async_to_sync(default_task_backend.aenqueue)(djt.noop_task, (), {})
    assert async_to_sync(default_task_backend.aget_result)(result.id) == result
    assert async_to_sync(djt.noop_task.aget_result)(result.id) == result


@pytest.mark.parametrize("missing", ["123", str(uuid.uuid4())])
def test_get_missing_result(missing):
    """DummyBackendTestCase.test_get_missing_result / TaskTestCase.test_get_missing_result"""
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(missing)
    with pytest.raises(TaskResultDoesNotExist):
        djt.noop_task.get_result(missing)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(default_task_backend.aget_result)(missing)


def test_a_plain_djq_job_is_not_a_django_task_result():
    from testproject.demo.tasks import add

    job = add.delay(1, 2)
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(job.id)


def test_get_incorrect_result():
    """TaskTestCase.test_get_incorrect_result: another task's result is a mismatch."""
    result = default_task_backend.enqueue(djt.noop_task_async, (), {})
    with pytest.raises(TaskResultMismatch, match="Task does not match"):
        djt.noop_task.get_result(result.id)


def test_refresh_result():
    """DummyBackendTestCase.test_refresh_result / TaskTestCase.test_refresh_result: refresh()
    and arefresh() re-read the stored result (here: nothing changed, then a state change)."""
    result = djt.calculate_meaning_of_life.enqueue()
    before = dataclasses.asdict(result)
    result.refresh()
    assert dataclasses.asdict(result) == before
    async_to_sync(result.arefresh)()
    assert dataclasses.asdict(result) == before
    from djq import control

    control.revoke(result.id)  # the job ends REVOKED: FAILED for Django
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.errors[0].exception_class_path == "djq.exceptions.TaskRevokedError"


def test_enqueue_with_invalid_argument_writes_nothing():
    """TaskTestCase.test_enqueue_with_invalid_argument: arguments must be JSON as Django's
    backends see it (djq's own tasks take datetimes; Django tasks do not)."""
    with pytest.raises(TypeError, match="Unsupported type"):
        djt.noop_task.enqueue(dt.datetime.now())
    with pytest.raises(TypeError, match="Unsupported type"):
        async_to_sync(djt.noop_task.aenqueue)(dt.datetime.now())
    assert not Job.objects.exists()


def test_priority_queue_and_run_after_become_the_job_s():
    """Priorities keep their number (Django's -100..100 is inside djq's -100..255; higher first
    in both); queue_name is the job's queue; run_after is its ETA."""
    when = timezone.now() + dt.timedelta(hours=1)
    task = djt.noop_task.using(priority=100, queue_name="other", run_after=when)
    result = task.enqueue()
    job = Job.objects.get(id=result.id)
    assert (job.priority, job.queue, job.run_after) == (100, "other", when)
    assert result.task == task
    low = djt.noop_task.using(priority=-100).enqueue()
    assert Job.objects.get(id=low.id).priority == -100
    assert djt.noop_task.get_result(result.id).task.run_after == when


def test_validation_before_enqueue():
    """TaskTestCase.test_invalid_priority, test_unknown_queue_name, test_naive_datetime and
    ImmediateBackendTestCase.test_validate_on_enqueue: refused, nothing written."""
    msg = "priority must be a whole number between -100 and 100."
    for bad in (-101, 101, 3.1):
        with pytest.raises(InvalidTask, match=msg):
            djt.noop_task.using(priority=bad)
    with pytest.raises(InvalidTask, match="Queue 'queue-2' is not valid for backend."):
        djt.noop_task.using(queue_name="queue-2")
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime."):
        djt.noop_task.using(run_after=dt.datetime.now())
    assert not Job.objects.exists()


def test_empty_queues_accept_any_queue(settings):
    """TaskTestCase.test_unknown_queue_name: validation is bypassed when QUEUES is []."""
    settings.TASKS = {"default": {"BACKEND": "djq.backends.DjqBackend", "QUEUES": []}}
    result = djt.noop_task.using(queue_name="anything").enqueue()
    assert Job.objects.get(id=result.id).queue == "anything"


def test_enqueue_sends_task_enqueued(caplog):
    """DummyBackendTestCase.test_enqueue_logs: task_enqueued is sent (Django logs it)."""
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((sender, task_result.id, task_result.status))

    task_enqueued.connect(receiver)
    try:
        with caplog.at_level("DEBUG", logger="django.tasks"):
            result = djt.noop_task.enqueue()
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [(DjqBackend, result.id, TaskResultStatus.READY)]
    enqueued = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert len(enqueued) == 1 and "enqueued" in enqueued[0] and result.id in enqueued[0]


@pytest.mark.django_db(transaction=True)
def test_enqueue_is_part_of_the_callers_transaction():
    """A job is a row written in the caller's transaction (unlike Django's ImmediateBackend,
    ImmediateBackendTransactionTestCase): rolled back → no job; committed → visible."""
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            rolled_back = djt.noop_task.enqueue()
            raise RuntimeError("roll back")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(rolled_back.id)
    with transaction.atomic():
        kept = djt.noop_task.enqueue()
    assert default_task_backend.get_result(kept.id).status == TaskResultStatus.READY


def test_result_is_also_a_djq_async_result():
    result = djt.add.enqueue(2, 3)
    async_result = AsyncResult(result.id)
    assert async_result.exists()
    assert async_result.state == states.PENDING
    assert (async_result.args, async_result.kwargs) == ([2, 3], {})
    assert async_result.name == TASK_NAME


def test_job_options_apply_to_every_job(settings):
    settings.TASKS = {
        "default": {
            "BACKEND": "djq.backends.DjqBackend",
            "QUEUES": [],
            "OPTIONS": {
                "JOB_OPTIONS": {"acks_late": True, "time_limit": 30, "headers": {"team": "x"}}
            },
        }
    }
    assert list(default_task_backend.check()) == []
    job = Job.objects.get(id=djt.noop_task.enqueue().id)
    assert job.acks_late is True
    assert job.options["time_limit"] == 30
    assert job.options["headers"]["team"] == "x"


def test_check_reports_unknown_options():
    backend = DjqBackend("x", {"OPTIONS": {"FOO": 1, "JOB_OPTIONS": {"queue": "q"}}})
    errors = list(backend.check())
    assert [e.id for e in errors] == ["djq.E022"]
    assert "FOO" in errors[0].msg and "JOB_OPTIONS.queue" in errors[0].msg


# Its subprocess uses a SQLite database of its own on either pass: one pass is enough.
@pytest.mark.sqlite_only
def test_check_explains_a_django_without_tasks(tmp_path):
    """On Django 5.2 (no django.tasks) a TASKS entry naming DjqBackend is a system-check error,
    and djq itself still loads. Simulated in a subprocess in which django.tasks cannot be
    imported."""
    code = """
import sys
sys.modules["django.tasks"] = None  # as on Django 5.2
import django
from django.conf import settings
django.setup()
from django.core.management import call_command
from django.core.management.base import SystemCheckError
try:
    call_command("check")
except SystemCheckError as exc:
    print(exc)
try:
    import djq.backends
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    # a database of its own: the test's (locked by its transaction on SQLite) is not needed
    env = worker_env(
        {
            "DJANGO_SETTINGS_MODULE": "tests.tasks_settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}",
        }
    )
    proc = run_python(code, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "(djq.E020) TASKS['default'] uses djq.backends.DjqBackend" in proc.stdout
    assert "has no django.tasks" in proc.stdout
    assert "ImproperlyConfigured djq.backends.DjqBackend needs Django's Tasks" in proc.stdout


def test_a_refused_enqueue_leaves_the_callers_transaction_usable():
    with transaction.atomic():
        with pytest.raises(TypeError):
            djt.noop_task.enqueue(dt.datetime.now())
        assert djt.noop_task.enqueue().status == TaskResultStatus.READY
    assert Job.objects.count() == 1
