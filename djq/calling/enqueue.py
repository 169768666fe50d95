"""From a call (task name, arguments, options) to job rows: validate, serialize, route, insert.

Everything that can be wrong with a call is found here, before anything is written, and raised as
``TypeError``/``ValueError`` naming the task and what was wrong.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import numbers
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils import timezone

from djq import events, signals, store
from djq import options as checks
from djq.calling import keys
from djq.calling import request as request_context
from djq.calling.registry import tasks
from djq.calling.result import AsyncResult
from djq.conf import settings
from djq.models import PRIORITY_MAX, PRIORITY_MIN
from djq.serialization import check_arguments, dumps

#: options ``apply_async`` accepts besides args/kwargs; anything else is a TypeError.
KNOWN_OPTIONS = frozenset(
    {
        "batch",
        "countdown",
        "eta",
        "expires",
        "queue",
        "priority",
        "task_id",
        "link",
        "link_error",
        "headers",
        "time_limit",
        "soft_time_limit",
        "ignore_result",
        "acks_late",
        "track_started",
        "max_retries",
        "retries",
        "parent_id",
        "root_id",
        "group_id",
        "group_index",
        "chord",
        "chain",
        "shadow",
        "routing_key",
        "exchange",
        "serializer",
        "compression",
        "retry",
        "retry_policy",
        "using",
        "unique",
        "unique_key",
        "unique_for",
        "unique_mode",
        "errback",
        "retry_of",
        "related",
        "atomic",
    }
)
#: options kept in the job's ``options`` column for the worker and the continuation.
_STORED_OPTIONS = frozenset(
    {
        "batch",
        "link",
        "link_error",
        "headers",
        "time_limit",
        "soft_time_limit",
        "ignore_result",
        "track_started",
        "group_index",
        "chord",
        "chain",
        "shadow",
        "unique_key",
        "unique_for",
        "errback",
        "retry_of",  # retry_of: the job an admin/control retry re-sends (retried once)
        "related",  # ["app_label.model:pk", ...]: the objects the job is about (JobsForObjectMixin)
        "atomic",  # apply_async(atomic=True/False): overrides the task's (djq.running.execute)
    }
)


def route(name: str) -> dict[str, Any]:
    """The first ``DJQ_TASK_ROUTES`` entry matching ``name`` (exact name or glob)."""
    routes = settings.TASK_ROUTES
    entries = routes if isinstance(routes, (list, tuple)) else [routes]
    for entry in entries:
        if callable(entry):
            found = entry(name)
            if found:
                return dict(found)
            continue
        if name in entry:
            return _route_target(entry[name])
        for pattern, target in entry.items():
            if fnmatch.fnmatchcase(name, pattern):
                return _route_target(target)
    return {}


def _route_target(target: Any) -> dict[str, Any]:
    """A route: a dict, or a queue name (Celery's ``{"tasks.add": "low-priority"}``)."""
    return {"queue": target} if isinstance(target, str) else dict(target)


def build_row(
    name: str,
    args: Sequence[Any] | None,
    kwargs: dict[str, Any] | None,
    options: dict[str, Any],
    memo: dict[str, Any] | None = None,
    check: bool = True,
) -> dict[str, Any]:
    """Validate a call and turn it into a job row for ``store.insert_jobs``."""
    if memo is None or name not in memo:  # (a name in the memo was checked already)
        checks.task_name(name)
    args = () if args is None else args
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(args, (list, tuple)):
        raise TypeError(f"{name}: args must be a list or tuple, not {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise TypeError(f"{name}: kwargs must be a dict, not {type(kwargs).__name__}")
    unknown = set(options) - KNOWN_OPTIONS
    if unknown:
        raise TypeError(f"{name}: unknown apply_async option(s) {sorted(unknown)}")
    if options.get("serializer") not in (None, "json"):
        raise ValueError(f"{name}: serializer={options['serializer']!r}: djq sends JSON only")
    task = tasks.get(name) if name in tasks else None
    if task is not None and check:
        task.check_arguments(args, kwargs)
    checks.check(name, options)  # the caller's; the defaults are checked with their memo
    options = _with_defaults(name, task, options, memo)
    args_json, kwargs_json = check_arguments(name, args, kwargs)
    if options.get("unique") or options.get("unique_key") is not None:
        options.update(_unique(name, options, args_json, kwargs_json))
    for key in ("link", "link_error"):
        if key in options:
            options[key] = callbacks(options[key], name, key)
    if options.get("related") is not None:
        options["related"] = checks.related(name, options["related"])
    parent = request_context.current()
    parent_id = options.get("parent_id") or (parent.id if parent and not parent.is_eager else None)
    root_id = options.get("root_id") or (parent and (parent.root_id or parent.id)) or None
    stored = {
        k: v
        for k in _STORED_OPTIONS.intersection(options)
        if (v := options[k]) is not None and v != [] and v != {}
    }
    if task is not None and task.version != 1:  # (absent: version 1, see djq.versioning)
        stored["version"] = task.version
    options_json = _options_json(name, stored)
    return {
        "id": _task_id(options.get("task_id")),
        "id_given": options.get("task_id") is not None,  # may be taken: see store.insert_jobs
        "name": name,
        "queue": _queue(name, options["queue"]),
        "priority": _priority(name, options["priority"]),
        "args": args_json,
        "kwargs": kwargs_json,
        "options": options_json,
        **_eta(name, options.get("countdown"), options.get("eta")),
        **_expires(name, options.get("expires")),
        "retries": int(options.get("retries") or 0),
        "max_retries": options.get("max_retries"),
        "acks_late": bool(options["acks_late"]),
        "parent_id": str(parent_id) if parent_id else None,
        "root_id": str(root_id) if root_id else None,
        "group_id": _task_id(options["group_id"]) if options.get("group_id") else None,
        "unique_key": options.get("unique_key"),
        "unique_mode": options.get("unique_mode") or "keep",
        "concurrency_key": keys.resolve(task, args, kwargs) if task is not None else "",
    }


def _unique(name: str, options: dict[str, Any], args_json: str, kwargs_json: str) -> dict[str, Any]:
    """Unique jobs: the key (the task's name and ``unique_key``, or a digest of the arguments
    for ``unique=True``) and how long it stays taken after the job finished (``unique_for``)."""
    import hashlib

    key = options.get("unique_key")
    if key is None:
        key = hashlib.sha256(f"{args_json}\n{kwargs_json}".encode()).hexdigest()[:32]
    elif not isinstance(key, str) or not key:
        raise TypeError(f"{name}: unique_key must be a non-empty string, got {key!r}")
    full = f"{name}:{key}"
    if len(full) > 255:
        raise ValueError(f"{name}: unique_key is too long ({len(full)} > 255 characters)")
    unique_for = options.get("unique_for")
    return {
        "unique_key": full,
        "unique_for": _seconds(name, "unique_for", unique_for) if unique_for else 0.0,
    }


def _options_json(name: str, stored: dict[str, Any]) -> str:
    """The stored options as JSON; what cannot travel is named (task, option, why)."""
    try:
        return dumps(stored)
    except TypeError:
        pass
    for key, value in stored.items():
        try:
            dumps(value)
        except TypeError as exc:
            raise TypeError(f"{name}: options cannot be sent as JSON: {key}={value!r} ({exc})")
    raise TypeError(f"{name}: options cannot be sent as JSON")  # pragma: no cover


def callbacks(value: Any, name: str = "link", option: str = "link") -> list[Any]:
    """``link=``/``link_error=`` as a list of signatures: Celery takes one signature or a list of
    them (a task name is taken as its signature); anything else is a TypeError now."""
    if value is None:
        return []
    value = checks.signatures(name, option, value)
    found: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, str) and item:
            # a task name is its signature (a canvas.Signature is this dict; canvas sits above)
            checks.task_name(item, call="signature")
            item = {
                "task": item,
                "args": [],
                "kwargs": {},
                "options": {},
                "subtask_type": None,
                "immutable": False,
            }
        if not isinstance(item, dict) or not isinstance(item.get("task"), str):
            raise TypeError(f"link/link_error take signatures (or task names), got {item!r}")
        found.append(item)
    return found


def _with_defaults(
    name: str, task: Any, options: dict[str, Any], memo: dict[str, Any] | None = None
) -> dict[str, Any]:
    """apply_async options, then DJQ_TASK_ROUTES, then the task's attributes, then settings.

    ``memo`` (one per ``enqueue_many`` call) keeps the per-task-name part, so a batch of many
    jobs of one task reads settings and routes once.
    """
    base = memo.get(name) if memo is not None else None
    if base is None:
        base = {
            "queue": getattr(task, "queue", None) or settings.DEFAULT_QUEUE,
            "priority": _first(getattr(task, "priority", None), settings.TASK_DEFAULT_PRIORITY),
            "acks_late": _first(getattr(task, "acks_late", None), settings.TASK_ACKS_LATE),
            "max_retries": getattr(task, "max_retries", None) if task else None,
            "expires": getattr(task, "expires", None),
            "unique_mode": getattr(task, "unique_mode", None),
        }
        base.update({k: v for k, v in route(name).items() if v is not None})
        checks.check(name, base)  # a route or setting with a bad value fails here
        if memo is not None:
            memo[name] = base
    merged = dict(base)
    merged.update({k: v for k, v in options.items() if v is not None})
    return merged


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _task_id(task_id: Any) -> str:
    """Celery's ``task_id=`` as stored: the given id (checked by ``checks.check`` with the other
    options of the call) as text, or a new UUID4."""
    return str(uuid.uuid4()) if task_id is None else str(task_id)


def _queue(name: str, queue: Any) -> str:
    return checks.text(name, "queue", queue, checks.QUEUE_MAX, wrong_type=ValueError)


def _priority(name: str, priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, numbers.Integral):
        raise TypeError(f"{name}: priority must be an integer, got {priority!r}")
    if not PRIORITY_MIN <= int(priority) <= PRIORITY_MAX:
        raise ValueError(f"{name}: priority {priority} is outside {PRIORITY_MIN}..{PRIORITY_MAX}")
    return int(priority)


def _aware(name: str, what: str, value: dt.datetime) -> dt.datetime:
    if timezone.is_naive(value):
        return timezone.make_aware(value)
    return value


def _seconds(name: str, what: str, value: Any) -> float:
    return checks.seconds(name, what, value)


def _eta(name: str, countdown: Any, eta: Any) -> dict[str, Any]:
    if eta is not None and countdown is not None:
        raise ValueError(f"{name}: give countdown or eta, not both")
    if eta is not None:
        eta = checks.moment(name, "eta", eta)
        return {"eta": _aware(name, "eta", eta), "countdown": None}
    if countdown is None:
        return {"eta": None, "countdown": None}
    return {"eta": None, "countdown": _seconds(name, "countdown", countdown)}


def _expires(name: str, expires: Any) -> dict[str, Any]:
    if expires is None:
        return {"expires": None, "expires_in": None}
    if isinstance(expires, (str, dt.datetime)):
        expires = checks.moment(name, "expires", expires)
        return {"expires": _aware(name, "expires", expires), "expires_in": None}
    return {"expires": None, "expires_in": _seconds(name, "expires", expires)}


def enqueue(rows: Sequence[dict[str, Any]], using: str | None = None) -> dict[str, str]:
    """Insert the rows; ``before/after_task_publish`` are sent around it (only when someone
    listens: a batch of thousands pays nothing for them otherwise)."""
    before, after = signals.before_task_publish, signals.after_task_publish
    if before.has_listeners():
        for row in rows:
            before.send(sender=row["name"], body=row, routing_key=row["queue"])
    existing = store.insert_jobs(rows, using=using)
    if settings.TASK_SEND_SENT_EVENT:  # task-sent, in the same transaction (djq.events)
        events.task_sent(rows, existing, using=using)
    if after.has_listeners():
        for row in rows:
            if row["id"] not in existing:
                after.send(sender=row["name"], body=row, routing_key=row["queue"])
    return existing


# --- by name and in bulk (re-exported by djq.task and djq) ----------------------------------
def send_task(name: str, args: Any = None, kwargs: Any = None, **options: Any) -> AsyncResult:
    """Enqueue a job by task name, without importing the task. Returns an ``AsyncResult``.

    A name no worker knows is accepted here and ends FAILURE with ``NotRegistered`` when claimed.
    """
    using = options.pop("using", None)
    row = build_row(name, args, kwargs, options)
    existing = enqueue([row], using=using)  # a unique job's key may be held already
    return AsyncResult(existing.get(row["id"], row["id"]), task_name=name, using=using)


def enqueue_many(signatures: Iterable[Any], using: str | None = None) -> list[AsyncResult]:
    """Enqueue many jobs in one statement; returns their ``AsyncResult``s in order."""
    rows: list[dict[str, Any]] = []
    memo: dict[str, Any] = {}
    for sig in signatures:
        # a Signature is a dict: the calling layer reads it as one (canvas sits above calling)
        if not isinstance(sig, dict):
            raise TypeError(f"expected a signature or a dict, got {type(sig).__name__}")
        rows.append(
            build_row(
                sig["task"],
                sig.get("args") or (),
                sig.get("kwargs") or {},
                dict(sig.get("options") or {}),
                memo,
            )
        )
    existing = enqueue(rows, using=using)
    return [
        AsyncResult(existing.get(row["id"], row["id"]), task_name=row["name"], using=using)
        for row in rows
    ]
