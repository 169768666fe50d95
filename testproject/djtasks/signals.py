"""Receivers of Django's task signals that write what they saw to ``$DJTASKS_SIGNAL_LOG`` (one JSON
line per signal), so that tests can see the signals a worker process sent."""

from __future__ import annotations

import json
import os

from django.dispatch import receiver
from django.tasks.signals import task_enqueued, task_finished, task_started


def _write(signal_name: str, sender, task_result) -> None:
    path = os.environ.get("DJTASKS_SIGNAL_LOG")
    if not path:
        return
    line = {
        "signal": signal_name,
        "sender": f"{sender.__module__}.{sender.__qualname__}",
        "id": task_result.id,
        "status": str(task_result.status),
        "task": task_result.task.module_path,
        "pid": os.getpid(),
        "errors": [e.exception_class_path for e in task_result.errors],
    }
    with open(path, "a") as fh:
        fh.write(json.dumps(line) + "\n")


@receiver(task_enqueued)
def on_enqueued(sender, task_result, **kwargs):
    _write("task_enqueued", sender, task_result)


@receiver(task_started)
def on_started(sender, task_result, **kwargs):
    _write("task_started", sender, task_result)


@receiver(task_finished)
def on_finished(sender, task_result, **kwargs):
    _write("task_finished", sender, task_result)
