"""djq: Celery's features on the Django database.

    from djq import task

    @task
    def add(x, y):
        return x + y

    add.delay(2, 2).get(timeout=10)  # 4, once ``manage.py djq_worker`` runs
"""

from . import control, states
from .canvas import Signature, chain, chord, chunks, group, signature
from .result import AsyncResult, EagerResult, GroupResult
from .schedules import crontab, solar
from .task import Task, enqueue_many, send_task, shared_task, task

__version__ = "0.1.0"


__all__ = [
    "AsyncResult", "EagerResult", "GroupResult", "Signature", "Task", "chain", "chord", "chunks",
    "control", "crontab", "enqueue_many", "group", "send_task", "shared_task", "signature",
    "solar", "states", "task",
]  # fmt: skip
