"""Tables of faults for the bad-input tests and the chaos campaign (issue 12).

``BAD_CALLS``: API calls that must raise at the call, a ``TypeError``/``ValueError`` whose
message names the task, the option and the value, with nothing written and the caller's
transaction still usable (tests/integration/test_fault_calls.py).

``BAD_ROWS``: job rows as anything may write them (raw SQL, no djq code involved), each with the
state a real worker must bring it to — FAILURE with a reason for what is unusable — without
dying, stalling or hurting the other jobs of its batch (tests/system/test_fault_rows.py).
``insert_raw(row, **columns)`` writes one with plain SQL and returns its id.

Reusable as they are: ``from tests.faults import BAD_CALLS, BAD_ROWS, insert_raw``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections

from djq import control, enqueue_many, send_task, signature, task
from djq import states as st
from testproject.demo.tasks import add, echo

ADD = add.name
ECHO = echo.name
#: the id the "reused task_id" calls take (written first by their ``setup``)
TAKEN_ID = "6b0f6c8e-2c1a-4a8e-9a52-0d8f3d7b1c11"


@dataclass(frozen=True)
class BadCall:
    id: str
    call: Callable[[], object]
    error: type[Exception]
    #: what the message must name (task, option, value), as plain substrings
    names: tuple[str, ...]
    #: run first, in the same transaction (e.g. the job whose task_id is then reused)
    setup: Callable[[], object] | None = None


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _apply(**options) -> Callable[[], object]:
    return lambda: add.apply_async((1, 2), **options)


def _bad_seconds(option: str, values: dict) -> list[BadCall]:
    return [
        BadCall(f"{option}={label}", _apply(**{option: value}), error, (ADD, option, shown))
        for label, (value, error, shown) in values.items()
    ]


_NUMBERS = {
    "nan": (float("nan"), ValueError, "nan"),
    "inf": (float("inf"), ValueError, "inf"),
    "1e20": (1e20, ValueError, "1e+20"),
}
_LIMITS = {
    "abc": ("abc", TypeError, "'abc'"),
    "-1": (-1, ValueError, "-1"),
    "0": (0, ValueError, "0"),
    **{k: v for k, v in _NUMBERS.items() if k != "1e20"},
}
_DELAYS = {**_NUMBERS, "garbage": ("garbage", ValueError, "'garbage'")}

BAD_CALLS: list[BadCall] = [
    *_bad_seconds("time_limit", _LIMITS),
    *_bad_seconds("soft_time_limit", _LIMITS),
    *_bad_seconds("countdown", {**_NUMBERS, "garbage": ("garbage", TypeError, "'garbage'")}),
    *_bad_seconds("expires", _DELAYS),
    BadCall("eta=garbage", _apply(eta="garbage"), ValueError, (ADD, "eta", "'garbage'")),
    BadCall("eta=5", _apply(eta=5), TypeError, (ADD, "eta", "5")),
    BadCall("retries=-1", _apply(retries=-1), ValueError, (ADD, "retries", "-1")),
    BadCall("retries=2**40", _apply(retries=2**40), ValueError, (ADD, "retries", str(2**40))),
    BadCall("retries=abc", _apply(retries="abc"), TypeError, (ADD, "retries", "'abc'")),
    BadCall("max_retries=abc", _apply(max_retries="abc"), TypeError, (ADD, "max_retries", "'abc'")),
    BadCall("max_retries=-1", _apply(max_retries=-1), ValueError, (ADD, "max_retries", "-1")),
    BadCall(
        "send_task(None)", lambda: send_task(None), TypeError, ("send_task", "task name", "None")
    ),
    BadCall(
        "send_task('')", lambda: send_task(""), ValueError, ("send_task", "task name", "empty")
    ),
    BadCall(
        "send_task(256 chars)",
        lambda: send_task("t" * 256),
        ValueError,
        ("send_task", "task name", "256", "'tttt"),
    ),
    BadCall(
        "send_task(NUL)",
        lambda: send_task("a\x00b"),
        ValueError,
        ("send_task", "task name", "NUL", "'a\\x00b'"),
    ),
    BadCall(
        "send_task(surrogate)",
        lambda: send_task("a\ud800"),
        ValueError,
        ("send_task", "task name", "surrogate", "'a\\ud800'"),
    ),
    BadCall("queue NUL", _apply(queue="q\x00"), ValueError, (ADD, "queue", "NUL", "'q\\x00'")),
    BadCall("queue too long", _apply(queue="q" * 201), ValueError, (ADD, "queue", "201")),
    BadCall("queue=5", _apply(queue=5), ValueError, (ADD, "queue", "5")),
    BadCall(
        "task_id reused",
        _apply(task_id=TAKEN_ID),
        ValueError,
        (ADD, "task_id", TAKEN_ID),
        setup=_apply(task_id=TAKEN_ID),
    ),
    BadCall(
        "task_id reused in one batch",
        lambda: enqueue_many(
            [add.s(1, 2).set(task_id=TAKEN_ID), add.s(3, 4).set(task_id=TAKEN_ID)]
        ),
        ValueError,
        (ADD, "task_id", TAKEN_ID),
    ),
    BadCall("task_id empty", _apply(task_id=""), ValueError, (ADD, "task_id", "empty")),
    BadCall("task_id NUL", _apply(task_id="a\x00"), ValueError, (ADD, "task_id", "NUL")),
    BadCall("task_id too long", _apply(task_id="i" * 256), ValueError, (ADD, "task_id", "256")),
    BadCall("link=5", _apply(link=5), TypeError, (ADD, "link", "5")),
    BadCall("link_error=5", _apply(link_error=5), TypeError, (ADD, "link_error", "5")),
    BadCall("link=[42]", _apply(link=[42]), TypeError, (ADD, "link", "42")),
    BadCall("headers='x'", _apply(headers="x"), TypeError, (ADD, "headers", "'x'")),
    BadCall("acks_late='yes'", _apply(acks_late="yes"), TypeError, (ADD, "acks_late", "'yes'")),
    BadCall("priority='high'", _apply(priority="high"), TypeError, (ADD, "priority", "'high'")),
    BadCall(
        "10,000-deep list argument",
        lambda: echo.delay(_deep(10_000)),
        TypeError,
        (ECHO, "positional argument 0", "nested too deeply"),
    ),
    BadCall(
        "lone surrogate argument",
        lambda: echo.delay("a\ud800"),
        TypeError,
        (ECHO, "positional argument 0", "surrogate"),
    ),
    BadCall(
        "NUL argument",
        lambda: echo.delay(x="a\x00"),
        TypeError,
        (ECHO, "keyword argument 'x'", "NUL"),
    ),
    BadCall(
        "delay with a bad value",
        lambda: add.delay(1, object()),
        TypeError,
        (ADD, "positional argument 1", "object"),
    ),
    BadCall(
        "signature(time_limit='abc')",
        lambda: signature(ADD, args=(1, 2), time_limit="abc"),
        TypeError,
        (ADD, "time_limit", "'abc'"),
    ),
    BadCall("signature(None)", lambda: signature(None), TypeError, ("signature", "None")),
    BadCall(
        "enqueue_many with one bad job",
        lambda: enqueue_many([add.s(1, 2), add.s(1, 2).set(countdown=float("nan"))]),
        ValueError,
        (ADD, "countdown", "nan"),
    ),
    BadCall(
        "apply_async_on_commit(retries=-1)",
        lambda: add.apply_async_on_commit((1, 2), retries=-1),
        ValueError,
        (ADD, "retries", "-1"),
    ),
    BadCall(
        "control.time_limit(soft='abc')",
        lambda: control.time_limit(ADD, soft="abc"),
        TypeError,
        (ADD, "soft_time_limit", "'abc'"),
    ),
    BadCall(
        "@task(rate_limit='abc')",
        lambda: task(name="faults.rated", rate_limit="abc")(lambda: None),
        ValueError,
        ("faults.rated", "rate_limit", "'abc'"),
    ),
    BadCall(
        "@task(time_limit=-1)",
        lambda: task(name="faults.limited", time_limit=-1)(lambda: None),
        ValueError,
        ("faults.limited", "time_limit", "-1"),
    ),
    BadCall(
        "@task(name=NUL)",
        lambda: task(name="\x00")(lambda: None),
        ValueError,
        ("@task", "task name", "NUL"),
    ),
]


# --- malformed rows --------------------------------------------------------------------------
@dataclass(frozen=True)
class BadRow:
    id: str
    #: column → value (JSON columns take JSON text) for a raw INSERT of an otherwise good row
    columns: dict
    #: the state a worker must bring it to, and what its stored result must mention
    state: str = st.FAILURE
    reason: str = ""
    #: the vendors whose column types can hold the value at all (PostgreSQL types refuse more)
    vendors: tuple[str, ...] = ("postgresql", "sqlite")
    #: the schema refuses the row itself (a type or check constraint): the INSERT raises
    refused: bool = False


def _options(value) -> dict:
    return {"options": value if isinstance(value, str) else json.dumps(value)}


BAD_ROWS: list[BadRow] = [
    BadRow("options a string", _options('"a string"'), reason="options must be a JSON object"),
    BadRow("options a list", _options("[1, 2]"), reason="options must be a JSON object"),
    BadRow("options time_limit abc", _options({"time_limit": "abc"}), reason="time_limit"),
    BadRow("options time_limit -1", _options({"time_limit": -1}), reason="time_limit"),
    BadRow(
        "options soft_time_limit abc",
        _options({"soft_time_limit": "abc"}),
        reason="soft_time_limit",
    ),
    BadRow(
        "options soft_time_limit -1", _options({"soft_time_limit": -1}), reason="soft_time_limit"
    ),
    BadRow("options time_limit 1e400", _options('{"time_limit": 1e400}'), reason="time_limit"),
    BadRow("options link 5", _options({"link": 5}), reason="link"),
    BadRow("options link_error [5]", _options({"link_error": [5]}), reason="link_error"),
    BadRow("options chain 5", _options({"chain": 5}), reason="chain"),
    BadRow("options headers x", _options({"headers": "x"}), reason="headers"),
    BadRow("args an object", {"args": '{"not": "a list"}'}, reason="args must be a JSON array"),
    BadRow("args a string", {"args": '"text"'}, reason="args must be a JSON array"),
    BadRow("kwargs a list", {"kwargs": "[1]"}, reason="kwargs"),
    BadRow(
        "args 12,000 deep",
        {"args": "[" * 12_000 + "]" * 12_000},
        reason="nested too deeply",
        vendors=("postgresql",),
    ),
    BadRow("args 1,500 deep", {"args": "[" * 1500 + "]" * 1500}, reason="missing 1 required"),
    BadRow("name empty", {"name": ""}, reason="name"),
    BadRow("name unknown", {"name": "no.such.task"}, reason="no.such.task"),
    BadRow("retries abc", {"retries": "abc"}, reason="retries", vendors=("sqlite",)),
    BadRow("max_retries abc", {"max_retries": "abc"}, reason="max_retries", vendors=("sqlite",)),
    BadRow("eta garbage", {"run_after": "1999-13-45 garbage"}, reason="eta", vendors=("sqlite",)),
    BadRow("eta month 13", {"run_after": "1999-13-45 00:00:00"}, reason="eta", vendors=("sqlite",)),
    BadRow(
        "expires garbage", {"expires": "1999-99-99 garbage"}, reason="expires", vendors=("sqlite",)
    ),
    # PostgreSQL timestamps Python cannot hold: due by the database's comparison, the job runs
    # as if there were none ...
    BadRow("eta -infinity", {"run_after": "-infinity"}, state=st.SUCCESS, vendors=("postgresql",)),
    BadRow("expires infinity", {"expires": "infinity"}, state=st.SUCCESS, vendors=("postgresql",)),
    BadRow(
        "expires year 12000",
        {"expires": "12000-01-01 00:00:00+00"},
        state=st.SUCCESS,
        vendors=("postgresql",),
    ),
    # ... or, long past, as expired
    BadRow(
        "expires -infinity", {"expires": "-infinity"}, state=st.REVOKED, vendors=("postgresql",)
    ),
    # what the schema refuses never reaches a worker
    BadRow("options not JSON", {"options": "{not json"}, refused=True),
    BadRow("args not JSON", {"args": "[1, 2"}, refused=True),
    BadRow(
        "args 3,000 deep", {"args": "[" * 3000 + "]" * 3000}, refused=True, vendors=("sqlite",)
    ),  # (past SQLite's JSON depth: its json_valid check refuses it)
    BadRow("state unknown", {"state": "BOGUS"}, refused=True),
    BadRow("retries -1", {"retries": -1}, refused=True),
    BadRow("priority 999", {"priority": 999}, refused=True),
]


def good_columns(path: str, token: str, acks_late: bool = False, priority: int = 0) -> dict:
    """A good row of ``testproject.demo.tasks.record`` (appends ``token`` to ``path``)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    return {
        "id": str(uuid.uuid4()),
        "name": "testproject.demo.tasks.record",
        "queue": "default",
        "priority": priority,
        "state": st.PENDING,
        "custom_state": "",
        "args": json.dumps([path, token]),
        "kwargs": "{}",
        "options": "{}",
        "traceback": "",
        "run_after": now,
        "expires": None,
        "retries": 0,
        "max_retries": None,
        "attempt": 0,
        "acks_late": acks_late,
        "worker": "",
        "terminate_signal": "",
        "created_at": now,
        "history": "[]",
    }


def insert_raw(columns: dict, using: str = "default") -> str:
    """INSERT one job row with plain SQL (no djq code); returns its id."""
    connection = connections[using]
    values = dict(columns)
    if connection.vendor == "sqlite":  # stored as Django stores them there (ids: text as given)
        for key in ("run_after", "created_at", "expires"):
            if isinstance(values[key], dt.datetime):
                values[key] = values[key].astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")
    names = list(values)
    marks = ", ".join(["%s"] * len(names))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO djq_job ({', '.join(names)}) VALUES ({marks})", [values[n] for n in names]
        )
    return columns["id"]


def bad_row_columns(row: BadRow, path: str, token: str, acks_late: bool = False) -> dict:
    return {**good_columns(path, token, acks_late), **row.columns}


def rows_for(vendor: str) -> list[BadRow]:
    return [row for row in BAD_ROWS if vendor in row.vendors]
