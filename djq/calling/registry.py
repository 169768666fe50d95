"""The task registry: name → Task instance, filled by ``@task`` as modules are imported."""

from __future__ import annotations

from typing import TYPE_CHECKING

from djq.exceptions import NotRegistered

if TYPE_CHECKING:
    from djq.task import Task


class TaskRegistry(dict[str, "Task"]):
    def register(self, task: Task) -> Task:
        self[task.name] = task
        return task

    def __missing__(self, name: str) -> Task:
        raise NotRegistered(name)

    def get_task(self, name: str) -> Task:
        return self[name]

    def regular(self) -> list[str]:
        """Names of user tasks (djq's own maintenance tasks are named ``djq.*``)."""
        return sorted(n for n in self if not n.startswith("djq."))


tasks = TaskRegistry()
