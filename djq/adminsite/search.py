"""The job list's search box: what a term means, as a filter on indexed columns where possible.

    4a0c8e          a job id, or the start of one (a range on the primary key)
    arg:42          jobs with 42 among their positional arguments (``"arg:alice"``: a string)
    user_id=7       jobs whose keyword argument ``user_id`` is 7
    error:timeout   failed or retried jobs whose exception type or message contains "timeout"
    related:auth.user:7   jobs sent with ``related=`` naming that object
    key:tenant-7    jobs whose concurrency key is exactly "tenant-7" (djq_job_key_idx)
    other text      jobs of the tasks whose name contains it: registered tasks, schedules' tasks,
                    and the text itself (so jobs of unregistered names are found too)

Argument containment is jsonb ``@>`` on PostgreSQL and ``json_each`` on SQLite; its cost is one
pass over the jobs the other filters leave (see docs/admin.md for the figures).
"""

from __future__ import annotations

import json
import re
import uuid

from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT

from djq import states
from djq.calling.registry import tasks
from djq.models import Job, PeriodicTask

_HEX_PREFIX = re.compile(r"^[0-9a-fA-F-]{4,36}$")
_KWARG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


def search(queryset: QuerySet, term: str) -> QuerySet:
    """``queryset`` narrowed by ``term`` (see the module docstring)."""
    term = term.strip()
    if not term:
        return queryset
    if term.startswith("arg:"):
        return with_argument(queryset, _value(term[4:]))
    if term.startswith("related:"):
        return with_related(queryset, term[8:].strip())
    if term.startswith("key:"):
        return queryset.filter(concurrency_key=term[4:].strip())
    if term.startswith(("error:", "exc:")):
        return with_error(queryset, term.split(":", 1)[1].strip())
    kwarg = _KWARG.match(term)
    if kwarg:
        return with_kwarg(queryset, kwarg.group(1), _value(kwarg.group(2)))
    by_id = id_filter(term)
    by_name = Q(name__in=task_names(term))
    return queryset.filter(by_id | by_name if by_id is not None else by_name)


def _value(text: str):
    """``42`` → 42, ``"x"`` / ``x`` → "x", ``true`` → True: a JSON value, else the text."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def id_filter(term: str) -> Q | None:
    """The job whose id is ``term``, or (UUID ids) those whose id starts with it: a range."""
    if Job._meta.pk.get_internal_type() != "UUIDField":
        return Q(pk=term) | Q(pk__gte=term, pk__lt=term + "\uffff")
    if not _HEX_PREFIX.match(term):
        return None
    digits = term.replace("-", "").lower()
    if len(digits) > 32:
        return None
    low = uuid.UUID(digits.ljust(32, "0"))
    high = uuid.UUID(digits.ljust(32, "f"))
    return Q(pk__gte=low, pk__lte=high)


def task_names(term: str) -> list[str]:
    """Names containing ``term``: registered tasks, the tasks of schedules, and ``term``."""
    low = term.lower()
    names = {n for n in tasks if low in n.lower()} | {term}
    names |= set(PeriodicTask.objects.filter(task__icontains=term).values_list("task", flat=True))
    return sorted(names)


def with_argument(queryset: QuerySet, value) -> QuerySet:
    if connections[queryset.db].vendor == "postgresql":
        return queryset.filter(args__contains=[value])
    # SQLite: no JSON containment; one json_each per row (the demo's database is small)
    found = RawSQL(
        "EXISTS (SELECT 1 FROM json_each(djq_job.args) WHERE json_each.value = "
        "json_extract(%s, '$[0]'))",
        [json.dumps([value])],
    )
    return queryset.alias(has_arg=found).filter(has_arg=True)


def with_kwarg(queryset: QuerySet, key: str, value) -> QuerySet:
    if connections[queryset.db].vendor == "postgresql":
        return queryset.filter(kwargs__contains={key: value})
    return queryset.filter(**{f"kwargs__{key}": value})


def with_related(queryset: QuerySet, key: str) -> QuerySet:
    """Jobs sent with ``related=`` naming ``key`` ("app_label.model:pk"). On PostgreSQL a partial
    GIN index holds only the jobs that have ``related`` (migration 0008), so this is an index
    lookup at any table size; SQLite reads each job's list."""
    queryset = queryset.filter(options__has_key="related")
    if connections[queryset.db].vendor == "postgresql":
        return queryset.filter(options__related__contains=[key])
    found = RawSQL(
        "EXISTS (SELECT 1 FROM json_each(djq_job.options, '$.related') WHERE json_each.value = %s)",
        [key],
    )
    return queryset.alias(has_related=found).filter(has_related=True)


def with_error(queryset: QuerySet, text: str) -> QuerySet:
    """Failed or retried jobs whose exception type or message contains ``text``."""
    failed = queryset.filter(state__in=[states.FAILURE, states.RETRY]).alias(
        exc_type_text=KT("result__exc_type"), exc_message_text=KT("result__exc_message")
    )
    return failed.filter(Q(exc_type_text__icontains=text) | Q(exc_message_text__icontains=text))
