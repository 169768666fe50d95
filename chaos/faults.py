"""The bad API calls and malformed rows of the ``bad_input`` scenario.

The project's fault table is ``tests/faults.py`` (``BAD_CALLS``, ``BAD_ROWS``), shared with the
test suite; when it is there the campaign uses it. Without it, the small table below stands in:
the cases issue 12 lists. A call entry is ``(label, callable)`` (extra items are ignored); a row
entry is ``(label, {column: value})`` where jsonb columns take JSON text. Other shapes are
adapted where they can be (a bare callable; a dict with ``call``/``row``) and counted otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from django.db import DatabaseError, connection, transaction

from djq import send_task
from djq.models import Job
from testproject.demo.tasks import add, chaos_run

try:  # the suite's table (tests/faults.py), when the checkout has it
    from tests import faults as _suite
except ImportError:  # (an older checkout: the table below)
    _suite = None

SOURCE = "tests/faults.py" if _suite is not None and hasattr(_suite, "BAD_CALLS") else "chaos"
JSONB = {"args", "kwargs", "options", "result", "meta"}


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


OWN_CALLS: list[tuple[str, Callable[[], object]]] = [
    ("time_limit=abc", lambda: add.apply_async((1, 2), time_limit="abc")),
    ("soft_time_limit=abc", lambda: add.apply_async((1, 2), soft_time_limit="abc")),
    ("soft_time_limit=-1", lambda: add.apply_async((1, 2), soft_time_limit=-1)),
    ("send_task(None)", lambda: send_task(None)),
    ("send_task('')", lambda: send_task("")),
    ("name>255", lambda: send_task("x" * 256)),
    ("name NUL", lambda: send_task("a\x00b")),
    ("queue NUL", lambda: add.apply_async((1, 2), queue="a\x00b")),
    ("countdown=nan", lambda: add.apply_async((1, 2), countdown=math.nan)),
    ("countdown=inf", lambda: add.apply_async((1, 2), countdown=math.inf)),
    ("countdown=1e20", lambda: add.apply_async((1, 2), countdown=1e20)),
    ("expires=nan", lambda: add.apply_async((1, 2), expires=math.nan)),
    ("retries=-1", lambda: add.apply_async((1, 2), retries=-1)),
    ("retries=2**40", lambda: add.apply_async((1, 2), retries=2**40)),
    ("max_retries=abc", lambda: add.apply_async((1, 2), max_retries="abc")),
    ("eta=garbage", lambda: add.apply_async((1, 2), eta="garbage")),
    ("link=5", lambda: add.apply_async((1, 2), link=5)),
    ("headers=x", lambda: add.apply_async((1, 2), headers="x")),
    ("10000-deep list", lambda: add.apply_async((_deep(10_000), 2))),
]

OWN_ROWS: list[tuple[str, dict[str, str]]] = [
    ("options not an object", {"options": '"x"'}),
    ("options time_limit=abc", {"options": '{"time_limit": "abc"}'}),
    ("args not a list", {"args": '{"a": 1}'}),
    ("kwargs not an object", {"kwargs": "[1]"}),
    ("unknown task", {"name": "no.such.task"}),
]


def _pairs(items, kind: type | Callable) -> list[tuple[str, object]]:
    pairs = []
    for item in items:
        if isinstance(item, dict):
            label = str(item.get("label") or item.get("name") or item)
            value = item.get("call") or item.get("row") or item
        elif isinstance(item, tuple | list):
            label = next((str(x) for x in item if isinstance(x, str)), repr(item))
            value = next((x for x in item if _is(x, kind)), None)
        else:
            label, value = getattr(item, "__name__", repr(item)), item
        if _is(value, kind):
            pairs.append((label[:60], value))
    return pairs


def _is(value, kind) -> bool:
    return callable(value) if kind is callable else isinstance(value, kind)


def bad_calls() -> list[tuple[str, Callable[[], object]]]:
    """The suite's bad calls when it has usable ones, else the table above."""
    if SOURCE == "chaos":
        return OWN_CALLS
    return _pairs(_suite.BAD_CALLS, callable) or OWN_CALLS


def bad_rows() -> list[tuple[str, dict]]:
    if SOURCE == "chaos" or not hasattr(_suite, "BAD_ROWS"):
        return OWN_ROWS
    return _pairs(_suite.BAD_ROWS, dict) or OWN_ROWS


class _Verdict(Exception):
    """Leaves the call's transaction (rolling back whatever it wrote) with the verdict."""

    def __init__(self, refused: bool):
        self.refused = refused


def refused(call: Callable[[], object]) -> bool:
    """The call raised a clear (non-database) error, wrote nothing, and left the caller's
    transaction usable (a database error would have aborted it). An accepted call is rolled
    back, so that it cannot disturb the scenarios after it."""
    before = Job.objects.count()
    try:
        with transaction.atomic():
            try:
                call()
            except (DatabaseError, RecursionError):  # raw errors, not an answer naming the option
                raise _Verdict(False) from None
            except Exception:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")  # the caller's transaction is still usable
                raise _Verdict(Job.objects.count() == before) from None
            raise _Verdict(False)
    except _Verdict as verdict:
        return verdict.refused
    except DatabaseError:
        return False


def _json_text(value) -> str:
    """JSON text for a jsonb column: JSON text as given, anything else encoded."""
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except ValueError:
            pass
    return json.dumps(value)


def write_row(row: dict) -> str:
    """A chaos job whose columns are then overwritten with ``row`` (in one transaction, so no
    worker sees the good version first); returns its id."""
    with transaction.atomic():
        job_id = chaos_run.delay(0).id
        for column, value in row.items():
            cast = "::jsonb" if column in JSONB else ""
            if cast:
                value = _json_text(value)
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE djq_job SET {column} = %s{cast} WHERE id = %s",
                               [value, job_id])  # fmt: skip
    return job_id
