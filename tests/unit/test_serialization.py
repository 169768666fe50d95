"""djq.serialization: the extended JSON that arguments, results and exceptions travel as."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from djq.exceptions import MaxRetriesExceededError, NotRegistered, Reject, TaskRevokedError
from djq.serialization import (
    check_arguments,
    decode,
    dict_to_exception,
    dumps,
    exception_to_dict,
    loads,
)
from testproject.demo.tasks import DemoError

TASK = "testproject.demo.tasks.echo"

ROUND_TRIPS = {
    "aware datetime": dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC),
    "aware datetime, non-UTC offset": dt.datetime(
        2026, 3, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
    ),
    "naive datetime": dt.datetime(2026, 3, 1, 12, 30, 15),
    "date": dt.date(1999, 12, 31),
    "time": dt.time(23, 59, 58, 1000),
    "aware time": dt.time(8, 0, tzinfo=dt.UTC),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": decimal.Decimal("12345678901234567890.000000001"),
    "negative decimal": decimal.Decimal("-0.10"),
    "plain JSON": {"a": [1, 2.5, "x", None, True], "b": {"c": []}},
    "unicode": "naïve — ünïcödé ✓",
    "nested typed values": {
        "when": [dt.date(2020, 1, 1), dt.datetime(2020, 1, 1, 1, 1, tzinfo=dt.UTC)],
        "ids": {"one": uuid.UUID(int=1)},
        "money": [decimal.Decimal("1.10"), {"deep": decimal.Decimal("2")}],
    },
    "a dict that only looks tagged": {"__type__": "unknown", "__value__": 1},
    "a literal backslash-u0000 in a string": "C:\\u0000",
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip(value):
    back = loads(dumps(value))
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, dt.datetime | dt.time):
        assert back.tzinfo == value.tzinfo  # aware stays aware (same offset), naive stays naive


def test_tuples_become_lists():
    assert loads(dumps((1, (2, 3)))) == [1, [2, 3]]


def test_types_are_tagged_like_kombu():
    assert json.loads(dumps(dt.date(2020, 2, 3))) == {"__type__": "date", "__value__": "2020-02-03"}
    assert json.loads(dumps(decimal.Decimal("1.5"))) == {"__type__": "decimal", "__value__": "1.5"}


def test_decode_turns_parsed_tags_into_values():
    parsed = json.loads(dumps({"x": [uuid.UUID(int=7), {"d": dt.date(2021, 5, 6)}]}))
    assert decode(parsed) == {"x": [uuid.UUID(int=7), {"d": dt.date(2021, 5, 6)}]}


def test_loads_none():
    assert loads(None) is None


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), "a\x00b", "\\\x00", object(), {1, 2}, b"b", dt.timedelta(1)],
    ids=["nan", "inf", "nul", "backslash-nul", "object", "set", "bytes", "timedelta"],
)
def test_dumps_refuses_what_cannot_travel(value):
    with pytest.raises(TypeError):
        dumps(value)
    with pytest.raises(TypeError):
        dumps({"nested": [value]})


class Opaque:
    pass


@pytest.mark.parametrize(
    ("args", "kwargs", "names"),
    [
        ((1, float("nan")), {}, "positional argument 1"),
        ((), {"when": float("-inf")}, "keyword argument 'when'"),
        (("ok", "bad\x00"), {}, "positional argument 1"),
        ((), {"obj": Opaque()}, "keyword argument 'obj'"),
        (([1, {"deep": Opaque()}],), {}, "positional argument 0"),
    ],
    ids=["nan", "inf-kwarg", "nul", "object", "nested-object"],
)
def test_check_arguments_names_the_task_and_the_argument(args, kwargs, names):
    with pytest.raises(TypeError) as info:
        check_arguments(TASK, args, kwargs)
    message = str(info.value)
    assert TASK in message
    assert names in message


def test_check_arguments_rejects_non_string_keyword_names():
    with pytest.raises(TypeError, match=r"keyword argument names must be strings"):
        check_arguments(TASK, (), {1: "x"})


def test_check_arguments_returns_the_encoded_payload():
    args, kwargs = check_arguments(TASK, (1, dt.date(2020, 1, 1)), {"u": uuid.UUID(int=3)})
    assert loads(args) == [1, dt.date(2020, 1, 1)]
    assert loads(kwargs) == {"u": uuid.UUID(int=3)}


# --- exceptions -------------------------------------------------------------------------------
class NeedsTwoArguments(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("boom"),
        KeyError("missing"),
        DemoError("custom", 2),
        MaxRetriesExceededError("too many"),
        TaskRevokedError("revoked"),
        Reject("no", True),
        NotRegistered("some.task"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_exception_round_trip_keeps_its_own_type(exc):
    data = exception_to_dict(exc)
    assert data["exc_type"] == type(exc).__qualname__
    assert data["exc_module"] == type(exc).__module__
    back = dict_to_exception(json.loads(json.dumps(data)))  # through storage
    assert type(back) is type(exc)
    assert back.args == exc.args
    assert str(back) == str(exc)


def test_exception_with_typed_args():
    exc = ValueError(dt.date(2020, 1, 2), decimal.Decimal("3.5"))
    back = dict_to_exception(json.loads(json.dumps(exception_to_dict(exc))))
    assert back.args == (dt.date(2020, 1, 2), decimal.Decimal("3.5"))


def test_exception_with_unserializable_args_keeps_its_message():
    exc = ValueError(Opaque())
    data = exception_to_dict(exc)
    assert data["exc_message"] == [str(exc)]
    assert type(dict_to_exception(data)) is ValueError


def test_unknown_exception_type_falls_back_to_a_look_alike():
    data = {"exc_type": "GoneError", "exc_module": "no.such.module", "exc_message": ["gone"]}
    exc = dict_to_exception(data)
    assert isinstance(exc, Exception)
    assert type(exc).__name__ == "GoneError"
    assert type(exc).__module__ == "no.such.module"
    assert exc.args == ("gone",)


def test_a_name_that_is_not_an_exception_falls_back():
    # json.dumps is importable but is not an exception class: never call it.
    exc = dict_to_exception({"exc_type": "dumps", "exc_module": "json", "exc_message": ["x"]})
    assert type(exc).__name__ == "dumps" and isinstance(exc, Exception)
    assert exc.args == ("x",)


def test_exception_whose_init_does_not_take_its_args_falls_back():
    exc = NeedsTwoArguments(1, 2)
    back = dict_to_exception(exception_to_dict(exc))
    assert type(back).__name__ == "NeedsTwoArguments"
    assert str(back) == "1/2"


class Outer:
    class Inner(Exception):
        pass


def test_nested_exception_class_is_found_by_qualified_name():
    data = exception_to_dict(Outer.Inner("x"))
    assert data["exc_type"] == "Outer.Inner"
    assert type(dict_to_exception(data)) is Outer.Inner


def test_lone_surrogates_are_refused_and_exceptions_about_them_still_travel():
    from djq.serialization import dumps, exception_to_dict

    with pytest.raises(TypeError, match="surrogate"):
        dumps({"name": "bad\udcffname"})
    assert dumps("\U0001f600") == '"\\ud83d\\ude00"'  # a real pair is fine
    stored = exception_to_dict(ValueError("bad\udcffname"))
    assert dumps(stored)  # storable: the message is escaped
