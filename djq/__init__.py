"""djq: Celery's features on the Django database.

    from djq import task

    @task
    def add(x, y):
        return x + y

    add.delay(2, 2).get(timeout=10)  # 4, once ``manage.py djq_worker`` runs

The public names are re-exported lazily (PEP 562 ``__getattr__``): importing ``djq`` (which
Django does while it loads apps, before models exist) imports nothing else, so every module of
the package can import ``djq.models`` at its top.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → the module that defines it
_EXPORTS = {
    "AsyncResult": "djq.calling.result",
    "BatchResult": "djq.batches",
    "EagerResult": "djq.calling.result",
    "GroupResult": "djq.calling.result",
    "Signature": "djq.canvas",
    "batch": "djq.batches",
    "chain": "djq.canvas",
    "chord": "djq.canvas",
    "chunks": "djq.canvas",
    "group": "djq.canvas",
    "signature": "djq.canvas",
    "crontab": "djq.schedules",
    "solar": "djq.schedules",
    "Task": "djq.task",
    "enqueue_many": "djq.task",
    "send_task": "djq.task",
    "shared_task": "djq.task",
    "task": "djq.task",
}
_SUBMODULES = ("control", "states")

__all__ = [
    "AsyncResult",
    "BatchResult",
    "EagerResult",
    "GroupResult",
    "Signature",
    "Task",
    "batch",
    "chain",
    "chord",
    "chunks",
    "control",
    "crontab",
    "enqueue_many",
    "group",
    "send_task",
    "shared_task",
    "signature",
    "solar",
    "states",
    "task",
]

if TYPE_CHECKING:
    from djq import control, states
    from djq.batches import BatchResult, batch
    from djq.calling.result import AsyncResult, EagerResult, GroupResult
    from djq.canvas import Signature, chain, chord, chunks, group, signature
    from djq.schedules import crontab, solar
    from djq.task import Task, enqueue_many, send_task, shared_task, task


def __getattr__(name: str) -> Any:
    """Import the module defining ``name`` on first use and cache the name in this module."""
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = import_module(f"djq.{name}")
    else:
        raise AttributeError(f"module 'djq' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(ModuleType):
    """Importing the submodule ``djq.task`` binds it as the package attribute ``task``, which
    would hide the ``@task`` decorator of the same name: a submodule never replaces a public
    name (``djq.task`` stays the decorator, as with an eager ``from .task import task``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
