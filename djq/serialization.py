"""JSON on the wire, extended so that datetime, date, time, UUID and Decimal round-trip.

Typed values are tagged the way kombu tags them (``{"__type__": …, "__value__": …}``) so that the
stored payloads read naturally to Celery users. Nothing else is accepted: never pickle.
"""

from __future__ import annotations

import datetime as dt
import decimal
import inspect
import json
import re
import sys
import uuid
from typing import Any

_TAG, _VALUE = "__type__", "__value__"
#: a JSON escape of NUL: ``\u0000`` not itself escaped (``"\\u0000"`` is a backslash and "u0000")
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
#: a surrogate escape (``\ud800``-``\udfff``) that is not itself escaped; pairs are removed first
_SURROGATE_PAIR = re.compile(r"\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}")
_SURROGATE = re.compile(r"(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}")


class Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        # datetime before date: a datetime is a date.
        if isinstance(o, dt.datetime):
            return {_TAG: "datetime", _VALUE: o.isoformat()}
        if isinstance(o, dt.date):
            return {_TAG: "date", _VALUE: o.isoformat()}
        if isinstance(o, dt.time):
            return {_TAG: "time", _VALUE: o.isoformat()}
        if isinstance(o, uuid.UUID):
            return {_TAG: "uuid", _VALUE: str(o)}
        if isinstance(o, decimal.Decimal):
            return {_TAG: "decimal", _VALUE: str(o)}
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


_DECODERS = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "uuid": uuid.UUID,
    "decimal": decimal.Decimal,
}


def _object_hook(obj: dict) -> Any:
    if len(obj) == 2 and _TAG in obj and _VALUE in obj and obj[_TAG] in _DECODERS:
        return _DECODERS[obj[_TAG]](obj[_VALUE])
    return obj


class Decoder(json.JSONDecoder):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("object_hook", _object_hook)
        super().__init__(*args, **kwargs)


_ENCODE = Encoder(allow_nan=False, separators=(",", ":")).encode
_DECODER = Decoder()


def dumps(value: Any) -> str:
    """Encode ``value``; ``TypeError`` for anything JSON cannot carry (NaN, NUL, objects)."""
    if not value and isinstance(value, (list, tuple, dict)):
        return "{}" if isinstance(value, dict) else "[]"
    try:
        text = _ENCODE(value)
    except ValueError as exc:  # NaN / Infinity
        raise TypeError(str(exc)) from None
    except RecursionError:  # (a list in a list in ... thousands deep)
        raise TypeError("values nested too deeply cannot be stored") from None
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        # PostgreSQL's jsonb cannot store NUL; refuse it here rather than fail at INSERT.
        raise TypeError("strings containing NUL (\\x00) cannot be stored")
    if "\\ud" in text and _SURROGATE.search(_SURROGATE_PAIR.sub("", text)):
        # a lone surrogate (e.g. os.fsdecode of a badly encoded file name) is not Unicode text:
        # PostgreSQL rejects it, and one such value must not block the batch it is recorded in
        raise TypeError("strings containing lone surrogates (not valid Unicode) cannot be stored")
    return text


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    if not isinstance(text, (str, bytes)):  # (SQLite stores whatever a raw INSERT gives it)
        raise TypeError(f"JSON text expected, got {type(text).__name__} {text!r}")
    try:
        return _DECODER.decode(text if isinstance(text, str) else text.decode())
    except RecursionError:  # written by something else than djq: unusable, not a crash
        raise ValueError("JSON nested too deeply") from None


def decode(value: Any) -> Any:
    """Turn an already-parsed JSON structure (tags still in it) into Python values."""
    if isinstance(value, dict):
        return _object_hook({k: decode(v) for k, v in value.items()})
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def check_arguments(task_name: str, args: tuple | list, kwargs: dict) -> tuple[str, str]:
    """Encode a job's arguments, naming the offending one when something cannot travel."""
    for key in kwargs:
        if not isinstance(key, str):
            raise TypeError(f"{task_name}: keyword argument names must be strings, got {key!r}")
    try:
        return dumps(list(args)), dumps(kwargs)
    except TypeError:
        pass
    for i, arg in enumerate(args):
        _check_one(task_name, f"positional argument {i}", arg)
    for key, arg in kwargs.items():
        _check_one(task_name, f"keyword argument {key!r}", arg)
    raise TypeError(f"{task_name}: arguments are not JSON serializable")  # pragma: no cover


def _check_one(task_name: str, what: str, value: Any) -> None:
    try:
        dumps(value)
    except TypeError as exc:
        raise TypeError(
            f"{task_name}: {what} of type {type(value).__name__} cannot be sent as JSON ({exc}); "
            "djq carries JSON plus datetime, date, time, UUID and Decimal"
        ) from None


def exception_to_dict(exc: BaseException) -> dict:
    """Celery's shape for a stored exception: type, module and JSON-safe args."""
    try:
        args = json.loads(dumps(list(exc.args)))
    except TypeError:
        args = [safe_text(str(exc))]
    cls = type(exc)
    return {"exc_type": cls.__qualname__, "exc_module": cls.__module__, "exc_message": args}


def safe_text(text: str | None) -> str | None:
    """Text that any database stores: lone surrogates and NUL written as escapes."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def dict_to_exception(data: dict) -> BaseException:
    """Rebuild a stored exception: as its own type when that type's module is already imported
    (the task's own module is: the task is registered), else as a generic exception of the same
    name carrying the message. A module named by job data is never imported (its import would
    run code that whoever wrote the row chose)."""
    name, module = data.get("exc_type"), data.get("exc_module")
    name = name if isinstance(name, str) and name else "Exception"
    module = module if isinstance(module, str) and module else "builtins"
    args = decode(data.get("exc_message") or [])
    if not isinstance(args, list):
        args = [args]
    cls = imported_exception_type(module, name)
    if cls is not None:
        try:
            return cls(*args)
        except Exception:
            pass
    cls = type(name.rsplit(".", 1)[-1], (Exception,), {"__module__": module})
    return cls(*args)


def imported_exception_type(module: str, name: str) -> type[BaseException] | None:
    """The exception class ``module.name`` if ``module`` is in ``sys.modules`` (looked up
    statically: no module ``__getattr__``, no import), else None."""
    obj: Any = sys.modules.get(module)
    if obj is None:
        return None
    try:
        for part in name.split("."):
            obj = inspect.getattr_static(obj, part)
    except AttributeError:
        return None
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return obj
    return None
