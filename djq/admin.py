"""The control room: jobs, queues, workers, schedules and a live dashboard in the Django admin.

Payloads are read-only: no job is added or edited here. Every action goes through the functions
the API and the commands use (``djq.control``) and is logged in the admin log. Pages that list
jobs read them through indexes only (see ``djq.monitor`` and ``djq.admin_support``), so they stay
fast with millions of rows.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Count, DateTimeField, OuterRef, Subquery, TextField, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Left
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone as dj_timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe

from djq import control, states, store
from djq.adminsite import batches as _batches  # noqa: F401 - registers BatchAdmin
from djq.adminsite import history, monitor, workflow
from djq.adminsite import search as admin_search
from djq.adminsite.charts import bar_chart
from djq.adminsite.controls import QueueControls, WorkerControls, task_limits_view
from djq.adminsite.dead import REQUEUE_BULK, DeadFilter, DeadLetterActions
from djq.adminsite.support import (
    HEAD,
    ConcurrencyKeyFilter,
    EstimatedCountPaginator,
    OnlineFilter,
    QueueFilter,
    TaskNameFilter,
    WorkerFilter,
    breakable,
    call_text,
    duration,
    exception_message,
    exception_text,
    job_links,
    pretty_json,
    progress_percent,
    shorten,
    state_badge,
    unconsumed_text,
    when,
)
from djq.beat import preview, run_now
from djq.calling.registry import tasks
from djq.conf import settings
from djq.models import SCHEDULE_FIELDS, Batch, Dashboard, Group, Job, PeriodicTask, Queue, Worker
from djq.schedules import zone
from djq.store import job_logs
from djq.store import rows as store_rows

#: an action on more jobs than this is refused (select fewer, or use the API or a command)
MAX_ACTION_JOBS = 10_000
#: what each bulk action does, on its confirmation page
BULK = {
    "revoke": "Revoke: waiting jobs will not run; running ones are marked revoked and finish.",
    "revoke_and_terminate": "Revoke and terminate: waiting jobs will not run; the processes "
    "running the others are killed (SIGTERM).",
    "retry": "Retry: FAILURE and REVOKED jobs are sent again as new jobs (once each); other "
    "jobs are skipped.",
    "purge": "Purge: waiting jobs are deleted and never run; other jobs are left as they are.",
    "delete_selected": "Delete: waiting and finished jobs are deleted; jobs a worker holds "
    "(reserved or running) are left as they are (revoke those).",
    "requeue_dead": REQUEUE_BULK,
}


def job_badge(job: Job) -> str:
    """The job's state pill: DEAD for a dead letter (its row says FAILURE, as Celery's)."""
    if getattr(job, "dead_reason", ""):
        return state_badge(states.DEAD)
    return state_badge(job.state, job.custom_state)


def log_change(request, objects_and_messages) -> None:
    """One admin-log entry per object (``LogEntry``), in one INSERT."""
    entries = []
    for obj, message in objects_and_messages:
        ct = ContentType.objects.get_for_model(obj, for_concrete_model=False)
        entries.append(
            LogEntry(
                user_id=request.user.pk,
                content_type_id=ct.pk,
                object_id=str(obj.pk),
                object_repr=str(obj)[:200],
                action_flag=CHANGE,
                change_message=message,
            )
        )
    LogEntry.objects.bulk_create(entries)


class ReadOnlyDetail:
    """Objects are viewed, never edited; the change permission is what actions require."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def may_act(self, request) -> bool:
        return super().has_change_permission(request)


# --- jobs -----------------------------------------------------------------------------------------
LIST_FIELDS = (
    "id",
    "name",
    "queue",
    "state",
    "custom_state",
    "worker",
    "created_at",
    "started_at",
    "finished_at",
    "retries",
    "dead_reason",
)


def _head(expression) -> Left:
    return Left(Cast(expression, TextField()), HEAD + 1)


class JobChangeList(ChangeList):
    """Loads only the listed columns, the first characters of the payloads (cut by the
    database, never whole), and the database clock, for run times."""

    def get_queryset(self, request, exclude_parameters=None):
        qs = super().get_queryset(request, exclude_parameters)
        return qs.only(*LIST_FIELDS).annotate(
            db_now=Value(store.db_now(), DateTimeField()),
            args_head=_head("args"),
            kwargs_head=_head("kwargs"),
            result_head=_head("result"),
            exc_type=KT("result__exc_type"),
            exc_head=_head(KT("result__exc_message")),
        )


