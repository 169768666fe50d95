"""A task whose arguments changed twice (docs/tasks.md "Versions"), for the demo and the tests.

Version 1 took one string ``greet("Ada Lovelace")``; version 2 took ``greet(first, last)``;
version 3 (this code) adds the keyword ``greeting``. Jobs enqueued by older code are upgraded
before they run; ``manage.py djq_check_pending`` applies the same upgrades.
"""

from __future__ import annotations

from djq import task


def _v1_to_v2(args: list, kwargs: dict) -> tuple[list, dict]:
    first, _, last = args[0].partition(" ")
    return [first, last], kwargs


def _v2_to_v3(args: list, kwargs: dict) -> tuple[list, dict]:
    if "shout" in kwargs:
        raise ValueError("version 2's shout= has no version 3 equivalent")
    return args, {**kwargs, "greeting": kwargs.get("greeting", "hello")}


@task(version=3, upgrade={1: _v1_to_v2, 2: _v2_to_v3})
def greet(first: str, last: str, *, greeting: str = "hi"):
    return f"{greeting} {first} {last}"
