"""The request context of a running task (``self.request``), and which job is running now.

Kept in a context variable: per thread (the threads pool), per asyncio task (the asyncio pool
runs many jobs in one thread) and per nested eager call, each sees its own request.
"""

from __future__ import annotations

import contextvars
from typing import Any

_stack: contextvars.ContextVar[tuple[Request, ...]] = contextvars.ContextVar(
    "djq_request_stack", default=()
)


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


def push(request: Request) -> None:
    _stack.set((*_stack.get(), request))


def pop() -> None:
    _stack.set(_stack.get()[:-1])


def current() -> Request | None:
    """The request of the job running in this context, if any (for parent/root ids)."""
    stack = _stack.get()
    return stack[-1] if stack else None
