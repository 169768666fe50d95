"""djq's own tasks: map/starmap for ``Task.map``/``starmap``/``chunks``."""

from __future__ import annotations

from djq.calling.registry import tasks
from djq.task import task


@task(name="djq.map")
def map_task(sig: dict, items: list) -> list:
    """Call one task inline for each item (Celery's ``xmap``)."""
    fun = tasks[sig["task"]]
    return [fun(item) for item in items]


@task(name="djq.starmap")
def starmap_task(sig: dict, items: list) -> list:
    """Call one task inline for each argument tuple (Celery's ``xstarmap``)."""
    fun = tasks[sig["task"]]
    return [fun(*item) for item in items]
