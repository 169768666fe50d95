"""Pieces of the control room (``djq.admin``): a paginator that does not count millions of rows,
list filters whose choices cost no scan of the job table, and small HTML formatters."""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils import timezone as dj_timezone
from django.utils.functional import cached_property
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from djq import states, store
from djq.adminsite import monitor
from djq.calling.registry import tasks
from djq.models import Queue, Worker
from djq.serialization import Encoder


# --- counting -------------------------------------------------------------------------------------
class EstimatedCountPaginator(Paginator):
    """Exact counts up to ``exact_up_to`` rows; beyond that, PostgreSQL's planner estimate.

    ``COUNT(*)`` over a million rows reads them all. Here a count is a ``COUNT(*)`` of at most
    ``exact_up_to + 1`` rows (one walk of an index); if the limit is reached, the planner's row
    estimate for the same query (``EXPLAIN``, kept fresh by autovacuum's ANALYZE) stands in, and
    ``estimated`` is set so that the page can say "about". Other databases count exactly.
    """

    exact_up_to = 10_000
    estimated = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if connections[qs.db].vendor != "postgresql":
            return qs.count()
        capped = qs.order_by()[: self.exact_up_to + 1].count()
        if capped <= self.exact_up_to:
            return capped
        self.estimated = True
        return max(capped, planner_estimate(qs))


def planner_estimate(qs) -> int:
    """PostgreSQL's estimate of how many rows ``qs`` returns (no rows are read)."""
    sql, params = qs.order_by().values("pk").query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


# --- filters: choices from small tables or the registry, never a DISTINCT over jobs ---------------
class _ChoicesFilter(admin.SimpleListFilter):
    """Exact match on one indexed column; subclasses say which values to offer."""

    field = ""

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class QueueFilter(_ChoicesFilter):
    title = "queue"
    parameter_name = field = "queue"

    def lookups(self, request, model_admin):
        names = set(Queue.objects.values_list("name", flat=True))
        names |= {self.value()} - {None}
        return [(n, n) for n in sorted(names)]


class TaskNameFilter(_ChoicesFilter):
    title = "task"
    parameter_name = field = "name"

    def lookups(self, request, model_admin):
        names = set(tasks) | ({self.value()} - {None})
        return [(n, breakable(n)) for n in sorted(names)]


def breakable(name: str) -> str:
    """A dotted name that wraps after its dots only (never mid-word), for narrow columns."""
    return mark_safe(escape(name).replace(".", ".<wbr>"))  # escaped first: safe


class WorkerFilter(_ChoicesFilter):
    title = "worker"
    parameter_name = field = "worker"

    def lookups(self, request, model_admin):
        names = list(Worker.objects.order_by("-last_heartbeat").values_list("name", flat=True))
        return [(n, n) for n in names[:50]]


class ConcurrencyKeyFilter(_ChoicesFilter):
    """Jobs of one concurrency key (``@task(concurrency_key=...)``; djq_job_key_idx)."""

    title = "concurrency key"
    parameter_name = field = "concurrency_key"

    def lookups(self, request, model_admin):
        keys = distinct_keys(KEY_CHOICES)
        keys |= {self.value()} - {None}
        return [(k, k) for k in sorted(keys)]


#: at most this many keys are offered (the first ones in order); others: search ``key:V``
KEY_CHOICES = 50

# A loose index scan of djq_job_key_idx: one probe per key, however many jobs each has, and
# stopped after ``limit`` keys (a DISTINCT would read every keyed job's index entry).
_DISTINCT_KEYS = """
WITH RECURSIVE k(key) AS (
    SELECT (SELECT j.concurrency_key FROM djq_job j WHERE j.concurrency_key <> ''
            ORDER BY j.concurrency_key LIMIT 1)
    UNION ALL
    SELECT (SELECT j.concurrency_key FROM djq_job j
            WHERE j.concurrency_key <> '' AND j.concurrency_key > k.key
            ORDER BY j.concurrency_key LIMIT 1)
    FROM k WHERE k.key IS NOT NULL
)
SELECT k.key FROM k WHERE k.key IS NOT NULL LIMIT %s
"""


def distinct_keys(limit: int) -> set[str]:
    """The first ``limit`` concurrency keys of the stored jobs (none: no keyed task ran)."""
    with connections[store.alias()].cursor() as cursor:
        cursor.execute(_DISTINCT_KEYS, [limit])
        return {row[0] for row in cursor.fetchall()}