@admin.register(Job)
class JobAdmin(DeadLetterActions, ReadOnlyDetail, admin.ModelAdmin):
    list_display = ("short_id", "task", "state_display", "outcome", "where", "created")
    list_display_links = ("task",)
    list_filter = (
        "state",
        DeadFilter,
        QueueFilter,
        TaskNameFilter,
        WorkerFilter,
        ConcurrencyKeyFilter,
        "created_at",
    )
    #: only columns with an index that serves "filtered, newest first"
    sortable_by = ("task", "state_display", "created")
    search_fields = ("name",)  # see get_search_results
    search_help_text = (
        "A job id or its start · part of a task name · arg:42 (a positional "
        "argument) · user_id=7 (a keyword argument) · error:timeout (exception "
        "type or message) · key:tenant-7 (a concurrency key)"
    )
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    list_per_page = 50
    actions = [
        "revoke",
        "revoke_and_terminate",
        "retry",
        "requeue_dead",
        "purge",
        "delete_selected",
    ]
    change_form_template = "admin/djq/job/change_form.html"
    fields = ("name",)  # the page is drawn by its template

    class Media:
        css = {"all": ["djq/admin.css"]}

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Jobs", **(extra_context or {})})

    def get_search_results(self, request, queryset, search_term):
        """An id or its start, ``arg:V``, ``key=V``, ``error:text`` or part of a task name:
        see ``djq.admin_search``."""
        return admin_search.search(queryset, search_term), False

    # --- columns ---------------------------------------------------------------------------
    @admin.display(description="id")
    def short_id(self, obj: Job) -> str:
        text = str(obj.pk)
        return format_html('<code class="djq-id" title="{}">{}</code>', text, text[:8])

    @admin.display(description="task(arguments)", ordering="name")
    def task(self, obj: Job) -> str:
        """``add(1, 2, x=3)`` above its module: what Flower shows as name, args and kwargs."""
        call = call_text(getattr(obj, "args_head", ""), getattr(obj, "kwargs_head", ""))
        short, _, module = obj.name.rpartition(".")[::-1]
        return format_html(
            '<span class="djq-call">{}<span class="djq-args">({})</span></span>'
            '<span class="djq-module">{}</span>',
            short,
            call,
            module,
        )

    @admin.display(description="result / exception")
    def outcome(self, obj: Job) -> str:
        if getattr(obj, "exc_type", None):
            message = shorten(exception_message(obj.exc_head))
            return format_html('<span class="djq-exc">{}: {}</span>', obj.exc_type, message)
        head = getattr(obj, "result_head", None)
        if head is None or obj.state != states.SUCCESS:
            return "—"
        return format_html('<code class="djq-result">{}</code>', shorten(head))

    @admin.display(description="queue · worker")
    def where(self, obj: Job) -> str:
        return format_html('{}<span class="djq-module">{}</span>', obj.queue, obj.worker or "")

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Job) -> str:
        return when(obj.created_at)

    @admin.display(description="state · runtime", ordering="state")
    def state_display(self, obj: Job) -> str:
        """The state, and below it the run time and the retries (a narrow column)."""
        notes = [self.runtime(obj)] if obj.started_at else []
        if obj.retries:
            notes.append(f"{obj.retries} retr{'y' if obj.retries == 1 else 'ies'}")
        if obj.dead_reason:  # a dead letter: a FAILURE shown as DEAD, with its reason
            notes.append(obj.dead_reason.replace("_", " "))
        return format_html(
            '{}<span class="djq-module">{}</span>',
            job_badge(obj),
            " · ".join(notes),
        )

    def log_requeued(self, request, ids: list[str]) -> None:
        requeued = Job.objects.filter(id__in=ids).only("id", "name", "state")
        log_change(request, [(job, "Requeued (was dead)") for job in requeued])

    @admin.display(description="worker")
    def worker_display(self, obj: Job) -> str:
        return obj.worker or "—"

    @admin.display(description="runtime")
    def runtime(self, obj: Job) -> str:
        if obj.started_at is None:
            return "—"
        end = obj.finished_at or getattr(obj, "db_now", None) or dj_timezone.now()
        return duration(end - obj.started_at)

    # --- actions ---------------------------------------------------------------------------
    def _ids(self, request, queryset) -> list[str] | None:
        ids = [str(i) for i in queryset.values_list("id", flat=True)[: MAX_ACTION_JOBS + 1]]
        if len(ids) > MAX_ACTION_JOBS:
            self.message_user(
                request, f"Select at most {MAX_ACTION_JOBS:,} jobs for an action.", messages.ERROR
            )
            return None
        return ids

    def confirm_first(self, request, queryset, action: str, always: bool = False):
        """The confirmation page of a bulk action (more than one job, every job matching the
        filter, or ``always``): how many jobs, in which states; None once confirmed."""
        if request.POST.get("confirm") == "yes":
            return None
        across = request.POST.get("select_across") == "1"
        ids = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        if not (always or across or len(ids) > 1):
            return None
        preview = queryset.order_by()[: MAX_ACTION_JOBS + 1]
        by_state = (
            Job.objects.filter(pk__in=preview.values("pk"))
            .values("state")
            .order_by("state")
            .annotate(n=Count("*"))
        )
        total = sum(row["n"] for row in by_state)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Are you sure?",
            "action": action,
            "across": across,
            "ids": ids,
            "description": BULK[action],
            "by_state": by_state,
            "total": total,
            "too_many": total > MAX_ACTION_JOBS,
            "limit": MAX_ACTION_JOBS,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/djq/job/action_confirmation.html", context)

    def _revoke(self, request, queryset, terminate: bool):
        action = "revoke_and_terminate" if terminate else "revoke"
        asked = self.confirm_first(request, queryset, action, always=terminate)
        if asked is not None:
            return asked
        ids = self._ids(request, queryset)
        if ids is None:
            return None
        done = control.revoke(ids, terminate=terminate)
        stopped = [str(i) for i, state, _ in done if state == states.REVOKED]
        running = [str(i) for i, state, _ in done if state != states.REVOKED]
        note = "Revoked and terminated" if terminate else "Revoked"
        changed = Job.objects.filter(id__in=[i for i, _, _ in done]).only("id", "name", "state")
        log_change(request, [(job, note) for job in changed])
        text = f"{note}: {len(stopped)} waiting job(s) will not run"
        if running:
            verb = "are being terminated" if terminate else "were marked revoked and finish"
            text += f"; {len(running)} running job(s) {verb}"
        skipped = len(ids) - len(done)
        if skipped:
            text += f"; {skipped} finished job(s) left as they were"
        self.message_user(request, text + ".", messages.SUCCESS)

    @admin.action(description="Revoke selected jobs", permissions=["change"])
    def revoke(self, request, queryset):
        return self._revoke(request, queryset, terminate=False)

    @admin.action(
        description="Revoke and terminate selected jobs (kills running ones)",
        permissions=["change"],
    )
    def revoke_and_terminate(self, request, queryset):
        return self._revoke(request, queryset, terminate=True)

    @admin.action(
        description="Purge selected waiting jobs (delete them; they never run)",
        permissions=["delete"],
    )
    def purge(self, request, queryset):
        asked = self.confirm_first(request, queryset, "purge", always=True)
        if asked is not None:
            return asked
        ids = self._ids(request, queryset)
        if ids is None:
            return None
        gone = list(Job.objects.waiting().filter(id__in=ids).only("id", "name", "state"))
        log_change(request, [(job, "Purged (deleted while waiting)") for job in gone])
        n = control.purge_jobs(ids)
        self.message_user(
            request,
            f"Purged {n} waiting job(s); {len(ids) - n} other job(s) were left as they were.",
            messages.SUCCESS,
        )
        return None

    @admin.action(
        description="Delete selected jobs (not those a worker holds)", permissions=["delete"]
    )
    def delete_selected(self, request, queryset):
        """Not Django's stock delete: a job a worker holds (RESERVED, STARTED) is never deleted,
        or its worker would record an outcome for a row that is gone and its work-flow would
        never continue. Waiting and finished jobs go (through the store)."""
        asked = self.confirm_first(request, queryset, "delete_selected")
        if asked is not None:
            return asked
        ids = self._ids(request, queryset)
        if ids is None:
            return None
        gone = store_rows.delete_jobs(ids)
        self.message_user(
            request,
            f"Deleted {len(gone)} job(s); {len(ids) - len(gone)} job(s) "
            "held by a worker were left as they were.",
            messages.SUCCESS,
        )
        return None

    def has_delete_permission(self, request, obj=None) -> bool:
        """No delete button on the page of a job a worker holds (revoke it instead)."""
        if obj is not None and obj.state in states.HELD_STATES:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj) -> None:
        store_rows.delete_jobs([obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        store_rows.delete_jobs(queryset.values_list("id", flat=True))

    @admin.action(
        description="Retry selected failed or revoked jobs (as new jobs)", permissions=["change"]
    )
    def retry(self, request, queryset):
        asked = self.confirm_first(request, queryset, "retry")
        if asked is not None:
            return asked
        ids = self._ids(request, queryset)
        if ids is None:
            return []
        before = control.retried_as(ids)
        results = control.retry_jobs(ids)
        new = Job.objects.filter(id__in=[r.id for r in results]).values_list("parent_id", "id")
        old = {str(j.id): j for j in Job.objects.filter(id__in=ids).only("id", "name", "state")}
        log_change(request, [(old[str(p)], f"Retried as job {i}") for p, i in new])
        self.message_user(
            request,
            retry_message(results, before, len(ids)),
            messages.SUCCESS if results else messages.WARNING,
        )
        return results

    # --- the job's page --------------------------------------------------------------------
    def get_urls(self):
        view = self.admin_site.admin_view(self.object_action)
        limits = self.admin_site.admin_view(functools.partial(task_limits_view, self))
        return [
            path("limits/", limits, name="djq_job_limits"),
            path("<path:object_id>/do/<str:action>/", view, name="djq_job_action"),
            *super().get_urls(),
        ]

    def object_action(self, request, object_id: str, action: str):
        """The job page's buttons: the list's actions, on this one job (POST, CSRF-checked)."""
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:djq_job_change", args=[object_id]))
        handlers = {
            "revoke": self.revoke,
            "terminate": self.revoke_and_terminate,
            "retry": self.retry,
            "requeue": self.requeue_dead,
        }
        if action not in handlers or not self.may_act(request):
            raise PermissionDenied
        job = get_object_or_404(Job, pk=unquote(object_id))  # (the admin quotes ids in URLs)
        done = handlers[action](request, Job.objects.filter(pk=job.pk))
        if isinstance(done, TemplateResponse):  # terminate: the page's button has confirmed
            request.POST = request.POST.copy()
            request.POST["confirm"] = "yes"
            done = handlers[action](request, Job.objects.filter(pk=job.pk))
        back = request.GET.get("next", "")  # (JobsForObjectMixin: back to the object's page)
        if back and url_has_allowed_host_and_scheme(
            back, {request.get_host()}, require_https=request.is_secure()
        ):
            return HttpResponseRedirect(back)
        if action == "retry" and isinstance(done, list) and done:  # on to the new job
            return HttpResponseRedirect(reverse("admin:djq_job_change", args=[done[0].id]))
        return HttpResponseRedirect(reverse("admin:djq_job_change", args=[object_id]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, unquote(object_id))  # (as Django's changeform_view does)
        if job is not None and self.has_view_or_change_permission(request, job):
            extra_context = {**(extra_context or {}), **self.detail_context(request, job)}
        return super().change_view(request, object_id, form_url, extra_context)

    def detail_context(self, request, job: Job) -> dict:
        now = store.db_now()
        end = job.finished_at or (now if job.started_at else None)
        children = Job.objects.filter(parent_id=job.id).only("id", "name", "state", "custom_state")
        retried = control.retried_as([job.id]).get(str(job.id))
        retryable = job.state in (states.FAILURE, states.REVOKED) and not retried
        return {
            "job": job,
            "state_html": job_badge(job),
            "custom_running": bool(job.custom_state) and job.state not in states.READY_STATES,
            "ready_states": states.READY_STATES,
            "progress": progress_percent(job.meta),
            "meta_text": pretty_json(job.meta) if job.meta else "",
            "runtime": duration(end - job.started_at) if job.started_at and end else "—",
            "waited": duration(job.started_at - job.run_after) if job.started_at else None,
            "timeline": timeline(job),
            "tree": workflow.tree(job),
            "parent": Job.objects.filter(id=job.parent_id).only("id", "name", "state").first()
            if job.parent_id
            else None,
            "parent_group": Group.objects.filter(id=job.parent_id).first()
            if job.parent_id
            else None,
            "children": [(c, state_badge(c.state, c.custom_state)) for c in children[:50]],
            "payload": payload(job),
            "logs": job_logs.for_job(job.id),
            "may_act": self.may_act(request),
            "can_revoke": job.state in states.UNREADY_STATES,
            "can_terminate": job.state == states.STARTED,
            "can_retry": retryable,
            "can_requeue": bool(job.dead_reason),
            "retried_as": retried,
            "retry_of": (job.options or {}).get("retry_of"),
            "batch": Batch.objects.filter(id=(job.options or {}).get("batch") or "").first(),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_close": True,
        }


def payload(job: Job) -> list[tuple[str, str]]:
    """(title, text) of the job page's payload: JSON, but an exception as ``Type: message``."""
    error = exception_text(job.result)
    result = (
        ("Exception", error)
        if error
        else (
            "Result" if job.state == states.SUCCESS else "Result / exception",
            pretty_json(job.result),
        )
    )
    shown = [("Arguments", pretty_json(job.args))]
    shown += [
        (title, pretty_json(value))
        for title, value in (
            ("Keyword arguments", job.kwargs),
            ("Meta", job.meta),
            ("Options", job.options),
        )
        if value not in (None, {}, [])
    ]
    if job.result is not None:
        shown.insert(2 if job.kwargs else 1, result)
    return shown


def retry_message(results, before: dict[str, str], asked: int) -> str:
    """What a retry did, with links to the new jobs (and to those of earlier retries)."""
    text = format_html("Retried {} job(s) as new jobs", len(results))
    if results:
        text = format_html("{}: {}", text, job_links(r.id for r in results))
    if before:
        text = format_html(
            "{}; {} job(s) already retried, as {}", text, len(before), job_links(before.values())
        )
    skipped = asked - len(results) - len(before)
    if skipped > 0:
        text = format_html("{}; {} job(s) not FAILURE or REVOKED were skipped", text, skipped)
    return format_html("{}.", text)


def timeline(job: Job) -> list[dict]:
    """The job's state changes with the time spent before each one (SQLite writes naive UTC
    times, PostgreSQL aware ones)."""
    rows, previous = [], None
    for entry in job.history or []:
        state, when, worker = (list(entry) + ["", "", ""])[:3]
        at = parse_datetime(when) if isinstance(when, str) else when
        if at is not None and dj_timezone.is_naive(at):
            at = at.replace(tzinfo=dt.UTC)
        rows.append(
            {
                "state": state_badge(state),
                "at": at,
                "worker": worker,
                "after": duration(at - previous) if previous and at else "",
            }
        )
        previous = at or previous
    return rows


# --- the dashboard --------------------------------------------------------------------------------
@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """The dashboard at ``admin/djq/dashboard/``: listed in the admin index like a model."""

    refresh_seconds = 5

    def has_view_permission(self, request, obj=None) -> bool:
        user = request.user
        return (
            user.is_active
            and user.is_staff
            and (user.has_perm("djq.view_job") or user.has_perm("djq.change_job"))
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        view = self.admin_site.admin_view(self.dashboard_view)
        past = self.admin_site.admin_view(self.history_view)
        return [
            path("", view, name="djq_dashboard_changelist"),
            path("history/", past, name="djq_dashboard_history"),
        ]

    def history_view(self, request):
        """Charts over 1 h … 30 d from the rollup table (``djq.history``)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "History",
            **history.context(request.GET.get("range", "1h")),
        }
        return TemplateResponse(request, "admin/djq/history.html", context)

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        partial = request.GET.get("partial") == "1"
        template = "admin/djq/dashboard_body.html" if partial else "admin/djq/dashboard.html"
        context = dashboard_context()
        if not partial:
            context.update(
                self.admin_site.each_context(request),
                title="Dashboard",
                opts=self.opts,
                refresh_seconds=self._refresh(request),
            )
        return TemplateResponse(request, template, context)

    def _refresh(self, request) -> int:
        """Seconds between refreshes: ``?refresh=N`` (1 to 300), else ``refresh_seconds``."""
        try:
            return min(max(int(request.GET.get("refresh", "")), 1), 300)
        except ValueError:
            return self.refresh_seconds


def dashboard_context() -> dict:
    now = store.db_now()
    counts = monitor.state_counts(now)
    paused = set(Queue.objects.filter(paused=True).values_list("name", flat=True))
    series = monitor.throughput(now)
    running = list(monitor.running_jobs())
    recent = list(monitor.recent_jobs())
    online = list(monitor.workers(now).order_by("name"))
    busy = dict(
        Job.objects.running()
        .values("worker")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("worker", "n")
    )
    return {
        "now": now,
        "window_minutes": int(monitor.WINDOW.total_seconds() // 60),
        "table": monitor.count_table(counts, sorted(paused)),
        "paused": paused,
        "chart": bar_chart(series),
        "done_total": sum(s for _, s, _ in series),
        "failed_total": sum(f for _, _, f in series),
        "running": [
            (j, state_badge(j.state, j.custom_state), duration(now - j.started_at)) for j in running
        ],
        "running_total": sum(n for (_, s), n in counts.items() if s == states.STARTED),
        "waiting_total": sum(n for (_, s), n in counts.items() if s in states.WAITING_STATES),
        "recent": [
            (
                j,
                state_badge(j.state),
                duration(j.finished_at - j.started_at) if j.started_at else "—",
            )
            for j in recent
        ],
        "slowest": [
            dict(row, avg=duration(row["avg"]), max=duration(row["max"]))
            for row in monitor.slowest_tasks(now)
        ],
        "workers": [(w, busy.get(w.name, 0), duration(now - w.last_heartbeat)) for w in online],
        "offline_workers": Worker.objects.exclude(monitor.online_q(now)).count(),
        "unconsumed": unconsumed_text(unconsumed)
        if (unconsumed := monitor.unconsumed_queues(now))
        else "",
    }


#: what deleting a queue or worker row does (Django's "Delete selected …" does not say)
DELETE_QUEUE = "Delete settings of selected queues (pause, limit; their jobs stay)"
DELETE_WORKER = "Delete records of selected workers (a live worker is not stopped)"


def warn_unconsumed(request, queues: dict[str, int]) -> None:
    if queues:
        messages.warning(request, unconsumed_text(queues))


# --- queues ---------------------------------------------------------------------------------------
class QueueChangeList(ChangeList):
    """Each listed queue gets its figures from ``monitor.queue_stats``: four grouped queries on
    the partial indexes for all queues at once (correlated subqueries per queue row cost far
    more, and their planner estimates set off PostgreSQL's JIT compiler)."""

    def get_results(self, request):
        super().get_results(request)
        now = store.db_now()
        stats = monitor.queue_stats(now)
        self.result_list = list(self.result_list)
        for queue in self.result_list:
            queue.stats, queue.db_now = stats.get(queue.name, monitor.QueueStats()), now


@admin.register(Queue)
class QueueAdmin(QueueControls, ReadOnlyDetail, admin.ModelAdmin):
    list_display = (
        "name",
        "status",
        "waiting",
        "running",
        "failed",
        "oldest_waiting",
        "concurrency_limit",
    )
    fields = readonly_fields = ("name", "status", "concurrency_limit", "created")
    actions = ["pause", "resume", "purge", "delete_selected"]

    class Media:
        css = {"all": ["djq/admin.css"]}

    def get_changelist(self, request, **kwargs):
        return QueueChangeList

    def changelist_view(self, request, extra_context=None):
        """Queues known only from jobs or workers get a row first, so they can be paused; jobs
        waiting in a queue no online worker consumes are pointed out."""
        if self.has_view_or_change_permission(request):
            now = store.db_now()
            control.register_queues(monitor.queue_names(now))
            warn_unconsumed(request, monitor.unconsumed_queues(now))
        return super().changelist_view(request, {"title": "Queues", **(extra_context or {})})

    @admin.display(description="created")
    def created(self, obj: Queue) -> str:
        return when(obj.created_at)

    @admin.action(description=DELETE_QUEUE, permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's delete (with its confirmation page), saying what it does to queues."""
        return django_delete_selected(self, request, queryset)

    def delete_model(self, request, obj) -> None:
        store_rows.delete_queues([obj.name])

    def delete_queryset(self, request, queryset) -> None:
        store_rows.delete_queues(queryset.values_list("name", flat=True))

    @admin.display(description="status", ordering="paused")
    def status(self, obj: Queue) -> str:
        if obj.paused:
            return mark_safe('<span class="djq-state djq-state-PAUSED">paused</span>')
        return mark_safe('<span class="djq-state djq-state-ACTIVE">active</span>')

    def _jobs_link(self, obj: Queue, n: int, **params) -> str:
        from urllib.parse import urlencode

        url = reverse("admin:djq_job_changelist") + "?" + urlencode({"queue": obj.name, **params})
        return format_html('<a href="{}">{}</a>', url, f"{n:,}")

    @admin.display(description="waiting")
    def waiting(self, obj: Queue) -> str:
        return self._jobs_link(obj, obj.stats.waiting, state="PENDING")

    @admin.display(description="running")
    def running(self, obj: Queue) -> str:
        return self._jobs_link(obj, obj.stats.running, state="STARTED")

    @admin.display(description="failed (last hour)")
    def failed(self, obj: Queue) -> str:
        return self._jobs_link(obj, obj.stats.failed, state="FAILURE")

    @admin.display(description="oldest waiting")
    def oldest_waiting(self, obj: Queue) -> str:
        return duration(obj.stats.waiting_for(obj.db_now))

    def _log(self, request, queryset, message: str) -> None:
        log_change(request, [(q, message) for q in queryset])

    @admin.action(description="Pause selected queues (running jobs finish)", permissions=["change"])
    def pause(self, request, queryset):
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            control.pause_queue(name)
        self._log(request, queryset, "Paused")
        self.message_user(
            request, f"Paused {', '.join(names)}: their jobs wait until resumed.", messages.SUCCESS
        )

    @admin.action(description="Resume selected queues", permissions=["change"])
    def resume(self, request, queryset):
        names = list(queryset.values_list("name", flat=True))
        for name in names:
            control.resume_queue(name)
        self._log(request, queryset, "Resumed")
        self.message_user(request, f"Resumed {', '.join(names)}.", messages.SUCCESS)

    @admin.action(description="Purge waiting jobs of selected queues…", permissions=["change"])
    def purge(self, request, queryset):
        """Asks first (like Django's delete): lists the queues and how many jobs go."""
        if not request.user.has_perm("djq.delete_job"):
            raise PermissionDenied
        queues = list(queryset)
        if request.POST.get("confirm") == "yes":
            total = sum(control.purge(q.name) for q in queues)
            self._log(request, queues, "Purged waiting jobs")
            self.message_user(request, f"Purged {total} waiting job(s).", messages.SUCCESS)
            return None
        stats = monitor.queue_stats(store.db_now())
        waiting = [(q, stats[q.name].waiting) for q in queues]
        context = {
            **self.admin_site.each_context(request),
            "title": "Purge waiting jobs?",
            "opts": self.opts,
            "queues": waiting,
            "total": sum(n for _, n in waiting),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/djq/queue/purge_confirmation.html", context)


# --- workers --------------------------------------------------------------------------------------
@admin.register(Worker)
class WorkerAdmin(WorkerControls, ReadOnlyDetail, admin.ModelAdmin):
    list_display = (
        "name",
        "status",
        "host",
        "queue_list",
        "slots",
        "up",
        "heartbeat",
        "done",
        "failed_count",
        "current",
    )
    list_filter = (OnlineFilter, "pool")
    show_facets = admin.ShowFacets.NEVER
    search_fields = ("name", "hostname")
    fields = (
        "name",
        "status",
        "hostname",
        "pid",
        "queue_list",
        "concurrency",
        "pool",
        "started",
        "last_beat",
        "heartbeat",
        "stopped",
        "processed",
        "failed",
        "current_jobs",
    )
    readonly_fields = fields
    actions = ["ping", "shutdown", "delete_selected"]

    class Media:
        css = {"all": ["djq/admin.css"]}

    @admin.action(description="Ping selected workers", permissions=["change"])
    def ping(self, request, queryset):
        names = list(queryset.values_list("name", flat=True))
        answered = {
            name for reply in control.ping(destination=names, timeout=1.0) for name in reply
        }
        silent = sorted(set(names) - answered)
        if answered:
            self.message_user(request, f"pong from {', '.join(sorted(answered))}", messages.SUCCESS)
        if silent:
            self.message_user(
                request, f"no answer within 1 s from {', '.join(silent)}", messages.WARNING
            )

    @admin.action(
        description="Shut down selected workers (warm: running jobs finish)", permissions=["change"]
    )
    def shutdown(self, request, queryset):
        names = list(queryset.values_list("name", flat=True))
        control.shutdown(destination=names)
        log_change(request, [(w, "Shutdown requested") for w in queryset])
        self.message_user(request, f"Asked {', '.join(names)} to shut down.", messages.SUCCESS)

    def get_queryset(self, request):
        now = store.db_now()
        running = Job.objects.running().filter(worker=OuterRef("name")).order_by()
        return (
            super()
            .get_queryset(request)
            .annotate(
                db_now=Value(now, DateTimeField()),
                n_running=Coalesce(
                    Subquery(running.values("worker").annotate(n=Count("*")).values("n")), 0
                ),
            )
        )

    def is_online(self, obj: Worker) -> bool:
        lease = float(settings.WORKER_LEASE)
        age = (obj.db_now - obj.last_heartbeat).total_seconds()
        return obj.stopped_at is None and age < lease

    @admin.display(description="status")
    def status(self, obj: Worker) -> str:
        if self.is_online(obj):
            return mark_safe('<span class="djq-state djq-state-ONLINE">online</span>')
        return mark_safe('<span class="djq-state djq-state-OFFLINE">offline</span>')

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Workers", **(extra_context or {})})

    @admin.display(description="host · pid", ordering="hostname")
    def host(self, obj: Worker) -> str:
        return f"{obj.hostname} · {obj.pid}"

    @admin.display(description="pool")
    def slots(self, obj: Worker) -> str:
        return f"{obj.pool} × {obj.concurrency}"

    @admin.display(description="started", ordering="started_at")
    def started(self, obj: Worker) -> str:
        return when(obj.started_at)

    @admin.display(description="up", ordering="started_at")
    def up(self, obj: Worker) -> str:
        end = obj.stopped_at or obj.db_now
        return format_html(
            '<span title="since {}">{}</span>',
            dj_timezone.localtime(obj.started_at).strftime("%Y-%m-%d %H:%M:%S"),
            duration(end - obj.started_at),
        )

    @admin.display(description="last heartbeat")
    def last_beat(self, obj: Worker) -> str:
        return when(obj.last_heartbeat)

    @admin.display(description="stopped")
    def stopped(self, obj: Worker) -> str:
        return when(obj.stopped_at)

    @admin.display(description="done", ordering="processed")
    def done(self, obj: Worker) -> str:
        return f"{obj.processed:,}"

    @admin.display(description="failed", ordering="failed")
    def failed_count(self, obj: Worker) -> str:
        return f"{obj.failed:,}"

    @admin.action(description=DELETE_WORKER, permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's delete (with its confirmation page), saying what it does to workers."""
        return django_delete_selected(self, request, queryset)

    def delete_model(self, request, obj) -> None:
        store_rows.delete_workers([obj.name])

    def delete_queryset(self, request, queryset) -> None:
        store_rows.delete_workers(queryset.values_list("name", flat=True))

    @admin.display(description="queues")
    def queue_list(self, obj: Worker) -> str:
        return ", ".join(obj.queues or []) or "—"

    @admin.display(description="heartbeat", ordering="-last_heartbeat")
    def heartbeat(self, obj: Worker) -> str:
        return duration(obj.db_now - obj.last_heartbeat)

    @admin.display(description="running", ordering="n_running")
    def current(self, obj: Worker) -> str:
        url = reverse("admin:djq_job_changelist") + f"?worker={obj.name}&state=STARTED"
        return format_html('<a href="{}">{}</a>', url, obj.n_running)

    @admin.display(description="current jobs")
    def current_jobs(self, obj: Worker) -> str:
        running = Job.objects.running().filter(worker=obj.name).order_by("started_at")[:50]
        links = (
            (reverse("admin:djq_job_change", args=[quote(j.pk)]), j.name, j.pk) for j in running
        )
        return (
            format_html_join(mark_safe("<br>"), '<a href="{}">{}</a> <code>{}</code>', links)
            or "none"
        )


# --- schedules (beat) -----------------------------------------------------------------------------
class TaskNameInput(forms.TextInput):
    """A text input that suggests the registered task names (any name is accepted)."""

    def render(self, name, value, attrs=None, renderer=None):
        attrs = {**(attrs or {}), "list": "djq-task-names", "size": 60}
        options = format_html_join("", '<option value="{}">', ((n,) for n in tasks.regular()))
        html = super().render(name, value, attrs, renderer)
        return format_html('{}<datalist id="djq-task-names">{}</datalist>', html, options)


def _zone_choices() -> list[tuple[str, str]]:
    from zoneinfo import available_timezones

    return [("", "default (DJQ_TIMEZONE / TIME_ZONE)")] + [
        (z, z) for z in sorted(available_timezones())
    ]


class PeriodicTaskForm(forms.ModelForm):
    """The four schedule kinds side by side; the model's ``clean`` says which is wrong."""

    timezone = forms.ChoiceField(choices=_zone_choices, required=False)

    class Meta:
        model = PeriodicTask
        fields = "__all__"
        widgets = {"task": TaskNameInput, "crontab": forms.TextInput(attrs={"size": 30})}

    def clean_task(self) -> str:
        """Only a registered task: any other name would fire and fail with NotRegistered."""
        name = (self.cleaned_data.get("task") or "").strip()
        if name and name not in tasks:
            close = difflib.get_close_matches(name, list(tasks.regular()), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise forms.ValidationError(
                f"No task named {name!r} is registered, so this schedule would fail at every "
                f"run with NotRegistered.{hint}"
            )
        return name

    def validate_constraints(self):
        """The model's ``clean`` already names what is wrong (e.g. two schedules at once): the
        database constraints' raw "Constraint … is violated." would only repeat it."""
        if not self._errors:
            super().validate_constraints()

    def clean(self):
        cleaned = super().clean()
        keys = ("task", "args", "kwargs", *SCHEDULE_FIELDS[:8])
        if self.errors or any(k not in cleaned for k in keys):
            return cleaned
        same = PeriodicTask.objects.filter(
            **{k: cleaned[k] for k in keys if k not in ("args", "kwargs")}
        ).exclude(pk=self.instance.pk)
        for other in same:
            if other.args == cleaned["args"] and other.kwargs == cleaned["kwargs"]:
                raise forms.ValidationError(
                    f"An identical schedule already exists: {other.name!r} runs the same task "
                    "with the same arguments on the same schedule."
                )
        return cleaned


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(admin.ModelAdmin):
    form = PeriodicTaskForm
    list_display = (
        "name",
        "task_name",
        "schedule_display",
        "enabled",
        "next_run",
        "last_run",
        "runs",
        "source",
    )
    list_filter = ("enabled", "one_off", "catch_up")
    search_fields = ("name", "task", "description")
    actions = ["enable", "disable", "run_now"]
    readonly_fields = (
        "upcoming",
        "next_run",
        "last_run",
        "total_run_count",
        "source",
        "created",
        "updated",
    )
    fieldsets = [
        (None, {"fields": ("name", "task", "enabled", "description")}),
        (
            "Arguments and options",
            {"fields": ("args", "kwargs", "queue", "priority", "expire_seconds", "options")},
        ),
        (
            "Schedule: give exactly one of a cron expression, an interval, a clocked time or "
            "a solar event",
            {
                "fields": (
                    "crontab",
                    ("interval_every", "interval_period"),
                    "clocked_time",
                    ("solar_event", "solar_latitude", "solar_longitude"),
                    "timezone",
                    "start_time",
                    "one_off",
                    ("catch_up", "backfill_limit"),
                ),
            },
        ),
        (
            "Runs",
            {
                "fields": (
                    "upcoming",
                    "next_run",
                    "last_run",
                    "total_run_count",
                    "source",
                    "created",
                    "updated",
                )
            },
        ),
    ]

    @admin.display(description="task", ordering="task")
    def task_name(self, obj: PeriodicTask) -> str:
        return breakable(obj.task)

    @admin.display(description="next run", ordering="next_run_at")
    def next_run(self, obj: PeriodicTask) -> str:
        return when(obj.next_run_at)

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, obj: PeriodicTask) -> str:
        return when(obj.last_run_at)

    @admin.display(description="runs", ordering="total_run_count")
    def runs(self, obj: PeriodicTask) -> str:
        return f"{obj.total_run_count:,}"

    @admin.display(description="created")
    def created(self, obj: PeriodicTask) -> str:
        return when(obj.created_at)

    @admin.display(description="updated")
    def updated(self, obj: PeriodicTask) -> str:
        return when(obj.updated_at)

    @admin.display(description="schedule")
    def schedule_display(self, obj: PeriodicTask) -> str:
        return obj.schedule_display()

    @admin.display(description="source")
    def source(self, obj: PeriodicTask) -> str:
        return "DJQ_BEAT_SCHEDULE" if obj.settings_hash else "admin"

    @admin.display(description="next 5 runs")
    def upcoming(self, obj: PeriodicTask) -> str:
        """The next runs in the schedule's zone and in UTC, as beat will fire them."""
        if obj.pk is None or not obj.enabled:
            return "—"
        try:
            tz = zone(obj.zone_name())
            times = preview(obj, dj_timezone.now())
        except (TypeError, ValueError) as exc:
            return f"unusable schedule: {exc}"
        lines = [
            (t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z"), t.strftime("%H:%M:%S UTC"))
            for t in times
        ]
        return format_html_join(mark_safe("<br>"), "{} ({})", lines) or "none"

    def save_model(self, request, obj, form, change):
        """An edit of the schedule makes beat recompute ``next_run_at``; counters are kept."""
        if not change:
            store_rows.save_periodic_task(obj)
            return
        if set(form.changed_data) & set(SCHEDULE_FIELDS):
            obj.next_run_at = None
        fields = [*form.changed_data, "next_run_at", "updated_at"]
        store_rows.save_periodic_task(obj, update_fields=fields)

    def delete_model(self, request, obj) -> None:
        store_rows.delete_periodic_tasks([obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        store_rows.delete_periodic_tasks(queryset.values_list("pk", flat=True))

    @admin.action(description="Enable selected schedules", permissions=["change"])
    def enable(self, request, queryset):
        done = store_rows.set_periodic_enabled(queryset.values_list("pk", flat=True), True)
        self.message_user(request, f"Enabled {done} schedule(s).", messages.SUCCESS)

    @admin.action(description="Disable selected schedules", permissions=["change"])
    def disable(self, request, queryset):
        done = store_rows.set_periodic_enabled(queryset.values_list("pk", flat=True), False)
        self.message_user(request, f"Disabled {done} schedule(s).", messages.SUCCESS)

    @admin.action(description="Run selected schedules now", permissions=["change"])
    def run_now(self, request, queryset):
        ids = [i for i in (run_now(pt) for pt in queryset) if i]
        self.message_user(
            request,
            format_html("Enqueued {} job(s): {}", len(ids), job_links(ids)),
            messages.SUCCESS,
        )
