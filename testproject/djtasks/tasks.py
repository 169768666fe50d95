"""Tasks defined with Django's ``@task`` (the shapes of Django's own tests/tasks/tasks.py, plus a
few for end-to-end tests with a worker). No djq import anywhere."""

from __future__ import annotations

import time
from pathlib import Path

from django.tasks import TaskContext, task


@task()
def noop_task(*args, **kwargs) -> None:
    return None


@task
def noop_task_from_bare_decorator(*args, **kwargs) -> None:
    return None


@task()
async def noop_task_async(*args, **kwargs) -> None:
    return None


@task()
async def async_add(x: int, y: int) -> int:
    return x + y


@task()
def calculate_meaning_of_life() -> int:
    return 42


@task()
def add(x: int, y: int) -> int:
    return x + y


@task()
def failing_task_value_error() -> None:
    raise ValueError("This Task failed due to ValueError")


@task()
def failing_task_system_exit() -> None:
    raise SystemExit("This Task failed due to SystemExit")


@task()
def complex_exception() -> None:
    raise ValueError(ValueError("This task failed"))


@task()
def complex_return_value():
    return {"when": object()}  # not JSON: the task fails with TypeError("Unsupported type")


@task()
def returns_tuple():
    return (1, ("two", 3))  # normalized to JSON lists, as by Django's backends


@task(takes_context=True)
def get_task_id(context) -> str:
    return context.task_result.id


@task(takes_context=True)
def test_context(context, attempt) -> None:
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt


@task(takes_context=True)
def context_details(context) -> dict:
    result = context.task_result
    return {
        "id": result.id,
        "attempt": context.attempt,
        "status": str(result.status),
        "worker_ids": result.worker_ids,
        "args": result.args,
        "queue_name": result.task.queue_name,
        "priority": result.task.priority,
    }


@task(queue_name="other")
def on_other_queue() -> str:
    return "other"


@task()
def record(path: str, label: str) -> str:
    """Append ``label`` to the file (the order jobs ran in)."""
    with open(path, "a") as fh:
        fh.write(label + "\n")
    return label


@task()
def block_until(path: str, timeout: float = 30.0) -> str:
    """Run until the file exists (a test watches the RUNNING state meanwhile)."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.02)
    return "released"
