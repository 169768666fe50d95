"""The request context of a running task (``self.request``), and which job is running now.

Kept per thread so that the threads pool and nested eager calls each see their own request.
"""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()


class Request:
    """What a bound task sees as ``self.request`` (Celery's attribute names)."""

    def __init__(self, **fields: Any):
        self.id: str | None = None
        self.task: str | None = None
        self.args: list[Any] = []
        self.kwargs: dict[str, Any] = {}
        self.retries: int = 0
        self.max_retries: int | None = None  # from apply_async(max_retries=), if given
        self.attempt: int = 0
        self.eta = None
        self.expires = None
        self.hostname: str | None = None
        self.delivery_info: dict[str, Any] = {}
        self.parent_id: str | None = None
        self.root_id: str | None = None
        self.group: str | None = None
        self.is_eager: bool = False
        self.called_directly: bool = True
        self.headers: dict[str, Any] = {}
        self.options: dict[str, Any] = {}
        self.timelimit: tuple[float | None, float | None] = (None, None)
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"<Request {self.task}[{self.id}] retries={self.retries}>"


def _stack() -> list[Request]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def push(request: Request) -> None:
    _stack().append(request)


def pop() -> None:
    _stack().pop()


def current() -> Request | None:
    """The request of the job running in this thread, if any (for parent/root ids)."""
    stack = _stack()
    return stack[-1] if stack else None