class OnlineFilter(admin.SimpleListFilter):
    """Workers by liveness, by the database clock (see ``monitor.online_q``)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("online", "online"), ("offline", "offline")]

    def queryset(self, request, queryset):
        if self.value() not in ("online", "offline"):
            return queryset
        online = monitor.online_q(store.db_now())
        return queryset.filter(online) if self.value() == "online" else queryset.exclude(online)


# --- formatting ----------------------------------------------------------------------------------
KNOWN_STATES = states.ALL_STATES | {states.DEAD}  # (DEAD: a dead letter, see djq.admin)


def shown_state(state: str, custom: str = "") -> str:
    """The state to show: a custom one (``update_state``) only while the job has not finished,
    so a job revoked or failed in PROGRESS shows REVOKED or FAILURE (a finished state wins)."""
    return custom if custom and state not in states.READY_STATES else state


def state_badge(state: str, custom: str = "") -> str:
    """A coloured pill; a custom state (``update_state``) shows as itself on the running colour."""
    shown = shown_state(state, custom)
    css = shown if shown in KNOWN_STATES else "CUSTOM"
    return format_html('<span class="djq-state djq-state-{}">{}</span>', css, shown)


#: the one date format of every djq page (local time; the title attribute has the ISO instant)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def when(value: dt.datetime | None) -> str:
    """A moment as ``2026-12-03 10:31:28`` in the admin's time zone (``—`` when unset)."""
    if value is None:
        return "—"
    local = dj_timezone.localtime(value)
    return format_html(
        '<span class="djq-when" title="{}">{}</span>',
        local.isoformat(),
        local.strftime(DATE_FORMAT),
    )


def exception_text(value) -> str | None:
    """``ValueError: the message`` for a stored exception (``exc_type``/``exc_message``), else
    None: what the job page and the list show instead of the raw JSON."""
    if not isinstance(value, dict) or "exc_type" not in value:
        return None
    message = value.get("exc_message")
    if isinstance(message, (list, tuple)):
        message = ", ".join(str(m) for m in message)
    return f"{value['exc_type']}: {message}" if message not in (None, "") else value["exc_type"]


def duration(value: dt.timedelta | None) -> str:
    """3 ms, 1.25 s, 2 min 5 s, 3 h 12 min, 2 d 4 h."""
    if value is None:
        return "—"
    s = value.total_seconds()
    if s < 0:
        s = 0.0
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(s), 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min"
    d, h = divmod(h, 24)
    return f"{d} d {h} h"


def pretty_json(value) -> str:
    """One line when it fits, indented otherwise."""
    flat = json.dumps(value, cls=Encoder, sort_keys=True, ensure_ascii=False)
    if len(flat) <= 90:
        return flat
    return json.dumps(value, cls=Encoder, indent=2, sort_keys=True, ensure_ascii=False)


# --- the job list's and pages' text ------------------------------------------------------------
#: characters of arguments and results the list shows (cut in SQL: a payload may be megabytes)
HEAD = 80


def progress_percent(meta) -> int | None:
    """``{"current": 3, "total": 10}`` (Celery's PROGRESS idiom) → 30; None otherwise."""
    try:
        current, total = float(meta["current"]), float(meta["total"])
    except (KeyError, TypeError, ValueError):
        return None
    return max(0, min(100, round(100 * current / total))) if total > 0 else None


def shorten(text: str | None) -> str:
    """At most HEAD characters, with an ellipsis when cut."""
    text = text or ""
    return text if len(text) <= HEAD else text[: HEAD - 1] + "…"


def json_items(head: str | None) -> str:
    """The inside of a JSON list or object as text (``[1, 2]`` → ``1, 2``), cut or not."""
    head = (head or "").strip()
    if head[:1] in "[{" and head:
        head = head[1:]
        if head.endswith("]") or head.endswith("}"):
            head = head[:-1]
    return head


def exception_message(head: str | None) -> str:
    """The stored ``exc_message`` (a JSON list, maybe cut) as plain text."""
    try:
        value = json.loads(head or "")
    except ValueError:
        return json_items(head)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def call_text(args_head: str | None, kwargs_head: str | None) -> str:
    """``1, 2, x=3`` from the first characters of the JSON args and kwargs."""
    args = json_items(args_head)
    kwargs = json_items(kwargs_head)
    if kwargs:
        kwargs = kwargs.replace('": ', "=").replace(', "', ", ").lstrip('"')
    return shorten(", ".join(p for p in (args, kwargs) if p))


def job_links(ids) -> str:
    """Links to the pages of the jobs ``ids`` (their short ids), comma-separated."""
    links = ((reverse("admin:djq_job_change", args=[str(i)]), str(i)[:8]) for i in ids)
    return format_html_join(", ", '<a href="{}"><code>{}</code></a>', links)


def unconsumed_text(queues: dict[str, int]) -> str:
    """The warning: 3 job(s) wait in queue x; no online worker consumes it; start one with -Q x."""
    parts = [format_html("{} job(s) wait in queue <b>{}</b>", n, q) for q, n in queues.items()]
    names = ",".join(queues)
    return format_html(
        "{}: no online worker consumes {}. Start one with <code>manage.py djq_worker -Q {}</code>.",
        format_html_join("; ", "{}", ((p,) for p in parts)),
        "it" if len(queues) == 1 else "them",
        names,
    )
