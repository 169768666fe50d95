"""A job's concurrency key: the value, at enqueue, of the task's ``concurrency_key``.

``@task(concurrency_key="tenant_id", concurrency_limit=2)`` names an argument (given by keyword,
by position, or left to its default: the task's signature tells which); a callable is called with
(args, kwargs) instead. The value is stored on the job row as text, so the worker limits and
takes turns by key without reading the arguments: per-key limits and fair claims are SQL over an
indexed column. No key (no ``concurrency_key``, or a value of None) is stored as "".
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from djq import options as checks

#: the column's size (djq.models.Job.concurrency_key)
KEY_MAX = 255


def resolve(task: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """The key of a call of ``task`` ("" when it has none)."""
    # (read off the class: a function given as concurrency_key is not a method of the task)
    spec = inspect.getattr_static(task, "concurrency_key", None)
    if isinstance(spec, (staticmethod, classmethod)):
        spec = spec.__func__
    if spec is None:
        return ""
    name = task.name
    if callable(spec):
        try:
            value = spec(tuple(args), dict(kwargs))
        except Exception as exc:
            raise ValueError(
                f"{name}: concurrency_key={spec!r} raised {type(exc).__name__}: {exc}"
            ) from exc
    else:
        value = _argument(task, spec, args, kwargs)
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return checks.text(name, f"concurrency_key ({spec!r} = {value!r})", text, KEY_MAX)


def _argument(task: Any, spec: str, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """The argument ``spec`` of the call: by keyword, else bound by the task's signature."""
    if spec in kwargs:
        return kwargs[spec]
    sig = task._signature()
    if sig is None or spec not in sig.parameters:
        raise TypeError(
            f"{task.name}: concurrency_key={spec!r} is not an argument of {task.name}"
            + (f"{sig}" if sig is not None else "")
        )
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:
        return None  # (the arguments were checked before: only when typing is off)
    bound.apply_defaults()
    value = bound.arguments.get(spec)
    if sig.parameters[spec].kind is inspect.Parameter.VAR_POSITIONAL:
        raise TypeError(f"{task.name}: concurrency_key={spec!r} names *{spec}, not one argument")
    return value
